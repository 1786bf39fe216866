"""Deterministic business rules, loaded from `knowledge/rules.yaml`: pure functions, no LLM."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from copilot import geo


class SizeTier(BaseModel):
    name: str
    min_fee: int
    note: str = ""


class CaseMatching(BaseModel):
    weights: dict[str, float] = Field(default_factory=lambda: {
        "industry": 0.35, "location": 0.2, "tier": 0.2, "situation": 0.1, "semantic": 0.15})
    location_levels: dict[str, float] = Field(default_factory=lambda: {"city": 1.0, "province": 0.6, "region": 0.3})
    adjacent_tier_credit: float = 0.4
    good_match: float = 0.55
    max_results: int = 5


class CaseWorkflow(BaseModel):
    similar_text: float = 0.6
    alternatives: int = 3
    estimate_max_metrics: int = 4


class SuccessPlanRules(BaseModel):
    playbook_topics: list[str] = Field(default_factory=lambda: ["成功计划", "快速见效", "续费预测", "健康度"])
    tier_playbook_topics: dict[str, list[str]] = Field(default_factory=dict)
    role_titles: dict[str, list[str]] = Field(default_factory=dict)


class ActionPolicy(BaseModel):
    """Who may confirm an action type and what runs once it is approved."""

    label: str = ""
    confirm_roles: list[str] = Field(default_factory=lambda: ["admin"])
    executors: list[str] = Field(default_factory=lambda: ["outbox"])
    four_eyes: bool = Field(default=False, description="The proposer may not confirm it")


class RoleRoute(BaseModel):
    kinds: list[str]
    audiences: list[str]


class Andon(BaseModel):
    key_account_tiers: list[str] = Field(default_factory=lambda: ["大型", "中型"])
    urgent_words: list[str] = Field(default_factory=list)
    sla_minutes: dict[str, int] = Field(default_factory=dict)
    ticket_queue: str = ""


class RetrievalRules(BaseModel):
    """How the retrieval channels are fused (see retrieve.Fusion)."""

    fusion: Literal["weighted", "rrf"] = "weighted"
    dense: float = Field(default=0.5, ge=0, le=1)
    words: float = Field(default=0.7, ge=0)
    bigrams: float = Field(default=0.3, ge=0)


class Grounding(BaseModel):
    """Whether to answer at all: a logistic model over retrieval and scope signals gives the
    probability that the knowledge covers the question; below min_confidence the copilot declines."""

    min_confidence: float = Field(default=0.5, ge=0, le=1)
    bias: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)


class Rules(BaseModel):
    size_tiers: list[SizeTier] = Field(default_factory=lambda: [
        SizeTier(name="大型", min_fee=1_000_000), SizeTier(name="中型", min_fee=100_000),
        SizeTier(name="中小", min_fee=10_000), SizeTier(name="小微", min_fee=0)])
    case_matching: CaseMatching = Field(default_factory=CaseMatching)
    routing: dict[str, Any] = Field(default_factory=dict)
    andon: Andon = Field(default_factory=Andon)
    ownership: dict[str, Any] = Field(default_factory=dict)
    service_matrix: list[dict[str, Any]] = Field(default_factory=list)
    cadence: dict[str, dict[str, str]] = Field(default_factory=dict)
    health: dict[str, list[str]] = Field(default_factory=dict)
    grounding: Grounding = Field(default_factory=Grounding)
    retrieval: RetrievalRules = Field(default_factory=RetrievalRules)
    case_workflow: CaseWorkflow = Field(default_factory=CaseWorkflow)
    success_plan: SuccessPlanRules = Field(default_factory=SuccessPlanRules)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    # From gazetteer.yaml
    cities: dict[str, str] = Field(default_factory=dict)
    regions: dict[str, list[str]] = Field(default_factory=dict)

    @classmethod
    def from_data(cls, rules: dict[str, Any], gazetteer: dict[str, Any]) -> "Rules":
        return cls(**rules, cities=gazetteer.get("cities") or {}, regions=gazetteer.get("regions") or {})

    def tier_for_fee(self, annual_fee: float) -> str:
        """Highest band whose lower bound the fee reaches; gaps fold into the band below."""
        for tier in sorted(self.size_tiers, key=lambda t: -t.min_fee):
            if annual_fee >= tier.min_fee:
                return tier.name
        return self.size_tiers[-1].name

    def tier_order(self) -> list[str]:
        return [t.name for t in sorted(self.size_tiers, key=lambda t: -t.min_fee)]

    def region_for_province(self, province: str | None) -> str | None:
        found = next((region for region, provinces in self.regions.items() if province in provinces), None)
        return found or (geo.region_of(province) if province else None)

    def province_for_city(self, city: str | None) -> str | None:
        """The gazetteer first (it may override), then every city and county of China."""
        if not city:
            return None
        if city in self.cities:
            return self.cities[city]
        place = geo.lookup(city)
        return place.province if place else None

    def role_route(self, role: str) -> RoleRoute:
        route = self.routing.get(role)
        if not route:
            return RoleRoute(kinds=["case", "faq", "playbook", "doc"], audiences=["public"])
        return RoleRoute(**route)

    def action_policy(self, action_type: str) -> ActionPolicy:
        """Unlisted action types: admin confirms, the outbox executes."""
        return self.actions.get(action_type) or ActionPolicy()

    def confirmable_actions(self, role: str) -> list[str]:
        """Action types the role may confirm (unlisted types: admin only)."""
        return [name for name, policy in self.actions.items() if role in policy.confirm_roles]

    def adjacent_tiers(self, a: str, b: str) -> bool:
        order = self.tier_order()
        return a in order and b in order and abs(order.index(a) - order.index(b)) == 1

    def task_boosts(self, task: str) -> dict[str, float]:
        return (self.routing.get("task_boosts") or {}).get(task, {})
