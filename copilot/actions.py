"""Proposed actions: stored before they are shown, executed only after a recorded confirm."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.models import ProposedActionOut


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, actor: str, event: str, subject: str | None, payload: dict[str, Any],
               conn: sa.Connection | None = None) -> None:
        row = {"at": _now(), "actor": actor, "event": event, "subject": subject, "payload": payload}
        if conn is not None:
            conn.execute(sa.insert(db.audit).values(**row))
            return
        with self.engine.begin() as own:
            own.execute(sa.insert(db.audit).values(**row))

    def entries(self, event: str | None = None, subject: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(db.audit).order_by(db.audit.c.id.desc()).limit(limit)
        if event:
            query = query.where(db.audit.c.event == event)
        if subject:
            query = query.where(db.audit.c.subject == subject)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


class ActionStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def propose(self, type_: str, summary: str, arguments: dict[str, Any], proposed_by: str, role: str) -> ProposedActionOut:
        """Store a pending action (and its audit entry) before anyone sees it."""
        now = _now()
        row = {"id": str(uuid.uuid4()), "type": type_, "status": "proposed", "summary": summary,
               "arguments": arguments, "proposed_by": proposed_by, "role": role, "created_at": now,
               "updated_at": now, "attempts": 0}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(db.actions).values(**row))
            self.audit.record(proposed_by, "proposed", row["id"], {"type": type_, "summary": summary}, conn)
        return ProposedActionOut(**row)

    def get(self, action_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.actions).where(db.actions.c.id == action_id)).mappings().first()
        return dict(row) if row else None

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(db.actions).order_by(db.actions.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(db.actions.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
