"""People in a real browser: the admin adds a person on /users and sees the key once, the top bar
names whoever's key the browser holds, and a disabled person is out at once. Same stack as
tests/test_browser.py (system Chromium)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import test_browser as shared
from tests.conftest import build_settings
from tests.test_browser import MISSING, browser_test

chromium = shared.chromium

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the tests are skipped then
    Page = None


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_pack_dir) -> Iterator[tuple[str, str]]:
    """The app over the tiny pack with one admin set up; yields (base URL, the admin's key)."""
    if MISSING:
        pytest.skip(MISSING)
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread

    app = create_app(build_settings(tmp_path_factory.mktemp("users-web"), tiny_pack_dir), warm=False)
    _, key = app.state.copilot.users.add("root", "admin", "cli")
    with ServerThread(app) as running:
        yield running.url, key


def signed_page(chromium, url: str, key: str | None) -> Page:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", base_url=url)
    context.set_default_timeout(20_000)
    if key:
        context.add_init_script(f"localStorage.setItem('copilot.apiKey', {key!r})")
    return context.new_page()


@browser_test
def test_an_admin_adds_a_person_sees_the_key_once_and_can_disable_them(chromium, server) -> None:
    url, admin_key = server
    page = signed_page(chromium, url, admin_key)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/users")
    expect(page.locator("#me-name")).to_have_text("root")
    expect(page.locator("#me-role")).to_have_text("管理员")
    expect(page.locator('tr[data-user="root"]')).to_be_visible()

    page.fill("#user-name", "王敏")
    page.select_option("#user-role", "support")
    expect(page.locator("#aud-internal")).not_to_be_checked()  # support reads public knowledge by default
    page.click("#user-add")
    expect(page.locator("#new-key-dialog")).to_be_visible()
    key = page.locator("#new-key").inner_text()
    assert key.startswith("cpk_")
    page.click("#new-key-dialog button[type=submit]")
    expect(page.locator("#new-key-dialog")).to_be_hidden()
    expect(page.locator("#new-key")).to_have_text("")
    row = page.locator('tr[data-user="王敏"]')
    expect(row).to_contain_text("客服")
    expect(row).to_contain_text("对外")
    assert key not in page.content()  # shown once, then gone

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/api/me").json() == {**client.get("/api/me").json(), "name": "王敏", "role": "support"}
        row.locator("[data-disable]").click()
        expect(row).to_contain_text("已停用")
        assert client.get("/api/me").status_code == 401
    assert not errors, errors
    page.context.close()


@browser_test
def test_a_person_sees_their_name_and_no_people_page_link(chromium, server) -> None:
    url, admin_key = server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        key = client.post("/api/users", json={"name": "赵磊", "role": "sales"}).json()["key"]
    page = signed_page(chromium, url, key)
    page.goto("/assistant")
    expect(page.locator("#me-name")).to_have_text("赵磊")
    expect(page.locator("#me-role")).to_have_text("销售")
    expect(page.locator('[data-nav="users"]')).to_be_hidden()
    page.goto("/users")
    expect(page.locator("#users tbody")).to_contain_text("只有管理员")
    page.context.close()


@browser_test
def test_without_a_key_the_page_asks_for_one(chromium, server) -> None:
    url, _ = server
    page = signed_page(chromium, url, None)
    page.goto("/actions")
    expect(page.locator("#key-dialog")).to_be_visible()
    expect(page.locator("#me")).to_be_hidden()
    page.context.close()
