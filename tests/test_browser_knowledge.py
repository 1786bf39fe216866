"""The knowledge page in a real browser: import a sheet, find what it brought, retire an item
through the action inbox, export a sheet. Same stack as tests/test_browser.py (its fixtures:
a fresh app per module, system Chromium); keyless mode, so the local user confirms their own."""

from __future__ import annotations

import csv
import re

import httpx
import pytest

from tests import test_browser as shared
from tests.test_browser import browser_test

# The browser, the app server, a page per test and an HTTP client: the same fixtures as the
# other browser tests (module-scoped, so this module gets its own fresh app and data dir).
server, chromium, page, api = shared.server, shared.chromium, shared.page, shared.api

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the tests are skipped then
    Page = None

FAQ_ROWS = [
    ["标准问", "相似问", "答案", "分类", "受众"],
    ["网页导入的会员退卡怎么处理？", "会员卡能退吗|退会员卡", "会员卡余额可在开卡门店原路退回，积分作废。", "会员", "公开"],
    ["网页导入的门店盘点周期是多久？", "", "门店每月最后一天闭店后全盘一次，差异超过 1% 需店长说明。", "库存", "内部"],
    ["网页导入缺答案的问题？", "", "", "会员", "公开"],
]


@pytest.fixture
def faq_csv(tmp_path):
    path = tmp_path / "网页FAQ.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(FAQ_ROWS)
    return path


def search(page: Page, words: str, status: str = "") -> None:
    page.fill("#kb-q", words)
    page.select_option("#kb-status", status)
    page.click("#kb-filters [type=submit]")


@browser_test
def test_upload_a_sheet_shows_counts_and_row_errors_then_the_list_finds_it(page: Page, faq_csv) -> None:
    page.goto("/knowledge")
    expect(page.locator("[data-nav=knowledge]")).to_have_class("nav-link active")
    expect(page.locator(".kb-row").first).to_be_visible()
    before = page.locator("#kb-total").inner_text()

    page.set_input_files("#kb-file", str(faq_csv))
    sheet = page.locator(".kb-sheet")
    expect(sheet).to_contain_text("网页FAQ.csv")
    expect(sheet.locator(".kb-count").first).to_have_text("新增 2")
    expect(sheet.locator(".kb-errors li")).to_have_count(1)
    expect(sheet.locator(".kb-errors li")).to_have_text("网页FAQ.csv:4:答案: required value is empty")
    expect(page.locator("#kb-total")).not_to_have_text(before)

    search(page, "会员退卡")
    expect(page.locator("#kb-total")).to_have_text("共 1 条")
    row = page.locator(".kb-row")
    expect(row).to_contain_text("网页导入的会员退卡怎么处理？")
    expect(row).to_contain_text("网页FAQ.csv")
    row.click()
    expect(page.locator("#kb-dialog")).to_be_visible()
    expect(page.locator("#kb-item-body")).to_contain_text("退会员卡")
    expect(page.locator("#kb-item-body")).to_contain_text("原路退回")
    page.keyboard.press("Escape")
    expect(page.locator("#kb-dialog")).to_be_hidden()

    page.click("[data-kind=faq]")  # the kind filter keeps the search words
    expect(page).to_have_url(re.compile(r"/knowledge\?kind=faq&q=%E4%BC%9A"))
    expect(page.locator("#kb-total")).to_have_text("共 1 条")

    page.set_input_files("#kb-file", files=[{"name": "坏表.xlsx", "mimeType": "application/octet-stream",
                                             "buffer": b"not a workbook"}])
    expect(page.locator("#kb-import-result .notice-error")).to_contain_text("导入失败")


@browser_test
def test_retire_goes_through_the_inbox_and_then_the_item_shows_retired(page: Page, api: httpx.Client) -> None:
    item = api.get("/api/knowledge/items", params={"kind": "faq", "status": "active"}).json()["items"][0]
    page.goto("/knowledge")
    search(page, item["title"])
    page.locator(f".kb-row[data-id='{item['id']}']").click()
    expect(page.locator("#kb-item-title")).to_have_text(item["title"])
    expect(page.locator("#kb-item-body")).to_contain_text(item["data"]["answer"][:20])

    page.click("#kb-toggle-status")
    expect(page.locator("#kb-change-submit")).to_have_text("提交下架")
    page.fill("#kb-reason", "浏览器测试：这条已过时")
    page.click("#kb-change-submit")
    done = page.locator("#kb-proposed .kb-notice-ok")
    expect(done).to_contain_text("已提交，等待第二个人在「待确认」里确认")
    assert api.get(f"/api/knowledge/items/{item['id']}").json()["status"] == "active"  # not until confirmed

    done.locator("a[href='/actions']").click()
    card = page.locator(".inbox-card").filter(has_text=item["title"][:20])
    card.locator("[data-approve]").click()
    page.click("#confirm-ok")
    expect(card).to_have_count(0)

    page.goto("/knowledge?status=retired")
    expect(page.locator("#kb-status")).to_have_value("retired")
    row = page.locator(f".kb-row[data-id='{item['id']}']")
    expect(row.locator(".badge-retired")).to_have_text("已下架")
    row.click()
    expect(page.locator("#kb-toggle-status")).to_have_text("恢复")


@browser_test
def test_edit_sends_the_whole_item_with_the_edited_fields(page: Page, api: httpx.Client) -> None:
    item = api.get("/api/knowledge/items", params={"kind": "playbook", "status": "active"}).json()["items"][0]
    page.goto(f"/knowledge?kind=playbook&q={item['id']}")
    page.locator(f".kb-row[data-id='{item['id']}']").click()
    page.click("#kb-edit-open")
    expect(page.locator("#kb-edit-title")).to_have_value(item["title"])
    page.fill("#kb-edit-steps", "第一步：确认负责人\n\n第二步：按季度复盘  ")
    with page.expect_request("**/changes") as request:
        page.click("#kb-edit [type=submit]")
    body = request.value.post_data_json
    assert body["change"] == "edit"
    assert body["data"] == {**item["data"], "steps": ["第一步：确认负责人", "第二步：按季度复盘"]}
    expect(page.locator("#kb-proposed .kb-notice-ok")).to_be_visible()


@browser_test
def test_export_buttons_download_xlsx_sheets(page: Page) -> None:
    page.goto("/knowledge")
    with page.expect_download() as download:
        page.click("[data-export=faq]:not([data-template])")
    assert download.value.suggested_filename == "FAQ.xlsx"
    assert download.value.path().read_bytes()[:2] == b"PK"  # an xlsx is a zip
    with page.expect_download() as blank:
        page.click("[data-export=case][data-template]")
    assert blank.value.suggested_filename == "案例-空白模板.xlsx"


@browser_test
def test_phone_width_knowledge_page_has_no_sideways_scroll(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/knowledge?kind=case")
    page.locator(".kb-row").first.click()
    expect(page.locator("#kb-dialog")).to_be_visible()
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"/knowledge scrolls sideways at 390px: {width[0]}px wide"


@browser_test
def test_remove_a_file_goes_through_the_inbox_and_its_knowledge_goes_with_it(page: Page, api: httpx.Client,
                                                                             tmp_path) -> None:
    document = tmp_path / "冷柜巡检.md"
    document.write_text("# 冷柜巡检制度\n\n冷柜温度每天早晚各记录一次，超过 8 度要在 30 分钟内报修。\n", encoding="utf-8")
    page.goto("/knowledge")
    page.set_input_files("#kb-file", str(document))
    expect(page.locator("#kb-import-result")).to_contain_text("冷柜巡检.md")
    row = page.locator(".kb-source").filter(has_text="冷柜巡检.md")
    expect(row).to_contain_text("文档")

    row.locator("[data-remove]").click()
    row.locator(".kb-remove input").fill("浏览器测试：制度作废")
    row.locator(".kb-remove [type=submit]").click()
    done = row.locator(".kb-notice-ok")
    expect(done).to_contain_text("已提交，等待第二个人在「待确认」里确认")
    found = api.post("/api/search", json={"query": "冷柜温度超过几度要报修", "k": 3}).json()["results"]
    assert any("8 度" in r["text"] for r in found)  # not until confirmed

    done.locator("a[href='/actions']").click()
    card = page.locator(".inbox-card").filter(has_text="冷柜巡检.md")
    card.locator("[data-approve]").click()
    page.click("#confirm-ok")
    expect(card).to_have_count(0)
    found = api.post("/api/search", json={"query": "冷柜温度超过几度要报修", "k": 3}).json()["results"]
    assert not any("8 度" in r["text"] for r in found)
    page.goto("/knowledge")
    expect(page.locator(".kb-source").filter(has_text="冷柜巡检.md")).to_have_count(0)
