"""Proposed actions: stored before they are shown, executed only after a recorded confirm.

Status machine: proposed -> approved -> executing -> executed | failed; proposed -> rejected
(final). Every transition is a conditional UPDATE on the status it expects, so two concurrent
confirms or retries cannot both win; the decision is committed before anything runs, and an
action left approved, executing or failed can be run again by a retry (executors are
idempotent). Each step writes an audit entry in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.errors import Conflict, Forbidden, NotFound
from copilot.executors import Executor, require
from copilot.models import ActionDetail, ActionRecord, AuditEntry, Decision, ProposedActionOut
from copilot.rules import ActionPolicy

log = logging.getLogger(__name__)

# An action still "executing" after this long is taken to be orphaned by a dead process.
EXECUTING_STALE_S = 120


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

    def list(self, status: str | None = None, limit: int = 100, type_: str | None = None,
             visible: tuple[list[str], str] | None = None) -> list[dict[str, Any]]:
        """Newest first; `visible=(types, actor)` keeps those types plus what the actor proposed."""
        query = sa.select(db.actions).order_by(db.actions.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(db.actions.c.status == status)
        if type_:
            query = query.where(db.actions.c.type == type_)
        if visible is not None:
            types, actor = visible
            query = query.where(sa.or_(db.actions.c.type.in_(types), db.actions.c.proposed_by == actor))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def record(self, action_id: str) -> ActionRecord:
        row = self.get(action_id)
        if row is None:
            raise NotFound(f"No action with id {action_id!r}: list them with GET /api/actions")
        return ActionRecord(**row)

    def history(self, action_id: str) -> list[AuditEntry]:
        entries = self.audit.entries(subject=action_id, limit=1000)
        return [AuditEntry(**e) for e in sorted(entries, key=lambda e: e["id"])]

    def decide(self, action_id: str, approve: bool, actor: str, role: str, comment: str | None) -> bool:
        """proposed -> approved | rejected, only if still proposed; False when someone was first."""
        status = "approved" if approve else "rejected"
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(db.actions)
                                .where(db.actions.c.id == action_id, db.actions.c.status == "proposed")
                                .values(status=status, decided_by=actor, comment=comment, updated_at=_now()))
            if done.rowcount != 1:
                return False
            self.audit.record(actor, status, action_id, {"role": role, "comment": comment}, conn)
        return True

    def claim(self, action: ActionRecord) -> int | None:
        """Move to executing, if nobody changed the action since it was read; the attempt number."""
        attempt = action.attempts + 1
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(db.actions)
                                .where(db.actions.c.id == action.id, db.actions.c.status == action.status,
                                       db.actions.c.attempts == action.attempts)
                                .values(status="executing", attempts=attempt, updated_at=_now()))
        return attempt if done.rowcount == 1 else None

    def finish(self, action_id: str, attempt: int, actor: str, result: dict[str, Any], error: str | None) -> None:
        status = "failed" if error else "executed"
        with self.engine.begin() as conn:
            conn.execute(sa.update(db.actions)
                         .where(db.actions.c.id == action_id, db.actions.c.status == "executing",
                                db.actions.c.attempts == attempt)
                         .values(status=status, result=result, error=error, updated_at=_now()))
            payload = {"attempt": attempt, "error": error} if error else {"attempt": attempt, "result": result}
            self.audit.record(actor, status, action_id, payload, conn)


class ActionRunner:
    """Confirm, reject, execute and retry stored actions under the rules' policy per type."""

    def __init__(self, store: ActionStore, policy: Callable[[str], ActionPolicy],
                 executors: dict[str, Executor], confirmable: Callable[[str], list[str]] | None = None) -> None:
        self.store = store
        self.policy = policy
        self.executors = executors
        # Action types a role may confirm (from rules.yaml); an action is visible to a caller who
        # may confirm it or who proposed it. Admin sees everything.
        self.confirmable = confirmable or (lambda _role: [])

    def detail(self, action_id: str, actor: str | None = None, role: str | None = None) -> ActionDetail:
        record = self.store.record(action_id)
        if role is not None and not self.visible(record, actor, role):
            raise NotFound(f"No action with id {action_id!r}: list them with GET /api/actions")
        return ActionDetail(**record.model_dump(), history=self.store.history(action_id))

    def records(self, status: str | None = None, type_: str | None = None, limit: int = 100,
                actor: str | None = None, role: str | None = None) -> list[ActionRecord]:
        """Newest first; with a role, only the actions that caller may confirm or has proposed."""
        visible = None if role is None or role == "admin" else (self.confirmable(role), actor or "")
        return [ActionRecord(**r) for r in self.store.list(status=status, limit=limit, type_=type_, visible=visible)]

    def visible(self, action: ActionRecord, actor: str | None, role: str) -> bool:
        return role == "admin" or action.proposed_by == actor or role in self.policy(action.type).confirm_roles

    def authorize(self, action: ActionRecord, role: str) -> None:
        allowed = self.policy(action.type).confirm_roles
        if role not in allowed:
            raise Forbidden(f"Role {role!r} cannot confirm {action.type!r} actions; allowed: {', '.join(allowed)}")

    def confirm(self, action_id: str, decision: Decision, actor: str, role: str) -> ActionDetail:
        """Record the decision (committed first), then execute if approved."""
        action = self.store.record(action_id)
        self.authorize(action, role)
        approve = decision.decision == "approve"
        if not self.store.decide(action_id, approve, actor, role, decision.comment):
            current = self.store.record(action_id)
            hint = "; use retry to run it again" if current.status in ("approved", "executing", "failed") else ""
            raise Conflict(f"Action {action_id} was already decided: it is {current.status!r}"
                           f"{f' (by {current.decided_by})' if current.decided_by else ''}{hint}")
        if approve:
            self._execute(self.store.record(action_id), actor)
        return self.detail(action_id)

    def retry(self, action_id: str, actor: str, role: str) -> ActionDetail:
        """Run an approved action again: after a failure, or one a dead process left behind."""
        action = self.store.record(action_id)
        self.authorize(action, role)
        if action.status not in ("approved", "executing", "failed"):
            hint = {"proposed": "confirm it first", "rejected": "a rejected action stays rejected",
                    "executed": "it has already run"}[action.status]
            raise Conflict(f"Action {action_id} is {action.status!r}: {hint}")
        if action.status == "executing" and _age_s(action.updated_at) < EXECUTING_STALE_S:
            raise Conflict(f"Action {action_id} is executing right now; retry it if it is still "
                           f"executing in {EXECUTING_STALE_S} s")
        if not self._execute(action, actor):
            raise Conflict(f"Action {action_id} is already being run by another request")
        return self.detail(action_id)

    def _execute(self, action: ActionRecord, actor: str) -> bool:
        attempt = self.store.claim(action)
        if attempt is None:
            return False
        current = self.store.get(action.id) or {}
        result: dict[str, Any] = {}
        error = None
        try:
            for executor in require(self.executors, self.policy(action.type).executors):
                result[executor.name] = executor.run(current)
        except Exception as exc:  # recorded on the action; a retry runs it again
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("action %s (%s) failed on attempt %d: %s", action.id, action.type, attempt, error)
        self.store.finish(action.id, attempt, actor, result, error)
        return True


def _age_s(moment: datetime) -> float:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return (_now() - moment).total_seconds()
