"""Keyword channels: BM25 over jieba tokens and over character bigrams (bm25s: sparse,
vectorised, fast at 100k+ passages), a domain dictionary so that jieba keeps the knowledge's
own words whole, and pinyin-based correction of typos and homophones of those words.

jieba is jieba-rs through rjieba: the same dictionary and segmentation as Python jieba, but
its dictionary loads in ~0.1 s instead of ~0.6 s, which every CLI command pays."""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from functools import cached_property, lru_cache

import numpy as np

_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]")
_STOPWORDS = frozenset(
    "的 了 和 是 在 有 我 我们 你 你们 他 她 它 吗 呢 吧 啊 呀 么 什么 怎么 怎样 如何 哪些 哪个 为什么 请问 一下 "
    "一个 这个 那个 这些 那些 就 都 也 还 要 会 能 可以 把 被 让 给 对 与 及 或 等 之 其 而 但 如果 "
    "the a an of to in on for and or is are be how what which why do does can i we you it with".split()
)


# Part of the lexicon version: tokens indexed by another segmenter are tokenized again.
SEGMENTER = "jieba-rs"


class Segmenter:
    """jieba's dictionary and segmentation, safe to share between threads: jieba-rs refuses to
    segment while another thread adds a word ("Already borrowed"), so both go through one lock
    (a question segments in microseconds; words are added when the knowledge changes)."""

    def __init__(self) -> None:
        import rjieba  # importing it loads the dictionary into the module's own segmenter

        self._jieba = rjieba
        self._lock = threading.Lock()

    def cut(self, text: str) -> list[str]:
        with self._lock:
            return self._jieba.cut(text)

    def cut_for_search(self, text: str) -> list[str]:
        with self._lock:
            return self._jieba.cut_for_search(text)

    def tokenize(self, text: str, hmm: bool = True) -> list[tuple[str, int, int]]:
        """(word, start, end) with character offsets."""
        with self._lock:
            return self._jieba.tokenize(text, hmm=hmm)

    def has_word(self, word: str) -> bool:
        with self._lock:
            return self._jieba.has_word(word)

    def add_words(self, words: Iterable[str]) -> None:
        with self._lock:
            for word in words:
                self._jieba.add_word(word, None, None)


@lru_cache(maxsize=1)
def _jieba() -> Segmenter:
    return Segmenter()


_DOMAIN_WORDS: set[str] = set()
_DOMAIN_LOCK = threading.Lock()
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[0-9a-z]+(?:[-.][0-9a-z]+)*")


def add_domain_words(words: Iterable[str]) -> None:
    """Teach jieba the knowledge's own words (product names, glossary terms, industries…) so
    that 云铺收银 or 健康度 are not split into pieces that match everything."""
    new = {w.strip().lower() for w in words if 2 <= len(w.strip()) <= 12} - _DOMAIN_WORDS
    if not new:
        return
    with _DOMAIN_LOCK:
        _jieba().add_words(sorted(new))
        _DOMAIN_WORDS.update(new)


def lexicon_version() -> str:
    """Changes when the domain dictionary does, so indexed tokens can be refreshed."""
    return hashlib.sha256("\n".join([SEGMENTER, *sorted(_DOMAIN_WORDS)]).encode()).hexdigest()[:16]


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of normalised text, lowercased, without stopwords or punctuation."""
    words = _jieba().cut_for_search(text.lower())
    return [w for w in (w.strip() for w in words) if w and w not in _STOPWORDS and _KEEP.search(w)]


def bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of the Chinese runs, plus the Latin words: a keyword channel
    that still matches when a typo or an odd split breaks the jieba words."""
    lowered = text.lower()
    grams: list[str] = []
    for run in _CJK_RUN.findall(lowered):
        grams.extend(run if len(run) == 1 else (run[i:i + 2] for i in range(len(run) - 1)))
    grams.extend(w for w in _LATIN_WORD.findall(lowered) if w not in _STOPWORDS)
    return grams


_FUNCTION_CHARS = set("的了是在我你他她它吗呢吧啊呀么和与就都也还要会能把被让给对这那个一有没不")


class Speller:
    """Corrects typos and homophones of the knowledge's words by their pinyin: 续废 -> 续费,
    收银鸡 -> 收银机, 健康渡 -> 健康度. Only a run of characters that is not a word itself (in
    jieba's dictionary or the knowledge) is replaced, so correct words are never touched. Two-
    character words must be common in the knowledge: short sounds collide too easily."""

    def __init__(self, vocabulary: Counter[str], min_count_short: int = 3) -> None:
        from pypinyin import lazy_pinyin
        from pypinyin.pinyin_dict import pinyin_dict

        words = {w: n for w, n in vocabulary.items() if 2 <= len(w) <= 6 and _CJK_RUN.fullmatch(w)}
        self._known = set(words)
        self._by_sound: dict[tuple[str, ...], str] = {}
        for word, count in sorted(words.items(), key=lambda kv: -kv[1]):  # the commonest word wins a sound
            if len(word) > 2 or count >= min_count_short:
                self._by_sound.setdefault(tuple(lazy_pinyin(word)), word)
        self._lengths = sorted({len(k) for k in self._by_sound}, reverse=True)
        # The sound of every character that can be part of a typo of those words, kept with the
        # speller so that correcting a question needs no pinyin library (~0.3 s to import). A typo
        # is typed by sound and picked from the input method's list: its characters' usual reading.
        syllables = {s for key in self._by_sound for s in key}
        chars = (chr(code) for code in pinyin_dict if _CJK_RUN.fullmatch(chr(code)))
        self._sound_of = {c: sound for c in chars if (sound := lazy_pinyin(c)[0]) in syllables}

    def correct(self, text: str) -> str:
        if not self._by_sound:
            return text
        return _CJK_RUN.sub(lambda m: self._correct_run(m.group(0)), text)

    def _correct_run(self, run: str) -> str:
        if len(run) < 2:
            return run
        known_word = _jieba().has_word
        sounds = [self._sound_of.get(c, "") for c in run]  # "": no knowledge word has this sound
        out, i = [], 0
        while i < len(run):
            for n in self._lengths:
                piece = run[i:i + n]
                if len(piece) < n:
                    continue
                if piece in self._known or (n > 2 and known_word(piece)):
                    out.append(piece)
                    i += n
                    break
                word = self._by_sound.get(tuple(sounds[i:i + n]))
                if word and not known_word(piece) and not (_FUNCTION_CHARS & set(piece)):
                    out.append(word)
                    i += n
                    break
            else:
                out.append(run[i])
                i += 1
        return "".join(out)


def vocabulary(texts: Iterable[str], domain_words: Iterable[str] = ()) -> Counter[str]:
    """How often each word occurs in the knowledge (domain words count as common)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in _jieba().cut(text.lower()) if _CJK_RUN.fullmatch(w))
    for word in domain_words:
        counts[word.lower()] += 100
    return counts


class QueryExpander:
    """Adds Chinese glossary terms to an English question's tokens (the knowledge is Chinese)."""

    def __init__(self, glossary: dict[str, list[str]]) -> None:
        self._glossary = glossary

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern[str], list[str]]]:
        # Compiled on the first English question: a Chinese one never pays for it.
        return [(re.compile(rf"(?<![a-z]){re.escape(key.lower())}(?![a-z])"), terms)
                for key, terms in sorted(self._glossary.items(), key=lambda kv: -len(kv[0]))]

    def terms(self, text: str) -> list[str]:
        """Chinese glossary terms for the English words and phrases in the text."""
        lowered = text.lower()
        found: list[str] = []
        for pattern, terms in self._patterns:
            if pattern.search(lowered):
                found.extend(t for t in terms if t not in found)
        return found

    def expand(self, text: str) -> list[str]:
        return [token for term in self.terms(text) for token in tokenize(term)]


K1, B = 1.2, 0.75


class LexicalIndex:
    def __init__(self, corpus_tokens: list[list[str]]) -> None:
        import bm25s

        self.size = len(corpus_tokens)
        # Document frequencies: how informative a query word is, and whether the knowledge knows it.
        self.df: Counter[str] = Counter(t for doc in corpus_tokens for t in set(doc))
        self.avgdl = (sum(len(doc) for doc in corpus_tokens) / self.size) if self.size else 1.0
        bm25 = bm25s.BM25(k1=K1, b=B)  # method "lucene", which scores_of mirrors
        if corpus_tokens:
            bm25.index(corpus_tokens, show_progress=False)
        # bm25s computes every (word, passage) score up front, as a sparse word-by-passage matrix;
        # a query sums the columns of its words. Only those arrays are kept, so that an index loaded
        # from disk (see HybridRetriever._load) is searched without importing bm25s and scipy (~0.2 s
        # of every CLI command).
        self.vocab: dict[str, int] = dict(bm25.vocab_dict or {})
        matrix = bm25.scores if corpus_tokens else {}
        self._data = np.asarray(matrix.get("data", []), dtype=np.float32)
        self._indices = np.asarray(matrix.get("indices", []), dtype=np.int64)
        self._indptr = np.asarray(matrix.get("indptr", [0]), dtype=np.int64)

    def scores_of(self, query_tokens: list[str], docs: list[Counter[str]], lengths: np.ndarray) -> np.ndarray:
        """BM25 of passages added since this index was built, with its statistics (the Lucene
        variant bm25s uses), so that they rank among the indexed ones without rebuilding it."""
        scores = np.zeros(len(docs), dtype=np.float32)
        if not docs or not query_tokens:
            return scores
        norm = K1 * ((1 - B) + B * lengths / max(self.avgdl, 1e-9))
        for token in query_tokens:  # repeated query words count again, as in bm25s
            df = self.df.get(token, 0)
            idf = math.log(1 + (self.size - df + 0.5) / (df + 0.5))
            tf = np.fromiter((doc.get(token, 0) for doc in docs), dtype=np.float32, count=len(docs))
            scores += idf * tf / (norm + tf)
        return scores

    def idf(self, token: str) -> float:
        return math.log(1 + self.size / (self.df.get(token, 0) + 0.5))

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every passage (zeros where the mask excludes it)."""
        if not self.size or not query_tokens:
            return np.zeros(self.size, dtype=np.float32)
        scores = np.zeros(self.size, dtype=np.float32)
        for token in query_tokens:  # a repeated query word counts again, as in bm25s
            column = self.vocab.get(token)
            if column is not None:
                start, end = self._indptr[column], self._indptr[column + 1]
                scores[self._indices[start:end]] += self._data[start:end]
        return scores * mask if mask is not None else scores
