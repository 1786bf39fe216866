"""Success plans attached to accounts and tracked: a plan drafted for an account takes its record as
the profile; a confirmed save stores it (nothing without the confirm); the account's plans list with
milestone progress; a CSM marks milestones done or late (audited), an overdue open one counts as
late, and the counts feed the account's health and renewal risk. SQLite, and Postgres when set."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from conftest import PACK_DIR, build_settings
from copilot.accounts.health import MilestoneCounts, health, renewal_risk
from copilot.accounts.models import Account, Activity, Contact
from copilot.api.app import create_app
from workflow_fixtures import API_KEYS, auth

TODAY = date.today()
BAKERY = Account(id="acct-bakery", name="麦香坊（示例）", aliases=["麦香坊"], industry="烘焙", city="杭州", province="浙江",
                 annual_fee=180_000, signed_on=TODAY - timedelta(days=40), renews_on=TODAY + timedelta(days=200),
                 csm="李娜", sales="刘洋", products=["云铺会员"],
                 contacts=[Contact(name="周总", title="总经理"), Contact(name="郑会计", title="财务")])
TEA = Account(id="acct-tea", name="蜀茶坊（示例）", industry="茶饮", city="成都", annual_fee=1_500_000)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request) -> dict:
    return {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}


@pytest.fixture
def client(tmp_path, database):
    settings = build_settings(tmp_path, PACK_DIR, api_keys=API_KEYS, **database)
    app = create_app(settings, warm=False)
    app.state.copilot.accounts.upsert_accounts([BAKERY, TEA])
    with TestClient(app) as test_client:
        yield test_client


def draft(client, role="csm", **body):
    response = client.post("/api/plans", json=body, headers=auth(role))
    assert response.status_code == 200, response.text
    return response.json()


def save(client, plan, markdown=None, decision="approve") -> dict:
    body = {"plan": plan, "action": "save", **({"markdown": markdown} if markdown else {})}
    proposed = client.post("/api/plans/actions", json=body, headers=auth("csm"))
    assert proposed.status_code == 200, proposed.text
    action = proposed.json()["action"]
    decided = client.post(f"/api/actions/{action['id']}/confirm", json={"decision": decision}, headers=auth("csm"))
    assert decided.status_code == 200, decided.text
    return decided.json()


def plans_of(client, account_id="acct-bakery", role="csm"):
    response = client.get(f"/api/accounts/{account_id}/plans", headers=auth(role))
    assert response.status_code == 200, response.text
    return response.json()


def track(client, plan_id, index, status, role="csm", **extra):
    return client.post(f"/api/plans/{plan_id}/milestones/{index}", json={"status": status, **extra}, headers=auth(role))


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    return error


# Drafting for an account ---------------------------------------------------------------------------
def test_a_plan_for_an_account_takes_its_record_as_the_profile(client):
    body = draft(client, account_id="acct-bakery", customer={"goals": ["提升会员复购"]})
    plan, customer = body["plan"], body["plan"]["customer"]
    assert plan["account_id"] == "acct-bakery"
    assert (customer["name"], customer["industry"], customer["city"]) == ("麦香坊（示例）", "烘焙", "杭州")
    assert (customer["annual_fee"], plan["tier"], customer["products"]) == (180_000, "中型", ["云铺会员"])
    assert customer["signing_date"] == str(BAKERY.signed_on)
    people = {(p["name"], p["side"]) for p in customer["key_people"]}
    assert people == {("周总", "客户方"), ("郑会计", "客户方"), ("李娜", "我方"), ("刘洋", "我方")}
    owners = {o["role"]: o["person"] for o in plan["owners"]}
    assert owners["老板/总经理"] == "周总" and owners["客户成功经理"] == "李娜"
    assert body["markdown"].startswith("# 麦香坊（示例）") and "杭州" in body["markdown"]


def test_what_the_request_says_wins_over_the_account_record(client):
    customer = {"city": "宁波", "products": ["云铺收银"], "tier": "中小", "signing_date": "2025-06-01",
                "key_people": [{"name": "王芳", "title": "总经理", "side": "客户方"}]}
    plan = draft(client, account_id="acct-bakery", customer=customer)["plan"]
    assert plan["customer"]["city"] == "宁波" and plan["customer"]["products"] == ["云铺收银"]
    assert plan["tier"] == "中小" and plan["customer"]["signing_date"] == "2025-06-01"
    assert [p["name"] for p in plan["customer"]["key_people"]] == ["王芳"]
    assert plan["customer"]["name"] == "麦香坊（示例）"  # not given: from the account


def test_an_unknown_account_is_a_404(client):
    error = assert_error(client.post("/api/plans", json={"account_id": "acct-nope"}, headers=auth("csm")), 404)
    assert error["type"] == "not_found" and "acct-nope" in error["message"]
    assert_error(client.get("/api/accounts/acct-nope/plans", headers=auth("csm")), 404)
    plan = draft(client, account_id="acct-bakery")["plan"]
    tampered = client.post("/api/plans/actions", json={"plan": {**plan, "account_id": "acct-nope"}, "action": "save"},
                           headers=auth("csm"))
    assert_error(tampered, 404)


def test_the_account_record_fills_the_pickers_profile(client):
    profile = client.get("/api/accounts/acct-bakery/plan-profile", headers=auth("csm")).json()
    assert (profile["name"], profile["annual_fee"], profile["signing_date"]) == ("麦香坊（示例）", 180_000,
                                                                               str(BAKERY.signed_on))
    assert {"name": "周总", "title": "总经理", "side": "客户方"} in profile["key_people"]


# Saving behind the confirm -------------------------------------------------------------------------
def test_a_plan_is_stored_only_when_the_save_is_confirmed(client):
    plan = draft(client, account_id="acct-bakery", customer={"goals": ["提升会员复购"]})["plan"]
    proposed = client.post("/api/plans/actions", json={"plan": plan, "action": "save"}, headers=auth("csm")).json()
    assert plans_of(client) == []  # proposed, not confirmed: nothing stored

    rejected = save(client, plan, decision="reject")
    assert rejected["status"] == "rejected" and plans_of(client) == []

    first = save(client, plan, markdown="# 麦香坊（示例）改过的计划\n\n双方已确认。")
    assert first["status"] == "executed", first["error"]
    assert first["result"]["plans"] == {"plan_id": first["id"], "account_id": "acct-bakery", "stored": True}
    second = save(client, draft(client, account_id="acct-bakery", customer={"goals": ["提升客单价"]})["plan"])
    listed = plans_of(client)
    assert [p["id"] for p in listed] == [second["id"], first["id"]]  # newest first
    assert listed[1]["customer"] == "麦香坊（示例）" and listed[1]["created_by"] == "service-csm-1"
    assert listed[1]["progress"]["total"] == len(plan["milestones"]) == len(listed[1]["milestones"])
    assert [m["title"] for m in listed[1]["milestones"]] == [m["title"] for m in plan["milestones"]]
    assert plans_of(client, "acct-tea") == []

    stored = client.get(f"/api/plans/{first['id']}", headers=auth("sales")).json()
    assert stored["plan"]["desired_outcome"] == plan["desired_outcome"]
    assert stored["markdown"].startswith("# 麦香坊（示例）改过的计划")  # as the person confirmed it
    assert proposed["action"]["status"] == "proposed"


def test_a_rerun_of_the_save_stores_nothing_twice(client):
    copilot = client.app.state.copilot
    saved = save(client, draft(client, account_id="acct-bakery")["plan"])
    executor = copilot.action_runner.executors["plans"]
    again = executor.run(copilot.actions.get(saved["id"]))
    assert again == {"plan_id": saved["id"], "account_id": "acct-bakery", "stored": False}
    assert len(plans_of(client)) == 1


def test_a_plan_without_an_account_is_saved_and_readable(client):
    plan = draft(client, customer={"name": "散客烘焙", "tier": "小微", "signing_date": str(TODAY)})["plan"]
    saved = save(client, plan)
    stored = client.get(f"/api/plans/{saved['id']}", headers=auth("csm")).json()
    assert stored["account_id"] is None and stored["customer"] == "散客烘焙"
    assert stored["progress"]["late"] == 0  # signed today: nothing is due yet


# Tracking ------------------------------------------------------------------------------------------
def test_marking_milestones_done_or_late_is_audited_and_shows_in_the_progress(client):
    saved = save(client, draft(client, account_id="acct-bakery", customer={"signing_date": str(TODAY)})["plan"])
    plan_id = saved["id"]
    assert plans_of(client)[0]["progress"]["open"] == plans_of(client)[0]["progress"]["total"]

    done = track(client, plan_id, 0, "done", note="收银员培训已完成")
    assert done.status_code == 200, done.text
    late = track(client, plan_id, 1, "late").json()
    assert (late["progress"]["done"], late["progress"]["late"]) == (1, 1)
    first, second = late["milestones"][:2]
    assert (first["status"], first["note"], first["updated_by"]) == ("done", "收银员培训已完成", "service-csm-1")
    assert second["status"] == "late" and second["late"] is True
    reopened = track(client, plan_id, 1, "open").json()
    assert reopened["progress"]["late"] == 0 and reopened["milestones"][1]["late"] is False

    trail = client.app.state.copilot.audit.entries(event="plan_milestone", subject=plan_id)
    assert [(e["actor"], e["payload"]["index"], e["payload"]["status"], e["payload"]["previous"])
            for e in reversed(trail)] == [("service-csm-1", 0, "done", "open"), ("service-csm-1", 1, "late", "open"),
                                          ("service-csm-1", 1, "open", "late")]
    assert trail[-1]["payload"]["note"] == "收银员培训已完成"


def test_bad_tracking_requests_get_a_clear_4xx(client):
    plan_id = save(client, draft(client, account_id="acct-bakery")["plan"])["id"]
    count = len(plans_of(client)[0]["milestones"])
    out_of_range = assert_error(track(client, plan_id, count, "done"), 404)
    assert f"0 到 {count - 1}" in out_of_range["message"]
    assert_error(track(client, plan_id, -1, "done"), 422)
    assert "status" in assert_error(track(client, plan_id, 0, "finished"), 422)["message"]
    assert_error(track(client, "no-such-plan", 0, "done"), 404)
    assert_error(client.get("/api/plans/no-such-plan", headers=auth("csm")), 404)
    assert_error(track(client, plan_id, 0, "done", role="sales"), 403)
    assert plans_of(client)[0]["progress"]["done"] == 0  # nothing changed by the refused requests


def test_an_open_milestone_past_its_due_date_counts_as_late(client):
    plan = draft(client, account_id="acct-bakery")["plan"]  # signed 40 days ago
    overdue = [m for m in plan["milestones"] if date.fromisoformat(m["date"]) < TODAY]
    assert overdue and len(overdue) < len(plan["milestones"])
    saved = save(client, plan)
    progress = plans_of(client)[0]["progress"]
    assert progress == {"total": len(plan["milestones"]), "done": 0, "late": len(overdue),
                        "open": len(plan["milestones"]) - len(overdue)}
    track(client, saved["id"], 0, "done")
    assert client.app.state.copilot.plans.tracked() == {"acct-bakery": MilestoneCounts(1, len(overdue) - 1)}


# Health --------------------------------------------------------------------------------------------
def test_tracked_milestones_feed_health_and_renewal_risk(client):
    copilot = client.app.state.copilot
    rules = copilot.pack.rules.insight
    month = (TODAY.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    activity = [Activity(account_id="acct-bakery", month=month, active_stores=10, logins=100, milestones_done=1)]
    before = health(BAKERY, activity, rules, TODAY)
    assert next(p for p in before.narrow.parts if p.name == "milestones").value == 1.0
    calm = renewal_risk(BAKERY, activity, rules, TODAY)
    assert next(d for d in calm.drivers if d.indicator == "late_milestones").value == 0

    saved = save(client, draft(client, account_id="acct-bakery")["plan"])
    track(client, saved["id"], 0, "late")
    track(client, saved["id"], 1, "late")
    tracked = copilot.plans.tracked(["acct-bakery", "acct-tea"])
    assert set(tracked) == {"acct-bakery"} and tracked["acct-bakery"].late >= 2

    done, late = 1 + tracked["acct-bakery"].done, tracked["acct-bakery"].late
    after = health(BAKERY, activity, rules, TODAY, milestones=tracked["acct-bakery"])
    part = next(p for p in after.narrow.parts if p.name == "milestones")
    assert part.value == pytest.approx(done / (done + late), abs=1e-4) and f"延期 {late} 个" in part.note
    assert after.narrow.score < before.narrow.score
    risk = renewal_risk(BAKERY, activity, rules, TODAY, milestones=tracked["acct-bakery"])
    driver = next(d for d in risk.drivers if d.indicator == "late_milestones")
    assert driver.value == pytest.approx(late / (done + late), abs=1e-4)
    assert risk.probability > calm.probability
    # An account with no activity at all still gets the milestones part from its tracked plans.
    alone = health(BAKERY, [], rules, TODAY, milestones=MilestoneCounts(3, 1)).narrow
    assert [p.name for p in alone.parts] == ["milestones"] and alone.score == 75


# Schema ---------------------------------------------------------------------------------------------
def test_the_migration_matches_the_table_definitions(tmp_path, database):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from copilot import db

    settings = build_settings(tmp_path, **database)
    settings.ensure_data_dir()
    engine = db.engine_for(settings.db_url)
    mine = sa.MetaData()
    for table in (db.account_plans, db.plan_milestones):
        table.to_metadata(mine)

    def only_mine(name, type_, parent) -> bool:  # the other tables are checked by their own tests
        return type_ == "schema" or (name if type_ == "table" else parent.get("table_name")) in mine.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": only_mine, "compare_type": True})
        assert compare_metadata(context, mine) == []


def test_a_database_at_the_previous_version_upgrades_and_keeps_its_accounts(tmp_path):
    from alembic import command
    from alembic.config import Config

    from copilot import db
    from copilot.accounts.store import AccountStore

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
    AccountStore(engine).upsert_accounts([BAKERY])
    assert not sa.inspect(engine).has_table("account_plans")

    db.migrate(engine)
    assert {"account_plans", "plan_milestones"} <= set(sa.inspect(engine).get_table_names())
    assert AccountStore(engine).account("acct-bakery").name == "麦香坊（示例）"
