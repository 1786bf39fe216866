"""Turn files into a title and a list of blocks (headings and paragraphs), one parser each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.errors import InvalidInput
from copilot.normalize import normalize

if TYPE_CHECKING:
    from markdown_it.token import Token

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
# Spreadsheets (FAQs, cases, playbooks, accounts) are read by copilot/knowledge/sheets.py.
SHEET_SUFFIXES = {".xlsx", ".csv"}


# Level of a short line in plain text that looks like an outline node: weaker than any real
# heading, and a sibling of other outline lines rather than a replacement for them.
OUTLINE_LEVEL = 9


@dataclass(frozen=True)
class Block:
    text: str
    heading_level: int = 0  # 0 for body text, 1..6 for headings, OUTLINE_LEVEL for outline lines


@dataclass(frozen=True)
class ParsedDoc:
    title: str
    blocks: list[Block]


def parse_file(path: Path) -> ParsedDoc:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InvalidInput(f"{path}: unsupported file type {suffix!r} (supported: {', '.join(sorted(SUPPORTED))})")
    try:
        if suffix in {".txt"}:
            blocks = _text_blocks(_read_text(path))
        elif suffix in {".md", ".markdown"}:
            blocks = _markdown_blocks(_read_text(path))
        elif suffix in {".html", ".htm"}:
            _read_text(path)  # refuses binary content
            blocks = _html_blocks(path.read_bytes())
        elif suffix == ".pdf":
            blocks = _pdf_blocks(path)
        else:
            blocks = _docx_blocks(path)
    except InvalidInput:
        raise
    except Exception as exc:  # a broken file must not stop a whole folder
        raise InvalidInput(f"{path}: cannot be parsed ({type(exc).__name__}: {exc})") from exc
    blocks = [Block(normalize(b.text), b.heading_level) for b in blocks]
    blocks = [b for b in blocks if b.text]
    title = next((b.text for b in blocks if 0 < b.heading_level < OUTLINE_LEVEL), None)
    title = title or (blocks[0].text[:80] if blocks else path.stem)
    return ParsedDoc(title=title[:200], blocks=blocks)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    text = _decode(raw)
    if looks_binary(raw, text):
        raise InvalidInput(f"{path}: not a text file (binary content); save it as UTF-8 text or upload the "
                           "original document (docx, pdf)",
                           zh=f"{path.name}：不是文本文件（内容是二进制数据），请另存为 UTF-8 文本，或直接上传原始文档（docx、pdf）")
    return text


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark (Windows Notepad)
        return raw.decode("utf-16", errors="replace")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


# Text files have no NUL bytes and next to no control characters or undecodable bytes; a binary
# file (an image, an archive, an executable renamed .txt) has plenty of both.
BINARY_SAMPLE_BYTES = 64 * 1024
BINARY_MAX_SHARE = 0.02
_TEXT_CONTROLS = set("\t\n\r\f\v\x1b")  # whitespace, and ESC of terminal colours in a saved log


def looks_binary(raw: bytes, text: str) -> bool:
    """Whether a file's bytes (and their best decoding) are binary data rather than text."""
    if not raw.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in raw[:BINARY_SAMPLE_BYTES]:
        return True
    sample = text[:BINARY_SAMPLE_BYTES]
    odd = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " or "\x7f" <= ch <= "\x9f") and ch not in _TEXT_CONTROLS)
    return bool(sample) and odd / len(sample) > BINARY_MAX_SHARE


_SENTENCE_END = re.compile(r"[。！？!?;；:：,，、.…~]$")


def _text_blocks(text: str) -> list[Block]:
    """Plain text: a short line without closing punctuation reads as an outline heading."""
    blocks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        is_heading = len(line) <= 24 and not _SENTENCE_END.search(line)
        blocks.append(Block(line, OUTLINE_LEVEL if is_heading else 0))
    return blocks


# Front matter (YAML between "---" fences) at the very top is metadata, not content.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
# Paragraphs inside one list item join into one block; nested structures get their own.
_ITEM_BREAKERS = {"paragraph_open", "paragraph_close", "inline", "list_item_close"}
# CommonMark does not close "**" next to CJK punctuation (的**“重点”**客户); strip such leftover pairs,
# but not between ASCII digits or letters (2**10).
_LEFTOVER_STRONG = re.compile(r"(?<![0-9A-Za-z])(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?![0-9A-Za-z])")
_HIDE_CODE_MARKS = str.maketrans("*_", "\ue000\ue001")  # code spans are exempt from that cleanup
_SHOW_CODE_MARKS = str.maketrans("\ue000\ue001", "*_")


@lru_cache(maxsize=1)
def _markdown_parser():
    from markdown_it import MarkdownIt

    # Indented code is off: business documents indent paragraphs far more often than code.
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).disable("code")


def _markdown_blocks(text: str) -> list[Block]:
    """Markdown via markdown-it: headings keep their level; items, quotes, code and table rows are body."""
    tokens = _markdown_parser().parse(_FRONT_MATTER.sub("", text, count=1))
    blocks: list[Block] = []
    items: list[tuple[int, list[str]]] = []  # (level, paragraphs) of each open list item
    cells: list[str] = []

    def flush_item() -> None:
        if items and items[-1][1]:
            blocks.append(Block(" ".join(items[-1][1])))
            items[-1][1].clear()

    for i, token in enumerate(tokens):
        if token.block and token.type not in _ITEM_BREAKERS:
            flush_item()
        opener = tokens[i - 1] if i else token
        if token.type == "list_item_open":
            items.append((token.level, []))
        elif token.type == "list_item_close":
            flush_item()
            items.pop()
        elif token.type == "inline" and opener.type == "heading_open":
            blocks.append(Block(_inline_text(token), int(opener.tag[1])))
        elif token.type == "inline" and opener.type in {"th_open", "td_open"}:
            cells.append(_inline_text(token))
        elif token.type == "inline" and items and opener.level == items[-1][0] + 1:
            items[-1][1].append(_inline_text(token))
        elif token.type == "inline":
            blocks.append(Block(_inline_text(token)))
        elif token.type == "tr_close":
            blocks.append(Block(" | ".join(cells)))
            cells = []
        elif token.type == "fence":
            blocks.append(Block(token.content.rstrip("\n")))
        elif token.type == "html_block":
            blocks.append(Block(_html_text(token.content)))
    return blocks


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: markup, images and raw HTML tags dropped, link text kept."""
    parts: list[str] = []
    children = token.children or []
    for i, child in enumerate(children):
        if child.type == "text":
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(child.content.translate(_HIDE_CODE_MARKS))
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
        elif child.markup.startswith("*") and _between_digits(parts, children[i + 1:]):
            parts.append(child.markup)  # 7*24小时, 5*8: a times sign, not emphasis
    return _LEFTOVER_STRONG.sub(r"\2", "".join(parts)).translate(_SHOW_CODE_MARKS).strip()


def _between_digits(before: list[str], after: list[Token]) -> bool:
    following = after[0].content if after and after[0].type == "text" else ""
    return bool(before) and before[-1][-1:].isdigit() and following[:1].isdigit()


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser").get_text(" ", strip=True)


def _html_blocks(raw: bytes) -> list[Block]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript"]):
        tag.decompose()
    blocks = []
    if soup.title and soup.title.string:
        blocks.append(Block(soup.title.string.strip(), 1))
    for element in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "td", "pre", "blockquote"]):
        text = element.get_text(" ", strip=True)
        if text:
            level = int(element.name[1]) if element.name.startswith("h") else 0
            blocks.append(Block(text, level))
    return blocks


def _pdf_blocks(path: Path) -> list[Block]:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    return _text_blocks(text)


def _docx_blocks(path: Path) -> list[Block]:
    import docx

    blocks = []
    for paragraph in docx.Document(str(path)).paragraphs:
        style = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
        level = 0
        if style.startswith("heading"):
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
        elif style == "title":
            level = 1
        blocks.append(Block(paragraph.text, level))
    return blocks
