"""Deterministic business rules, loaded from `knowledge/rules.yaml`: pure functions, no LLM.

Every model forbids unknown keys, so a misspelled rule is a load issue with its key path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr

from copilot import geo
from copilot.knowledge.pack_models import Gazetteer, Strict
from copilot.models import Audience, Kind, Task

OwnerRole = Literal["csm", "sales"]
Facet = Literal["industry", "location", "tier", "situation", "semantic"]
LocationLevel = Literal["city", "province", "region"]


class SizeTier(Strict):
    name: str
    min_fee: int
    note: str = ""


class CaseMatching(Strict):
    weights: dict[Facet, float] = Field(default_factory=lambda: {
        "industry": 0.35, "location": 0.2, "tier": 0.2, "situation": 0.1, "semantic": 0.15})
    location_levels: dict[LocationLevel, float] = Field(default_factory=lambda: {"city": 1.0, "province": 0.6, "region": 0.3})
    adjacent_tier_credit: float = 0.4
    good_match: float = 0.55
    max_results: int = 5


class CaseWorkflow(Strict):
    similar_text: float = 0.6
    alternatives: int = 3
    estimate_max_metrics: int = 4


class SuccessPlanRules(Strict):
    playbook_topics: list[str] = Field(default_factory=lambda: ["成功计划", "快速见效", "续费预测", "健康度"])
    tier_playbook_topics: dict[str, list[str]] = Field(default_factory=dict)
    role_titles: dict[str, list[str]] = Field(default_factory=dict)


class ActionPolicy(Strict):
    """Who may confirm an action type and what runs once it is approved."""

    label: str = ""
    confirm_roles: list[str] = Field(default_factory=lambda: ["admin"])
    executors: list[str] = Field(default_factory=lambda: ["outbox"])
    four_eyes: bool = Field(default=False, description="The proposer may not confirm it")


class RoleRoute(Strict):
    kinds: list[Kind]
    audiences: list[Audience]


class Routing(Strict):
    """Which knowledge each role reads, and the boost a task gives the kind of item it is about."""

    sales: RoleRoute | None = None
    csm: RoleRoute | None = None
    support: RoleRoute | None = None
    task_boosts: dict[Task, dict[Kind, float]] = Field(default_factory=dict)

    def route(self, role: str) -> RoleRoute | None:
        return {"sales": self.sales, "csm": self.csm, "support": self.support}.get(role)


class Andon(Strict):
    key_account_tiers: list[str] = Field(default_factory=lambda: ["大型", "中型"])
    urgent_words: list[str] = Field(default_factory=list)
    sla_minutes: dict[str, int] = Field(default_factory=dict)
    ticket_queue: str = ""


class CrossSell(Strict):
    sales_if_tiers: list[str] = Field(default_factory=list, description="Tiers whose cross-sell goes to sales")
    otherwise: OwnerRole = "csm"


class NewSaleWindow(Strict):
    months: int | None = Field(default=None, ge=1, description="An upsell this soon after signing is a new sale")


class Ownership(Strict):
    """Who owns which revenue motion."""

    renewal: OwnerRole = "csm"
    cross_sell: CrossSell = Field(default_factory=CrossSell)
    new_sale_window: NewSaleWindow = Field(default_factory=NewSaleWindow)


class ServiceCell(Strict):
    """One cell of the passive-vs-active service matrix."""

    standardized: bool
    urgent: bool
    mode: str
    channel: str


class TierCadence(Strict):
    exec: str = Field(default="", description="Business review when the tier's plan template names none")


class RetrievalRules(Strict):
    """How the retrieval channels are fused (see retrieve.Fusion)."""

    fusion: Literal["weighted", "rrf"] = "weighted"
    dense: float = Field(default=0.5, ge=0, le=1)
    words: float = Field(default=0.7, ge=0)
    bigrams: float = Field(default=0.3, ge=0)


class Grounding(Strict):
    """Whether to answer at all: a logistic model over retrieval and scope signals gives the
    probability that the knowledge covers the question; below min_confidence the copilot declines."""

    min_confidence: float = Field(default=0.5, ge=0, le=1)
    bias: float = 0.0
    weights: dict[str, float] = Field(default_factory=dict)
    # Script (han, latin) -> signal -> what off-topic questions score on the sample pack: stands in
    # for a knowledge base without out-of-scope examples to measure its own (copilot/calibration.py).
    reference: dict[str, dict[str, float]] = Field(default_factory=dict)



# Insight (accounts): health, renewal risk, journey and next best actions ---------------------------
NarrowPart = Literal["usage", "logins", "adoption", "milestones"]
BroadPart = Literal["narrow", "tickets", "nps"]
RiskIndicator = Literal["usage_decline", "adoption_gap", "ticket_rise", "nps_detraction", "late_milestones",
                        "renewal_near"]
JourneyState = Literal["onboarding", "first_value", "adoption", "expansion", "at_risk", "renewed", "churned"]


class HealthRules(Strict):
    """Narrow health = product usage + business outcome; broad = narrow + experience (handbook)."""

    window_months: int = Field(default=3, ge=1, description="Months averaged for 'recent' and 'before'")
    narrow: dict[NarrowPart, float] = Field(default_factory=lambda: {
        "usage": 0.4, "logins": 0.15, "adoption": 0.25, "milestones": 0.2})
    broad: dict[BroadPart, float] = Field(default_factory=lambda: {"narrow": 0.7, "tickets": 0.2, "nps": 0.1})


class RiskRules(Strict):
    """Logistic renewal-risk model over leading indicators; the coefficients are priors."""

    bias: float = -2.0
    weights: dict[RiskIndicator, float] = Field(default_factory=lambda: {
        "usage_decline": 4.0, "adoption_gap": 1.5, "ticket_rise": 1.0, "nps_detraction": 0.5,
        "late_milestones": 1.5, "renewal_near": 0.5})
    horizon_days: int = Field(default=365, ge=1, description="renewal_near is 1 on the day, 0 this far out")
    high: float = Field(default=0.6, ge=0, le=1)
    medium: float = Field(default=0.3, ge=0, le=1)


class JourneyRules(Strict):
    """State definitions (thresholds) and the Dirichlet prior of the monthly transition matrix."""

    onboarding_months: int = Field(default=2, ge=0)
    first_value_adoption: float = Field(default=0.3, ge=0, le=1)
    first_value_milestones: int = Field(default=1, ge=1)
    adoption_min: float = Field(default=0.5, ge=0, le=1)
    expansion_growth: float = Field(default=0.2, ge=0)
    at_risk_decline: float = Field(default=0.3, ge=0, le=1)
    no_value_months: int = Field(default=4, ge=1, description="No first value after this many months is at risk")
    prior_strength: float = Field(default=5.0, ge=0, description="Pseudo-transitions per row")
    horizon_months: int = Field(default=12, ge=1, description="Months ahead when the renewal date is unknown")
    prior: dict[JourneyState, dict[JourneyState, float]] = Field(default_factory=dict)


class ActionTarget(Strict):
    """Playbooks (by journey and topic) that move an account from a state to the target state."""

    target: JourneyState
    journeys: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    why: str = ""


class ActionRules(Strict):
    max_actions: int = Field(default=3, ge=1)
    per_target: int = Field(default=1, ge=1, description="Playbooks offered per target entry")
    targets: dict[JourneyState, list[ActionTarget]] = Field(default_factory=dict)


class Insight(Strict):
    health: HealthRules = Field(default_factory=HealthRules)
    risk: RiskRules = Field(default_factory=RiskRules)
    journey: JourneyRules = Field(default_factory=JourneyRules)
    actions: ActionRules = Field(default_factory=ActionRules)


class Rules(Strict):
    size_tiers: list[SizeTier] = Field(min_length=1, default_factory=lambda: [
        SizeTier(name="大型", min_fee=1_000_000), SizeTier(name="中型", min_fee=100_000),
        SizeTier(name="中小", min_fee=10_000), SizeTier(name="小微", min_fee=0)])
    case_matching: CaseMatching = Field(default_factory=CaseMatching)
    routing: Routing = Field(default_factory=Routing)
    andon: Andon = Field(default_factory=Andon)
    ownership: Ownership = Field(default_factory=Ownership)
    service_matrix: list[ServiceCell] = Field(default_factory=list)
    cadence: dict[str, TierCadence] = Field(default_factory=dict)
    grounding: Grounding = Field(default_factory=Grounding)
    retrieval: RetrievalRules = Field(default_factory=RetrievalRules)
    case_workflow: CaseWorkflow = Field(default_factory=CaseWorkflow)
    success_plan: SuccessPlanRules = Field(default_factory=SuccessPlanRules)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    insight: Insight = Field(default_factory=Insight)
    # Cities and regions come from gazetteer.yaml, not from rules.yaml.
    _places: Gazetteer = PrivateAttr(default_factory=Gazetteer)

    @classmethod
    def from_data(cls, rules: dict[str, Any], gazetteer: Gazetteer | None = None) -> Rules:
        return cls.model_validate(rules).with_places(gazetteer or Gazetteer())

    def with_places(self, gazetteer: Gazetteer) -> Rules:
        """A copy that places cities and provinces with this gazetteer."""
        rules = self.model_copy()
        rules._places = gazetteer
        return rules

    def tier_for_fee(self, annual_fee: float) -> str:
        """Highest band whose lower bound the fee reaches; gaps fold into the band below."""
        for tier in sorted(self.size_tiers, key=lambda t: -t.min_fee):
            if annual_fee >= tier.min_fee:
                return tier.name
        return self.size_tiers[-1].name

    def tier_order(self) -> list[str]:
        return [t.name for t in sorted(self.size_tiers, key=lambda t: -t.min_fee)]

    def region_for_province(self, province: str | None) -> str | None:
        found = next((region for region, provinces in self._places.regions.items() if province in provinces), None)
        return found or (geo.region_of(province) if province else None)

    def province_for_city(self, city: str | None) -> str | None:
        """The gazetteer first (it may override), then every city and county of China."""
        if not city:
            return None
        if city in self._places.cities:
            return self._places.cities[city]
        place = geo.lookup(city)
        return place.province if place else None

    def role_route(self, role: str) -> RoleRoute:
        return self.routing.route(role) or RoleRoute(kinds=["case", "faq", "playbook", "doc"], audiences=["public"])

    def service_cell(self, standardized: bool, urgent: bool) -> ServiceCell | None:
        return next((c for c in self.service_matrix if c.standardized == standardized and c.urgent == urgent), None)

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
        return self.routing.task_boosts.get(task, {})
