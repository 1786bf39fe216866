"""Account routes: the company's own customers as imported from its CRM export, their activity and
insight, and a chosen next best action proposed as a task for a human to confirm."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import Field

from copilot.accounts.book import AccountSummary, Book, Change, Owner
from copilot.accounts.health import RiskLevel
from copilot.accounts.insight import ACCOUNT_TASK, AccountInsight, account_insight, account_task
from copilot.accounts.models import Account, Activity, Tier
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.errors import NotFound
from copilot.modeling import Model
from copilot.models import ProposedActionOut
from copilot.service import Copilot

router = APIRouter(tags=["accounts"])
AccountId = Annotated[str, Path(max_length=255)]  # the accounts table's key length


class AccountList(Model):
    total: int
    items: list[AccountSummary]


class AccountDetail(Model):
    account: Account
    activity: list[Activity]
    insight: AccountInsight
    changes: list[Change] = Field(description="What moved in the latest month, worse first")
    changes_period: str


class TaskRequest(Model):
    playbook_id: str = Field(min_length=1, max_length=255, description="One of the account's next best actions")
    note: str | None = Field(default=None, max_length=1000, description="For the person who confirms it")


def register(app: FastAPI) -> None:
    app.include_router(router)


def _book(copilot: Copilot) -> Book:
    return copilot.current_book()


@router.get("/api/accounts", response_model=AccountList)
def list_accounts(copilot: CopilotDep, principal: PrincipalDep,
                  owner: str | None = Query(default=None, max_length=128, description="CSM or sales owner"),
                  tier: Tier | None = None,
                  risk: RiskLevel | None = Query(default=None, description="Only accounts at this renewal-risk level"),
                  q: str | None = Query(default=None, max_length=200, description="Part of a name or alias"),
                  sort: Literal["name", "risk"] = "name",
                  limit: int = Query(default=50, ge=1, le=500),
                  offset: int = Query(default=0, ge=0)) -> AccountList:
    """The company's accounts, filtered by owner, tier, risk level or name (either script); `sort=risk`
    puts the riskiest first, as a CSM reads their book. Each says what changed in its latest month."""
    found = _book(copilot).select(owner=owner, tier=tier, risk=risk, q=q, sort=sort)
    return AccountList(total=len(found), items=found[offset:offset + limit])


@router.get("/api/accounts/owners", response_model=list[Owner])
def list_owners(copilot: CopilotDep, principal: PrincipalDep) -> list[Owner]:
    """The CSMs named in the accounts, each with their number of accounts and of high-risk ones."""
    return _book(copilot).owners()


def account_detail(copilot: Copilot, account_id: str, audiences: list[str]) -> AccountDetail:
    account = copilot.accounts.account(account_id)
    if account is None:
        raise NotFound(f"No account {account_id!r}: see GET /api/accounts", zh=f"没有编号为 {account_id} 的客户")
    book = _book(copilot)
    activity = copilot.accounts.activity(account_id)
    milestones = copilot.plans.tracked([account_id]).get(account_id)
    insight = account_insight(account, activity, book.transitions, copilot.pack, date.today(), audiences, milestones)
    summary = book.get(account_id)
    changes, period = (summary.changes, summary.changes_period) if summary else ([], "")
    return AccountDetail(account=account, activity=activity, insight=insight, changes=changes, changes_period=period)


@router.get("/api/accounts/{account_id}", response_model=AccountDetail)
def get_account(account_id: AccountId, copilot: CopilotDep, principal: PrincipalDep) -> AccountDetail:
    """One account with its monthly activity (oldest first), insight and latest changes."""
    return account_detail(copilot, account_id, principal.audiences)


@router.post("/api/accounts/{account_id}/actions", response_model=ProposedActionOut, status_code=201)
def propose_account_action(account_id: AccountId, body: TaskRequest, copilot: CopilotDep, principal: PrincipalDep,
                           response: Response) -> ProposedActionOut:
    """Propose one of the account's next best actions as a task; it is written out only after a person
    confirms it in the actions inbox. Asking again while it is still open returns the same action (200)."""
    detail = account_detail(copilot, account_id, principal.audiences)
    task = account_task(detail.account, detail.insight, body.playbook_id, body.note)
    open_action = copilot.actions.find_open(ACCOUNT_TASK, {"account_id": account_id, "playbook_id": body.playbook_id})
    if open_action is not None:
        response.status_code = 200
        return open_action
    return copilot.actions.propose(ACCOUNT_TASK, task.summary, task.arguments, principal.name, principal.role)
