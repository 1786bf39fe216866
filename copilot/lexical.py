"""BM25 over jieba tokens (bm25s: sparse, vectorised, fast at 100k+ passages)."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import numpy as np

_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]")
_STOPWORDS = frozenset(
    "的 了 和 是 在 有 我 我们 你 你们 他 她 它 吗 呢 吧 啊 呀 么 什么 怎么 怎样 如何 哪些 哪个 为什么 请问 一下 "
    "一个 这个 那个 这些 那些 就 都 也 还 要 会 能 可以 把 被 让 给 对 与 及 或 等 之 其 而 但 如果 "
    "the a an of to in on for and or is are be how what which why do does can i we you it with".split()
)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of normalised text, lowercased, without stopwords or punctuation."""
    words = _jieba().lcut_for_search(text.lower())
    return [w for w in (w.strip() for w in words) if w and w not in _STOPWORDS and _KEEP.search(w)]


class QueryExpander:
    """Adds Chinese glossary terms to an English question's tokens (the knowledge is Chinese)."""

    def __init__(self, glossary: dict[str, list[str]]) -> None:
        self._patterns = [(re.compile(rf"(?<![a-z]){re.escape(key.lower())}(?![a-z])"), terms)
                          for key, terms in sorted(glossary.items(), key=lambda kv: -len(kv[0]))]

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


class LexicalIndex:
    def __init__(self, corpus_tokens: list[list[str]]) -> None:
        import bm25s

        self.size = len(corpus_tokens)
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75)
        if corpus_tokens:
            self._bm25.index(corpus_tokens, show_progress=False)

    def scores(self, query_tokens: list[str], mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every passage (zeros where the mask excludes it)."""
        if not self.size or not query_tokens:
            return np.zeros(self.size, dtype=np.float32)
        known = [t for t in query_tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        scores = self._bm25.get_scores(known)
        return scores * mask if mask is not None else scores
