"""Core routes: health, ask, search, feedback, audit, knowledge gaps."""

from __future__ import annotations

import hashlib
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from copilot import pipeline
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.conversation import Turn
from copilot.feedback import FeedbackIn, gap_report, record_feedback
from copilot.models import MAX_QUESTION_CHARS, AskResponse, Customer, Kind, Role, SearchFilters, SearchResult, Tier

router = APIRouter()


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    role: Role = "support"
    customer: Customer | None = None
    history: list[str | Turn] = Field(
        default_factory=list, max_length=20,
        description="Earlier turns, oldest first: user questions as strings, or {role, content} objects so that "
                    "assistant answers and a system note about the customer can be passed too. A follow-up such as "
                    "「那上海的呢？」 inherits the earlier question; only the last 6 turns are read.")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=5, ge=1, le=50)
    kinds: list[Kind] | None = None
    industry: str | None = None
    province: str | None = None
    region: str | None = None
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
    """Thumbs up / down on an answer, with an optional comment."""
    return {"id": record_feedback(copilot.engine, copilot.audit, body, principal.name)}


@router.get("/api/audit", tags=["insight"])
def audit(copilot: CopilotDep, principal: PrincipalDep,
          event: Literal["ask", "proposed", "approved", "rejected", "executed", "failed", "feedback",
                         "promoted"] | None = None,
          subject: str | None = None, limit: int = Query(default=100, ge=1, le=1000)) -> list[dict]:
    """The audit trail: questions, answers, sources, proposals and decisions (admin sees all)."""
    entries = copilot.audit.entries(event=event, subject=subject, limit=limit)
    if principal.role != "admin":
        entries = [e for e in entries if e["actor"] == principal.name]
    return entries


class PromoteRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    role: Role = "support"
    expected_sources: list[str] = Field(default_factory=list, description="Pack ids or document names")
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
def gaps(copilot: CopilotDep, _principal: PrincipalDep, days: int = Query(default=7, ge=1, le=365)) -> dict:
    """What the copilot could not answer: ungrounded, low-confidence and thumbs-down questions."""
    return gap_report(copilot.engine, days, low_confidence=pipeline.threshold(copilot.deps) + 0.1)
