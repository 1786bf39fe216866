"""Text normalisation shared by documents and queries.

Traditional -> simplified, pinyin annotations such as 共識(shí) removed, mojibake and
whitespace cleaned, so that both sides of a search speak the same script.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache


_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ"
# A run of lowercase pinyin (optionally toned) in brackets right after a CJK character.
_PINYIN_NOTE = re.compile(rf"(?<=[\u4e00-\u9fff])[(（]([a-z{_TONED}]{{1,7}})[)）]")
# One pinyin syllable, tone marks removed (ü as v): tells 共識(shí) from 安灯(andon) or 决策人(sponsor).
_SYLLABLE = re.compile(
    r"(?:[bpmfdtnlgkhjqxrzcsyw]|zh|ch|sh)?(?:a|o|e|i|u|v|ai|ei|ao|ou|an|en|ang|eng|ong|er|ia|ie|iao|iu|ian|in"
    r"|iang|ing|iong|ua|uo|uai|ui|uan|un|uang|ue|ve|van|vn)|ng|n|m|hm|hng")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@lru_cache(maxsize=1)
def _converter():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _converter().convert(text)


def _drop_pinyin(match: re.Match) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFD", match.group(1).replace("ü", "v"))
                    if not unicodedata.combining(c))
    return "" if _SYLLABLE.fullmatch(plain) else match.group(0)


# Text made only of these characters is left as it is by ftfy.fix_text: no letters of the code
# pages mojibake comes from, no HTML ("&", "<"), terminal escapes, curly quotes, ligatures or odd
# line breaks; full-width forms are folded by NFKC below either way. Most Chinese passages are
# such text, and skipping ftfy for them makes normalising 50,000 texts (an FAQ sheet of 10,000
# rows) take ~1 s instead of ~7 s. tests/test_normalize.py compares both on the whole corpus.
_FTFY_INERT = re.compile("[\n\t\x20-\x25\x27-\x3b\x3d-\x7e\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]*")


def normalize(text: str) -> str:
    """Clean one document or query; idempotent."""
    if not _FTFY_INERT.fullmatch(text):
        import ftfy  # here: most questions never need it, and its import costs ~0.05 s

        text = ftfy.fix_text(text)
    text = _PINYIN_NOTE.sub(_drop_pinyin, text)
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def contains_word(text: str, word: str) -> bool:
    """Whether `word` is in `text`, ignoring case. A Latin word counts only as a whole word, plurals
    included ("down" is in "system down" but not in "download", "chain" is in "chains"); Chinese is
    written without spaces, so a Chinese word counts wherever it appears."""
    if not word:
        return False
    if not _could_contain(text, word):
        # Most words are absent from a question: a substring test spares compiling their patterns
        # (a few hundred gazetteer and product words per question, ~10 ms of a CLI command).
        return False
    return _word_pattern(word).search(text) is not None


def _could_contain(text: str, word: str) -> bool:
    """False only when `word` surely is not in `text`: its stem (bakery -> baker) is not a
    substring. Words with cased letters outside ASCII go to the pattern (Unicode case folding)."""
    if not word.isascii():
        caseless = word.lower() == word.upper()  # Chinese
        return word in text if caseless else True
    stem = word[:-1] if word[-1] in "yY" else word
    return stem.lower() in text.lower()


@lru_cache(maxsize=4096)
def _word_pattern(word: str) -> re.Pattern[str]:
    latin = re.compile(r"[A-Za-z0-9]")
    head = r"(?<![A-Za-z0-9])" if latin.match(word[0]) else ""
    body = re.escape(word)
    if re.search(r"[A-Za-z]$", word):  # bakery -> bakeries, chain -> chains, box -> boxes
        body = re.escape(word[:-1]) + r"(?:y|ies)" if word[-1] in "yY" else body + r"(?:e?s)?"
    tail = r"(?![A-Za-z0-9])" if latin.match(word[-1]) else ""
    return re.compile(head + body + tail, re.IGNORECASE)


def mostly_latin(text: str) -> bool:
    """More than 60 % of the letters are ASCII: an English question (or mostly so), as opposed to Chinese."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) / len(letters) > 0.6
