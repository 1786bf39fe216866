"""Core routes: health, ask, search, feedback, audit, knowledge gaps."""

from __future__ import annotations

import hashlib
from typing import Annotated, get_args

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field, StringConstraints

from copilot import pipeline
from copilot.api.deps import CopilotDep, Principal, PrincipalDep
from copilot.conversation import HistoryEntry
from copilot.feedback import FeedbackIn, GapViewer, gap_report, reader_of, record_feedback
from copilot.knowledge.pack import Pack
from copilot.modeling import Model
from copilot.models import MAX_QUESTION_CHARS, AskResponse, Customer, Kind, Role, SearchFilters, SearchResult, Tier

router = APIRouter()


class AskRequest(Model):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    role: Role = "support"
    customer: Customer | None = None
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=20,
        description="Earlier turns, oldest first: user questions as strings, or {role, content} objects so that "
                    "assistant answers and a system note about the customer can be passed too. A follow-up such as "
                    "「那上海的呢？」 inherits the earlier question; only the last 6 turns are read.")


class SearchRequest(Model):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=5, ge=1, le=50)
    kinds: list[Kind] | None = None
    industry: str | None = Field(default=None, max_length=50)
    province: str | None = Field(default=None, max_length=50)
    region: str | None = Field(default=None, max_length=50)
    tier: Tier | None = None


@router.get("/healthz", tags=["ops"])
def healthz(copilot: CopilotDep) -> dict:
    """Liveness and what is indexed."""
    return {"status": "ok", "chunks": copilot.catalog.chunk_count(), "index_version": copilot.catalog.version(),
            "llm": bool(copilot.settings.llm_model), "pack_issues": len(copilot.pack.issues)}


@router.post("/api/ask", response_model=AskResponse, tags=["assistant"])
async def ask(body: AskRequest, copilot: CopilotDep, principal: PrincipalDep) -> AskResponse:
    """Answer first, then explanation and citations; proposed actions are stored, not executed."""
    principal.require_role(body.role)
    return await run_in_threadpool(pipeline.answer, copilot.deps, body.question, body.role, body.customer,
                                   body.history, principal.name, principal.audiences)


@router.post("/api/search", response_model=SearchResult, tags=["assistant"])
async def search(body: SearchRequest, copilot: CopilotDep, principal: PrincipalDep) -> SearchResult:
    """Hybrid search with metadata filters; internal knowledge only for keys allowed to read it."""
    filters = SearchFilters(kinds=body.kinds, audiences=principal.audiences, industry=body.industry,
                            province=body.province, region=body.region, tier=body.tier)
    return await run_in_threadpool(copilot.retriever.search, body.query, body.k, filters)


@router.post("/api/feedback", tags=["insight"], status_code=201)
def feedback(body: FeedbackIn, copilot: CopilotDep, principal: PrincipalDep) -> dict:
    """Thumbs up / down on an answer, with an optional comment; recorded under the caller's role."""
    return {"id": record_feedback(copilot.engine, copilot.audit, body, principal.name, feedback_role(principal, body))}


def feedback_role(principal: Principal, body: FeedbackIn) -> str:
    """The caller's own role, or the role they asked as when they may ask as it (admin, knowledge)."""
    if body.role is None:
        return principal.role
    principal.require_role(body.role)
    return body.role


@router.get("/api/audit", tags=["insight"])
def audit(copilot: CopilotDep, principal: PrincipalDep,
          event: str | None = Query(default=None, max_length=32, pattern=r"^[a-z_]+$", description=(
              "ask, proposed, approved, rejected, executed, failed, reconciled, repeated, feedback, promoted, "
              "user_added, user_disabled, user_enabled, user_key_rotated, signed_in, …")),
          subject: str | None = Query(default=None, max_length=255),
          limit: int = Query(default=100, ge=1, le=1000)) -> list[dict]:
    """The audit trail: questions, answers, sources, proposals and decisions (admin sees all, others their own)."""
    actor = None if principal.role == "admin" else principal.name
    return copilot.audit.entries(event=event, subject=subject, limit=limit, actor=actor)


class PromoteRequest(Model):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    role: Role = "support"
    expected_sources: list[Annotated[str, StringConstraints(min_length=1, max_length=1024)]] = Field(
        default_factory=list, max_length=20, description="Pack ids or document names")
    out_of_scope: bool = Field(default=False, description="The copilot should decline this question")


@router.post("/api/evals/promote", tags=["insight"], status_code=201)
def promote_question(body: PromoteRequest, copilot: CopilotDep, principal: PrincipalDep) -> dict:
    """Turn a real frontline question into an eval case (admin)."""
    from copilot.evals import EvalQuestion, promote

    principal.require_role("admin")
    digest = hashlib.sha1(f"{body.role}:{body.question}".encode()).hexdigest()[:10]
    question = EvalQuestion(id=f"q-prod-{digest}", role=body.role,
                            question=body.question, expected_sources=body.expected_sources,
                            out_of_scope=body.out_of_scope)
    path = promote(copilot.settings.data_dir, question)
    copilot.audit.record(principal.name, "promoted", question.id, body.model_dump())
    return {"id": question.id, "file": str(path)}


@router.get("/api/gaps", tags=["insight"])
def gaps(copilot: CopilotDep, principal: PrincipalDep, days: int = Query(default=7, ge=1, le=365)) -> dict:
    """What the copilot could not answer: ungrounded, low-confidence and thumbs-down questions, of
    the roles the caller may ask as and answered from knowledge they may read (admin: all)."""
    return gap_report(copilot.engine, days, pipeline.threshold(copilot.deps) + 0.1, gap_viewer(copilot.pack, principal))


def gap_viewer(pack: Pack, principal: Principal) -> GapViewer | None:
    if principal.role == "admin":
        return None
    roles = [role for role in get_args(Role) if principal.can_act_as(role)]
    return GapViewer(roles=roles, may_read=reader_of(pack, principal.audiences))
