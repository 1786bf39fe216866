"""Saved success plans: an account's plans with their milestone progress, one plan, and tracking a
milestone (done / late / open again). Plans are saved through the confirmed "save" action
(POST /api/plans/actions, then confirm), never directly here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Path
from pydantic import Field

from copilot.accounts.plans import MilestoneStatus, SavedPlan, StoredPlan
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.modeling import Model
from copilot.workflows.plans import PlanCustomer, SuccessPlan, customer_from_account

router = APIRouter(tags=["csm"])
MAX_MILESTONES = 1000  # far above any plan template; keeps the index inside the database's integer
AccountId = Annotated[str, Path(max_length=255)]
PlanId = Annotated[str, Path(max_length=64)]


class PlanDetail(StoredPlan):
    plan: SuccessPlan  # type: ignore[assignment] - the stored JSON, validated on the way out


class MilestoneUpdate(Model):
    status: MilestoneStatus = Field(description="done: 完成; late: 延期; open: back to in progress")
    note: str | None = Field(default=None, max_length=500)


def register(app: FastAPI) -> None:
    app.include_router(router)


@router.get("/api/accounts/{account_id}/plans", response_model=list[SavedPlan])
def account_plans(account_id: AccountId, copilot: CopilotDep, principal: PrincipalDep) -> list[SavedPlan]:
    """The account's saved success plans, newest first, each with its milestones and progress."""
    copilot.account_resolver.get(account_id)  # 404 for an unknown account
    return copilot.plans.of_account(account_id)


@router.get("/api/accounts/{account_id}/plan-profile", response_model=PlanCustomer)
def plan_profile(account_id: AccountId, copilot: CopilotDep, principal: PrincipalDep) -> PlanCustomer:
    """The plan profile an account's record gives (what POST /api/plans uses with this account_id)."""
    return customer_from_account(copilot.account_resolver.get(account_id))


@router.get("/api/plans/{plan_id}", response_model=PlanDetail)
def get_plan(plan_id: PlanId, copilot: CopilotDep, principal: PrincipalDep) -> PlanDetail:
    """One saved plan: the plan as drafted, the Markdown as confirmed, and its milestones as tracked."""
    return PlanDetail.model_validate(copilot.plans.get(plan_id).model_dump())


@router.post("/api/plans/{plan_id}/milestones/{index}", response_model=SavedPlan)
def track_milestone(plan_id: PlanId, body: MilestoneUpdate, copilot: CopilotDep, principal: PrincipalDep,
                    index: int = Path(ge=0, lt=MAX_MILESTONES,
                                      description="Position in the plan's milestones, from 0")) -> SavedPlan:
    """Mark a milestone done, late or open again (CSM or admin; audited); returns the plan's new progress."""
    principal.require_role("csm")
    copilot.plans.set_status(plan_id, index, body.status, principal.name, body.note)
    return SavedPlan(**copilot.plans.get(plan_id).model_dump(exclude={"plan", "markdown"}))

