"""Need-to-know, everywhere: internal knowledge reaches only callers who may read it, and nothing
that leaves the company (a ticket in the support queue, a one-pager, a shared plan) carries it.

Storage-backed checks run on SQLite and on Postgres (COPILOT_TEST_POSTGRES_URL; skipped without it).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from conftest import PACK_DIR, build_settings
from copilot import db
from copilot.models import Evidence, SearchFilters

KEYS = {"k-sales": "sales", "k-csm": "csm", "k-support": "support", "k-admin": "admin"}
INTERNAL_FAQ_ANSWER = "销售总监"  # from faq-discount-approval (audience: internal) of the tiny pack
PLAN_CUSTOMER = {"name": "杭州麦香烘焙（示例）", "industry": "烘焙", "city": "杭州", "tier": "中型",
                 "products": ["云铺收银", "云铺会员"], "goals": ["提升会员复购"], "signing_date": "2025-03-01"}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer k-{role}"}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> dict:
    return {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}


@pytest.fixture
def make_client(tmp_path, tiny_pack_dir, backend):
    """`make_client(knowledge_dir=tiny pack, warm=False)` -> a TestClient on the parametrised database."""
    from copilot.api.app import create_app

    clients = []

    def factory(knowledge_dir=None, warm: bool = False) -> TestClient:
        settings = build_settings(tmp_path, knowledge_dir or tiny_pack_dir, api_keys=KEYS, **backend)
        client = TestClient(create_app(settings, warm=warm))
        clients.append(client.__enter__())
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


# 1. Escalation tickets -----------------------------------------------------------------------------
def test_an_escalation_ticket_leaves_internal_knowledge_out_of_the_support_queue(make_client):
    client = make_client()
    asked = client.post("/api/ask", headers=auth("csm"), json={
        "question": "我们是大客户，紧急！给客户打八折以下的折扣要谁审批？", "role": "csm"})
    assert asked.status_code == 200, asked.text
    assert INTERNAL_FAQ_ANSWER in asked.json()["answer"]  # the CSM who asked may read it
    queue = client.get("/api/actions", params={"type": "escalation_ticket"}, headers=auth("support")).json()
    assert len(queue) == 1
    ticket = queue[0]["arguments"]
    assert INTERNAL_FAQ_ANSWER not in json.dumps(ticket, ensure_ascii=False)
    assert ticket["drafted_answer"] == "" and "faq-discount-approval" not in ticket["sources"]
    assert set(ticket["audiences"]) <= {"public"}
    assert ticket["withheld"] >= 1 and "已略去" in ticket["left_out_note"] and "已略去" in queue[0]["summary"]


def evidence(i: int, audience: str, text: str) -> Evidence:
    return Evidence(id=f"e{i}", kind="faq", source=f"faq-{i}", title=f"问题{i}", text=text, score=1.0,
                    meta={"audience": audience, "answer": text})


def test_a_ticket_keeps_a_public_draft_and_names_the_audiences_it_holds():
    from copilot.pipeline import ticket_knowledge

    public = evidence(1, "public", "先检查热敏纸是否装反，再点测试打印。")
    internal = evidence(2, "internal", "八折以下的报价折扣需要销售总监批准。")
    kept = ticket_knowledge(public.text, [public, internal])  # the draft repeats the public FAQ only
    assert kept["drafted_answer"] == public.text and kept["sources"] == ["faq-1"]
    assert kept["audiences"] == ["public"] and kept["withheld"] == 1
    cited = ticket_knowledge("按审批流处理[2]。", [public, internal])  # cites the internal passage
    assert cited["drafted_answer"] == "" and cited["audiences"] == ["public"]
    clean = ticket_knowledge(public.text, [public])
    assert "withheld" not in clean and clean["drafted_answer"] == public.text


# 2. One-pagers and shared plans -----------------------------------------------------------------
def test_an_internal_case_never_becomes_a_customer_one_pager(make_client):
    client = make_client()
    found = client.post("/api/cases/search", headers=auth("sales"),
                        json={"profile": {"industry": "服装", "city": "广州", "annual_fee": 30000}}).json()
    assert "case-apparel-gz" in [m["case"]["id"] for m in found["matches"]]
    assert found["internal_cases"] == ["case-apparel-gz"]
    refused = client.post("/api/cases/onepager", headers=auth("sales"), json={"case_id": "case-apparel-gz"})
    assert refused.status_code == 403, refused.text
    assert "仅限内部" in refused.json()["error"]["message"]
    assert client.get("/api/actions", params={"type": "send_case_onepager"}, headers=auth("sales")).json() == []
    sent = client.post("/api/cases/onepager", headers=auth("sales"), json={"case_id": "case-bakery-hz"})
    assert sent.status_code == 200 and "left_out" not in sent.json()["action"]["arguments"]


def test_a_shared_plan_leaves_internal_playbooks_out_and_says_so(make_client):
    client = make_client(PACK_DIR)
    pack = client.app.state.copilot.pack
    drafted = client.post("/api/plans", headers=auth("csm"), json={"customer": PLAN_CUSTOMER}).json()
    internal = [s for s in drafted["plan"]["sources"] if s["kind"] == "playbook"
                and next(p for p in pack.playbooks if p.id == s["id"]).audience == "internal"]
    assert internal, "the shipped pack's plan should draw on internal playbooks"
    edited = drafted["markdown"] + f"\n补充：参考{internal[0]['title']}\n"
    shared = client.post("/api/plans/actions", headers=auth("csm"), json={
        "plan": drafted["plan"], "action": "share", "recipient": "陈总", "markdown": edited}).json()["action"]
    args = shared["arguments"]
    for source in internal:
        assert source["title"] not in args["markdown"] and source["id"] not in args["markdown"]
        assert source["id"] not in [s["id"] for s in args["plan"]["sources"]]
    assert {s["id"] for s in internal} <= {item["id"] for item in args["left_out"]}
    assert "已略去" in shared["summary"] and internal[0]["title"] in args["left_out_note"]
    assert "## 预期成果" in args["markdown"]  # the rest of the plan still goes
    saved = client.post("/api/plans/actions", headers=auth("csm"),
                        json={"plan": drafted["plan"], "action": "save"}).json()["action"]
    assert internal[0]["title"] in saved["arguments"]["markdown"] and "left_out" not in saved["arguments"]


# 3. Pages served without a key ---------------------------------------------------------------------
def test_pages_served_without_a_key_show_only_public_titles(tmp_path, tiny_pack_dir):
    from copilot.api.app import create_app

    settings = build_settings(tmp_path, tiny_pack_dir, api_keys=KEYS)
    with TestClient(create_app(settings, warm=False)) as client:
        pages = {role: client.get("/assistant", params={"role": role}).text for role in ("sales", "csm", "support")}
    text = "".join(pages.values())
    for internal in ("续费由客户成功经理负责", "用同行同城同规模的案例打动客户", "给客户打八折以下的折扣要谁审批"):
        assert internal not in text
    assert "上线第一个月拿下一个快速见效的成果" in pages["csm"]  # a public playbook may show


# 4. An empty audience list reads nothing -------------------------------------------------------------
def test_an_empty_audience_list_reads_nothing(tiny_pack_dir):
    from copilot.api.web import build_map
    from copilot.knowledge.pack import load_pack
    from copilot.retrieve import _where

    assert _where(SearchFilters(audiences=[])) == {"audience": {"$in": []}}
    assert _where(SearchFilters()) is None
    pack = load_pack(tiny_pack_dir)
    assert sum(cell.total for cell in build_map(pack, []).cells) == 0
    assert sum(cell.total for cell in build_map(pack, None).cells) > 0


def test_a_search_with_no_audience_finds_nothing(copilot):
    assert copilot.retriever.search("折扣审批", filters=SearchFilters(audiences=[])).results == []
    assert copilot.retriever.search("折扣审批", filters=SearchFilters(audiences=["internal"])).results


# 5. Knowledge gaps ---------------------------------------------------------------------------------------
def gap_questions(client: TestClient, headers: dict) -> set[str]:
    report = client.get("/api/gaps", headers=headers).json()
    return {row["question"] for part in ("unanswered", "low_confidence", "thumbs_down") for row in report[part]}


def test_gaps_show_the_callers_roles_and_only_what_they_may_read(make_client):
    client = make_client()
    copilot = client.app.state.copilot
    for role, question, sources in (("sales", "销售没答上的问题", []), ("support", "客服没答上的问题", []),
                                    ("csm", "依据是内部资料的问题", ["faq-discount-approval"])):
        copilot.audit.record("someone", "ask", None, {"role": role, "question": question, "grounded": bool(sources),
                                                      "confidence": 0.0, "sources": sources})
    client.post("/api/feedback", headers=auth("sales"), json={"question": "销售点踩的问题", "rating": "down"})
    _, public_csm_key = copilot.users.add("公开资料CSM", "csm", "test", audiences=["public"])
    assert gap_questions(client, auth("support")) == {"客服没答上的问题"}
    assert gap_questions(client, auth("sales")) == {"销售没答上的问题", "销售点踩的问题"}
    assert gap_questions(client, auth("csm")) == {"依据是内部资料的问题"}
    assert gap_questions(client, {"Authorization": f"Bearer {public_csm_key}"}) == set()
    assert gap_questions(client, auth("admin")) == {"销售没答上的问题", "客服没答上的问题", "依据是内部资料的问题",
                                                    "销售点踩的问题"}


# 6. Feedback's role --------------------------------------------------------------------------------------
def test_feedback_takes_its_role_from_the_caller(make_client):
    client = make_client()
    body = {"question": "打印机不出纸", "rating": "down"}
    assert client.post("/api/feedback", headers=auth("support"), json={**body, "role": "sales"}).status_code == 403
    assert client.post("/api/feedback", headers=auth("support"), json=body).status_code == 201
    assert client.post("/api/feedback", headers=auth("admin"), json={**body, "role": "csm"}).status_code == 201
    with client.app.state.copilot.engine.connect() as conn:
        roles = conn.execute(sa.select(db.feedback.c.role).order_by(db.feedback.c.id)).scalars().all()
    assert roles == ["support", "csm"]


# 7 and 8. The audit trail ------------------------------------------------------------------------------
def test_audit_filters_by_caller_before_the_limit_and_carries_no_key(make_client):
    client = make_client()
    client.post("/api/feedback", headers=auth("sales"), json={"question": "会员积分", "rating": "up"})
    for n in range(5):
        client.app.state.copilot.audit.record("someone-else", "ask", None, {"question": f"别人的问题{n}"})
    mine = client.get("/api/audit", params={"limit": 3}, headers=auth("sales"))
    assert [e["event"] for e in mine.json()] == ["feedback"]
    assert len(client.get("/api/audit", params={"limit": 3}, headers=auth("admin")).json()) == 3
    assert "k-sales" not in mine.text and "k-sa" not in mine.text


# The pages, in a real browser (tests/test_browser.py's stack: keyless, the shipped pack) -------------
try:
    from playwright.sync_api import Page, expect

    from tests import test_browser as shared
    from tests.test_browser import browser_test

    server, chromium, page, api = shared.server, shared.chromium, shared.page, shared.api
except ImportError:  # pragma: no cover - no browser stack: the tests below are skipped
    Page = None

    def browser_test(fn):
        return pytest.mark.skip(reason="playwright is not installed")(fn)


@browser_test
def test_the_share_dialog_says_what_was_left_out(page: Page, api) -> None:
    page.goto("/plans")
    page.fill("#plan-name", "测试烘焙（示例）")
    page.select_option("#plan-industry", "烘焙")
    page.select_option("#plan-tier", "中型")
    page.click("label.chip-toggle:has-text('提升会员复购')")
    with page.expect_response("**/api/plans") as drafted:
        page.click("#plan-draft")
    internal = [s["title"] for s in drafted.value.json()["plan"]["sources"] if s["kind"] == "playbook"]
    assert internal  # every playbook of the shipped pack is internal
    page.fill("#plan-recipient", "陈总")
    with page.expect_response("**/api/plans/actions") as proposed:
        page.click("#plan-share")
    action_id = proposed.value.json()["action"]["id"]
    expect(page.locator("#confirm-left-out")).to_contain_text(internal[0])
    expect(page.locator("#confirm-facts")).not_to_contain_text("left_out")
    expect(page.locator("#confirm-markdown")).not_to_contain_text(internal[0])
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-left-out")).to_have_count(0)
    assert api.get(f"/api/actions/{action_id}").json()["status"] == "rejected"


@browser_test
def test_an_internal_case_card_offers_no_one_pager(page: Page) -> None:
    page.goto("/cases")
    page.select_option("#industry", "烘焙")
    page.select_option("#city", "深圳")
    page.select_option("#tier", "大型")
    page.click("#case-search")
    card = page.locator(".case-card", has_text="南山焙坊（示例）")
    expect(card).to_contain_text("仅限内部")
    expect(card.locator("[data-onepager]")).to_have_count(0)
    expect(page.locator(".case-card [data-onepager]").first).to_be_visible()  # public cases still offer one
