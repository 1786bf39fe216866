"""Typed hand-offs between the pipeline stages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from copilot.modeling import Model

MAX_QUESTION_CHARS = 2000  # a question longer than this is refused, not truncated
# Bounds on what requests may carry: a name or label, the items of a list, a yearly fee (1万亿 元).
# Generous, because account records from a CRM export fill the same models.
MAX_NAME_CHARS = 200
MAX_LIST_ITEMS = 50
MAX_ANNUAL_FEE = 10**12
ShortText = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS)]

Role = Literal["sales", "csm", "support"]
Kind = Literal["case", "faq", "playbook", "doc"]
# account_insight: a question about the company's own customers, answered from the account data.
Task = Literal["find_cases", "draft_plan", "faq", "practice_question", "escalation", "out_of_scope",
               "account_insight"]
Tier = Literal["大型", "中型", "中小", "小微"]
Audience = Literal["public", "internal"]


class Chunk(Model):
    """One indexed passage: a pack item or a piece of an ingested document."""

    id: str
    doc_key: str
    position: int
    kind: Kind
    source: str = Field(description="Ingested path as given, or the pack item id")
    title: str
    context: str = Field(default="", description="Headings above the passage")
    text: str
    meta: dict[str, Any] = Field(default_factory=dict)
    views: list[str] = Field(default_factory=list, description=(
        "Further texts that stand for this passage, each embedded on its own: an FAQ's questions, "
        "a playbook's situations, a document's sentence windows. The passage scores by its best one."))

    @property
    def indexed_text(self) -> str:
        """What BM25 and the embedding model see: title and headings give the passage context."""
        head = " / ".join(part for part in (self.title, self.context) if part)
        return f"{head}\n{self.text}" if head else self.text


class SearchFilters(Model):
    kinds: list[Kind] | None = None
    audiences: list[Audience] | None = None
    industry: str | None = None
    province: str | None = None
    region: str | None = None
    tier: Tier | None = None


class Evidence(Model):
    """A retrieved passage with its fused score; the JSON shape of a search result."""

    id: str
    kind: Kind
    source: str
    title: str
    text: str
    score: float
    meta: dict[str, Any] = Field(default_factory=dict, exclude=True)
    bm25: float = Field(default=0.0, exclude=True)
    dense: float = Field(default=0.0, exclude=True)
    # The text (the passage itself or one of its views) that matched the question best.
    matched: str = Field(default="", exclude=True)


class SearchResult(Model):
    query: str
    results: list[Evidence]
    # How clearly the best match stands out on each channel: the retrieval half of the
    # decision whether to answer at all (see pipeline.grounding_confidence).
    signals: dict[str, float] = Field(default_factory=dict, exclude=True)


class Slots(Model):
    industry: str | None = None
    city: str | None = None
    province: str | None = None
    region: str | None = None
    tier: Tier | None = None
    annual_fee: int | None = None
    product: str | None = None
    situation: list[str] = Field(default_factory=list)
    urgency: Literal["normal", "urgent"] = "normal"
    account_tier: Tier | None = None


class Intent(Model):
    role: Role
    task: Task
    slots: Slots = Field(default_factory=Slots)
    confidence: float = Field(default=1.0, exclude=True)
    # Similarity to the nearest in-scope example minus the nearest out-of-scope one.
    scope_margin: float = Field(default=0.0, exclude=True)
    scope_in: float = Field(default=0.0, exclude=True)
    scope_out: float = Field(default=0.0, exclude=True)
    scope_logit: float = Field(default=0.0, exclude=True)  # see copilot.scope


class ProposedActionOut(Model):
    id: str
    type: str
    status: str
    summary: str
    arguments: dict[str, Any]
    proposed_by: str
    created_at: datetime


ActionStatus = Literal["proposed", "approved", "rejected", "executing", "executed", "failed"]


class AuditEntry(Model):
    id: int
    at: datetime
    actor: str
    event: str
    subject: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class ActionRecord(ProposedActionOut):
    """A stored action with its decision and execution state."""

    role: str
    updated_at: datetime
    decided_by: str | None = None
    comment: str | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None


class ActionDetail(ActionRecord):
    history: list[AuditEntry] = Field(default_factory=list, description="Audit entries, oldest first")


class Decision(Model):
    """A human's verdict on a proposed action; only approve executes it."""

    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=2000)


class Customer(Model):
    """What the user tells us about the customer or prospect; every field optional."""

    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    industry: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    city: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    province: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    annual_fee: int | None = Field(default=None, ge=0, le=MAX_ANNUAL_FEE)
    tier: Tier | None = None
    products: list[ShortText] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    situation: list[ShortText] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


class Draft(Model):
    """What a composer produces: the answer first, then why, then the evidence it used."""

    answer: str
    explanation: str = ""
    cited: list[int] = Field(default_factory=list, description="Indexes into the evidence list")
    composer: Literal["template", "llm"] = "template"
    llm_error: str | None = None


class Classification(Model):
    """How support should treat the question: the service-matrix cell it falls in."""

    category: str | None = None
    standardized: bool = True
    urgency: Literal["normal", "urgent"] = "normal"
    service_mode: str = ""
    channel: str = ""


class AskResponse(Model):
    answer: str
    grounded: bool
    citations: list[Evidence]
    intent: Intent
    choices: list[str] = Field(default_factory=list)
    actions: list[ProposedActionOut] = Field(default_factory=list)
    explanation: str = ""
    composer: Literal["template", "llm"] = "template"
    llm_fallback: bool = Field(default=False, description="An LLM was configured but failed; template answer served")
    fallbacks: list[Literal["intent", "compose"]] = Field(default_factory=list, description=(
        "LLM stages that answered offline instead (error, invalid reply, or the request's LLM time "
        "budget spent): intent -> offline classifier, compose -> template answer"))
    confidence: float = 0.0
    classification: Classification | None = None
