"""The plans page with accounts, in a real browser: pick an account by name, its record fills the
profile, the drafted plan is saved under it after the confirm, and its milestones are marked done
or late from the saved-plans list. Same stack as tests/test_browser.py (system Chromium, the real
app on a loopback port, keyless mode: the local user confirms their own actions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from copilot.accounts.models import Account, Contact
from tests import test_browser as shared
from tests.test_browser import MISSING, browser_test

# The browser, a page per test and an HTTP client are test_browser's; the server is this module's own
# (its data dir holds the accounts below).
chromium, page, api = shared.chromium, shared.page, shared.api

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the tests are skipped then
    Page = None

BAKERY = Account(id="acct-mxf", name="麦香坊（示例）", industry="烘焙", city="杭州", province="浙江", annual_fee=180_000,
                 signed_on=date.today(), csm="李娜", products=["云铺会员"],
                 contacts=[Contact(name="周总", title="总经理")])
OTHER = Account(id="acct-mxy", name="麦香园（示例）", industry="餐饮", city="苏州", annual_fee=60_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    if MISSING:
        pytest.skip(MISSING)
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread
    from copilot.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("web-plans-data")))
    app.state.copilot.accounts.upsert_accounts([BAKERY, OTHER])
    with ServerThread(app) as running:
        yield running.url


@browser_test
def test_pick_an_account_save_its_plan_and_track_the_milestones(page: Page, api) -> None:
    page.goto("/plans")
    page.fill("#plan-account-q", "麦香")
    options = page.locator("#plan-account-options [data-account-id]")
    expect(options).to_have_count(2)
    options.filter(has_text="麦香坊（示例）").click()

    expect(page.locator("#plan-account")).to_contain_text("已关联：麦香坊（示例）")
    expect(page.locator("#plan-name")).to_have_value("麦香坊（示例）")
    expect(page.locator("#plan-industry")).to_have_value("烘焙")
    expect(page.locator("#plan-fee")).to_have_value("18")
    expect(page.locator("#plan-date")).to_have_value(str(date.today()))
    expect(page.locator("label.chip-toggle:has-text('云铺会员') input")).to_be_checked()
    names = [page.locator(".person [name=person_name]").nth(i).input_value() for i in range(2)]
    assert names == ["周总", "李娜"]
    expect(page.locator("#plan-saved")).to_contain_text("还没有保存过计划")

    page.click("label.chip-toggle:has-text('提升会员复购')")
    with page.expect_request("**/api/plans") as request:
        page.click("#plan-draft")
    body = json.loads(request.value.post_data)
    assert body["account_id"] == "acct-mxf" and body["customer"]["goals"] == ["提升会员复购"]
    expect(page.locator(".plan-preview h2").first).to_contain_text("麦香坊（示例）")

    page.click("#plan-save")
    expect(page.locator("#confirm-facts")).to_contain_text("保存客户成功计划")
    page.click("#confirm-ok")
    expect(page.locator(".toast-success").first).to_contain_text("已确认")
    plan = page.locator(".saved-plan")
    expect(plan).to_have_count(1)
    expect(page.locator("#plan-saved-title")).to_contain_text("「麦香坊（示例）」已保存的计划（1）")
    milestones = plan.locator(".milestone")
    total = milestones.count()
    assert total >= 3
    expect(plan.locator(".plan-progress")).to_have_text(f"完成 0/{total}")

    milestones.nth(0).locator("[data-track=done]").click()
    expect(page.locator(".saved-plan .milestone").nth(0).locator(".badge")).to_have_text("已完成")
    page.locator(".saved-plan .milestone").nth(1).locator("[data-track=late]").click()
    expect(page.locator(".saved-plan .milestone").nth(1).locator(".badge")).to_have_text("已延期")
    expect(page.locator(".saved-plan .plan-progress")).to_have_text(f"完成 1/{total} · 延期 1")

    stored = api.get("/api/accounts/acct-mxf/plans").json()
    assert [m["status"] for m in stored[0]["milestones"][:3]] == ["done", "late", "open"]
    assert stored[0]["milestones"][0]["updated_by"] == "local"
    assert api.get("/api/accounts/acct-mxy/plans").json() == []

    # The tracking survives a reload; unlinking the account hides the list.
    page.reload()
    page.fill("#plan-account-q", "麦香坊")
    page.locator("#plan-account-options [data-account-id=acct-mxf]").click()
    expect(page.locator(".saved-plan .plan-progress")).to_have_text(f"完成 1/{total} · 延期 1")
    page.click("#plan-account-clear")
    expect(page.locator("#plan-saved")).to_be_hidden()
    expect(page.locator("#plan-account-q")).to_be_visible()
