"""Knowledge management: import spreadsheets and documents, list and view items and the files they
came from, propose edits, retirements, restores and removals (a second person confirms them in the
action inbox), export sheets."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path as PathParam, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import Field
from starlette.background import BackgroundTask

from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.errors import InvalidInput
from copilot.knowledge.changes import Change, propose_change, propose_removal
from copilot.knowledge.sources import KnowledgeSource, require_source
from copilot.knowledge.items import KnowledgeItem, require
from copilot.knowledge.parsers import SHEET_SUFFIXES, SUPPORTED, parse_file
from copilot.modeling import Model
from copilot.models import ProposedActionOut

router = APIRouter(tags=["knowledge"])
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
ItemId = Annotated[str, PathParam(max_length=255)]  # the knowledge items table's key length
KNOWLEDGE_ROLES = ("admin", "knowledge")  # who manages knowledge


class ItemOut(Model):
    id: str
    kind: str
    title: str
    audience: str
    status: str
    source: str
    edited: bool
    data: dict[str, Any]


class ItemPage(Model):
    total: int
    items: list[ItemOut]


class SheetOut(Model):
    source: str
    kind: str
    added: int
    updated: int
    unchanged: int
    removed: int
    errors: list[str]
    notes: list[str]


class ImportOut(Model):
    sheets: list[SheetOut]
    documents_added: list[str]
    documents_updated: list[str]
    failed: list[str]
    embedded: int


class ChangeRequest(Model):
    change: Change
    data: dict[str, Any] | None = Field(default=None, description="For an edit: the item's fields")
    reason: str | None = Field(default=None, max_length=500)


class RemovalRequest(Model):
    key: str = Field(max_length=1024, description="The document's or sheet's key from GET /api/knowledge/documents")
    reason: str | None = Field(default=None, max_length=500)


def register(app: FastAPI) -> None:
    app.include_router(router)


def _require_manager(principal) -> None:
    if principal.role not in KNOWLEDGE_ROLES:
        principal.require_role("admin")


def _title(item: KnowledgeItem) -> str:
    data = item.item
    return str(getattr(data, "question", None) or getattr(data, "title", None) or getattr(data, "company", item.id))


def _out(item: KnowledgeItem) -> ItemOut:
    return ItemOut(id=item.id, kind=item.kind, title=_title(item), audience=item.item.audience, status=item.status,
                   source=item.source, edited=item.edited, data=item.item.model_dump(mode="json"))


def _visible(copilot, principal) -> list[KnowledgeItem]:
    return [i for i in copilot.knowledge_items() if i.item.audience in principal.audiences]


@router.get("/api/knowledge/items", response_model=ItemPage)
def list_items(copilot: CopilotDep, principal: PrincipalDep,
               kind: Literal["faq", "case", "playbook"] | None = None,
               audience: Literal["public", "internal"] | None = None,
               status: Literal["active", "retired"] | None = None,
               q: str | None = Query(default=None, max_length=200, description="Words in the title or text"),
               limit: int = Query(default=50, ge=1, le=500), offset: int = Query(default=0, ge=0)) -> ItemPage:
    """Every item the caller may read, retired ones included unless filtered out."""
    items = _visible(copilot, principal)
    items = [i for i in items if (kind is None or i.kind == kind) and (audience is None or i.item.audience == audience)
             and (status is None or i.status == status)]
    if q:
        words = q.lower().split()
        items = [i for i in items if all(w in i.item.model_dump_json().lower() for w in words)]
    return ItemPage(total=len(items), items=[_out(i) for i in items[offset:offset + limit]])


@router.get("/api/knowledge/items/{item_id}", response_model=ItemOut)
def get_item(item_id: ItemId, copilot: CopilotDep, principal: PrincipalDep) -> ItemOut:
    return _out(require(_visible(copilot, principal), item_id))


@router.post("/api/knowledge/items/{item_id}/changes", response_model=ProposedActionOut, status_code=201)
def propose_item_change(item_id: ItemId, body: ChangeRequest, copilot: CopilotDep,
                        principal: PrincipalDep) -> ProposedActionOut:
    """Propose an edit, a retirement or a restore; it applies when a second person confirms it."""
    _require_manager(principal)
    current = require(_visible(copilot, principal), item_id)
    return propose_change(copilot.actions, current, body.change, body.data, principal.name, principal.role,
                          body.reason)


@router.get("/api/knowledge/documents", response_model=list[KnowledgeSource])
def list_documents(copilot: CopilotDep, principal: PrincipalDep) -> list[KnowledgeSource]:
    """The ingested documents and imported sheets, with how many passages and items each brought."""
    _require_manager(principal)
    return copilot.sources()


@router.post("/api/knowledge/documents/removals", response_model=ProposedActionOut, status_code=201)
def propose_document_removal(body: RemovalRequest, copilot: CopilotDep, principal: PrincipalDep) -> ProposedActionOut:
    """Propose taking a document or sheet (and every item it brought) out of the knowledge; it
    applies when a second person confirms it. The file on disk is left alone unless it was uploaded."""
    _require_manager(principal)
    source = require_source(copilot.sources(), body.key)
    return propose_removal(copilot.actions, source, principal.name, principal.role, body.reason)


@router.post("/api/knowledge/import", response_model=ImportOut)
async def import_file(file: UploadFile, copilot: CopilotDep, principal: PrincipalDep) -> ImportOut:
    """Upload a sheet (xlsx, csv: FAQs, cases or playbooks, recognised from the header row) or a
    document. Uploading the same file name again replaces what it brought the first time."""
    _require_manager(principal)
    name = _safe_name(file.filename or "")
    suffix = Path(name).suffix.lower()
    if suffix not in SHEET_SUFFIXES | SUPPORTED:
        raise InvalidInput(f"{name}: unsupported file type (supported: {', '.join(sorted(SHEET_SUFFIXES | SUPPORTED))})")
    content = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"{name}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    # Uploads are kept: the stored file is the source of its items, and a re-upload under the
    # same name is a re-import. It is written only after a successful read, so a broken upload
    # leaves the previous version (and its items) in place.
    uploads = copilot.settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=uploads) as scratch:
        trial = Path(scratch) / name
        trial.write_bytes(content)
        target = uploads / name
        report = await run_in_threadpool(_import_uploaded, copilot, trial, target, principal.name)
    return report


def _import_uploaded(copilot, trial: Path, target: Path, actor: str) -> ImportOut:
    from copilot.knowledge.sheets import load_sheet

    if trial.suffix.lower() in SHEET_SUFFIXES:
        load_sheet(trial)  # unreadable: raises before anything is replaced
    else:
        _check_document(trial)
    trial.replace(target)
    report = copilot.ingest([str(target)], actor=actor)
    sheets = [SheetOut(source=target.name, kind=s.kind, added=len(s.changes.added), updated=len(s.changes.updated),
                       unchanged=len(s.changes.unchanged), removed=len(s.changes.removed),
                       errors=[e.replace(str(target), target.name) for e in s.errors],
                       notes=[n.replace(str(target), target.name) for n in s.notes]) for s in report.sheets]
    failed = [f"{Path(g).name}: {m.replace(str(target), target.name)}" for g, m in [*report.failed, *report.documents.failed]]
    embedded = report.documents.embedded + (report.items.embedded if report.items else 0)
    return ImportOut(sheets=sheets, documents_added=[Path(d).name for d in report.documents.added],
                     documents_updated=[Path(d).name for d in report.documents.updated], failed=failed,
                     embedded=embedded)


def _check_document(trial: Path) -> None:
    """Refuse a document that cannot be read (binary content renamed .txt, a broken PDF) before it
    replaces anything: a 400 naming the file, nothing indexed."""
    try:
        parse_file(trial)
    except InvalidInput as exc:
        def named(text: str) -> str:
            return text.replace(str(trial), trial.name)

        raise InvalidInput(named(str(exc)), zh=named(exc.zh) if exc.zh else None) from exc


def _safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f/]", "", name)
    if not name or name.startswith("."):
        raise InvalidInput("The upload needs a file name such as faq.xlsx")
    return name[:200]


@router.get("/api/knowledge/export")
def export_sheet(copilot: CopilotDep, principal: PrincipalDep, kind: Literal["faq", "case", "playbook"],
                 format: Literal["xlsx", "csv"] = "xlsx", template: bool = False) -> FileResponse:
    """The active items of one kind as a sheet in the import columns (or a blank template)."""
    _require_manager(principal)
    folder = Path(tempfile.mkdtemp(prefix="copilot-export-"))
    path = folder / (f"{kind}-template.{format}" if template else f"{kind}.{format}")
    copilot.export(kind, path, template=template)
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if format == "xlsx"
             else "text/csv; charset=utf-8")
    return FileResponse(path, media_type=media, filename=path.name,
                        background=BackgroundTask(_cleanup, folder))


def _cleanup(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
