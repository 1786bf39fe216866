"""Pure case-matching rules: how well a peer case fits what is known about a customer.

Scoring: each facet scores 0..1 (industry: same or not; location: city, else province, else
region, at the rules' levels; tier: same, or the adjacent-tier credit; situation: the share of
the customer's tags the case shares; semantic: the case's text-search score relative to the
best one). A facet nothing is known about is left out and the weights of the others
renormalise, so the score is "how well the case fits what we know". The breakdown holds each
facet's contribution; the contributions add up to the score.

Only rules and data go in and out, so the answer pipeline and the sales workflow share it
without depending on each other.
"""

from __future__ import annotations

from pydantic import Field

from copilot.knowledge.schema import Case, Result
from copilot.modeling import Model
from copilot.models import Customer, Slots
from copilot.rules import Rules

FACETS = ("industry", "location", "tier", "situation", "semantic")


class CaseView(Model):
    id: str
    company: str
    industry: str
    city: str
    province: str
    tier: str
    annual_fee: int
    products: list[str]
    situation: list[str]
    summary: str
    results: list[Result]
    time_to_first_value_days: int | None


class CaseMatch(Model):
    case: CaseView
    score: float
    breakdown: dict[str, float] = Field(description="Each facet's contribution; they add up to the score")
    why: list[str]
    good_match: bool


def merge_customer(rules: Rules, slots: Slots, customer: Customer) -> Slots:
    """The explicit profile wins over what was guessed from the text."""
    province = customer.province or rules.province_for_city(customer.city) or slots.province
    tier = customer.tier or (rules.tier_for_fee(customer.annual_fee) if customer.annual_fee is not None else slots.tier)
    return slots.model_copy(update={
        "industry": customer.industry or slots.industry, "city": customer.city or slots.city,
        "province": province, "region": rules.region_for_province(province) or slots.region,
        "tier": tier, "annual_fee": customer.annual_fee if customer.annual_fee is not None else slots.annual_fee,
        "situation": sorted(set(slots.situation) | set(customer.situation)),
        "account_tier": tier if slots.account_tier is None or customer.tier or customer.annual_fee else slots.account_tier,
    })


def effective_weights(rules: Rules, slots: Slots, has_text: bool) -> dict[str, float]:
    known = {"industry": bool(slots.industry), "location": bool(slots.city or slots.province or slots.region),
             "tier": bool(slots.tier), "situation": bool(slots.situation), "semantic": has_text}
    weights = {f: float(rules.case_matching.weights.get(f, 0.0)) for f in FACETS if known[f]}
    total = sum(weights.values())
    return {f: w / total for f, w in weights.items() if w > 0} if total > 0 else {}


def score_case(rules: Rules, slots: Slots, case: Case, semantic: float, weights: dict[str, float]) -> CaseMatch:
    facets, why = facet_scores(rules, slots, case, semantic)
    breakdown = {f: round(weights.get(f, 0.0) * facets[f], 4) for f in FACETS}
    score = round(sum(weights.get(f, 0.0) * facets[f] for f in FACETS), 4)
    return CaseMatch(case=case_view(rules, case), score=score, breakdown=breakdown, why=why,
                     good_match=score >= rules.case_matching.good_match)


def facet_scores(rules: Rules, slots: Slots, case: Case, semantic: float) -> tuple[dict[str, float], list[str]]:
    """Each facet's similarity (0..1) and the plain-language reasons."""
    matching = rules.case_matching
    levels = matching.location_levels
    scores = dict.fromkeys(FACETS, 0.0)
    why: list[str] = []
    if slots.industry and slots.industry == case.industry:
        scores["industry"] = 1.0
        why.append(f"同行业（{case.industry}）")
    if slots.city and slots.city == case.city:
        scores["location"] = levels.get("city", 1.0)
        why.append(f"同城（{case.city}）")
    elif slots.province and slots.province == case.province:
        scores["location"] = levels.get("province", 0.6)
        why.append(f"同省（{case.province}）")
    elif slots.region and slots.region == rules.region_for_province(case.province):
        scores["location"] = levels.get("region", 0.3)
        why.append(f"同区域（{slots.region}）")
    case_tier = rules.tier_for_fee(case.annual_fee)
    if slots.tier and slots.tier == case_tier:
        scores["tier"] = 1.0
        why.append(f"同规模（{case_tier}）")
    elif slots.tier and rules.adjacent_tiers(slots.tier, case_tier):
        scores["tier"] = matching.adjacent_tier_credit
        why.append(f"相邻规模（{case_tier}）")
    shared = [s for s in slots.situation if s in case.situation]
    if slots.situation and shared:
        scores["situation"] = len(shared) / len(slots.situation)
        why.append(f"相似情境（{'、'.join(shared)}）")
    scores["semantic"] = max(0.0, min(1.0, semantic))
    if semantic >= rules.case_workflow.similar_text:
        why.append("描述相近")
    return scores, why


def case_view(rules: Rules, case: Case) -> CaseView:
    return CaseView(**case.model_dump(include=set(CaseView.model_fields) - {"tier"}),
                    tier=rules.tier_for_fee(case.annual_fee))
