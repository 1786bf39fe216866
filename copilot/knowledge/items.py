"""Knowledge items kept in the database: a company's spreadsheet rows, and edits, retirements and
restores of any item (including the YAML pack's, which stays read-only on disk).

The effective knowledge is the YAML pack with the stored items laid over it: a stored item
replaces the YAML item with the same id, a retired one hides it. Each item belongs to one index
document (its `origin`): `pack:faqs`, `pack:cases`, `pack:playbooks` for the YAML files and
their edits, `sheet:<path>` for a spreadsheet, so a change re-indexes only that document.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.errors import InvalidInput, NotFound
from copilot.knowledge.ingest import SHEET_PREFIX
from copilot.knowledge.pack import PACK_DOC_PREFIX, Pack
from copilot.knowledge.schema import Case, Faq, Playbook

Kind = Literal["faq", "case", "playbook"]
Item = Faq | Case | Playbook
Status = Literal["active", "retired"]
MODELS: dict[str, type[Faq] | type[Case] | type[Playbook]] = {"faq": Faq, "case": Case, "playbook": Playbook}
PACK_GROUP = {"faq": "faqs", "case": "cases", "playbook": "playbooks"}


def kind_of(item: Item) -> Kind:
    return "faq" if isinstance(item, Faq) else "case" if isinstance(item, Case) else "playbook"


def item_hash(item: Item) -> str:
    return hashlib.sha256(item.model_dump_json().encode("utf-8")).hexdigest()


def pack_origin(kind: Kind) -> str:
    return PACK_DOC_PREFIX + PACK_GROUP[kind]


@dataclass
class StoredItem:
    id: str
    kind: Kind
    origin: str
    source: str
    item: Item
    status: Status
    updated_at: datetime
    updated_by: str


@dataclass
class SheetChanges:
    """What a re-import did, row by row (item ids)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "id: why"

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class ItemStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[StoredItem]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.knowledge_items).order_by(db.knowledge_items.c.id)).mappings().all()
        return [_stored(r) for r in rows]

    def get(self, item_id: str) -> StoredItem | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.knowledge_items).where(db.knowledge_items.c.id == item_id)).mappings().first()
        return _stored(row) if row else None

    def version(self) -> str:
        """Changes whenever any stored item does: lets every worker notice another one's change."""
        with self.engine.connect() as conn:
            count, latest = conn.execute(sa.select(sa.func.count(), sa.func.max(db.knowledge_items.c.updated_at))).one()
        return f"{count}:{latest}"

    def import_sheet(self, origin: str, source: str, items: list[Item], actor: str) -> SheetChanges:
        """Make the stored rows of one sheet match the sheet: new rows added, rows whose sheet
        content changed replaced, rows gone from the sheet removed. A row left unchanged in the
        sheet keeps any edit made in the product since the last import."""
        changes = SheetChanges()
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            table = db.knowledge_items
            existing = {r["id"]: r for r in conn.execute(sa.select(table.c.id, table.c.origin, table.c.sheet_hash))
                        .mappings()}
            seen: set[str] = set()
            added: list[dict[str, Any]] = []
            for item in items:
                digest = item_hash(item)
                old = existing.get(item.id)
                if old is not None and old["origin"] != origin:
                    changes.refused.append(f"{item.id}: the id already belongs to {old['origin']}")
                    continue
                seen.add(item.id)
                values = {"kind": kind_of(item), "origin": origin, "source": source, "data": item.model_dump(mode="json"),
                          "sheet_hash": digest, "updated_at": now, "updated_by": actor}
                if old is None:
                    added.append({"id": item.id, "status": "active", **values})
                    changes.added.append(item.id)
                elif old["sheet_hash"] != digest:
                    conn.execute(sa.update(table).where(table.c.id == item.id).values(status="active", **values))
                    changes.updated.append(item.id)
                else:
                    changes.unchanged.append(item.id)
            if added:  # one statement for all new rows: a 10,000-row sheet is mostly new rows
                conn.execute(sa.insert(table), added)
            gone = [i for i, r in existing.items() if r["origin"] == origin and i not in seen]
            if gone:
                conn.execute(sa.delete(table).where(table.c.id.in_(gone)))
            changes.removed.extend(gone)
        return changes

    def remove_origin(self, origin: str) -> list[str]:
        """Forget every item a sheet brought (the sheet was removed)."""
        with self.engine.begin() as conn:
            table = db.knowledge_items
            ids = list(conn.execute(sa.select(table.c.id).where(table.c.origin == origin)).scalars())
            conn.execute(sa.delete(table).where(table.c.origin == origin))
        return ids

    def origins(self) -> dict[str, str]:
        """Each sheet origin with the file it came from."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.knowledge_items.c.origin, db.knowledge_items.c.source).distinct()).all()
        return {origin: source for origin, source in rows if origin.startswith(SHEET_PREFIX)}

    def save(self, item: Item, status: Status, actor: str, origin: str, source: str) -> None:
        """Store an edit, a retirement or a restore of one item."""
        now = datetime.now(timezone.utc)
        values = {"kind": kind_of(item), "origin": origin, "source": source, "data": item.model_dump(mode="json"),
                  "status": status, "updated_at": now, "updated_by": actor}
        with self.engine.begin() as conn:
            table = db.knowledge_items
            updated = conn.execute(sa.update(table).where(table.c.id == item.id).values(**values))
            if updated.rowcount == 0:
                conn.execute(sa.insert(table).values(id=item.id, sheet_hash=None, **values))


def _stored(row: Any) -> StoredItem:
    kind = row["kind"]
    data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
    return StoredItem(id=row["id"], kind=kind, origin=row["origin"], source=row["source"],
                      item=MODELS[kind](**data), status=row["status"], updated_at=row["updated_at"],
                      updated_by=row["updated_by"])


# The effective knowledge ------------------------------------------------------------------------
@dataclass
class KnowledgeItem:
    """One item as the knowledge page shows it."""

    id: str
    kind: Kind
    origin: str
    source: str
    status: Status
    item: Item
    edited: bool


def overlay(base: Pack, stored: list[StoredItem]) -> Pack:
    """The pack with the stored items laid over it (a new Pack; `base` is left as loaded)."""
    by_id = {s.id: s for s in stored}
    # Items by id per kind, in order: a sheet of 10,000 rows is laid over in one pass.
    kept: dict[str, dict[str, Any]] = {"case": {}, "faq": {}, "playbook": {}}
    origins: dict[str, str] = {}
    for kind, items in (("case", base.cases), ("faq", base.faqs), ("playbook", base.playbooks)):
        for item in items:
            mine = by_id.get(item.id)
            if mine is None:
                kept[kind][item.id] = item
            elif mine.status == "active" and mine.origin.startswith(PACK_DOC_PREFIX):
                kept[kind][item.id] = mine.item  # edited in the product
    for s in stored:
        if s.status == "active" and not s.origin.startswith(PACK_DOC_PREFIX):
            kept[s.kind].pop(s.id, None)  # a sheet row replaces the pack's, and comes after the pack's items
            kept[s.kind][s.id] = s.item
            origins[s.id] = s.origin
    return base.with_items(cases=list(kept["case"].values()), faqs=list(kept["faq"].values()),
                           playbooks=list(kept["playbook"].values()), origins=origins)


def listing(base: Pack, stored: list[StoredItem]) -> list[KnowledgeItem]:
    """Every item, retired ones included, for the knowledge page."""
    by_id = {s.id: s for s in stored}
    found: list[KnowledgeItem] = []
    for kind, items in (("faq", base.faqs), ("case", base.cases), ("playbook", base.playbooks)):
        for item in items:
            mine = by_id.pop(item.id, None)
            if mine is None:
                found.append(KnowledgeItem(item.id, kind, pack_origin(kind), f"knowledge/{PACK_GROUP[kind]}.yaml",  # type: ignore[arg-type]
                                           "active", item, False))
            else:
                found.append(KnowledgeItem(item.id, mine.kind, mine.origin, mine.source, mine.status, mine.item,
                                           mine.origin.startswith(PACK_DOC_PREFIX)))
    for s in by_id.values():
        found.append(KnowledgeItem(s.id, s.kind, s.origin, s.source, s.status, s.item, False))
    return found


def parse_item(kind: str, data: dict[str, Any]) -> Item:
    model = MODELS.get(kind)
    if model is None:
        raise InvalidInput(f"Unknown knowledge kind {kind!r}: expected one of {sorted(MODELS)}")
    try:
        return model(**data)
    except Exception as exc:
        raise InvalidInput(f"Invalid {kind}: {exc}") from exc


def require(items: list[KnowledgeItem], item_id: str) -> KnowledgeItem:
    found = next((i for i in items if i.id == item_id), None)
    if found is None:
        raise NotFound(f"No knowledge item with id {item_id!r}")
    return found
