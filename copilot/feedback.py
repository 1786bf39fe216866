"""Feedback and the knowledge-gap report (the Insight application type)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Engine

from copilot import db
from copilot.actions import AuditLog
from copilot.knowledge.pack import Pack
from copilot.modeling import Model

FrontlineRole = Literal["sales", "csm", "support"]


class FeedbackIn(Model):
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(default="", max_length=20000)
    rating: Literal["up", "down"]
    role: FrontlineRole | None = Field(default=None, description=(
        "The role the question was asked as; default: the caller's. Only a caller who may ask as that role can name it"))
    comment: str | None = Field(default=None, max_length=2000)


def record_feedback(engine: Engine, audit: AuditLog, body: FeedbackIn, actor: str, role: str) -> int:
    """Store a rating under `role`, which the caller's identity decides, never the request alone."""
    with engine.begin() as conn:
        result = conn.execute(sa.insert(db.feedback).values(
            at=datetime.now(timezone.utc), actor=actor, role=role, question=body.question,
            answer=body.answer, rating=1 if body.rating == "up" else -1, comment=body.comment))
        feedback_id = int(result.inserted_primary_key[0])
        audit.record(actor, "feedback", str(feedback_id), {**body.model_dump(), "role": role}, conn)
    return feedback_id


@dataclass(frozen=True)
class GapViewer:
    """Whose gaps a caller sees: questions asked as these roles, citing only knowledge they may read."""

    roles: Collection[str]
    may_read: Callable[[str], bool]  # a cited source -> whether the caller may read it

    def sees(self, role: str, sources: Collection[str]) -> bool:
        return role in self.roles and all(self.may_read(s) for s in sources)


def source_audiences(pack: Pack) -> dict[str, str]:
    """The audience of every pack item, by id (what an answer cites as its source)."""
    return {item.id: item.audience for item in [*pack.cases, *pack.faqs, *pack.playbooks]}


def reader_of(pack: Pack, audiences: Collection[str]) -> Callable[[str], bool]:
    """Whether a reader of `audiences` may read a cited source. A source that is no pack item is an
    ingested document, and ingested documents are public."""
    known = source_audiences(pack)
    return lambda source: known.get(source, "public") in audiences


def gap_report(engine: Engine, days: int, low_confidence: float, viewer: GapViewer | None = None) -> dict:
    """Unanswered, shaky and thumbs-down questions of the last `days`; with a viewer, only theirs."""
    since = datetime.now(timezone.utc) - timedelta(days=days)
    with engine.connect() as conn:
        payloads = conn.execute(sa.select(db.audit.c.payload)
                                .where(db.audit.c.event == "ask", db.audit.c.at >= since)).scalars().all()
        downs = conn.execute(sa.select(db.feedback.c.question, db.feedback.c.role, db.feedback.c.comment)
                             .where(db.feedback.c.rating < 0, db.feedback.c.at >= since)).all()
    asks = [p for p in payloads if viewer is None or viewer.sees(_role(p), p.get("sources") or [])]
    if viewer is not None:
        cited = _sources_by_question(payloads)
        downs = [d for d in downs if viewer.sees(d.role, cited.get((d.question, d.role), set()))]
    unanswered = Counter((p["question"], _role(p)) for p in asks if not p.get("grounded"))
    shaky = Counter((p["question"], _role(p)) for p in asks
                    if p.get("grounded") and p.get("confidence", 1) < low_confidence)
    return {
        "days": days,
        "asked": len(asks),
        "unanswered": [{"question": q, "role": r, "count": n} for (q, r), n in unanswered.most_common(50)],
        "low_confidence": [{"question": q, "role": r, "count": n} for (q, r), n in shaky.most_common(50)],
        "thumbs_down": [{"question": q, "role": r, "comment": c} for q, r, c in downs[:50]],
    }


def _role(payload: dict[str, Any]) -> str:
    return payload.get("role", "support")


def _sources_by_question(payloads: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """What each question was answered from, over all the times it was asked: a thumbs-down is
    hidden from a caller who may not read what its answer cited."""
    cited: dict[tuple[str, str], set[str]] = {}
    for p in payloads:
        cited.setdefault((p["question"], _role(p)), set()).update(p.get("sources") or [])
    return cited
