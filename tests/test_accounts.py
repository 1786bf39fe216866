"""A company's CRM export in: accounts and monthly activity sheets through `Copilot.ingest`, listed
and shown by the API, found by name in either script and inside a sentence; re-import updates
changed accounts; the sample data is reproducible. On SQLite, and on Postgres when set."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from copilot.accounts.models import Account, Activity
from copilot.accounts.sample import MAIXIANGFANG, sample_accounts, write_sample_sheets
from copilot.accounts.sheets import account_id, detect_headers, parse_month, parse_share
from copilot.accounts.store import AccountStore
from copilot.api.app import create_app
from copilot.db import engine_for
from tests.conftest import build_settings
from tests.sheet_files import write_csv, write_xlsx

ACCOUNT_HEADER = ["客户名称", "简称", "行业", "城市", "合同金额", "续费日期", "签约日期", "CSM", "销售", "产品",
                  "联系人", "联系人职位", "电话", "续费结果"]
ACCOUNT_ROWS = [
    ["杭州麦香坊食品有限公司", "麦香坊|麥香坊", "烘焙", "杭州市", "18万", datetime(2026, 3, 1), "2025/3/1", "李娜", "刘洋",
     "云铺会员|云铺商城", "周总", "运营总监", "13800000000", ""],
    ["蜀茶坊餐饮管理有限公司", "蜀茶坊", "茶饮", "成都", "1,500,000", "2026年6月30日", "", "王敏", "赵磊", "云铺点单",
     "吴经理", "", "", "已续费"],
    ["坏数据烘焙", "", "烘焙", "长沙", "很多钱", "2026-01-01", "", "李娜", "", "", "", "", "", ""],
    ["杭州麦香坊食品有限公司", "", "", "", "", "", "", "", "", "", "郑会计", "财务", "", ""],
    ["小满鲜果", "", "生鲜", "醴陵市", "3000", "2026-09-01", "", "王敏", "", "", "", "", "", "流失"],
]
ACTIVITY_HEADER = ["客户名称", "月份", "活跃门店", "活跃用户", "功能使用率", "工单数", "NPS"]
ACTIVITY_ROWS = [
    ["麦香坊", "2026年2月", "12", "48", "35%", "6", "-10"],
    ["麥香坊", "2025-12", "20", "80", "0.6", "1", "40"],
    ["杭州麦香坊食品有限公司", "2026/1", "16", "64", "45%", "3", "10"],
    ["蜀茶坊", "2026-01", "380", "1500", "0.7", "2", "50"],
    ["火星奶茶", "2026-01", "1", "1", "0.1", "0", "0"],
]




def account_store(tmp_path, **database) -> AccountStore:
    settings = build_settings(tmp_path, **database)
    settings.ensure_data_dir()
    return AccountStore(engine_for(settings.db_url))


@pytest.fixture(params=["sqlite", "postgres"])
def database(request) -> dict:
    return {"database_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}


def test_crm_export_goes_in_through_ingest_and_out_through_the_api(tmp_path, make_copilot, tiny_pack_dir, database):
    accounts_sheet = write_xlsx(tmp_path / "accounts.xlsx", ACCOUNT_HEADER, ACCOUNT_ROWS)
    activity_sheet = write_csv(tmp_path / "activity.csv", ACTIVITY_HEADER, ACTIVITY_ROWS, encoding="gb18030")
    copilot = make_copilot(**database)

    # Given in the "wrong" order: accounts are still imported first.
    report = copilot.ingest([str(activity_sheet), str(accounts_sheet)])
    sheets = {s.kind: s for s in report.sheets}
    assert len(sheets["accounts"].changes.added) == 3
    assert sheets["accounts"].errors == ["accounts.xlsx:4:合同金额: expected a number such as 180000 or 18万, got '很多钱'"]
    assert len(sheets["activity"].changes.added) == 4
    assert sheets["activity"].errors == [
        "activity.csv:6:客户名称: unknown account '火星奶茶': import it in the accounts sheet first"]
    assert not report.ok and "1 rows with errors" in sheets["accounts"].summary()

    app = create_app(build_settings(tmp_path, tiny_pack_dir, data_dir=tmp_path / "data-main", **database), warm=False)
    with TestClient(app) as client:
        listing = client.get("/api/accounts").json()
        assert listing["total"] == 3
        by_name = {a["name"]: a for a in listing["items"]}
        bakery = by_name["杭州麦香坊食品有限公司"]
        assert (bakery["tier"], bakery["annual_fee"], bakery["city"], bakery["province"]) == ("中型", 180000, "杭州", "浙江")
        assert bakery["renews_on"] == "2026-03-01"
        assert by_name["蜀茶坊餐饮管理有限公司"]["tier"] == "大型"
        assert by_name["蜀茶坊餐饮管理有限公司"]["outcome"] == "renewed"
        assert by_name["小满鲜果"]["province"] == "湖南" and by_name["小满鲜果"]["tier"] == "小微"
        assert by_name["小满鲜果"]["outcome"] == "churned"

        assert client.get("/api/accounts", params={"owner": "王敏"}).json()["total"] == 2
        assert client.get("/api/accounts", params={"tier": "大型"}).json()["items"][0]["name"].startswith("蜀茶坊")
        assert client.get("/api/accounts", params={"q": "麥香"}).json()["total"] == 1
        page = client.get("/api/accounts", params={"limit": 1, "offset": 1}).json()
        assert page["total"] == 3 and len(page["items"]) == 1

        detail = client.get(f"/api/accounts/{bakery['id']}").json()
        assert detail["account"]["signed_on"] == "2025-03-01"
        assert [c["name"] for c in detail["account"]["contacts"]] == ["周总", "郑会计"]
        assert detail["account"]["aliases"] == ["麦香坊", "麥香坊"]
        months = [(m["month"], m["active_stores"], m["feature_adoption"]) for m in detail["activity"]]
        assert months == [("2025-12", 20, 0.6), ("2026-01", 16, 0.45), ("2026-02", 12, 0.35)]

        missing = client.get("/api/accounts/acct-nope")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_reimport_updates_changed_accounts_and_keeps_ids(tmp_path, make_copilot):
    sheet = write_xlsx(tmp_path / "accounts.xlsx", ACCOUNT_HEADER, ACCOUNT_ROWS)
    copilot = make_copilot()
    copilot.ingest([str(sheet)])
    first = {a.name: a.id for a in copilot.accounts.accounts()}

    edited = [row[:] for row in ACCOUNT_ROWS]
    edited[0][4] = "1.2万元"  # the bakery downgraded
    write_xlsx(sheet, ACCOUNT_HEADER, edited)
    report = copilot.ingest([str(sheet)]).sheets[0]
    assert (len(report.changes.added), len(report.changes.updated), len(report.changes.unchanged)) == (0, 1, 2)
    bakery = copilot.accounts.find_by_name("麦香坊")
    assert bakery.id == first["杭州麦香坊食品有限公司"] and (bakery.annual_fee, bakery.tier) == (12000, "中小")


def test_store_finds_accounts_by_name_in_either_script_and_inside_a_sentence(tmp_path, database):
    store = account_store(tmp_path, **database)
    accounts, activity = sample_accounts(n=12, months=6)
    assert store.upsert_accounts(accounts)[0] == [a.id for a in accounts]
    assert store.upsert_accounts(accounts)[2] == [a.id for a in accounts]
    store.upsert_activity(list(reversed(activity)))

    bakery = store.find_by_name("麦香坊（示例）")
    assert bakery is not None and bakery.name == MAIXIANGFANG
    assert store.find_by_name("麥香坊").id == bakery.id
    assert store.find_by_name("麦香坊续费风险高不高").id == bakery.id
    assert store.find_by_name("麥香坊的續費風險高不高？").id == bakery.id
    assert store.find_by_name("今天天气怎么样") is None

    months = [a.month for a in store.activity(bakery.id)]
    assert months == sorted(months) and len(months) == 6
    assert store.all_activity()[bakery.id] == store.activity(bakery.id)
    assert store.account(bakery.id) == bakery and store.account("nope") is None


def test_longest_name_wins(tmp_path):
    store = account_store(tmp_path)
    store.upsert_accounts([Account(id="a", name="麦香"), Account(id="b", name="麦香坊烘焙", aliases=["麦香坊"])])
    assert store.find_by_name("麦香坊最近怎么样").id == "b"
    assert store.find_by_name("麦香最近怎么样").id == "a"


def test_sample_data_is_reproducible_realistic_and_marked(tmp_path):
    accounts, activity = sample_accounts(seed=7)
    assert (accounts, activity) == sample_accounts(seed=7)
    assert sample_accounts(seed=8)[0] != accounts
    assert len(accounts) == 60 and all(a.sample and a.name.endswith("（示例）") for a in accounts)
    assert len({a.id for a in accounts}) == 60

    bakery = next(a for a in accounts if a.name == MAIXIANGFANG)
    assert (bakery.city, bakery.province, bakery.industry, bakery.tier) == ("杭州", "浙江", "烘焙", "中型")
    stores = [r.active_stores for r in activity if r.account_id == bakery.id]
    assert stores[0] == 20 and stores[-1] == 8

    past = [a for a in accounts if a.outcome]
    assert 12 <= len(past) <= 30 and {"renewed", "churned"} == {a.outcome for a in past}
    assert all(a.renews_on <= date(2026, 11, 30) for a in past)
    for churned in (a for a in past if a.outcome == "churned"):
        assert max(r.month for r in activity if r.account_id == churned.id) <= churned.renews_on.isoformat()[:7]


def test_sample_sheets_go_through_the_real_importer(tmp_path, make_copilot):
    accounts, activity = sample_accounts(n=10, months=6)
    folder = tmp_path / "demo"
    write_sample_sheets(folder, n=10, months=6)
    report = make_copilot().ingest([str(folder)])
    assert all(not s.errors for s in report.sheets), [s.errors for s in report.sheets]
    store = make_copilot().accounts
    assert store.accounts() == sorted(accounts, key=lambda a: (a.name, a.id))
    assert store.all_activity() == {a.id: sorted((r for r in activity if r.account_id == a.id), key=lambda r: r.month)
                                     for a in accounts}


@pytest.mark.parametrize(("text", "month"), [("2026-03", "2026-03"), ("2026/3", "2026-03"), ("2026年3月", "2026-03"),
                                             ("2026-03-15T00:00:00", "2026-03"), ("2026年3月1日", "2026-03")])
def test_months_are_read_in_the_ways_people_write_them(text, month):
    assert parse_month(text) == month


def test_shares_headers_and_ids():
    assert parse_share("45%") == pytest.approx(0.45) and parse_share("0.45") == 0.45 and parse_share("45") == 0.45
    assert detect_headers(["客户名称", "行业", "城市", "年费", "产品", "背景", "做法", "成果"]) is None  # a case sheet
    assert detect_headers(["Account Name", "Renewal Date", "ARR"]) == "accounts"
    assert detect_headers(["客户编号", "Month", "Active Users"]) == "activity"
    assert account_id("麥香坊") == account_id("麦香坊")
    assert Activity(account_id="x", month="2026-01").active_users is None


def test_an_account_shows_health_risk_and_next_best_actions_with_reasons(tmp_path):
    """The sample book through the real importer and the API: the bakery whose active stores fell
    from 20 to 8 is at high renewal risk, its top reason says so, and its next best actions are
    real playbooks of the bundled knowledge."""
    write_sample_sheets(tmp_path / "demo")
    app = create_app(build_settings(tmp_path, data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        report = app.state.copilot.ingest([str(tmp_path / "demo")])
        assert all(not s.errors for s in report.sheets)
        listed = client.get("/api/accounts", params={"q": "麦香坊"}).json()
        assert listed["total"] == 1
        detail = client.get(f"/api/accounts/{listed['items'][0]['id']}").json()
        healthy = client.get("/api/accounts", params={"limit": 500}).json()["items"]
    insight = detail["insight"]
    assert insight["renewal_risk"]["probability"] >= 0.5
    assert "活跃门店" in insight["renewal_risk"]["drivers"][0]["reason"]
    parts = insight["health"]["narrow"]["parts"]
    assert abs(sum(p["points"] for p in parts) - insight["health"]["narrow"]["score"]) < 0.5
    playbook_ids = {p.id for p in app.state.copilot.pack.playbooks}
    actions = insight["next_best_actions"]
    assert actions and {a["playbook_id"] for a in actions} <= playbook_ids and actions[0]["why"]
    assert [a["uplift"] for a in actions] == sorted((a["uplift"] for a in actions), reverse=True)
    assert len(healthy) > 10


def test_the_book_sorted_by_risk_puts_the_declining_account_first_with_its_reason(tmp_path):
    write_sample_sheets(tmp_path / "demo")
    app = create_app(build_settings(tmp_path, data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        app.state.copilot.ingest([str(tmp_path / "demo")])
        book = client.get("/api/accounts", params={"sort": "risk", "limit": 500}).json()["items"]
        high = client.get("/api/accounts", params={"risk": "高", "limit": 500}).json()["items"]
    assert [a["risk"] for a in book] == sorted((a["risk"] for a in book), reverse=True)
    bakery = next(a for a in book if a["name"] == MAIXIANGFANG)
    assert bakery in high and bakery["risk_level"] == "高" and "活跃门店" in bakery["risk_summary"]
    assert all(a["risk_level"] == "高" for a in high) and len(high) < len(book)
    healthy = [a for a in book if a["risk_level"] == "低"]
    assert healthy and min(a["health"] for a in healthy) > bakery["health"]


# The book: cached per data version, what changed, and a next best action proposed as a task ------
def months_of(account_id: str, stores: list[int], **measures: list) -> list[Activity]:
    """Activity for the months just before today, oldest first."""
    today = date.today()
    index = today.year * 12 + today.month - 1 - len(stores)
    rows = []
    for i, value in enumerate(stores):
        month = f"{(index + i) // 12:04d}-{(index + i) % 12 + 1:02d}"
        rows.append(Activity(account_id=account_id, month=month, active_stores=value,
                             **{k: v[i] for k, v in measures.items()}))
    return rows


def test_a_new_import_changes_the_book_in_every_worker_and_nothing_else_does(tmp_path, make_copilot, database):
    """Two Copilots on one database stand for two API workers: each keeps its computed book until
    the accounts data changes, and a write by one is seen by the other's next read."""
    one, two = make_copilot(**database), make_copilot(**database)
    assert one.accounts.version() == ""
    bakery = Account(id="acct-bakery", name="麦香坊", csm="李娜", renews_on=date.today() + timedelta(days=40))
    one.accounts.upsert_accounts([bakery])
    one.accounts.upsert_activity(months_of(bakery.id, [20, 20, 20, 20, 20, 20], feature_adoption=[0.7] * 6))
    rules = one.pack.rules.insight
    steady = two.book.book(rules, date.today())
    assert two.book.book(rules, date.today()) is steady  # kept while nothing changed
    version = one.accounts.version()
    one.accounts.upsert_accounts([bakery])  # the same data again: no new version
    one.accounts.upsert_activity(months_of(bakery.id, [20, 20, 20, 20, 20, 20], feature_adoption=[0.7] * 6))
    assert one.accounts.version() == version and two.book.book(rules, date.today()) is steady

    one.accounts.upsert_activity(months_of(bakery.id, [20, 20, 20, 14, 10, 8], feature_adoption=[0.7] * 6))
    declining = two.book.book(rules, date.today()).get(bakery.id)
    assert declining.risk > steady.get(bakery.id).risk and "活跃门店" in declining.risk_summary
    one.accounts.upsert_accounts([bakery.model_copy(update={"csm": "王敏"})])
    assert [o.name for o in two.book.book(rules, date.today()).owners()] == ["王敏"]


def test_the_book_says_what_changed_in_the_latest_month(tmp_path, make_copilot):
    copilot = make_copilot()
    renews = date.today() + timedelta(days=90)
    copilot.accounts.upsert_accounts([Account(id="a-down", name="下滑烘焙", csm="李娜", tier="中型", renews_on=renews),
                                      Account(id="a-up", name="上升茶饮", csm="李娜", renews_on=renews),
                                      Account(id="a-gone", name="停更小馆", csm="王敏", renews_on=renews)])
    copilot.accounts.upsert_activity(
        months_of("a-down", [20, 20, 20, 20, 20, 12], tickets=[2, 2, 2, 2, 2, 6], feature_adoption=[.7] * 5 + [.5],
                  milestones_done=[1, 0, 0, 0, 0, 0], milestones_late=[0, 0, 0, 0, 0, 1], nps=[30] * 5 + [10])
        + months_of("a-up", [10, 10, 10, 10, 10, 14], feature_adoption=[.6] * 6)
        + months_of("a-gone", [5, 5, 5, 5, 5, 5], feature_adoption=[.6] * 6)[:4])
    app = create_app(build_settings(tmp_path, data_dir=copilot.settings.data_dir), warm=False)
    with TestClient(app) as client:
        book = {a["id"]: a for a in client.get("/api/accounts", params={"sort": "risk"}).json()["items"]}
        owners = client.get("/api/accounts/owners").json()
    down, up, gone = book["a-down"], book["a-up"], book["a-gone"]
    before, latest = months_of("x", [0, 0])
    assert down["changes_period"] == f"{latest.month} 对比 {before.month}"
    texts = [c["text"] for c in down["changes"]]
    assert {"活跃门店 20→12（-40%）", "核心功能使用率 70%→50%", "工单 2→6 个", "1 个里程碑延期", "NPS 30→10"} <= set(texts)
    assert all(c["worse"] for c in down["changes"])
    assert any(t.startswith("续费风险") for t in texts)  # 20 -> 12 stores moved its risk level up
    assert [(c["text"], c["worse"]) for c in up["changes"]] == [("活跃门店 10→14（+40%）", False)]
    assert gone["changes"][0] == {"kind": "no_data", "text": f"{gone_month(4)} 之后没有活动数据", "worse": True}
    assert owners == [{"name": "李娜", "accounts": 2, "high_risk": int(down["risk_level"] == "高")},
                      {"name": "王敏", "accounts": 1, "high_risk": int(gone["risk_level"] == "高")}]


def gone_month(n: int) -> str:
    """The month of the n-th of six months before today (as months_of numbers them)."""
    return months_of("x", [0] * 6)[n - 1].month


def test_a_next_best_action_is_proposed_as_a_task_and_written_only_after_a_confirm(tmp_path):
    write_sample_sheets(tmp_path / "demo", n=20, months=12)
    app = create_app(build_settings(tmp_path, data_dir=tmp_path / "data"), warm=False)
    with TestClient(app) as client:
        app.state.copilot.ingest([str(tmp_path / "demo")])
        bakery = client.get("/api/accounts", params={"q": "麦香坊"}).json()["items"][0]
        detail = client.get(f"/api/accounts/{bakery['id']}").json()
        assert detail["changes"] and detail["changes_period"] and detail["insight"]["journey_label"] == "有风险"
        choice = detail["insight"]["next_best_actions"][0]
        url = f"/api/accounts/{bakery['id']}/actions"

        proposed = client.post(url, json={"playbook_id": choice["playbook_id"], "note": "周五前约客户"})
        assert proposed.status_code == 201
        action = proposed.json()
        assert action["type"] == "account_task" and action["status"] == "proposed"
        assert action["arguments"]["customer"] == MAIXIANGFANG and action["arguments"]["title"] == choice["title"]
        again = client.post(url, json={"playbook_id": choice["playbook_id"]})
        assert again.status_code == 200 and again.json()["id"] == action["id"]  # still open: the same task
        assert not list((tmp_path / "data" / "outbox").glob("*"))  # nothing written before the confirm

        wrong = client.post(url, json={"playbook_id": "pb-not-offered"}, headers={"Accept-Language": "zh-CN"})
        assert wrong.status_code == 400 and wrong.json()["error"]["type"] == "invalid_input"
        assert "不是" in wrong.json()["error"]["message"] and choice["playbook_id"] in wrong.json()["error"]["message"]
        assert client.post(url, json={}).status_code == 422
        assert client.post("/api/accounts/acct-nope/actions", json={"playbook_id": "x"}).status_code == 404

        done = client.post(f"/api/actions/{action['id']}/confirm", json={"decision": "approve"}).json()
    assert done["status"] == "executed"
    card = Path(done["result"]["outbox"]["path"]).read_text(encoding="utf-8")
    assert card.startswith(f"# 客户任务：{choice['title']}") and choice["why"] in card and "周五前约客户" in card
    assert choice["playbook_id"] in card and MAIXIANGFANG in card
