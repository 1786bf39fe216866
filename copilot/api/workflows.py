"""Workflow routes: peer cases, success plans, and the confirm / retry loop of proposed actions."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import Field

from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.modeling import Model
from copilot.models import ActionDetail, ActionRecord, ActionStatus, Decision, ProposedActionOut
from copilot.workflows import cases, plans

router = APIRouter()


class OnepagerResponse(Model):
    markdown: str
    action: ProposedActionOut


class PlanResponse(Model):
    plan: plans.SuccessPlan
    markdown: str


class PlanActionRequest(Model):
    plan: plans.SuccessPlan
    action: Literal["save", "share"]
    recipient: str | None = Field(default=None, max_length=200)
    markdown: str | None = Field(default=None, max_length=200_000,
                                 description="The export as edited by the person; default: rendered from the plan")


class PlanActionResponse(Model):
    action: ProposedActionOut


def register(app: FastAPI) -> None:
    app.include_router(router)


@router.post("/api/cases/search", response_model=cases.CaseSearchResult, tags=["sales"])
def search_cases(body: cases.CaseSearchRequest, copilot: CopilotDep, principal: PrincipalDep) -> cases.CaseSearchResult:
    """Peer cases for a prospect (free text, profile and/or one of our accounts), each with why it matched,
    plus a value estimate."""
    return cases.find_cases(copilot, body, principal.audiences, copilot.account_resolver)


@router.post("/api/cases/onepager", response_model=OnepagerResponse, tags=["sales"])
def case_onepager(body: cases.OnepagerRequest, copilot: CopilotDep, principal: PrincipalDep) -> OnepagerResponse:
    """Render a case one-pager (for an account: addressed to its contact) and propose sending it; nothing is
    sent until someone confirms."""
    markdown, action = cases.propose_onepager(copilot, copilot.prompts, copilot.actions, body, principal.name,
                                              principal.role, principal.audiences, copilot.account_resolver)
    return OnepagerResponse(markdown=markdown, action=action)


@router.post("/api/plans", response_model=PlanResponse, tags=["csm"])
def draft_plan(body: plans.PlanRequest, copilot: CopilotDep, principal: PrincipalDep) -> PlanResponse:
    """Draft a joint success plan (deterministic) and its Markdown export; with `account_id`, for that
    account (its record fills the profile)."""
    plan = plans.draft_for_request(copilot, body, principal.audiences, copilot.account_resolver)
    return PlanResponse(plan=plan, markdown=plans.render_plan(copilot.prompts, plan))


@router.post("/api/plans/actions", response_model=PlanActionResponse, tags=["csm"])
def plan_action(body: PlanActionRequest, copilot: CopilotDep, principal: PrincipalDep) -> PlanActionResponse:
    """Propose saving or sharing a plan; it runs only after an authorised confirm. A shared plan leaves
    internal knowledge out and says so in `arguments.left_out` / `left_out_note`."""
    action = plans.propose_plan_action(copilot.prompts, copilot.actions, body.plan, body.action, principal.name,
                                       principal.role, body.recipient, body.markdown, copilot.account_resolver,
                                       pack=copilot.pack)
    return PlanActionResponse(action=action)


@router.get("/api/actions", response_model=list[ActionRecord], tags=["actions"])
def list_actions(copilot: CopilotDep, principal: PrincipalDep, status: ActionStatus | None = None,
                 type: str | None = Query(default=None, max_length=64),  # noqa: A002 - the query parameter's name
                 limit: int = Query(default=100, ge=1, le=1000)) -> list[ActionRecord]:
    """Actions the caller may confirm or has proposed (admin: all), newest first; filter by status or type."""
    return copilot.action_runner.records(status=status, type_=type, limit=limit, actor=principal.name,
                                         role=principal.role)


@router.get("/api/actions/{action_id}", response_model=ActionDetail, tags=["actions"])
def get_action(action_id: str, copilot: CopilotDep, principal: PrincipalDep) -> ActionDetail:
    """One action with its audit history (proposed, decided, executed or failed)."""
    return copilot.action_runner.detail(action_id, principal.name, principal.role)


@router.post("/api/actions/{action_id}/confirm", response_model=ActionDetail, tags=["actions"])
def confirm_action(action_id: str, body: Decision, copilot: CopilotDep, principal: PrincipalDep) -> ActionDetail:
    """Approve (then execute) or reject a proposed action; 409 if it was already decided."""
    return copilot.action_runner.confirm(action_id, body, principal.name, principal.role)


@router.post("/api/actions/{action_id}/retry", response_model=ActionDetail, tags=["actions"])
def retry_action(action_id: str, copilot: CopilotDep, principal: PrincipalDep) -> ActionDetail:
    """Run an approved action again after a failure or an interrupted execution."""
    return copilot.action_runner.retry(action_id, principal.name, principal.role)
