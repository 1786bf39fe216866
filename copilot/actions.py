"""Proposed actions: stored before they are shown, executed only after a recorded confirm.

Status machine: proposed -> approved -> executing -> executed | failed; proposed -> rejected
(final). Every transition is a conditional UPDATE on the status it expects, so two concurrent
confirms or retries cannot both win; the decision is committed before anything runs, and an
action left approved, executing or failed can be run again by a retry (executors are
idempotent). Each step writes an audit entry in the same transaction.

A process that dies mid-run leaves its action executing (or approved, if it died between the
decision and the claim). `ActionRunner.reconcile_interrupted()` runs at start and settles those
from the executors' own records: executed when every executor shows it ran, otherwise failed,
which a retry runs again under the same id (the webhook's Idempotency-Key).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.errors import Conflict, Forbidden, InvalidInput, NotFound
from copilot.models import ActionDetail, ActionRecord, AuditEntry, Decision, ProposedActionOut
from copilot.rules import ActionPolicy

if TYPE_CHECKING:  # the executors (HTTP, SMTP clients) load only where actions run
    from copilot.executors import Executor

log = logging.getLogger(__name__)

# How many candidates an ambiguous id prefix lists.
AMBIGUOUS_SHOWN = 10
# Not yet done or rejected: a repeat of the same request joins such an action instead of a new one.
OPEN_STATUSES = ("proposed", "approved", "executing")
# Liveness is a lease on updated_at. While an action's executors run, its process renews the lease
# every HEARTBEAT_S; an approved action is claimed within milliseconds of its decision. So an action
# approved or executing whose updated_at is older than EXECUTING_STALE_S has no live process behind
# it, whichever worker or host it ran on, and only those are reconciled or re-run. The trade-off: an
# action interrupted less than one lease before a start is left alone by that start (it could be a
# live sibling's: a per-process run id alone cannot tell a dead run from a live one without this
# same heartbeat); a retry settles it once the lease has run out. Several renewals may be missed
# (a long SQLite write lock) before a live run is taken for an orphan; hosts' clocks must agree to
# well within the lease.
EXECUTING_STALE_S = 60
HEARTBEAT_S = 10
# What a reconciliation may settle: left by a process that died before its run finished.
INTERRUPTIBLE = ("approved", "executing")
# The actor of entries that no person caused.
SYSTEM_ACTOR = "system"


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

    def entries(self, event: str | None = None, subject: str | None = None, limit: int = 100,
                actor: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(db.audit).order_by(db.audit.c.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(db.audit.c.actor == actor)
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

    def find_open(self, type_: str, match: dict[str, Any]) -> ProposedActionOut | None:
        """The newest action of this type still open (proposed, approved or executing) whose
        arguments hold every item of `match`."""
        query = (sa.select(db.actions).where(db.actions.c.type == type_, db.actions.c.status.in_(OPEN_STATUSES))
                 .order_by(db.actions.c.created_at.desc()))
        with self.engine.connect() as conn:
            # Filtered here, not in SQL: JSON operators differ between SQLite and Postgres, and the
            # open actions of one type are few (closed ones are excluded by the indexed status).
            for row in conn.execute(query).mappings():
                if all(row["arguments"].get(k) == v for k, v in match.items()):
                    return ProposedActionOut(**row)
        return None

    def add_repeat(self, action_id: str, repeat: dict[str, Any], actor: str) -> ProposedActionOut | None:
        """Append `repeat` (with the time) to an open action's arguments["repeats"], audited; None
        when the action is no longer open."""
        table = db.actions
        with self.engine.begin() as conn:
            # A no-op write first takes the row (Postgres) or database (SQLite) write lock, so two
            # repeats at once cannot both extend the same old list. updated_at is left alone: it
            # times an executing action's lease.
            touched = conn.execute(sa.update(table).where(table.c.id == action_id, table.c.status.in_(OPEN_STATUSES))
                                   .values(status=table.c.status))
            if touched.rowcount != 1:
                return None
            row = dict(conn.execute(sa.select(table).where(table.c.id == action_id)).mappings().one())
            entry = {**repeat, "at": _now().isoformat()}
            row["arguments"] = {**row["arguments"], "repeats": [*row["arguments"].get("repeats", []), entry]}
            conn.execute(sa.update(table).where(table.c.id == action_id).values(arguments=row["arguments"]))
            self.audit.record(actor, "repeated", action_id, entry, conn)
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

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one action whose id is `prefix` or starts with it (as `actions list` shows)."""
        prefix = prefix.strip()
        if not prefix:
            raise InvalidInput("Give an action id, or its first characters", zh="请给出操作 id（或它的前几位）")
        query = (sa.select(db.actions.c.id).where(db.actions.c.id.startswith(prefix, autoescape=True))
                 .order_by(db.actions.c.id).limit(AMBIGUOUS_SHOWN + 1))
        with self.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        if prefix in ids or len(ids) == 1:
            return prefix if prefix in ids else ids[0]
        if not ids:
            raise _no_action(prefix)
        shown = ", ".join(ids[:AMBIGUOUS_SHOWN]) + (", …" if len(ids) > AMBIGUOUS_SHOWN else "")
        raise InvalidInput(f"{prefix!r} is the start of several action ids: {shown}; give more characters",
                           zh=f"有多个操作 id 以 {prefix} 开头：{shown}；请多写几位")

    def record(self, action_id: str) -> ActionRecord:
        row = self.get(action_id)
        if row is None:
            raise _no_action(action_id)
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

    def finish(self, action_id: str, attempt: int, actor: str, result: dict[str, Any], error: str | None) -> bool:
        """Record the outcome; False (and no audit entry) when the run was no longer this one's:
        its lease ran out and another process settled or re-ran the action meanwhile."""
        status = "failed" if error else "executed"
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(db.actions)
                                .where(db.actions.c.id == action_id, db.actions.c.status == "executing",
                                       db.actions.c.attempts == attempt)
                                .values(status=status, result=result, error=error, updated_at=_now()))
            if done.rowcount != 1:
                log.warning("action %s attempt %d finished after its lease was taken over", action_id, attempt)
                return False
            payload = {"attempt": attempt, "error": error} if error else {"attempt": attempt, "result": result}
            self.audit.record(actor, status, action_id, payload, conn)
        return True

    def renew(self, action_id: str, attempt: int) -> bool:
        """Extend the lease of a run still in progress; False once it is no longer executing."""
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(db.actions)
                                .where(db.actions.c.id == action_id, db.actions.c.status == "executing",
                                       db.actions.c.attempts == attempt)
                                .values(updated_at=_now()))
        return done.rowcount == 1

    def orphaned(self, lease_s: float) -> list[ActionRecord]:
        """Actions approved or executing whose lease ran out: no live process is running them."""
        table = db.actions
        query = (sa.select(table).where(table.c.status.in_(INTERRUPTIBLE), table.c.updated_at < _lease_start(lease_s))
                 .order_by(table.c.created_at))
        with self.engine.connect() as conn:
            return [ActionRecord(**r) for r in conn.execute(query).mappings()]

    def settle(self, action: ActionRecord, records: dict[str, Any], unknown: list[str], lease_s: float) -> str | None:
        """Close an orphaned action: executed when no executor's outcome is unknown, else failed
        (retryable). Conditional on the state it was read in and on its lease still being out, so
        of two processes reconciling at once one wins; None when this one did not."""
        table = db.actions
        status, error = ("failed", _interrupted(unknown)) if unknown else ("executed", None)
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(table)
                                .where(table.c.id == action.id, table.c.status == action.status,
                                       table.c.attempts == action.attempts,
                                       table.c.updated_at < _lease_start(lease_s))
                                .values(status=status, result=records, error=error, updated_at=_now()))
            if done.rowcount != 1:
                return None
            self.audit.record(SYSTEM_ACTOR, "reconciled", action.id, {
                "attempt": action.attempts, "was": action.status, "outcome": status,
                "confirmed": sorted(records), "unknown": unknown}, conn)
        return status


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
            raise _no_action(action_id)
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
            raise Forbidden(f"Role {role!r} cannot confirm {action.type!r} actions; allowed: {', '.join(allowed)}",
                            zh=f"角色 {role} 不能确认 {action.type} 类操作；可确认的角色：{'、'.join(allowed)}")

    def confirm(self, action_id: str, decision: Decision, actor: str, role: str) -> ActionDetail:
        """Record the decision (committed first), then execute if approved."""
        action = self.store.record(action_id)
        self.authorize(action, role)
        approve = decision.decision == "approve"
        if approve and self.policy(action.type).four_eyes and actor == action.proposed_by and actor != LOCAL_USER:
            raise Forbidden(f"{action.type!r} actions need a second person: {actor} proposed this one")
        if not self.store.decide(action_id, approve, actor, role, decision.comment):
            current = self.store.record(action_id)
            rerun = current.status in ("approved", "executing", "failed")
            by = f" (by {current.decided_by})" if current.decided_by else ""
            raise Conflict(f"Action {action_id} was already decided: it is {current.status!r}{by}"
                           f"{'; use retry to run it again' if rerun else ''}",
                           zh=f"操作 {action_id} 已经有人处理过，当前状态：{STATUS_ZH.get(current.status, current.status)}"
                              f"{f'（{current.decided_by}）' if current.decided_by else ''}{'；可用「重试」再执行' if rerun else ''}")
        if approve:
            self._execute(self.store.record(action_id), actor)
        return self.detail(action_id)

    def retry(self, action_id: str, actor: str, role: str) -> ActionDetail:
        """Run an approved action again: after a failure, or one a dead process left behind."""
        action = self.store.record(action_id)
        self.authorize(action, role)
        if action.status not in ("approved", "executing", "failed"):
            hint, hint_zh = {"proposed": ("confirm it first", "请先确认"),
                             "rejected": ("a rejected action stays rejected", "已拒绝的操作不能再执行"),
                             "executed": ("it has already run", "它已经执行过了")}[action.status]
            raise Conflict(f"Action {action_id} is {action.status!r}: {hint}",
                           zh=f"操作 {action_id} 当前{STATUS_ZH[action.status]}：{hint_zh}")
        if action.status == "executing" and _age_s(action.updated_at) < EXECUTING_STALE_S:
            raise Conflict(f"Action {action_id} is executing right now; retry it if it is still "
                           f"executing in {EXECUTING_STALE_S} s",
                           zh=f"操作 {action_id} 正在执行；如果 {EXECUTING_STALE_S} 秒后仍在执行，再重试")
        if action.status == "executing":
            # Orphaned: if the executors' records show it ran, it is settled as executed, not run twice.
            self._reconcile(action)
            action = self.store.record(action_id)
            if action.status == "executed":
                return self.detail(action_id)
        # Still executing after settling: another request settled it first and is running it now.
        if action.status == "executing" or not self._execute(action, actor):
            raise Conflict(f"Action {action_id} is already being run by another request",
                           zh=f"操作 {action_id} 正由另一个请求执行")
        return self.detail(action_id)

    def _execute(self, action: ActionRecord, actor: str) -> bool:
        from copilot.executors import require

        attempt = self.store.claim(action)
        if attempt is None:
            return False
        current = self.store.get(action.id) or {}
        result: dict[str, Any] = {}
        error = None
        try:
            with _Lease(self.store, action.id, attempt):
                for executor in require(self.executors, self.policy(action.type).executors):
                    result[executor.name] = executor.run(current)
        except Exception as exc:  # recorded on the action; a retry runs it again
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("action %s (%s) failed on attempt %d: %s", action.id, action.type, attempt, error)
        self.store.finish(action.id, attempt, actor, result, error)
        return True

    def reconcile_interrupted(self) -> dict[str, str]:
        """At start: settle every action a dead process left approved or executing (see
        EXECUTING_STALE_S); safe when several workers start at once. Returns id -> new status."""
        settled: dict[str, str] = {}
        for action in self.store.orphaned(EXECUTING_STALE_S):
            try:
                status = self._reconcile(action)
            except Exception:  # one bad action (say, an executor gone from rules.yaml) must not stop a start
                log.exception("could not reconcile action %s (%s)", action.id, action.type)
                continue
            if status:
                settled[action.id] = status
        if settled:
            log.info("reconciled %d interrupted action(s): %s", len(settled), settled)
        return settled

    def _reconcile(self, action: ActionRecord) -> str | None:
        """Ask each executor whether it already ran this action; settle it from the answers."""
        from copilot.executors import executed_record, require

        current = self.store.get(action.id) or {}
        records: dict[str, Any] = {}
        unknown: list[str] = []
        for executor in require(self.executors, self.policy(action.type).executors):
            try:
                record = executed_record(executor, current)
            except Exception:  # a record that cannot be read is no proof: run it again on retry
                log.exception("executor %s could not tell whether action %s ran", executor.name, action.id)
                record = None
            if record is None:
                unknown.append(executor.name)
            else:
                records[executor.name] = record
        return self.store.settle(action, records, unknown, EXECUTING_STALE_S)


class _Lease:
    """Renews an executing action's lease while its executors run, so that a long run (a large
    re-index) is never taken for one a dead process left behind."""

    def __init__(self, store: ActionStore, action_id: str, attempt: int) -> None:
        self.store, self.action_id, self.attempt = store, action_id, attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{action_id[:8]}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.store.renew(self.action_id, self.attempt):
                    return
            except Exception:  # the next beat tries again; the lease allows several misses
                log.warning("could not renew the lease of action %s", self.action_id, exc_info=True)


# The keyless loopback user (a single person on their own machine) has no second person to ask.
LOCAL_USER = "local"


STATUS_ZH = {"proposed": "待确认", "approved": "已批准", "rejected": "已拒绝", "executing": "执行中",
             "executed": "已执行", "failed": "执行失败"}


def _no_action(action_id: str) -> NotFound:
    return NotFound(f"No action with id {action_id!r}: list them with GET /api/actions or `copilot actions list`",
                    zh=f"没有 id 为 {action_id} 的操作：可在「待确认操作」页或用 copilot actions list 查看")


def _interrupted(unknown: list[str]) -> str:
    names = ", ".join(unknown)
    return (f"Interrupted: the process running it stopped; not known whether {names} ran. Retry runs it again "
            f"under the same id. 执行被中断：无法确认 {names} 是否已完成；点「重试」会用同一 id 再执行一次"
            f"（接收方可按 id 去重）。")


def _lease_start(lease_s: float) -> datetime:
    return _now() - timedelta(seconds=lease_s)


def _age_s(moment: datetime) -> float:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return (_now() - moment).total_seconds()
