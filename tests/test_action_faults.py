"""Confirmed actions under faults: a process that dies mid-run, several workers starting at once,
a run that outlasts its lease; and eval promotions written in parallel. SQLite and Postgres.

"A process dies" is simulated by an exception that escapes the runner before it records the
outcome (as a kill would leave it), then a fresh Copilot on the same data dir and database
plays the restarted process.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from copilot import actions as actions_module
from copilot import db
from copilot.errors import Conflict
from copilot.knowledge.changes import KnowledgeExecutor, propose_change
from copilot.models import Decision
from test_actions import make, pack  # noqa: F401 - fixtures: a Copilot per database, one loaded pack
from workflow_fixtures import webhook_receiver  # noqa: F401 - fixture

APPROVE = Decision(decision="approve", comment="看过了")
PLAN = {"customer": {"name": "麦香烘焙"}, "account_id": None,
        "milestones": [{"title": "上线会员", "date": "2030-01-15"}, {"title": "首月复盘", "date": "2030-02-15"}]}


class Died(BaseException):
    """The process was killed: nothing after this point of the run happened."""


def propose(copilot, type_="save_plan", arguments=None):
    arguments = {"markdown": "# 计划\n内容"} if arguments is None else arguments
    return copilot.actions.propose(type_, f"测试 {type_}", arguments, "proposer", "csm")


def die_before_finishing(copilot, monkeypatch, action_id, role="csm"):
    """Confirm: the executors run, then the process dies before the outcome is recorded."""
    def killed(*_args, **_kwargs):
        raise Died

    monkeypatch.setattr(copilot.actions, "finish", killed)
    with pytest.raises(Died):
        copilot.action_runner.confirm(action_id, APPROVE, f"{role}-user", role)
    monkeypatch.undo()


def age(copilot, action_id, seconds=3600):
    """Time passes: the dead process's lease runs out."""
    with copilot.engine.begin() as conn:
        conn.execute(sa.update(db.actions).where(db.actions.c.id == action_id)
                     .values(updated_at=datetime.now(timezone.utc) - timedelta(seconds=seconds)))


def events(copilot, action_id):
    return [e.event for e in copilot.actions.history(action_id)]


def reconciled(copilot, action_id):
    return [e.payload for e in copilot.actions.history(action_id) if e.event == "reconciled"]


class TestReconcileAtStart:
    def test_an_outbox_file_and_stored_plan_settle_it_as_executed(self, make, monkeypatch):
        first = make()
        action = propose(first, arguments={"markdown": "# 计划\n内容", "plan": PLAN})
        die_before_finishing(first, monkeypatch, action.id)
        assert first.actions.record(action.id).status == "executing"
        age(first, action.id)

        restarted = make()
        detail = restarted.action_runner.detail(action.id)  # building the runner reconciles
        assert (detail.status, detail.attempts, detail.error) == ("executed", 1, None)
        assert set(detail.result) == {"plans", "outbox"}
        assert detail.result["outbox"]["path"].endswith(f"{action.id}.md")
        assert reconciled(restarted, action.id)[0]["outcome"] == "executed"
        assert events(restarted, action.id) == ["proposed", "approved", "reconciled"]
        with pytest.raises(Conflict, match="already run"):
            restarted.action_runner.retry(action.id, "csm-user", "csm")

    def test_an_unknown_webhook_goes_back_to_failed_and_a_retry_resends_under_the_same_id(
            self, make, monkeypatch, webhook_receiver):
        webhook_receiver.start()
        first = make(webhook_url=webhook_receiver.url)
        action = propose(first, "send_case_onepager")
        die_before_finishing(first, monkeypatch, action.id, role="sales")
        assert len(webhook_receiver.requests) == 1  # it did arrive, but nothing here can know that
        age(first, action.id)

        restarted = make(webhook_url=webhook_receiver.url)
        settled = restarted.action_runner.detail(action.id)
        assert (settled.status, settled.attempts) == ("failed", 1)
        assert "webhook" in settled.error and "重试" in settled.error
        # email is configured off here: having nothing to send, it knows it is done
        assert reconciled(restarted, action.id) == [{"attempt": 1, "was": "executing", "outcome": "failed",
                                                     "confirmed": ["email", "outbox"], "unknown": ["webhook"]}]
        done = restarted.action_runner.retry(action.id, "sales-user", "sales")  # at once: no lease to wait out
        assert (done.status, done.attempts, done.error) == ("executed", 2, None)
        keys = [r["headers"]["Idempotency-Key"] for r in webhook_receiver.requests]
        assert keys == [action.id, action.id]  # the receiver can drop the duplicate
        assert events(restarted, action.id) == ["proposed", "approved", "reconciled", "executed"]

    def test_approved_but_never_run_becomes_retryable(self, make, monkeypatch):
        first = make()
        action = propose(first)

        def killed(_action):
            raise Died

        monkeypatch.setattr(first.actions, "claim", killed)
        with pytest.raises(Died):
            first.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")
        monkeypatch.undo()
        age(first, action.id)

        restarted = make()
        assert restarted.action_runner.detail(action.id).status == "failed"
        assert reconciled(restarted, action.id)[0]["was"] == "approved"
        assert not (restarted.settings.outbox / f"{action.id}.md").exists()
        done = restarted.action_runner.retry(action.id, "csm-user", "csm")
        assert (done.status, done.attempts) == ("executed", 1)

    def test_an_outbox_file_with_other_content_is_no_proof(self, make, monkeypatch):
        first = make()
        action = propose(first)
        die_before_finishing(first, monkeypatch, action.id)
        (first.settings.outbox / f"{action.id}.md").write_text("# 半份", encoding="utf-8")
        age(first, action.id)
        restarted = make()
        assert restarted.action_runner.detail(action.id).status == "failed"
        assert restarted.action_runner.retry(action.id, "csm-user", "csm").status == "executed"
        assert (restarted.settings.outbox / f"{action.id}.md").read_text(encoding="utf-8") == "# 计划\n内容"

    def test_a_knowledge_change_already_stored_is_executed_and_one_not_stored_is_not(self, make):
        copilot = make()
        faqs = [i for i in copilot.knowledge_items() if i.kind == "faq" and i.status == "active"]
        applied = propose_change(copilot.actions, faqs[0], "retire", None, "kb-a", "knowledge")
        pending = propose_change(copilot.actions, faqs[1], "retire", None, "kb-a", "knowledge")

        def crash():
            raise Died

        executor = KnowledgeExecutor(copilot.items, crash, lambda keys, actor: keys)
        with copilot.engine.begin() as conn:
            conn.execute(sa.update(db.actions).where(db.actions.c.id.in_([applied.id, pending.id]))
                         .values(status="executing", attempts=1, decided_by="kb-b"))
        with pytest.raises(Died):  # stored, then the process died before the index was refreshed
            executor.run(copilot.actions.get(applied.id))
        age(copilot, applied.id)
        age(copilot, pending.id)

        restarted = make()
        restarted.action_runner  # noqa: B018 - building it reconciles
        assert restarted.actions.record(applied.id).status == "executed"
        assert restarted.actions.record(applied.id).result == {"knowledge": {"item_id": faqs[0].id,
                                                                             "status": "retired"}}
        assert restarted.actions.record(pending.id).status == "failed"

        def removal(kind):
            return {"id": "x", "arguments": {"change": "remove_source", "source": {"key": "/gone/faq.xlsx", "kind": kind}}}

        assert executor.done(removal("sheet")) == {"removed": []}  # no item of that sheet is left
        assert executor.done(removal("document")) is None  # not looked up: removing it again is harmless

    def test_a_live_run_is_left_alone(self, make):
        copilot = make()
        action = propose(copilot)
        with copilot.engine.begin() as conn:  # claimed a moment ago by a worker that is still running
            conn.execute(sa.update(db.actions).where(db.actions.c.id == action.id)
                         .values(status="executing", attempts=1, updated_at=datetime.now(timezone.utc)))
        assert make().action_runner.reconcile_interrupted() == {}
        assert copilot.actions.record(action.id).status == "executing"
        with pytest.raises(Conflict, match="executing right now"):
            copilot.action_runner.retry(action.id, "csm-user", "csm")

    def test_two_workers_starting_at_once_settle_each_action_once(self, make, monkeypatch):
        first = make()
        ids = []
        for _ in range(4):
            action = propose(first)
            die_before_finishing(first, monkeypatch, action.id)
            ids.append(action.id)
        workers = [make() for _ in range(3)]
        for worker in workers:
            worker.action_runner  # noqa: B018 - built (and its own start-up pass done) before the leases run out
        for action_id in ids:
            age(first, action_id)
        barrier, outcomes = threading.Barrier(len(workers)), []

        def start(worker):
            barrier.wait()
            outcomes.append(worker.action_runner.reconcile_interrupted())

        threads = [threading.Thread(target=start, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(i for outcome in outcomes for i in outcome) == sorted(ids)  # each settled by one worker
        for action_id in ids:
            assert len(reconciled(first, action_id)) == 1
            assert first.actions.record(action_id).status == "executed"


class TestRetryOfAnOrphan:
    def test_retry_of_a_stale_run_that_had_finished_its_work_does_not_run_it_again(self, make, monkeypatch):
        copilot = make()
        action = propose(copilot)
        die_before_finishing(copilot, monkeypatch, action.id)
        age(copilot, action.id)
        path = copilot.settings.outbox / f"{action.id}.md"
        written = path.stat().st_mtime_ns
        done = copilot.action_runner.retry(action.id, "csm-user", "csm")  # the runner was built before the age
        assert (done.status, done.attempts) == ("executed", 1)
        assert path.stat().st_mtime_ns == written
        assert events(copilot, action.id) == ["proposed", "approved", "reconciled"]

    def test_two_retries_of_an_orphan_at_once_run_it_once(self, make):
        copilot = make()
        action = propose(copilot)
        copilot.action_runner  # noqa: B018 - started before the run was cut short
        with copilot.engine.begin() as conn:  # claimed an hour ago; the worker died before writing anything
            conn.execute(sa.update(db.actions).where(db.actions.c.id == action.id).values(
                status="executing", attempts=1, decided_by="csm-user",
                updated_at=datetime.now(timezone.utc) - timedelta(hours=1)))
        barrier, outcomes = threading.Barrier(2), []

        def retry():
            barrier.wait()
            try:
                outcomes.append(copilot.action_runner.retry(action.id, "csm-user", "csm").status)
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=retry) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert "executed" in outcomes and set(outcomes) <= {"executed", "conflict"}
        assert events(copilot, action.id) == ["proposed", "reconciled", "executed"]
        assert copilot.actions.record(action.id).attempts == 2


class TestLease:
    def test_a_long_run_keeps_its_lease_and_is_not_taken_for_an_orphan(self, make, monkeypatch):
        monkeypatch.setattr(actions_module, "HEARTBEAT_S", 0.05)
        monkeypatch.setattr(actions_module, "EXECUTING_STALE_S", 0.6)
        copilot = make()
        action = propose(copilot)
        outbox = copilot.action_runner.executors["outbox"]
        original, started = outbox.run, threading.Event()

        def slow(row):
            started.set()
            time.sleep(1.5)  # well past the lease: only the renewals keep it
            return original(row)

        monkeypatch.setattr(outbox, "run", slow)
        result = {}
        runner = threading.Thread(target=lambda: result.update(
            done=copilot.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")))
        runner.start()
        assert started.wait(10)
        time.sleep(1.0)
        other = make()
        assert other.action_runner.reconcile_interrupted() == {}
        with pytest.raises(Conflict, match="executing right now"):
            other.action_runner.retry(action.id, "csm-user", "csm")
        runner.join(30)
        assert result["done"].status == "executed"
        assert events(copilot, action.id) == ["proposed", "approved", "executed"]

    def test_a_run_whose_lease_was_taken_over_records_nothing(self, make):
        copilot = make()
        action = propose(copilot, arguments={})
        with copilot.engine.begin() as conn:
            conn.execute(sa.update(db.actions).where(db.actions.c.id == action.id)
                         .values(status="failed", attempts=1))
        assert copilot.actions.finish(action.id, 1, "late-worker", {"outbox": {}}, None) is False
        assert events(copilot, action.id) == ["proposed"]


def test_parallel_promotions_keep_every_question(tmp_path):
    import yaml

    from copilot.evals import EvalQuestion, load_questions, promote

    count = 16
    barrier = threading.Barrier(count)
    errors = []

    def one(i):
        barrier.wait()
        try:
            promote(tmp_path, EvalQuestion(id=f"q-prod-{i}", role="support", question=f"第 {i} 个问题怎么办？"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    path = tmp_path / "evals" / "promoted.yaml"
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    assert sorted(q["id"] for q in stored) == sorted(f"q-prod-{i}" for i in range(count))
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []
    assert len(load_questions([path])) == count
