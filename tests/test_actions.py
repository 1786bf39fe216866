"""Proposed actions: confirm, reject, execute, fail, retry, audit; on SQLite and on Postgres.

The Postgres runs need COPILOT_TEST_POSTGRES_URL (each test gets a fresh schema); without it
they are skipped and the skip reason is listed in the summary.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conftest import PACK_DIR, build_settings
from copilot import db
from copilot.errors import Conflict, Forbidden
from copilot.executors import OutboxExecutor
from copilot.models import Decision
from workflow_fixtures import webhook_receiver  # noqa: F401 - fixture

APPROVE, REJECT = Decision(decision="approve", comment="看过了"), Decision(decision="reject", comment="不发")


@pytest.fixture(scope="module")
def pack():
    from copilot.knowledge.pack import load_pack

    return load_pack(PACK_DIR)


@pytest.fixture(params=["sqlite", "postgres"])
def make(request, tmp_path, pack):
    """`make(**settings)` -> a Copilot on the parametrised database, sharing one loaded pack (no index)."""
    from copilot.service import Copilot

    backend = {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}

    def factory(**overrides):
        copilot = Copilot(build_settings(tmp_path, PACK_DIR, **backend, **overrides))
        copilot.pack = pack  # fills the cached property: parsing the YAML once per module is enough
        return copilot

    return factory


def propose(copilot, type_="save_plan", markdown="# 计划\n内容"):
    return copilot.actions.propose(type_, f"测试 {type_}", {"markdown": markdown}, "proposer", "csm")


def events(copilot, action_id) -> list[str]:
    return [e.event for e in copilot.action_runner.detail(action_id).history]


class TestActionLifecycle:
    def test_approve_executes_into_the_outbox(self, make):
        copilot = make()
        action = propose(copilot)
        done = copilot.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")
        assert (done.status, done.decided_by, done.comment, done.attempts) == ("executed", "csm-user", "看过了", 1)
        path = copilot.settings.outbox / f"{action.id}.md"
        assert path.read_text(encoding="utf-8") == "# 计划\n内容"
        assert done.result["outbox"]["path"] == str(path)
        assert events(copilot, action.id) == ["proposed", "approved", "executed"]
        history = copilot.action_runner.detail(action.id).history
        assert [e.actor for e in history] == ["proposer", "csm-user", "csm-user"]
        assert copilot.audit.entries(subject=action.id)  # what GET /api/audit?subject= serves

    def test_reject_is_final_and_writes_nothing(self, make):
        copilot = make()
        action = propose(copilot)
        done = copilot.action_runner.confirm(action.id, REJECT, "csm-user", "csm")
        assert done.status == "rejected" and done.attempts == 0
        assert not list(copilot.settings.outbox.glob(f"{action.id}*"))
        with pytest.raises(Conflict):
            copilot.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")
        with pytest.raises(Conflict):
            copilot.action_runner.retry(action.id, "csm-user", "csm")
        assert events(copilot, action.id) == ["proposed", "rejected"]

    def test_confirming_twice_executes_once(self, make):
        copilot = make()
        action = propose(copilot)
        copilot.action_runner.confirm(action.id, APPROVE, "a", "csm")
        with pytest.raises(Conflict, match="already decided"):
            copilot.action_runner.confirm(action.id, APPROVE, "b", "admin")
        assert events(copilot, action.id).count("executed") == 1
        assert copilot.action_runner.detail(action.id).decided_by == "a"

    def test_concurrent_confirms_have_one_winner(self, make):
        copilot = make()
        action = propose(copilot)
        barrier, outcomes = threading.Barrier(2), []

        def confirm(who: str) -> None:
            barrier.wait()
            try:
                outcomes.append(copilot.action_runner.confirm(action.id, APPROVE, who, "csm").status)
            except Conflict:
                outcomes.append("conflict")

        threads = [threading.Thread(target=confirm, args=(f"user-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["conflict", "executed"]
        assert events(copilot, action.id).count("approved") == 1
        assert events(copilot, action.id).count("executed") == 1

    def test_crash_after_the_decision_leaves_it_approved_and_retry_runs_it_once(self, make, monkeypatch):
        copilot = make()
        action = propose(copilot)
        runner = copilot.action_runner

        def die(_action):
            raise RuntimeError("process died before executing")

        monkeypatch.setattr(runner.store, "claim", die)
        with pytest.raises(RuntimeError):
            runner.confirm(action.id, APPROVE, "csm-user", "csm")
        monkeypatch.undo()
        assert runner.detail(action.id).status == "approved"  # the decision was committed first
        assert not (copilot.settings.outbox / f"{action.id}.md").exists()
        done = runner.retry(action.id, "csm-user", "csm")
        assert (done.status, done.attempts) == ("executed", 1)
        assert (copilot.settings.outbox / f"{action.id}.md").exists()
        with pytest.raises(Conflict, match="already run"):
            runner.retry(action.id, "csm-user", "csm")
        assert events(copilot, action.id).count("executed") == 1

    def test_an_action_stuck_executing_can_be_rerun_once_stale(self, make):
        copilot = make()
        action = propose(copilot)
        runner = copilot.action_runner

        def set_state(**values):
            with copilot.engine.begin() as conn:
                conn.execute(sa.update(db.actions).where(db.actions.c.id == action.id).values(**values))

        set_state(status="executing", attempts=1, decided_by="csm-user", updated_at=datetime.now(timezone.utc))
        with pytest.raises(Conflict, match="executing right now"):
            runner.retry(action.id, "csm-user", "csm")
        set_state(updated_at=datetime.now(timezone.utc) - timedelta(hours=1))
        done = runner.retry(action.id, "csm-user", "csm")
        assert (done.status, done.attempts) == ("executed", 2)

    def test_a_failed_webhook_is_recorded_and_a_retry_delivers_it(self, make, webhook_receiver):
        copilot = make(webhook_url=webhook_receiver.url)  # nothing listens yet: connection refused
        action = propose(copilot, "send_case_onepager")
        failed = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert "Connect" in failed.error
        assert events(copilot, action.id) == ["proposed", "approved", "failed"]
        assert failed.history[-1].payload["error"] == failed.error

        webhook_receiver.start()
        done = copilot.action_runner.retry(action.id, "sales-user", "sales")
        assert (done.status, done.attempts, done.error) == ("executed", 2, None)
        assert len(webhook_receiver.requests) == 1
        sent = webhook_receiver.requests[0]
        assert sent["headers"]["Idempotency-Key"] == action.id and sent["json"]["type"] == "send_case_onepager"
        assert (copilot.settings.outbox / f"{action.id}.md").exists()
        assert events(copilot, action.id) == ["proposed", "approved", "failed", "executed"]

    def test_a_role_outside_the_remit_cannot_confirm(self, make):
        copilot = make()
        action = propose(copilot, "save_plan")
        with pytest.raises(Forbidden, match="support"):
            copilot.action_runner.confirm(action.id, APPROVE, "support-user", "support")
        ticket = propose(copilot, "escalation_ticket")
        with pytest.raises(Forbidden):
            copilot.action_runner.confirm(ticket.id, APPROVE, "sales-user", "sales")
        unknown = propose(copilot, "write_back_crm")  # not in rules.yaml: admin only
        with pytest.raises(Forbidden):
            copilot.action_runner.confirm(unknown.id, APPROVE, "csm-user", "csm")
        assert copilot.action_runner.confirm(unknown.id, APPROVE, "root", "admin").status == "executed"
        assert copilot.action_runner.detail(action.id).status == "proposed"
        assert events(copilot, action.id) == ["proposed"]

    def test_a_proposed_action_cannot_be_retried(self, make):
        copilot = make()
        action = propose(copilot)
        with pytest.raises(Conflict, match="confirm it first"):
            copilot.action_runner.retry(action.id, "csm-user", "csm")

    def test_listing_by_status_and_type(self, make):
        copilot = make()
        first, second = propose(copilot), propose(copilot, "share_plan")
        copilot.action_runner.confirm(first.id, REJECT, "csm-user", "csm")
        assert [a.id for a in copilot.action_runner.records(status="proposed")] == [second.id]
        assert [a.id for a in copilot.action_runner.records(type_="save_plan")] == [first.id]
        ticket = copilot.actions.propose("escalation_ticket", "安灯", {}, "support-user", "support")
        seen = {role: {a.id for a in copilot.action_runner.records(actor=f"{role}-user", role=role)}
                for role in ("csm", "support", "sales", "admin")}
        assert seen["csm"] == seen["admin"] == {first.id, second.id, ticket.id}
        assert seen["support"] == {ticket.id} and seen["sales"] == set()
        assert {a.id for a in copilot.action_runner.records(actor="proposer", role="sales")} == {first.id, second.id}


def test_outbox_writes_are_idempotent_and_atomic(tmp_path):
    outbox = OutboxExecutor(tmp_path / "outbox")
    action = {"id": "a1", "type": "save_plan", "arguments": {"markdown": "# v1"}}
    outbox.run(action)
    outbox.run(action)
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["a1.md"]  # no temp files left behind
    no_markdown = {"id": "a2", "type": "escalation_ticket", "arguments": {"queue": "二线"}}
    outbox.run(no_markdown)
    assert '"queue": "二线"' in (tmp_path / "outbox" / "a2.json").read_text(encoding="utf-8")


def test_cli_lists_and_confirms_actions(tmp_path):
    from typer.testing import CliRunner

    from copilot.cli import app
    from copilot.service import Copilot

    copilot = Copilot(build_settings(tmp_path, PACK_DIR))
    action = propose(copilot)
    data_dir = str(copilot.settings.data_dir)
    runner = CliRunner()
    listed = runner.invoke(app, ["actions", "list", "--status", "proposed", "--json", "--data-dir", data_dir])
    assert listed.exit_code == 0 and action.id in listed.output
    denied = runner.invoke(app, ["actions", "confirm", action.id, "--approve", "--as-role", "support",
                                 "--data-dir", data_dir])
    assert denied.exit_code == 2 and "cannot confirm" in denied.output
    done = runner.invoke(app, ["actions", "confirm", action.id, "--approve", "--comment", "ok", "--data-dir", data_dir])
    assert done.exit_code == 0 and "executed" in done.output
    again = runner.invoke(app, ["actions", "confirm", action.id, "--reject", "--data-dir", data_dir])
    assert again.exit_code == 2 and "already decided" in again.output
