"""Pydantic models of the knowledge pack files in `knowledge/`.

Every item is validated on load; a bad item is reported (file, item id, field)
and skipped, the rest of the pack still loads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from copilot.modeling import Model

Role = Literal["sales", "csm", "support"]
Audience = Literal["public", "internal"]
Tier = Literal["大型", "中型", "中小", "小微"]
Stage = Literal["PMF", "GTM", "规模化"]
# The customer journey, the columns of the navigation map.
Journey = Literal["获客", "成交", "上线", "价值兑现", "续费扩展"]


class Result(Model):
    """One measured outcome of a peer case, e.g. 复购率 18% -> 31%."""

    metric: str
    before: float | None = None
    after: float
    unit: str = ""


class Case(Model):
    id: str
    company: str = Field(description="Sample company name, marked （示例）")
    industry: str
    city: str
    province: str
    annual_fee: int = Field(ge=0, description="Annual subscription in yuan")
    stores: int | None = None
    products: list[str] = Field(min_length=1)
    situation: list[str] = Field(default_factory=list, description="Tags such as 连锁, 私域")
    challenge: str
    actions: list[str] = Field(min_length=1)
    results: list[Result] = Field(min_length=1)
    time_to_first_value_days: int | None = Field(default=None, gt=0)  # None: the source does not say
    journey: Journey = "价值兑现"
    audience: Audience = "public"
    summary: str


class Faq(Model):
    id: str
    question: str
    variants: list[str] = Field(default_factory=list)
    answer: str
    category: str
    product: str | None = None
    standardized: bool = True
    escalation: bool = False
    journey: Journey | None = None
    audience: Audience = "public"


class Playbook(Model):
    id: str
    title: str
    stage: Stage
    journey: Journey
    roles: list[Role] = Field(min_length=1)
    topic: str
    summary: str
    situations: list[str] = Field(default_factory=list, description=(
        "When it applies, in the words frontline people use: each is embedded on its own"))
    steps: list[str] = Field(min_length=1)
    body: str
    audience: Audience = "internal"
    based_on: str | None = Field(default=None, description="Seed file the facts come from")


class IntentExample(Model):
    task: Literal["find_cases", "draft_plan", "faq", "practice_question", "escalation", "out_of_scope"]
    examples: list[str] = Field(min_length=3)
