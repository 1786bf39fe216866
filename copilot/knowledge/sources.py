"""The files the knowledge came from, as a knowledge manager sees them: each ingested document and
each imported spreadsheet, with what it brought. Taking one out is a change to published knowledge,
so the API proposes it and a second person confirms it (see changes.py)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Literal


from copilot.errors import NotFound
from copilot.knowledge.catalog import Catalog
from copilot.knowledge.ingest import SHEET_PREFIX
from copilot.knowledge.items import ItemStore
from copilot.modeling import Model


class KnowledgeSource(Model):
    key: str  # what `copilot remove` and the removal API take: the file's resolved path
    name: str  # the file name, for people
    kind: Literal["document", "sheet"]
    title: str
    passages: int  # searchable passages it brought (a sheet: one per row and view)
    items: int  # knowledge items (sheets only)
    updated_at: datetime | None
    file_exists: bool


def list_sources(catalog: Catalog, items: ItemStore) -> list[KnowledgeSource]:
    passages = catalog.chunk_counts()
    per_origin = Counter(i.origin for i in items.all())
    found: list[KnowledgeSource] = []
    for doc in catalog.documents():
        key = doc["key"]
        if doc["kind"] == "doc":
            path, kind, count = key, "document", 0
        elif key.startswith(SHEET_PREFIX):
            path, kind, count = key.removeprefix(SHEET_PREFIX), "sheet", per_origin.get(key, 0)
        else:
            continue  # the pack's own YAML files are managed item by item
        found.append(KnowledgeSource(key=path, name=Path(path).name, kind=kind, title=doc["title"],
                                     passages=passages.get(key, 0), items=count, updated_at=doc["updated_at"],
                                     file_exists=Path(path).exists()))
    return sorted(found, key=lambda s: (s.kind, s.name))


def require_source(sources: list[KnowledgeSource], key: str) -> KnowledgeSource:
    for source in sources:
        if source.key == key:
            return source
    raise NotFound(f"No document or sheet {key!r} in the knowledge: see GET /api/knowledge/documents",
                   zh=f"知识库里没有文件 {key}")
