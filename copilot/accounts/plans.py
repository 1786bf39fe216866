"""Saved success plans and their tracked milestones, in the database (SQLite or Postgres).

A plan is stored only by the executor of a confirmed "save_plan" action, under that action's id,
so nothing lands here without a recorded confirmation and a retry stores nothing twice. Each
milestone is a row whose status the CSM moves between open, done and late (audited); an open
milestone past its due date counts as late, and the counts feed the account's health.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Engine

from copilot import db
from copilot.accounts.health import MilestoneCounts
from copilot.actions import AuditLog
from copilot.errors import NotFound
from copilot.modeling import Model
from copilot.rules import ActionPolicy

MilestoneStatus = Literal["open", "done", "late"]
SAVE_ACTION = "save_plan"
EXECUTOR = "plans"
STATUS_ZH = {"open": "进行中", "done": "完成", "late": "延期"}


class TrackedMilestone(Model):
    index: int = Field(description="Position in the plan's milestones, from 0")
    title: str
    due: date
    status: MilestoneStatus = Field(description="As last set by a person; open until then")
    late: bool = Field(description="Marked late, or still open after its due date")
    note: str | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class Progress(Model):
    total: int
    done: int
    late: int = Field(description="Marked late, or open past the due date")
    open: int = Field(description="Neither done nor late")


class SavedPlan(Model):
    id: str = Field(description="The id of the confirmed save action that stored it")
    account_id: str | None
    customer: str
    created_by: str
    created_at: datetime
    progress: Progress
    milestones: list[TrackedMilestone]


class StoredPlan(SavedPlan):
    plan: dict[str, Any] = Field(description="The plan as drafted (workflows.plans.SuccessPlan)")
    markdown: str = Field(description="The export as the person confirmed it")


def progress(milestones: list[TrackedMilestone]) -> Progress:
    done = sum(m.status == "done" for m in milestones)
    late = sum(m.late for m in milestones)
    return Progress(total=len(milestones), done=done, late=late, open=len(milestones) - done - late)


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _milestone(row: Any, today: date) -> TrackedMilestone:
    late = row.status == "late" or (row.status == "open" and row.due < today)
    return TrackedMilestone(index=row.position, title=row.title, due=row.due, status=row.status, late=late,
                            note=row.note, updated_by=row.updated_by, updated_at=_utc(row.updated_at))


class PlanStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def save(self, plan_id: str, plan: dict[str, Any], markdown: str, created_by: str,
             account_id: str | None = None) -> bool:
        """Store a plan and its milestones (all open); False when it is already stored."""
        plans, milestones = db.account_plans, db.plan_milestones
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(plans.c.id).where(plans.c.id == plan_id)).first():
                return False
            conn.execute(sa.insert(plans).values(
                id=plan_id, account_id=account_id, customer=str(plan.get("customer", {}).get("name") or "客户"),
                plan=plan, markdown=markdown, created_by=created_by, created_at=now))
            rows = [{"plan_id": plan_id, "position": i, "title": m["title"], "due": date.fromisoformat(str(m["date"])),
                     "status": "open"} for i, m in enumerate(plan.get("milestones") or [])]
            if rows:
                conn.execute(sa.insert(milestones), rows)
        return True

    def get(self, plan_id: str, today: date | None = None) -> StoredPlan:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(db.account_plans).where(db.account_plans.c.id == plan_id)).first()
        if row is None:
            raise _no_plan(plan_id)
        tracked = self._milestones([plan_id], today or date.today())[plan_id]
        return StoredPlan(**{**row._mapping, "created_at": _utc(row.created_at)}, progress=progress(tracked),
                          milestones=tracked)

    def of_account(self, account_id: str, today: date | None = None) -> list[SavedPlan]:
        """The account's saved plans, newest first, with their milestones and progress."""
        table = db.account_plans
        columns = [c for c in table.c if c.name not in ("plan", "markdown")]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*columns).where(table.c.account_id == account_id)
                                .order_by(table.c.created_at.desc(), table.c.id)).all()
        tracked = self._milestones([r.id for r in rows], today or date.today())
        return [SavedPlan(**{**r._mapping, "created_at": _utc(r.created_at)}, progress=progress(tracked[r.id]),
                          milestones=tracked[r.id]) for r in rows]

    def set_status(self, plan_id: str, index: int, status: MilestoneStatus, actor: str,
                   note: str | None = None, today: date | None = None) -> TrackedMilestone:
        """Mark one milestone done, late or open again; audited with who did it and what it was."""
        table = db.plan_milestones
        where = (table.c.plan_id == plan_id, table.c.position == index)
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(table).where(*where)).first()
            if before is None:
                raise self._missing(conn, plan_id, index)
            conn.execute(sa.update(table).where(*where).values(status=status, note=note, updated_by=actor,
                                                                updated_at=datetime.now(UTC)))
            self.audit.record(actor, "plan_milestone", plan_id, {
                "index": index, "title": before.title, "status": status, "previous": before.status, "note": note}, conn)
            row = conn.execute(sa.select(table).where(*where)).one()
        return _milestone(row, today or date.today())

    def tracked(self, account_ids: list[str] | None = None, today: date | None = None) -> dict[str, MilestoneCounts]:
        """Done and late milestones of each account's saved plans (accounts without any are left out)."""
        plans, milestones = db.account_plans, db.plan_milestones
        query = (sa.select(plans.c.account_id, milestones.c.status, milestones.c.due)
                 .join(milestones, milestones.c.plan_id == plans.c.id).where(plans.c.account_id.is_not(None)))
        if account_ids is not None:
            query = query.where(plans.c.account_id.in_(account_ids))
        today = today or date.today()
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        with self.engine.connect() as conn:
            for account_id, status, due in conn.execute(query):
                if status == "done":
                    counts[account_id][0] += 1
                elif status == "late" or due < today:
                    counts[account_id][1] += 1
        return {a: MilestoneCounts(done, late) for a, (done, late) in counts.items() if done or late}

    def _milestones(self, plan_ids: list[str], today: date) -> dict[str, list[TrackedMilestone]]:
        table = db.plan_milestones
        found: dict[str, list[TrackedMilestone]] = {p: [] for p in plan_ids}
        if not plan_ids:
            return found
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(table).where(table.c.plan_id.in_(plan_ids))
                                    .order_by(table.c.plan_id, table.c.position)):
                found[row.plan_id].append(_milestone(row, today))
        return found

    def _missing(self, conn: sa.Connection, plan_id: str, index: int) -> Exception:
        table = db.plan_milestones
        if not conn.execute(sa.select(db.account_plans.c.id).where(db.account_plans.c.id == plan_id)).first():
            return _no_plan(plan_id)
        count = conn.execute(sa.select(sa.func.count()).where(table.c.plan_id == plan_id)).scalar() or 0
        return NotFound(f"Plan {plan_id} has no milestone {index}: its milestones are numbered 0 to {count - 1}",
                        zh=f"这份计划没有第 {index} 号里程碑：编号从 0 到 {count - 1}")


def _no_plan(plan_id: str) -> NotFound:
    return NotFound(f"No saved plan {plan_id!r}: see GET /api/accounts/{{id}}/plans",
                    zh=f"没有编号为 {plan_id} 的已保存计划：计划要在「保存」并确认后才会存下")


class PlanExecutor:
    """Runs a confirmed save_plan action: the plan is stored under the action's id (a rerun is a no-op)."""

    name = EXECUTOR

    def __init__(self, store: PlanStore) -> None:
        self.store = store

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        args = action.get("arguments") or {}
        plan = args.get("plan")
        if not isinstance(plan, dict):  # only a hand-made action lacks one: there is nothing to store
            return {"skipped": "no plan in the action"}
        account_id = plan.get("account_id")
        created = self.store.save(str(action["id"]), plan, str(args.get("markdown") or ""),
                                  str(action.get("proposed_by") or ""), account_id)
        return {"plan_id": str(action["id"]), "account_id": account_id, "stored": created}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Stored: a plan under the action's id (stored in one transaction with its milestones)."""
        plan = (action.get("arguments") or {}).get("plan")
        if not isinstance(plan, dict):
            return {"skipped": "no plan in the action"}
        try:
            stored = self.store.get(str(action["id"]))
        except NotFound:
            return None
        return {"plan_id": stored.id, "account_id": stored.account_id, "stored": False}


def with_plan_store(action_type: str, policy: ActionPolicy) -> ActionPolicy:
    """save_plan always stores the plan, whatever rules.yaml lists: that is what saving means;
    the rules choose what else runs (the outbox file, a webhook)."""
    if action_type != SAVE_ACTION or EXECUTOR in policy.executors:
        return policy
    return policy.model_copy(update={"executors": [EXECUTOR, *policy.executors]})
