"""The actions inbox in a real browser: a failed or interrupted action is retried from the history,
and a note on what an outbound artefact left out is shown on the card and in the confirm dialog.

Runs the real app without warming the index (no question is asked), with a webhook that refuses
connections until the test starts it. Skipped like tests/test_browser.py without the browser stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import test_browser as shared
from test_browser import MISSING, browser_test
from workflow_fixtures import WebhookReceiver

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - depends on the environment
    pass

NOTE = "已略去 2 条仅限内部的案例（内部标注），发出的一页纸里没有它们。"


chromium, page = shared.chromium, shared.page


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    from copilot.api.background import free_port

    hook = WebhookReceiver(free_port())  # not listening yet: the first run fails
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory, receiver):
    if MISSING:
        pytest.skip(MISSING)
    from copilot.api.app import create_app
    from copilot.settings import Settings

    return create_app(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("web-retry"),
                               webhook_url=receiver.url), warm=False)


@pytest.fixture(scope="module")
def server(app) -> Iterator[str]:
    from copilot.api.background import ServerThread

    with ServerThread(app) as running:
        yield running.url


def listen(receiver: WebhookReceiver) -> None:
    if receiver._server is None:  # noqa: SLF001 - the tests share one receiver; start it once
        receiver.start()


def onepager(copilot, left_out_note: str | None = None):
    arguments = {"recipient": "王总", "markdown": "# 案例一页纸\n麦香烘焙统一会员后复购率提升。"}
    if left_out_note:
        arguments["left_out_note"] = left_out_note
    return copilot.actions.propose("send_case_onepager", "发送案例一页纸给王总", arguments, "sales-user", "sales")


@browser_test
def test_a_failed_action_is_retried_from_the_inbox(page: Page, app, receiver: WebhookReceiver) -> None:
    copilot = app.state.copilot
    action = onepager(copilot, NOTE)
    page.goto("/actions")
    card = page.locator(f".inbox-card[data-action='{action.id}']")
    expect(card.locator(".left-out-note")).to_contain_text(NOTE)
    expect(card.locator(".confirm-facts")).not_to_contain_text("left_out_note")

    card.locator("[data-approve]").click()
    expect(page.locator("#confirm-left-out")).to_contain_text(NOTE)
    expect(page.locator("#confirm-facts")).not_to_contain_text("left_out_note")
    page.click("#confirm-ok")
    expect(page.locator(".toast-error")).to_contain_text("执行失败")  # the webhook refused the connection
    expect(page.locator("#confirm-left-out")).to_have_count(0)

    page.click("[data-tab=history]")
    row = page.locator(f".history-row[data-action='{action.id}']")
    expect(row.locator(".badge")).to_have_text("执行失败")
    expect(row.locator(".left-out-line")).to_contain_text(NOTE)
    listen(receiver)
    row.locator("[data-retry]").click()
    expect(page.locator(".toast-success")).to_contain_text("已重新执行")
    expect(row.locator(".badge")).to_have_text("已执行")
    expect(row.locator("[data-retry]")).to_have_count(0)
    assert [r["json"]["id"] for r in receiver.requests if r["headers"]["Idempotency-Key"] == action.id] == [action.id]
    assert copilot.actions.record(action.id).attempts == 2


@browser_test
def test_an_interrupted_action_is_settled_at_start_and_retried_from_the_inbox(page: Page, app,
                                                                            receiver: WebhookReceiver) -> None:
    from copilot import db

    copilot = app.state.copilot
    action = onepager(copilot)
    with copilot.engine.begin() as conn:  # a worker claimed it an hour ago and died mid-run
        conn.execute(sa.update(db.actions).where(db.actions.c.id == action.id).values(
            status="executing", attempts=1, decided_by="sales-lead",
            updated_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert copilot.action_runner.reconcile_interrupted() == {action.id: "failed"}  # what a start does

    listen(receiver)
    page.goto("/actions#history")
    row = page.locator(f".history-row[data-action='{action.id}']")
    expect(row.locator(".badge")).to_have_text("执行失败")
    expect(row.locator(".history-outcome")).to_contain_text("执行被中断")
    row.locator("[data-trail]").click()
    expect(row.locator(".trail")).to_contain_text("中断后核对")
    row.locator("[data-retry]").click()
    expect(row.locator(".badge")).to_have_text("已执行")
    assert copilot.actions.record(action.id).status == "executed"
    assert action.id in [r["headers"]["Idempotency-Key"] for r in receiver.requests]
