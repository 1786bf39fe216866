"""The "我的客户" page in a real browser, on the sample book imported through the real importer:
the book riskiest first with its reasons, the owner pick remembered, an account's insight, and a
next best action proposed as a task that runs only after a confirm in the actions inbox. Same
stack as tests/test_browser.py (system Chromium); keyless mode, so the local user is admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from copilot.accounts.sample import MAIXIANGFANG, write_sample_sheets
from tests import test_browser as shared
from tests.test_browser import MISSING, browser_test

chromium, page, api = shared.chromium, shared.page, shared.api

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the tests are skipped then
    Page = None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The real app with the 60-account sample book imported, on a loopback port."""
    if MISSING:
        pytest.skip(MISSING)
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread
    from copilot.settings import Settings

    data_dir = tmp_path_factory.mktemp("accounts-web")
    app = create_app(Settings(_env_file=None, data_dir=data_dir), warm=False)
    sheets = write_sample_sheets(data_dir / "demo")
    report = app.state.copilot.ingest([str(p) for p in sheets])
    assert all(not s.errors for s in report.sheets)
    with ServerThread(app) as running:
        yield running.url


def risks(page: Page) -> list[float]:
    return [float(r) for r in page.locator(".acct-row").evaluate_all("rows => rows.map(r => r.dataset.risk)")]


@browser_test
def test_the_book_lists_the_riskiest_first_with_reasons_and_remembers_the_csm(page: Page, api: httpx.Client) -> None:
    riskiest = api.get("/api/accounts", params={"sort": "risk", "limit": 1}).json()["items"][0]
    page.goto("/accounts")
    expect(page.locator("[data-nav=accounts]")).to_have_class("nav-link active")
    first = page.locator(".acct-row").first
    expect(first.locator(".acct-name")).to_have_text(riskiest["name"])
    expect(page.locator(".acct-row")).to_have_count(50)
    expect(page.locator("#acct-total")).to_have_text("60")
    assert risks(page) == sorted(risks(page), reverse=True)
    expect(first.locator(".badge")).to_contain_text("风险高")
    expect(first.locator(".acct-reason")).to_contain_text("活跃门店")  # the one-line reason
    expect(first.locator(".acct-change").first).to_be_visible()  # what moved last month
    page.click("#acct-more")
    expect(page.locator(".acct-row")).to_have_count(60)

    page.select_option("#acct-owner", "王敏")
    expect(page.locator(".acct-row").first).to_contain_text("CSM 王敏")
    for meta in page.locator(".acct-row td:first-child .muted").all_inner_texts():
        assert "CSM 王敏" in meta
    mine = api.get("/api/accounts", params={"owner": "王敏"}).json()["total"]
    expect(page.locator("#acct-total")).to_have_text(str(mine))
    page.reload()
    expect(page.locator("#acct-owner")).to_have_value("王敏")  # remembered in this browser
    expect(page.locator("#acct-total")).to_have_text(str(mine))


@browser_test
def test_an_account_shows_why_and_its_next_best_action_goes_to_the_inbox(page: Page, api: httpx.Client,
                                                                         server: str) -> None:
    page.goto("/accounts")
    page.select_option("#acct-owner", "")
    page.locator(".acct-row").filter(has_text=MAIXIANGFANG).click()
    dialog = page.locator("#acct-dialog")
    expect(page.locator("#acct-name")).to_have_text(MAIXIANGFANG)
    expect(dialog.locator(".acct-drivers li").first).to_contain_text("活跃门店")  # the top risk driver
    expect(dialog.locator("[data-health=narrow]")).to_contain_text("使用活跃")  # a part of narrow health
    expect(dialog.locator(".acct-journey")).to_have_text("有风险")
    action = dialog.locator(".acct-action").first
    expect(action.locator("a[href^='/knowledge?kind=playbook']")).to_contain_text("pb-")  # its source playbook
    title = action.locator("h4").inner_text()

    action.locator("[data-propose]").click()
    expect(action.locator(".acct-proposed")).to_contain_text("等待确认")
    proposed = api.get("/api/actions", params={"status": "proposed", "type": "account_task"}).json()
    task = next(a for a in proposed if a["arguments"]["customer"] == MAIXIANGFANG)
    assert task["arguments"]["title"] == title  # nothing has run: it waits for a person

    action.locator(".acct-proposed a[href='/actions']").click()
    card = page.locator(".inbox-card").filter(has_text=MAIXIANGFANG)
    expect(card).to_contain_text("客户跟进任务")
    card.locator("[data-approve]").click()
    page.click("#confirm-ok")
    expect(card).to_have_count(0)
    done = api.get(f"/api/actions/{task['id']}").json()
    assert done["status"] == "executed"
    written = Path(done["result"]["outbox"]["path"])
    assert written.read_text(encoding="utf-8").startswith(f"# 客户任务：{title}")
