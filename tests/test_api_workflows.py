"""HTTP: /api/cases/*, /api/plans*, /api/actions* over one app (real pack, SQLite, API keys)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import PACK_DIR, build_settings
from workflow_fixtures import API_KEYS, auth

CASE_KEYS = {"id", "company", "industry", "city", "province", "tier", "annual_fee", "products", "situation", "summary",
             "results", "time_to_first_value_days"}
PROFILE = {"industry": "烘焙", "city": "温州", "annual_fee": 200000, "situation": ["连锁"]}
CUSTOMER = {"name": "杭州麦香烘焙（示例）", "industry": "烘焙", "city": "杭州", "tier": "中型",
            "products": ["云铺收银", "云铺会员"], "goals": ["提升会员复购"], "signing_date": "2025-03-01",
            "key_people": [{"name": "陈总", "title": "总经理", "side": "客户方"}]}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from copilot.api.app import create_app

    settings = build_settings(tmp_path_factory.mktemp("api-workflows"), PACK_DIR, api_keys=API_KEYS)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def outbox(client):
    return client.app.state.copilot.settings.outbox


def search(client, role="sales", **body):
    return client.post("/api/cases/search", json=body, headers=auth(role))


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    return error


# Cases ---------------------------------------------------------------------------------------------
def test_case_search_response_shape(client):
    response = search(client, profile=PROFILE, k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"matches", "good_matches", "note", "value_estimate"} <= set(body)
    assert 1 <= len(body["matches"]) <= 3 and body["good_matches"] == len(body["matches"])
    for match in body["matches"]:
        assert set(match) == {"case", "score", "breakdown", "why", "good_match"}
        assert set(match["case"]) == CASE_KEYS
        assert set(match["breakdown"]) == {"industry", "location", "tier", "situation", "semantic"}
        assert set(match["case"]["results"][0]) == {"metric", "before", "after", "unit"}
    assert match["why"] and isinstance(match["score"], float)
    estimate = body["value_estimate"]
    assert {"summary", "method", "metrics"} <= set(estimate)
    assert {"metric", "typical_before", "typical_after", "unit", "based_on"} <= set(estimate["metrics"][0])


def test_case_search_with_free_text(client):
    body = search(client, query="温州做面包的连锁店，想提升会员复购", k=5).json()
    assert body["matches"][0]["case"]["industry"] == "烘焙"
    assert any(m["breakdown"]["semantic"] > 0 for m in body["matches"])


def test_case_search_needs_a_query_or_a_profile(client):
    assert_error(search(client), 422)
    assert_error(search(client, query=""), 422)
    assert_error(search(client, profile={}), 400)
    assert_error(search(client, profile=PROFILE, k=50), 422)


def test_support_keys_never_see_internal_cases(client):
    profile = {"industry": "烘焙", "city": "深圳", "tier": "大型"}
    sales = [m["case"]["id"] for m in search(client, profile=profile).json()["matches"]]
    support = [m["case"]["id"] for m in search(client, "support", profile=profile).json()["matches"]]
    assert "case-bakery-shenzhen-01" in sales and "case-bakery-shenzhen-01" not in support
    hidden = client.post("/api/cases/onepager", json={"case_id": "case-bakery-shenzhen-01"}, headers=auth("support"))
    assert_error(hidden, 404)


def test_nothing_close_returns_flagged_alternatives(client):
    body = search(client, profile={"industry": "汽车", "city": "哈尔滨", "tier": "大型"}).json()
    assert body["good_matches"] == 0 and body["value_estimate"] is None
    assert body["note"].startswith("没有足够相近的案例，以下是最接近的备选")
    assert body["matches"] and not any(m["good_match"] for m in body["matches"])


def test_onepager_is_proposed_then_confirmed_by_sales(client, outbox):
    response = client.post("/api/cases/onepager", headers=auth("sales"), json={
        "case_id": "case-bakery-hangzhou-01", "recipient": "陈总", "prospect": {"name": "温州麦香", **PROFILE}})
    assert response.status_code == 200, response.text
    body = response.json()
    action = body["action"]
    assert action["type"] == "send_case_onepager" and action["status"] == "proposed"
    assert "麦田里烘焙（示例）" in body["markdown"] and action["arguments"]["markdown"] == body["markdown"]
    listed = client.get("/api/actions", params={"status": "proposed"}, headers=auth("sales")).json()
    assert action["id"] in {a["id"] for a in listed}
    assert_error(client.post(f"/api/actions/{action['id']}/confirm", json={"decision": "approve"},
                             headers=auth("csm")), 403)
    done = client.post(f"/api/actions/{action['id']}/confirm", json={"decision": "approve"}, headers=auth("sales"))
    assert done.status_code == 200 and done.json()["status"] == "executed"
    assert (outbox / f"{action['id']}.md").read_text(encoding="utf-8") == body["markdown"]


# Plans ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drafted(client):
    response = client.post("/api/plans", json={"customer": CUSTOMER}, headers=auth("csm"))
    assert response.status_code == 200, response.text
    return response.json()


def test_plan_response(drafted):
    plan, markdown = drafted["plan"], drafted["markdown"]
    assert plan["tier"] == "中型" and plan["style"] == "1:1"
    assert plan["milestones"][0]["date"] == "2025-03-08"  # day 7 of the 复购 outcome
    assert 1 <= len(plan["quick_wins"]) <= 2
    assert {o["side"] for o in plan["owners"]} == {"我方", "客户方"}
    assert markdown.startswith("# 杭州麦香烘焙（示例）") and "陈总" in markdown


def test_plan_needs_a_size(client):
    customer = {k: v for k, v in CUSTOMER.items() if k != "tier"}
    assert_error(client.post("/api/plans", json={"customer": customer}, headers=auth("csm")), 400)
    assert_error(client.post("/api/plans", json={"customer": {**CUSTOMER, "signing_date": "2025-02-30"}},
                             headers=auth("csm")), 422)


def test_save_plan_lifecycle_with_permissions_and_audit(client, drafted, outbox):
    response = client.post("/api/plans/actions", json={"plan": drafted["plan"], "action": "save"}, headers=auth("csm"))
    assert response.status_code == 200, response.text
    action = response.json()["action"]
    assert action["type"] == "save_plan" and action["arguments"]["markdown"] == drafted["markdown"]
    url = f"/api/actions/{action['id']}"

    denied = client.post(f"{url}/confirm", json={"decision": "approve"}, headers=auth("support"))
    assert "support" in assert_error(denied, 403)["message"]
    assert not (outbox / f"{action['id']}.md").exists()

    done = client.post(f"{url}/confirm", json={"decision": "approve", "comment": "客户已确认"}, headers=auth("csm"))
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["comment"]) == ("executed", "客户已确认")
    assert (outbox / f"{action['id']}.md").exists()

    again = client.post(f"{url}/confirm", json={"decision": "approve"}, headers=auth("admin"))
    assert_error(again, 409)
    assert_error(client.post(f"{url}/retry", headers=auth("csm")), 409)

    detail = client.get(url, headers=auth("csm")).json()
    assert [h["event"] for h in detail["history"]] == ["proposed", "approved", "executed"]
    assert detail["decided_by"].startswith("service-")  # named by role and position, never by the key
    audit = client.get("/api/audit", params={"subject": action["id"]}, headers=auth("admin")).json()
    assert sorted(e["event"] for e in audit) == ["approved", "executed", "proposed"]


def test_an_edited_export_is_what_gets_saved(client, drafted, outbox):
    edited = drafted["markdown"] + "\n\n补充：双方已口头确认。"
    action = client.post("/api/plans/actions", headers=auth("csm"),
                         json={"plan": drafted["plan"], "action": "save", "markdown": edited}).json()["action"]
    assert action["arguments"]["edited"] is True
    client.post(f"/api/actions/{action['id']}/confirm", json={"decision": "approve"}, headers=auth("csm"))
    assert (outbox / f"{action['id']}.md").read_text(encoding="utf-8") == edited


def test_share_plan_can_be_rejected(client, drafted, outbox):
    action = client.post("/api/plans/actions", headers=auth("csm"),
                         json={"plan": drafted["plan"], "action": "share", "recipient": "陈总"}).json()["action"]
    assert action["type"] == "share_plan" and "陈总" in action["summary"]
    rejected = client.post(f"/api/actions/{action['id']}/confirm", json={"decision": "reject"}, headers=auth("admin"))
    assert rejected.json()["status"] == "rejected"
    assert not list(outbox.glob(f"{action['id']}*"))


def test_callers_see_only_actions_they_may_confirm_or_proposed(client, drafted):
    action = client.post("/api/plans/actions", json={"plan": drafted["plan"], "action": "save"},
                         headers=auth("csm")).json()["action"]
    visible = {role: {a["id"] for a in client.get("/api/actions", headers=auth(role)).json()}
               for role in ("csm", "admin", "support", "sales")}
    assert action["id"] in visible["csm"] and action["id"] in visible["admin"]
    assert action["id"] not in visible["support"] | visible["sales"]
    assert_error(client.get(f"/api/actions/{action['id']}", headers=auth("support")), 404)
    assert client.get(f"/api/actions/{action['id']}", headers=auth("csm")).status_code == 200


def test_action_errors_are_json(client):
    assert_error(client.get("/api/actions/no-such-id", headers=auth("admin")), 404)
    assert_error(client.post("/api/actions/no-such-id/confirm", json={"decision": "approve"}, headers=auth("admin")), 404)
    assert_error(client.post("/api/actions/x/confirm", json={"decision": "maybe"}, headers=auth("admin")), 422)
    assert_error(client.get("/api/actions", params={"status": "bogus"}, headers=auth("admin")), 422)
    assert_error(client.get("/api/actions"), 401)
