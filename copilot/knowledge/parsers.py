"""Turn files into a title and a list of blocks (headings and paragraphs), one parser each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from copilot.errors import InvalidInput
from copilot.normalize import normalize

SUPPORTED = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


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
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")


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


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


def _markdown_blocks(text: str) -> list[Block]:
    blocks, paragraph = [], []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(" ".join(paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        match = _MD_HEADING.match(line.strip())
        if match:
            flush()
            blocks.append(Block(match.group(2).strip(), len(match.group(1))))
        elif not line.strip():
            flush()
        else:
            paragraph.append(line.strip().lstrip("-*> ").strip())
    flush()
    return blocks


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
