"""Structure-aware chunking: passages of about `target` characters, each carrying the headings
above it as context. A heading starts a new passage once the current one can stand alone (half
the target); shorter sections are kept together with the next one rather than left as scraps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from copilot.knowledge.parsers import OUTLINE_LEVEL, Block

_SENTENCES = re.compile(r"(?<=[。！？!?；;])")


@dataclass(frozen=True)
class Piece:
    context: str
    text: str


def chunk_blocks(blocks: list[Block], target: int = 360, max_len: int = 520) -> list[Piece]:
    pieces: list[Piece] = []
    headings: list[tuple[int, str]] = []  # the open heading path
    lines: list[str] = []
    start_context = ""

    def flush() -> None:
        nonlocal lines
        if lines:
            pieces.append(Piece(start_context, "\n".join(lines)))
            lines = []

    for block in blocks:
        if block.heading_level:
            # A heading starts a new passage once the current one is big enough to stand alone.
            if sum(len(line) for line in lines) >= target // 2:
                flush()
            sibling_ok = block.heading_level == OUTLINE_LEVEL
            while headings and headings[-1][0] >= block.heading_level and not (
                sibling_ok and headings[-1][0] == OUTLINE_LEVEL
            ):
                headings.pop()
            headings.append((block.heading_level, block.text))
            headings[:] = headings[-3:]
        for part in _split_long(block.text, max_len):
            if lines and sum(len(line) for line in lines) + len(part) > target:
                flush()
            if not lines:
                start_context = " > ".join(text for _, text in headings[:-1] if text != part) if block.heading_level \
                    else " > ".join(text for _, text in headings)
            lines.append(part)
    flush()
    return pieces


def _split_long(text: str, max_len: int) -> list[str]:
    if len(text) <= max_len:
        return [text]
    parts, current = [], ""
    for sentence in _SENTENCES.split(text):
        if current and len(current) + len(sentence) > max_len:
            parts.append(current)
            current = ""
        current += sentence
        while len(current) > max_len:  # a single run-on sentence
            parts.append(current[:max_len])
            current = current[max_len:]
    if current:
        parts.append(current)
    return parts


_WINDOW_BREAKS = re.compile(r"(?<=[。！？!?；;\n])")


def sentence_windows(text: str, context: str = "", size: int = 120) -> list[str]:
    """A passage cut into runs of whole sentences of about `size` characters, each with its
    headings: a question about one fact matches the sentence that states it, not the average of
    a section. A passage that is already one window needs none."""
    if len(text) <= size:
        return []
    windows, current = [], ""
    for sentence in (s.strip() for s in _WINDOW_BREAKS.split(text)):
        if not sentence:
            continue
        if current and len(current) + len(sentence) > size:
            windows.append(current)
            current = ""
        joiner = "" if not current or current[-1] in "。！？；" else " "
        current = current + joiner + sentence
    if current:
        windows.append(current)
    if len(windows) < 2:
        return []
    head = f"{context}: " if context else ""
    return [head + w for w in windows]
