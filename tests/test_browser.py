"""The web UI in a real browser: headless system Chromium driven by Playwright, against the real
app (uvicorn on a free port, fresh data dir, the bundled knowledge pack, no LLM).

Needs `apt-get install chromium fonts-noto-cjk` and `pip install playwright` (no `playwright
install`: the Debian browser is used). Without them the browser tests are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

MISSING = ("playwright is not installed (pip install playwright)" if sync_playwright is None
           else f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)" if not CHROMIUM.exists()
           else None)


def browser_test(fn):
    """A test that drives Chromium; skipped with the reason when the browser stack is missing."""
    return pytest.mark.browser(pytest.mark.skipif(MISSING is not None, reason=MISSING or "")(fn))


# Fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The real app on a loopback port in a uvicorn thread; yields the base URL."""
    if MISSING:
        pytest.skip(MISSING)
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread
    from copilot.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("web-data")))
    with ServerThread(app) as running:
        yield running.url


@pytest.fixture(scope="module")
def chromium():
    if MISSING:
        pytest.skip(MISSING)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, server) -> Iterator[Page]:
    """A fresh browser context per test (own sessionStorage); fails the test on any JS error."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", base_url=server)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def api(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def ask(page: Page, question: str) -> None:
    """Type a question, press Enter, wait for its answer to finish streaming."""
    done = page.locator(".msg-bot .msg-meta").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(".msg-bot .msg-meta").nth(done).wait_for()


def last_answer(page: Page):
    return page.locator(".msg-bot").last


# Assistant -----------------------------------------------------------------------------------
@browser_test
def test_ask_streams_a_cited_answer_and_the_citation_opens_the_passage(page: Page) -> None:
    page.goto("/assistant?role=support")
    expect(page.locator("[data-role-tab=support]")).to_have_class("role-tab active")
    with page.expect_request("**/v1/chat/completions") as request:
        ask(page, "小票打印机连不上怎么办")
    body = json.loads(request.value.post_data)
    assert body["model"] == "copilot-support" and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "小票打印机连不上怎么办"}]

    answer = last_answer(page)
    expect(answer.locator(".answer")).not_to_be_empty()
    expect(answer.locator(".answer")).not_to_contain_text("来源：")  # footnotes become chips
    expect(answer.locator(".explanation")).to_contain_text("为什么这样答")
    chips = answer.locator(".cite-chip")
    assert chips.count() >= 1
    title = chips.first.get_attribute("title")  # the source id

    chips.first.click()
    panel = page.locator("#source-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#source-id")).to_contain_text(title)
    expect(page.locator("#source-title")).not_to_be_empty()
    expect(page.locator("#source-text")).to_contain_text("答：")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


@browser_test
def test_enter_sends_shift_enter_breaks_the_line_and_the_whole_conversation_is_sent(page: Page) -> None:
    page.goto("/assistant?role=csm")
    page.fill("#question", "续费到底该谁负责")
    page.press("#question", "Shift+Enter")
    expect(page.locator(".msg-user")).to_have_count(0)
    assert page.input_value("#question") == "续费到底该谁负责\n"
    page.fill("#question", "")
    ask(page, "续费到底该谁负责")
    first_answer = last_answer(page).locator(".answer").inner_text()
    with page.expect_request("**/v1/chat/completions") as request:
        ask(page, "那增购呢？")
    messages = json.loads(request.value.post_data)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "续费到底该谁负责" and messages[2]["content"] == "那增购呢？"
    assert messages[1]["content"].strip()[:10] in first_answer
    assert json.loads(request.value.post_data)["model"] == "copilot-csm"
    # The follow-up is answered about upsell, not renewal again.
    expect(last_answer(page).locator(".cite-chip").first).to_contain_text("增购")
    # The conversation survives a reload (per role, in this tab).
    page.reload()
    expect(page.locator(".msg-user")).to_have_count(2)


@browser_test
def test_ungrounded_answer_is_marked_and_a_suggested_choice_asks_it(page: Page) -> None:
    page.goto("/assistant?role=support")
    ask(page, "今天杭州天气怎么样")
    answer = last_answer(page)
    expect(answer).to_have_class("msg msg-bot ungrounded")
    expect(answer.locator("[data-ungrounded]")).to_contain_text("未找到可靠依据")
    expect(answer.locator("[data-ask]")).to_have_count(0)  # plainly off-topic: no unrelated FAQs offered
    # About the product, but nothing in the knowledge answers it: the nearest FAQs are offered.
    ask(page, "你们的系统支持鸿蒙吗")
    answer = last_answer(page)
    expect(answer).to_have_class("msg msg-bot ungrounded")
    choice = answer.locator("[data-ask]").first
    question = choice.get_attribute("data-ask")
    assert question
    choice.click()
    expect(page.locator(".msg-user").last).to_have_text(question)
    page.locator(".msg-bot .msg-meta").nth(2).wait_for()
    expect(last_answer(page).locator(".cite-chip").first).to_be_visible()


@browser_test
def test_thumbs_down_with_a_comment_reaches_the_gap_report(page: Page, api: httpx.Client) -> None:
    page.goto("/assistant?role=support")
    ask(page, "会员积分怎么设置过期时间")
    answer = last_answer(page)
    answer.locator("[data-rate=down]").click()
    answer.locator(".feedback-form textarea").fill("没说清楚过期后能不能恢复")
    with page.expect_response("**/api/feedback") as response:
        answer.locator(".feedback-form button[type=submit]").click()
    assert response.value.status == 201
    sent = json.loads(response.value.request.post_data)
    assert sent["answer"] and {k: sent[k] for k in ("question", "rating", "role", "comment")} == {
        "question": "会员积分怎么设置过期时间", "rating": "down", "role": "support", "comment": "没说清楚过期后能不能恢复"}
    expect(answer.locator(".thanks")).to_be_visible()
    expect(answer.locator("[data-rate=down]")).to_be_disabled()
    downs = api.get("/api/gaps", params={"days": 7}).json()["thumbs_down"]
    assert {"question": "会员积分怎么设置过期时间", "role": "support", "comment": "没说清楚过期后能不能恢复"} in downs

    page.goto("/gaps")
    expect(page.locator(".gap-down")).to_contain_text("没说清楚过期后能不能恢复")
    promote = page.locator(".gap-down button.promote").first
    with page.expect_response("**/api/evals/promote") as promoted:
        promote.click()
    assert promoted.value.status == 201
    expect(promote).to_have_text("已加入评测集")


# Cases ---------------------------------------------------------------------------------------
def search_cases(page: Page) -> None:
    page.goto("/cases")
    page.select_option("#industry", "烘焙")
    page.select_option("#city", "杭州")
    page.select_option("#tier", "中型")
    page.click("label.chip-toggle:has-text('连锁')")
    with page.expect_request("**/api/cases/search") as request:
        page.click("#case-search")
    assert json.loads(request.value.post_data) == {
        "k": 5, "profile": {"industry": "烘焙", "city": "杭州", "tier": "中型", "situation": ["连锁"]}}
    page.locator(".case-card").first.wait_for()


@browser_test
def test_find_cases_with_pick_lists_shows_why_they_matched(page: Page) -> None:
    search_cases(page)
    first = page.locator(".case-card").first
    expect(first.locator(".chip-why")).to_contain_text(["同行业（烘焙）"])
    expect(first.locator(".tags")).to_contain_text("烘焙")
    assert first.locator(".bar-row").count() >= 3  # industry, location, tier, situation
    expect(first.locator(".metric").first).to_contain_text("→")
    expect(page.locator(".estimate")).to_contain_text("价值测算")


@browser_test
def test_onepager_waits_for_an_explicit_confirm_and_cancel_rejects(page: Page, api: httpx.Client) -> None:
    search_cases(page)
    with page.expect_response("**/api/cases/onepager") as response:
        page.locator(".case-card").first.locator("[data-onepager]").click()
    action_id = response.value.json()["action"]["id"]
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-ok")).to_be_focused()  # focused, never pressed for you
    expect(page.locator("#confirm-markdown")).not_to_be_empty()
    expect(page.locator("#confirm-facts")).to_contain_text("发送案例一页纸")
    page.wait_for_timeout(500)
    expect(dialog).to_be_visible()
    assert api.get(f"/api/actions/{action_id}").json()["status"] == "proposed"
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    expect(page.locator(".toast").last).to_contain_text("已拒绝")
    assert api.get(f"/api/actions/{action_id}").json()["status"] == "rejected"


# Plans ---------------------------------------------------------------------------------------
@browser_test
def test_draft_a_plan_and_confirm_save_then_it_is_executed_in_history(page: Page) -> None:
    page.goto("/plans")
    page.fill("#plan-name", "测试烘焙（示例）")
    page.select_option("#plan-industry", "烘焙")
    page.select_option("#plan-tier", "中型")
    page.click("label.chip-toggle:has-text('云铺会员')")
    page.click("label.chip-toggle:has-text('提升会员复购')")
    page.fill(".person >> nth=0 >> [name=person_name]", "王敏")
    with page.expect_request("**/api/plans") as request:
        page.click("#plan-draft")
    customer = json.loads(request.value.post_data)["customer"]
    assert customer["name"] == "测试烘焙（示例）" and customer["products"] == ["云铺会员"]
    assert customer["goals"] == ["提升会员复购"] and customer["tier"] == "中型"
    assert customer["key_people"] == [{"name": "王敏", "title": "客户成功经理", "side": "我方"}]

    expect(page.locator(".plan-preview h2").first).to_contain_text("测试烘焙（示例）")
    page.click("[data-view=edit]")
    expect(page.locator("#plan-editor")).to_be_visible()
    assert "测试烘焙（示例）" in page.input_value("#plan-editor")
    page.click("[data-view=preview]")

    page.click("#plan-save")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-facts")).to_contain_text("保存客户成功计划")
    page.click("#confirm-ok")
    expect(page.locator(".toast-success")).to_contain_text("已确认")

    page.goto("/actions#history")
    row = page.locator(".history-row", has_text="测试烘焙（示例）")
    expect(row.locator(".badge")).to_have_text("已执行")
    expect(row.locator(".decided-by")).to_have_text("local")
    row.locator("[data-trail]").click()
    expect(row.locator(".trail")).to_contain_text("提出")
    expect(row.locator(".trail")).to_contain_text("批准")
    expect(row.locator(".trail")).to_contain_text("执行完成")


# Actions inbox -------------------------------------------------------------------------------
@browser_test
def test_approve_a_pending_action_from_the_inbox(page: Page, api: httpx.Client) -> None:
    asked = api.post("/api/ask", json={"question": "我们是年费200万的大客户，全部门店无法收银，紧急！", "role": "support"})
    action = next(a for a in asked.json()["actions"] if a["type"] == "escalation_ticket")
    page.goto("/actions")
    card = page.locator(f".inbox-card[data-action='{action['id']}']")
    expect(card).to_contain_text("安灯升级工单")
    expect(page.locator("#pending-badge")).to_be_visible()
    card.locator("[data-approve]").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")  # Enter on the focused confirm button is an explicit confirm
    expect(card).to_have_count(0)
    assert api.get(f"/api/actions/{action['id']}").json()["status"] == "executed"

    page.click("[data-tab=history]")
    row = page.locator(f".history-row[data-action='{action['id']}']")
    expect(row.locator(".badge")).to_have_text("已执行")
    expect(row).to_contain_text("outbox")


@browser_test
def test_going_back_from_the_confirm_dialog_keeps_the_action_pending(page: Page, api: httpx.Client) -> None:
    asked = api.post("/api/ask", json={"question": "我们是年费120万的大客户，所有门店收不了钱，马上处理", "role": "support"})
    action = next(a for a in asked.json()["actions"] if a["type"] == "escalation_ticket")
    page.goto("/actions")
    page.locator(f".inbox-card[data-action='{action['id']}'] [data-approve]").click()
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert api.get(f"/api/actions/{action['id']}").json()["status"] == "proposed"
    page.locator(f".inbox-card[data-action='{action['id']}'] [data-reject]").click()
    expect(page.locator(f".inbox-card[data-action='{action['id']}']")).to_have_count(0)
    assert api.get(f"/api/actions/{action['id']}").json()["status"] == "rejected"


# Map -----------------------------------------------------------------------------------------
@browser_test
def test_map_renders_and_a_cell_link_opens_the_assistant_with_the_question(page: Page) -> None:
    page.goto("/map")
    expect(page.locator(".map-cell")).to_have_count(15)  # 5 journey stages × 3 roles
    link = page.locator(".map-cell[data-stage='获客'][data-role='sales'] .map-link").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url("**/assistant?**")
    params = parse_qs(urlparse(href).query)
    assert params["role"] == ["sales"]
    expect(page.locator("[data-role-tab=sales]")).to_have_class("role-tab active")
    expect(page.locator("#question")).to_have_value(params["q"][0])
    expect(page.locator("#question")).to_be_focused()


def test_map_api_places_items_by_journey_and_role(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from copilot.api.app import create_app
    from copilot.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path), warm=False)
    pack = app.state.copilot.pack
    data = TestClient(app).get("/api/map").json()
    assert data["stages"] == ["获客", "成交", "上线", "价值兑现", "续费扩展"]
    assert [r["key"] for r in data["roles"]] == ["sales", "csm", "support"]
    cells = {(c["role"], c["stage"]): c for c in data["cells"]}
    assert len(cells) == 15
    for (role, stage), cell in cells.items():
        expected = {p.id for p in pack.playbooks if p.journey == stage and role in p.roles
                    and (role != "support" or p.audience == "public")}
        got = {i["id"] for i in cell["playbooks"]["top"] + cell["playbooks"]["more"]}
        assert got == expected and cell["playbooks"]["count"] == len(expected)
        for item in cell["faqs"]["top"] + cell["cases"]["top"]:
            assert item["href"].startswith(f"/assistant?role={role}&q=")
    assert cells[("support", "价值兑现")]["cases"]["count"] == 0  # support does not route cases
    assert cells[("sales", "价值兑现")]["cases"]["count"] == sum(
        1 for c in pack.cases if c.journey == "价值兑现")


# Phone width ---------------------------------------------------------------------------------
@browser_test
def test_phone_width_renders_every_page_without_horizontal_scroll(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})

    def no_sideways_scroll(path: str) -> None:
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways at 390px: {width[0]}px wide"

    page.goto("/assistant?role=sales")
    ask(page, "杭州有没有做烘焙连锁的客户案例？")
    no_sideways_scroll("/assistant")
    last_answer(page).locator(".cite-chip").first.click()
    expect(page.locator("#source-panel")).to_be_in_viewport()
    no_sideways_scroll("/assistant (source open)")

    search_cases(page)
    no_sideways_scroll("/cases")

    page.goto("/plans")
    page.fill("#plan-name", "手机测试（示例）")
    page.select_option("#plan-tier", "中小")
    page.click("label.chip-toggle:has-text('提升会员复购')")
    page.click("#plan-draft")
    page.locator(".plan-card").wait_for()
    no_sideways_scroll("/plans")

    for path, ready in (("/actions", ".tab-panel"), ("/map", ".map-cell"), ("/gaps", ".gap-card")):
        page.goto(path)
        page.locator(ready).first.wait_for()
        no_sideways_scroll(path)
