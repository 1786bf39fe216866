"""Account routes: the company's own customers as imported from its CRM export, and their activity."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, Field

from copilot.accounts.health import RiskLevel, health, renewal_risk
from copilot.accounts.insight import AccountInsight, account_insight, fit_journey
from copilot.accounts.models import Account, Activity, Outcome, Tier
from copilot.accounts.store import name_key, name_keys
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.errors import NotFound

router = APIRouter(tags=["accounts"])


class AccountSummary(BaseModel):
    id: str
    name: str
    industry: str
    city: str
    province: str
    tier: Tier | None
    annual_fee: int | None
    renews_on: date | None
    csm: str
    sales: str
    outcome: Outcome | None
    sample: bool
    health: float | None = Field(description="0-100; None without activity")
    risk: float = Field(description="Renewal risk, 0-1")
    risk_level: RiskLevel
    risk_summary: str = Field(description="The reason in one line, for the CSM's book")


class AccountList(BaseModel):
    total: int
    items: list[AccountSummary]


class AccountDetail(BaseModel):
    account: Account
    activity: list[Activity]
    insight: AccountInsight


def register(app: FastAPI) -> None:
    app.include_router(router)


def _matches(account: Account, owner: str | None, tier: str | None, q: str | None) -> bool:
    if owner and owner not in (account.csm, account.sales):
        return False
    if tier and account.tier != tier:
        return False
    return not q or any(name_key(q) in key for key in name_keys(account))


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
    puts the riskiest first, as a CSM reads their book."""
    rules, today = copilot.pack.rules.insight, date.today()
    activity = copilot.accounts.all_activity()
    found = []
    for account in copilot.accounts.accounts():
        if not _matches(account, owner, tier, q):
            continue
        rows = activity.get(account.id, [])
        at_risk = renewal_risk(account, rows, rules, today)
        if risk and at_risk.level != risk:
            continue
        found.append(AccountSummary(**account.model_dump(), health=health(account, rows, rules, today).score,
                                    risk=at_risk.probability, risk_level=at_risk.level, risk_summary=at_risk.summary))
    if sort == "risk":
        found.sort(key=lambda a: -a.risk)
    return AccountList(total=len(found), items=found[offset:offset + limit])


@router.get("/api/accounts/{account_id}", response_model=AccountDetail)
def get_account(account_id: str, copilot: CopilotDep, principal: PrincipalDep) -> AccountDetail:
    """One account with its monthly activity, oldest month first."""
    account = copilot.accounts.account(account_id)
    if account is None:
        raise NotFound(f"No account {account_id!r}: see GET /api/accounts", zh=f"没有编号为 {account_id} 的客户")
    everyone = copilot.accounts.all_activity()
    today = date.today()
    transitions = fit_journey(copilot.accounts.accounts(), everyone, copilot.pack, today)
    activity = everyone.get(account_id, [])
    insight = account_insight(account, activity, transitions, copilot.pack, today, principal.audiences)
    return AccountDetail(account=account, activity=activity, insight=insight)
