"""The CSM's book: every account's health, renewal risk, journey state and what changed in its
latest month, computed for all accounts at once and kept until the accounts data, the day or the
insight rules change. A page of a 10,000-account book is then a filter and a slice, and the journey
model fitted on the same histories serves every account's detail."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import Literal

from pydantic import Field

from copilot.accounts.health import MilestoneCounts, Risk, RiskLevel, health, history, renewal_risk, usage_measure
from copilot.accounts.journey import STATE_LABELS, Transitions, journey_states, training_states, transition_matrix
from copilot.accounts.models import Account, Activity, Outcome, Tier
from copilot.accounts.store import AccountStore, name_key, name_keys
from copilot.modeling import Model
from copilot.rules import Insight, JourneyState

ChangeKind = Literal["no_data", "risk_level", "usage", "adoption", "tickets", "milestones", "nps"]
LEVEL_ORDER = {"低": 0, "中": 1, "高": 2}
# Month-on-month moves smaller than these are noise in monthly exports, not news for the CSM.
USAGE_MOVE = 0.10  # share of last month's active stores / users
ADOPTION_MOVE = 0.05  # points of feature adoption
TICKETS_MOVE = 2  # tickets a month
NPS_MOVE = 10  # NPS points


class Change(Model):
    kind: ChangeKind
    text: str = Field(description="One line for the CSM, Chinese")
    worse: bool = Field(description="True when it points towards churn")


class AccountSummary(Model):
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
    journey_state: JourneyState
    journey_label: str
    changes: list[Change] = Field(default_factory=list, description="What moved in the latest month, worse first")
    changes_period: str = Field(default="", description='e.g. "2026-11 对比 2026-10"; empty without two months')


class Owner(Model):
    name: str
    accounts: int
    high_risk: int


# Recent changes ------------------------------------------------------------------------------------
def _n(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() or abs(x) >= 10 else f"{x:.1f}"


def _month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def recent_changes(account: Account, activity: list[Activity], rules: Insight, today: date,
                   latest_in_book: str | None, now: Risk | None = None,
                   milestones: MilestoneCounts | None = None) -> tuple[list[Change], str]:
    """What moved between the account's latest complete month and the one before, worse first.

    Activity arrives by month, so "this week" for a CSM is the latest month on file against the
    previous one; an account whose data stops before the rest of the book says so."""
    rows = history(activity, account.id, today)
    if not rows:
        return [], ""
    latest = rows[-1]
    changes: list[Change] = []
    if latest_in_book and latest.month < latest_in_book:
        changes.append(Change(kind="no_data", text=f"{latest.month} 之后没有活动数据", worse=True))
    if len(rows) < 2:
        return changes, ""
    before = rows[-2]
    now = now or renewal_risk(account, activity, rules, today, milestones)
    then = renewal_risk(account, activity, rules, _month_start(latest.month), milestones)  # as it read a month ago
    if now.level != then.level:
        changes.append(Change(kind="risk_level", text=f"续费风险 {then.level}→{now.level}",
                              worse=LEVEL_ORDER[now.level] > LEVEL_ORDER[then.level]))
    measure, label = usage_measure(rows)
    a, b = getattr(before, measure), getattr(latest, measure)
    if a and b is not None and abs(b - a) / a >= USAGE_MOVE:
        changes.append(Change(kind="usage", text=f"{label} {_n(a)}→{_n(b)}（{(b - a) / a * 100:+.0f}%）", worse=b < a))
    a, b = before.feature_adoption, latest.feature_adoption
    if a is not None and b is not None and abs(b - a) >= ADOPTION_MOVE:
        changes.append(Change(kind="adoption", text=f"核心功能使用率 {a:.0%}→{b:.0%}", worse=b < a))
    a, b = before.tickets, latest.tickets
    if a is not None and b is not None and abs(b - a) >= TICKETS_MOVE:
        changes.append(Change(kind="tickets", text=f"工单 {a}→{b} 个", worse=b > a))
    if latest.milestones_late:
        changes.append(Change(kind="milestones", text=f"{latest.milestones_late} 个里程碑延期", worse=True))
    a, b = before.nps, latest.nps
    if a is not None and b is not None and abs(b - a) >= NPS_MOVE:
        changes.append(Change(kind="nps", text=f"NPS {_n(a)}→{_n(b)}", worse=b < a))
    changes.sort(key=lambda c: not c.worse)  # stable: worse first, each group in the order above
    return changes, f"{latest.month} 对比 {before.month}"


# The book ------------------------------------------------------------------------------------------
@lru_cache(maxsize=100_000)
def _keys(name: str, aliases: tuple[str, ...]) -> frozenset[str]:
    # Normalising names is the slowest part of a build (~0.3 ms each): done on the first name
    # search, and remembered across rebuilds since names rarely change between imports.
    return frozenset(name_keys(Account(id="", name=name, aliases=list(aliases))))


@dataclass(frozen=True)
class Book:
    entries: tuple[AccountSummary, ...]  # by name
    by_id: dict[str, AccountSummary]
    by_risk: tuple[AccountSummary, ...]  # riskiest first
    names: dict[str, tuple[str, tuple[str, ...]]]  # account id -> name and aliases
    transitions: Transitions  # the journey model fitted on every account's history
    latest_month: str | None

    @cached_property
    def keys(self) -> dict[str, frozenset[str]]:
        """Account id -> the name keys it answers to (either script, bracketed notes dropped)."""
        return {account_id: _keys(*names) for account_id, names in self.names.items()}

    def get(self, account_id: str) -> AccountSummary | None:
        return self.by_id.get(account_id)

    def select(self, owner: str | None = None, tier: str | None = None, risk: str | None = None,
               q: str | None = None, sort: str = "name") -> list[AccountSummary]:
        """Accounts matching every filter given; `owner` is the CSM or the sales owner."""
        key = name_key(q) if q else ""
        return [e for e in (self.by_risk if sort == "risk" else self.entries)
                if (not owner or owner in (e.csm, e.sales)) and (not tier or e.tier == tier)
                and (not risk or e.risk_level == risk) and (not key or any(key in k for k in self.keys[e.id]))]

    def owners(self) -> list[Owner]:
        """Each CSM with their number of accounts and of high-risk ones, by name."""
        counts: dict[str, list[int]] = {}
        for e in self.entries:
            if e.csm:
                count = counts.setdefault(e.csm, [0, 0])
                count[0] += 1
                count[1] += e.risk_level == "高"
        return [Owner(name=n, accounts=c[0], high_risk=c[1]) for n, c in sorted(counts.items())]


def build_book(accounts: list[Account], activity: dict[str, list[Activity]], rules: Insight, today: date,
               tracked: dict[str, MilestoneCounts] | None = None) -> Book:
    """Summaries for every account and the journey model, from one pass over the histories;
    `tracked`: plan milestones tracked in the copilot, per account."""
    months = [rows[-1].month for rows in activity.values() if rows]
    latest = max((m for m in months if _month_start(m) < today.replace(day=1)), default=None)
    entries, histories = [], []
    for account in accounts:
        rows, milestones = activity.get(account.id, []), (tracked or {}).get(account.id)
        at_risk = renewal_risk(account, rows, rules, today, milestones)
        states = [s for _, s in journey_states(account, rows, rules, today)]
        # The model learns from known renewal outcomes too; only accounts with one differ from `states`.
        histories.append(training_states(account, rows, rules, today) if account.outcome else states)
        state = states[-1] if states else "onboarding"
        changes, period = recent_changes(account, rows, rules, today, latest, at_risk, milestones)
        entries.append(AccountSummary(
            **account.model_dump(), health=health(account, rows, rules, today, milestones).score,
            risk=at_risk.probability, risk_level=at_risk.level, risk_summary=at_risk.summary, journey_state=state,
            journey_label=STATE_LABELS[state], changes=changes, changes_period=period))
    return Book(entries=tuple(entries), by_id={e.id: e for e in entries},
                by_risk=tuple(sorted(entries, key=lambda e: -e.risk)),
                names={a.id: (a.name, tuple(a.aliases)) for a in accounts},
                transitions=transition_matrix([h for h in histories if h], rules), latest_month=latest)


class BookCache:
    """The book, rebuilt only when the accounts data (its version token), the tracked plan
    milestones, the day or the insight rules change; one build at a time, other requests wait for
    it rather than repeat it."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cached: tuple[tuple, Book] | None = None

    def book(self, rules: Insight, today: date, tracked: dict[str, MilestoneCounts] | None = None) -> Book:
        # The version is read before the data: a write landing in between makes the next call rebuild.
        key = (self.store.version(), today, rules, tracked or {})
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            if self._cached is None or self._cached[0] != key:
                book = build_book(self.store.accounts(), self.store.all_activity(), rules, today, tracked)
                self._cached = (key, book)
            return self._cached[1]
