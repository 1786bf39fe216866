"""Feedback and the knowledge-gap report (the Insight application type)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from copilot import db
from copilot.actions import AuditLog


class FeedbackIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(default="", max_length=20000)
    rating: Literal["up", "down"]
    role: Literal["sales", "csm", "support"] = "support"
    comment: str | None = Field(default=None, max_length=2000)


def record_feedback(engine: Engine, audit: AuditLog, body: FeedbackIn, actor: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(sa.insert(db.feedback).values(
            at=datetime.now(timezone.utc), actor=actor, role=body.role, question=body.question,
            answer=body.answer, rating=1 if body.rating == "up" else -1, comment=body.comment))
        feedback_id = int(result.inserted_primary_key[0])
        audit.record(actor, "feedback", str(feedback_id), body.model_dump(), conn)
    return feedback_id


def gap_report(engine: Engine, days: int, low_confidence: float) -> dict:
    since = datetime.now(timezone.utc) - timedelta(days=days)
    with engine.connect() as conn:
        asks = conn.execute(sa.select(db.audit.c.at, db.audit.c.payload)
                            .where(db.audit.c.event == "ask", db.audit.c.at >= since)).all()
        downs = conn.execute(sa.select(db.feedback.c.question, db.feedback.c.role, db.feedback.c.comment)
                             .where(db.feedback.c.rating < 0, db.feedback.c.at >= since)).all()
    unanswered = Counter((p["question"], p.get("role", "support")) for _, p in asks if not p.get("grounded"))
    shaky = Counter((p["question"], p.get("role", "support")) for _, p in asks
                    if p.get("grounded") and p.get("confidence", 1) < low_confidence)
    return {
        "days": days,
        "asked": len(asks),
        "unanswered": [{"question": q, "role": r, "count": n} for (q, r), n in unanswered.most_common(50)],
        "low_confidence": [{"question": q, "role": r, "count": n} for (q, r), n in shaky.most_common(50)],
        "thumbs_down": [{"question": q, "role": r, "comment": c} for q, r, c in downs[:50]],
    }
