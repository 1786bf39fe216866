"""Changes to published knowledge go through the action inbox: an edit, a retirement, a restore
or taking a whole document or sheet out is proposed by one person and applied when a second one
confirms it (rules.yaml `actions.change_knowledge`, four-eyes). The executor applies it to the
stored items or the index; applying the same action twice leaves the same state (idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from copilot.actions import ActionStore
from copilot.errors import InvalidInput
from copilot.knowledge.importer import sheet_origin
from copilot.knowledge.items import ItemStore, KnowledgeItem, Status, parse_item, pack_origin
from copilot.knowledge.sources import KnowledgeSource
from copilot.models import ProposedActionOut

ACTION_TYPE = "change_knowledge"
Change = Literal["edit", "retire", "restore"]
VERBS = {"edit": "修改", "retire": "下架", "restore": "恢复"}


def propose_change(actions: ActionStore, current: KnowledgeItem, change: Change, data: dict[str, Any] | None,
                   actor: str, role: str, reason: str | None = None) -> ProposedActionOut:
    """Validate the change now (a bad edit is refused before anyone is asked to confirm it)."""
    if change == "edit":
        if data is None:
            raise InvalidInput("An edit needs the item's new fields")
        edited = parse_item(current.kind, {**data, "id": current.id})
        payload = edited.model_dump(mode="json")
    else:
        if (change == "retire") == (current.status == "retired"):
            raise InvalidInput(f"{current.id} is already {'retired' if change == 'retire' else 'active'}")
        payload = current.item.model_dump(mode="json")
    title = getattr(current.item, "question", None) or getattr(current.item, "title", None) or \
        getattr(current.item, "company", current.id)
    arguments = {"item_id": current.id, "kind": current.kind, "change": change, "origin": current.origin,
                 "source": current.source, "data": payload, "before": current.item.model_dump(mode="json"),
                 "reason": reason}
    return actions.propose(ACTION_TYPE, f"{VERBS[change]}知识「{str(title)[:40]}」", arguments, actor, role)


def propose_removal(actions: ActionStore, source: KnowledgeSource, actor: str, role: str,
                    reason: str | None = None) -> ProposedActionOut:
    what = "表格" if source.kind == "sheet" else "文档"
    arguments = {"change": "remove_source", "source": source.model_dump(mode="json"), "reason": reason}
    summary = f"移除{what}「{source.name[:40]}」" + (f"（{source.items} 条知识）" if source.items else "")
    return actions.propose(ACTION_TYPE, summary, arguments, actor, role)


class KnowledgeExecutor:
    name = "knowledge"

    def __init__(self, items: ItemStore, refresh: Callable[[], Any],
                 remove: Callable[[list[str], str], list[str]]) -> None:
        self.items = items
        self.refresh = refresh
        self.remove = remove

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        args = action.get("arguments") or {}
        actor = str(action.get("decided_by") or action.get("proposed_by"))
        if args.get("change") == "remove_source":
            key = args["source"]["key"]
            try:
                return {"removed": self.remove([key], actor)}
            except InvalidInput:  # already out (a retry after a crash, or removed by hand meanwhile)
                return {"removed": []}
        item = parse_item(args["kind"], args["data"])
        status = _target_status(args)
        # An edited YAML item stays in its YAML file's index document; a sheet row stays in its sheet.
        origin = args.get("origin") or pack_origin(args["kind"])
        self.items.save(item, status, actor=actor, origin=origin, source=args.get("source") or origin)
        self.refresh()
        return {"item_id": item.id, "status": status}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Applied: the stored item already has the change's content and status, or the sheet is
        gone. The index need not be: every worker rebuilds it from the stored items when it starts
        or notices the change. A removed document is not looked up here (unknown: removing it again
        is harmless)."""
        args = action.get("arguments") or {}
        if args.get("change") == "remove_source":
            source = args["source"]
            if source.get("kind") != "sheet" or sheet_origin(Path(source["key"])) in self.items.origins():
                return None
            return {"removed": []}
        if not isinstance(args.get("data"), dict):  # a hand-made action: `run` fails on it, so it never ran
            return None
        item = parse_item(args["kind"], args["data"])
        stored = self.items.get(item.id)
        status = _target_status(args)
        if stored is None or stored.status != status or \
                stored.item.model_dump(mode="json") != item.model_dump(mode="json"):
            return None
        return {"item_id": item.id, "status": status}


def _target_status(args: dict[str, Any]) -> Status:
    return "retired" if args["change"] == "retire" else "active"
