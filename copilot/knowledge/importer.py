"""A company's spreadsheets into the knowledge: FAQ lists, case libraries and playbooks.

One importer serves the CLI (`copilot ingest faq.xlsx`), the API (`POST /api/knowledge/import`)
and the knowledge page. The sheet is the source of truth for the rows it brought: re-importing
an edited sheet replaces the changed rows, adds new ones and removes the ones that are gone.
Values the knowledge does not know yet are reported, never silently ignored: an unknown city
(matching then uses industry and size only), a new industry (it joins the industry list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copilot import geo
from copilot.knowledge.ingest import SHEET_PREFIX
from copilot.knowledge.items import ItemStore, SheetChanges
from copilot.knowledge.schema import Case
from copilot.knowledge.sheets import load_sheet
from copilot.rules import Rules


def sheet_origin(path: Path) -> str:
    return SHEET_PREFIX + str(path.resolve())


@dataclass
class SheetReport:
    source: str
    kind: str
    changes: SheetChanges
    errors: list[str] = field(default_factory=list)  # file:row:column: message; those rows were skipped
    notes: list[str] = field(default_factory=list)  # loaded, but worth a look

    def summary(self) -> str:
        c = self.changes
        return (f"{self.source} ({self.kind}): {len(c.added)} added, {len(c.updated)} updated, "
                f"{len(c.unchanged)} unchanged, {len(c.removed)} removed, {len(self.errors)} rows with errors")


def import_sheet(path: Path, given: str, store: ItemStore, rules: Rules, industries: list[str],
                 actor: str) -> SheetReport:
    """Read one sheet and make the stored items match it. Raises InvalidInput when the file
    cannot be read at all; nothing is changed then."""
    load = load_sheet(path)
    kind = _kind_of(load.items) or "faq"
    notes = [f"{given}: column {name!r} is not used (unknown header)" for name in load.unknown_columns]
    items = []
    known_industries = set(industries)
    for item in load.items:
        if isinstance(item, Case):
            item, place_notes = _placed(item, rules)
            row = load.rows.get(item.id, 0)
            notes.extend(f"{given}:{row}:{note}" for note in place_notes)
            if item.industry not in known_industries:
                notes.append(f"{given}:{row}:行业: new industry {item.industry!r} added to the industry list")
                known_industries.add(item.industry)
        items.append(item)
    changes = store.import_sheet(sheet_origin(path), given, items, actor)
    errors = [str(e) for e in load.errors] + [f"{given}: {why}" for why in changes.refused]
    return SheetReport(source=given, kind=kind, changes=changes, errors=errors, notes=notes)


def _kind_of(items: list) -> str | None:
    if not items:
        return None
    return type(items[0]).__name__.lower()


def _placed(case: Case, rules: Rules) -> tuple[Case, list[str]]:
    """The case's city as a known place, with its province; a city nobody knows is reported."""
    place = geo.lookup(f"{case.province}{case.city}") or geo.lookup(case.city)
    if place is None or place.level == "province":
        province = case.province or rules.province_for_city(case.city) or ""
        if province:
            return case.model_copy(update={"province": province}), []
        return case, [f"城市: unknown city {case.city!r}: this case is matched on industry, size and situation only"]
    # 株洲市 and 株洲 are one city: keep the short name every question uses.
    return case.model_copy(update={"city": place.name, "province": case.province or place.province}), []
