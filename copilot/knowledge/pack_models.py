"""Pydantic models of the pack's settings files: gazetteer, vendor, plan templates, glossary.

The item files (cases, FAQs, playbooks) are modelled in `schema.py`, the rules in
`copilot/rules.py`. Every model here forbids unknown keys, so a misspelled key is reported at
load time with its file and key path instead of being silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from copilot.modeling import Model

Side = Literal["我方", "客户方"]


class Strict(Model):
    """A pack model whose unknown keys are load issues (a typo, not a new setting)."""

    model_config = ConfigDict(extra="forbid")


# gazetteer.yaml ----------------------------------------------------------------------------------
class Gazetteer(Strict):
    """Slot vocabulary: places, industries and situations with the words that signal them."""

    regions: dict[str, list[str]] = Field(default_factory=dict, description="Region -> provinces")
    cities: dict[str, str] = Field(default_factory=dict, description="City -> province")
    industries: dict[str, list[str]] = Field(default_factory=dict, description="Industry -> synonyms")
    situations: dict[str, list[str]] = Field(default_factory=dict, description="Situation -> words")

    def provinces(self) -> set[str]:
        return {p for provinces in self.regions.values() for p in provinces}


# vendor.yaml -------------------------------------------------------------------------------------
class Product(Strict):
    name: str = Field(min_length=1)
    en: str = ""
    what: str = ""


class Vendor(Strict):
    """The company and its catalogue: plans and one-pagers only recommend these products."""

    vendor: str = ""
    vendor_en: str = ""
    sample: bool = False
    products: list[Product] = Field(default_factory=list)

    def product_names(self) -> set[str]:
        return {p.name for p in self.products}


# glossary.yaml -----------------------------------------------------------------------------------
class Glossary(Strict):
    terms: dict[str, list[str]] = Field(default_factory=dict, description="English word -> Chinese terms")


# plan_templates.yaml -----------------------------------------------------------------------------
class Scoring(Strict):
    formula: str = "impact * probability / resources"
    pick: int = Field(default=2, ge=0)
    max_outcomes: int = Field(default=2, ge=1)


class TierPlan(Strict):
    """Plan format and meeting rhythm for one size tier."""

    fee_range: str = ""
    style: str
    plan_format: str = ""
    csm_model: str = ""
    kickoff: str = ""
    kickoff_within_days: int = Field(default=0, ge=0)
    review: str = ""
    review_every_days: int | None = Field(default=None, ge=1)
    qbr: str = ""
    qbr_every_days: int | None = Field(default=None, ge=1)
    touch: str = ""
    sponsor: str | None = None
    indicators: list[str] = Field(default_factory=list, description="Which renewal_indicators health layers apply")
    renewal_prep_days: int = Field(default=90, ge=1)


class MilestoneTemplate(Strict):
    day: int = Field(ge=0, description="Days after signing")
    title: str
    metric: str
    owner_us: str
    owner_client: str


class ExpansionHint(Strict):
    product: str
    why: str


class Outcome(Strict):
    key: str
    goal_words: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    desired_outcome: str
    first_value: str
    first_value_days: int = Field(ge=0)
    milestones: list[MilestoneTemplate] = Field(default_factory=list)
    leading_indicators: list[str] = Field(default_factory=list)
    expansion: list[ExpansionHint] = Field(default_factory=list)


class QuickWinTemplate(Strict):
    title: str
    action: str
    products: list[str] = Field(default_factory=list)
    impact: int = Field(ge=1, le=5)
    resources: int = Field(ge=1, le=5, description="Higher = costs more")
    probability: int = Field(ge=1, le=5)
    owner_side: Side
    owner: str
    days: int = Field(ge=0)
    metric: str
    for_goals: list[str] = Field(default_factory=list, description="Outcome keys; default = always eligible")


class RenewalIndicator(Strict):
    name: str
    health: str = Field(description="Health layer: 狭义 or 广义")
    kind: str
    metric: str
    healthy: str
    warning: str


class PlanTemplates(Strict):
    """Building blocks of a joint success plan (the file's header says how they are assembled)."""

    scoring: Scoring = Field(default_factory=Scoring)
    tiers: dict[str, TierPlan] = Field(default_factory=dict)
    outcomes: list[Outcome] = Field(default_factory=list)
    quick_wins: list[QuickWinTemplate] = Field(default_factory=list)
    owners: dict[Side, list[str]] = Field(default_factory=dict, description="Plan roles on each side")
    duties: dict[str, str] = Field(default_factory=dict, description="Role -> default duty")
    renewal_indicators: list[RenewalIndicator] = Field(default_factory=list)
