"""`copilot search / ask --server URL --key KEY`: the command line of a rep's laptop against the team's
running copilot, with the person's own key; nothing is loaded or written locally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.api.app import create_app
from copilot.api.background import ServerThread
from tests.conftest import PACK_DIR, build_settings

COPILOT_BIN = Path(sys.executable).with_name("copilot")
INTERNAL = {"case-apparel-gz", "faq-discount-approval", "pb-renewal", "pb-peer-case"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_pack_dir) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("remote")
    knowledge = shutil.copytree(tiny_pack_dir, root / "knowledge")
    shutil.copy(PACK_DIR / "plan_templates.yaml", knowledge)  # success plans need the tiers' templates
    app = create_app(build_settings(root, knowledge, data_dir=root / "data"))
    copilot = app.state.copilot
    keys = {role: copilot.users.add(name, role, by="test")[1]
            for name, role in (("小客", "support"), ("小销", "sales"), ("小成", "csm"), ("老管", "admin"))}
    with ServerThread(app) as server:
        yield {"url": server.url, "keys": keys}


def copilot_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    local = {k: v for k, v in os.environ.items() if not k.startswith("COPILOT_")}
    return subprocess.run([str(COPILOT_BIN), *args, "--data-dir", str(tmp_path / "local-data")],
                          env={**local, **env}, capture_output=True, text=True, timeout=120)


def test_search_and_ask_go_to_the_server_and_nothing_is_loaded_locally(served, tmp_path):
    found = copilot_cli(tmp_path, "search", "小票打印机不出纸怎么办", "--json", "--server", served["url"],
                        "--key", served["keys"]["admin"])
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["id"] == "faq-printer"

    asked = copilot_cli(tmp_path, "ask", "小票打印机不出纸怎么办", COPILOT_URL=served["url"],
                        COPILOT_KEY=served["keys"]["support"])
    assert asked.returncode == 0, asked.stderr
    assert "打印" in asked.stdout and "faq-printer" in asked.stdout  # the answer, then its cited source
    assert not (tmp_path / "local-data").exists()  # no model, index or database on this machine


def test_the_server_decides_what_a_key_may_read(served, tmp_path):
    question = ["search", "八折以下的折扣要谁审批", "--k", "20", "--json", "--server", served["url"]]
    admin = copilot_cli(tmp_path, *question, "--key", served["keys"]["admin"])
    support = copilot_cli(tmp_path, *question, "--key", served["keys"]["support"])
    assert INTERNAL & {r["id"] for r in json.loads(admin.stdout)["results"]}
    assert not INTERNAL & {r["id"] for r in json.loads(support.stdout)["results"]}
    widened = copilot_cli(tmp_path, *question, "--key", served["keys"]["support"], "--audience", "internal")
    assert widened.returncode == 2 and "a server decides what your key may read" in widened.stderr


def test_a_wrong_key_or_an_unreachable_server_is_a_clear_error(served, tmp_path):
    wrong = copilot_cli(tmp_path, "search", "续费", "--server", served["url"], "--key", "cpk_not-a-key")
    assert wrong.returncode == 2 and "401" in wrong.stderr and "Traceback" not in wrong.stderr
    down = copilot_cli(tmp_path, "ask", "续费", "--server", "http://127.0.0.1:9", "--key", "x")
    assert down.returncode == 2 and "cannot reach the copilot server" in down.stderr
    assert not (tmp_path / "local-data").exists()


def test_peer_cases_and_a_success_plan_from_the_server(served, tmp_path):
    cases = copilot_cli(tmp_path, "cases", "杭州的烘焙店，年费5万", "--json", "--server", served["url"],
                        "--key", served["keys"]["sales"])
    assert cases.returncode == 0, cases.stderr
    matches = json.loads(cases.stdout)["matches"]
    assert matches and matches[0]["case"]["industry"] == "烘焙" and matches[0]["why"]

    plan = copilot_cli(tmp_path, "plan", "--name", "康民大药房", "--industry", "药店", "--tier", "中型", "--markdown",
                       COPILOT_URL=served["url"], COPILOT_KEY=served["keys"]["csm"])
    assert plan.returncode == 0, plan.stderr
    assert "康民大药房" in plan.stdout and "里程碑" in plan.stdout
    assert not (tmp_path / "local-data").exists()


def test_a_proposed_action_is_listed_and_confirmed_from_the_command_line(served, tmp_path):
    """A rep's `ask` proposes an escalation on the server; the person allowed to confirm it lists and
    approves it from their own command line, by the short id the list shows, and it runs there."""
    asked = copilot_cli(tmp_path, "ask", "我们是大客户，所有门店都无法收银了，紧急！", "--json",
                        "--server", served["url"], "--key", served["keys"]["support"])
    assert asked.returncode == 0, asked.stderr
    proposed = json.loads(asked.stdout)["actions"]
    assert proposed, "an urgent key-account outage should propose an escalation"
    action_id = proposed[0]["id"]

    admin = {"COPILOT_URL": served["url"], "COPILOT_KEY": served["keys"]["admin"]}
    listed = copilot_cli(tmp_path, "actions", "list", "--status", "proposed", **admin)
    assert listed.returncode == 0, listed.stderr
    short = next(word for word in listed.stdout.split() if action_id.startswith(word) and len(word) >= 8)
    confirmed = copilot_cli(tmp_path, "actions", "confirm", short, "--approve", "--json", **admin)
    assert confirmed.returncode == 0, confirmed.stderr
    detail = json.loads(confirmed.stdout)
    assert detail["id"] == action_id and detail["decided_by"] == "老管" and detail["status"] == "executed"
    again = copilot_cli(tmp_path, "actions", "confirm", short, "--approve", **admin)
    assert again.returncode == 2 and "409" in again.stderr  # decided once, by a person, on the record
    retried = copilot_cli(tmp_path, "actions", "retry", short, **admin)
    assert retried.returncode == 2 and "409" in retried.stderr  # it ran: nothing to retry
    shown = copilot_cli(tmp_path, "actions", "show", short, **admin)
    assert shown.returncode == 0 and action_id in shown.stdout
    assert "proposed" in shown.stdout and "老管" in shown.stdout  # its history: proposed, then decided by whom
    assert not (tmp_path / "local-data").exists()


def test_sheets_and_documents_go_in_and_out_through_the_server(served, tmp_path):
    """A knowledge manager uploads a folder (a FAQ sheet with one bad row, and a document) from their
    own command line, finds the new answers through the server, and downloads the sheet back."""
    from tests.sheet_files import write_csv

    folder = tmp_path / "team-knowledge"
    folder.mkdir()
    write_csv(folder / "药房问答.csv", ["标准问", "相似问", "答案", "分类"], [
        ["处方药可以线上退货吗？", "处方药退货", "（示例数据）处方药售出后不退不换，质量问题除外。", "售后"],
        ["", "", "（示例数据）这一行没有问题", "售后"],  # no question: reported, the rest loads
    ])
    (folder / "冷链.txt").write_text("冷链药品\n（示例数据）冷链药品收货时要在十五分钟内放入冷藏柜并登记温度。\n",
                                    encoding="utf-8")
    admin = {"COPILOT_URL": served["url"], "COPILOT_KEY": served["keys"]["admin"]}

    refused = copilot_cli(tmp_path, "ingest", str(folder), COPILOT_URL=served["url"],
                          COPILOT_KEY=served["keys"]["support"])
    assert refused.returncode == 2 and "403" in refused.stderr  # a support key manages no knowledge

    uploaded = copilot_cli(tmp_path, "ingest", str(folder), **admin)
    assert uploaded.returncode == 1  # one row was skipped, and says so
    assert "1 added" in uploaded.stdout and "document added" in uploaded.stdout
    assert "row skipped" in uploaded.stderr and "药房问答.csv:3" in uploaded.stderr

    found = copilot_cli(tmp_path, "search", "处方药能退吗", "--json", **admin)
    assert json.loads(found.stdout)["results"][0]["title"] == "处方药可以线上退货吗？"
    found = copilot_cli(tmp_path, "search", "冷链药品收货多久放进冷藏柜", "--json", **admin)
    assert "十五分钟" in json.loads(found.stdout)["results"][0]["text"]

    sheet = tmp_path / "out" / "faq.csv"
    exported = copilot_cli(tmp_path, "export", str(sheet), "--kind", "faq", **admin)
    assert exported.returncode == 0, exported.stderr
    assert "处方药可以线上退货吗？" in sheet.read_text(encoding="utf-8-sig")
    assert not (tmp_path / "local-data").exists()


def test_an_admin_manages_people_on_the_server_from_the_command_line(served, tmp_path):
    admin = ["--server", served["url"], "--key", served["keys"]["admin"]]
    added = copilot_cli(tmp_path, "users", "add", "新 同事", "--role", "support", "--json", *admin)
    assert added.returncode == 0, added.stderr
    first_key = json.loads(added.stdout)["key"]
    listed = json.loads(copilot_cli(tmp_path, "users", "list", "--json", *admin).stdout)
    assert {"name": "新 同事", "role": "support", "audiences": ["public"]}.items() <= \
        next(u for u in listed if u["name"] == "新 同事").items()

    def search_as(key: str) -> subprocess.CompletedProcess:
        return copilot_cli(tmp_path, "search", "小票打印机不出纸怎么办", "--server", served["url"], "--key", key)

    assert search_as(first_key).returncode == 0
    rotated = copilot_cli(tmp_path, "users", "key", "新 同事", *admin)
    second_key = rotated.stdout.strip().splitlines()[-1]
    assert rotated.returncode == 0 and second_key.startswith("cpk_") and second_key != first_key
    assert search_as(first_key).returncode == 2 and search_as(second_key).returncode == 0
    assert "disabled 新 同事" in copilot_cli(tmp_path, "users", "disable", "新 同事", *admin).stdout
    assert "401" in search_as(second_key).stderr
    assert "enabled 新 同事" in copilot_cli(tmp_path, "users", "enable", "新 同事", *admin).stdout
    assert search_as(second_key).returncode == 0
    table = copilot_cli(tmp_path, "users", "list", *admin).stdout
    assert "新 同事" in table and "active" in table

    # Only an admin may: another person's key is refused with the server's reason, and nothing changes.
    refused = copilot_cli(tmp_path, "users", "disable", "新 同事", "--server", served["url"],
                          "--key", served["keys"]["sales"])
    assert refused.returncode == 2 and "403" in refused.stderr and "Traceback" not in refused.stderr
    assert search_as(second_key).returncode == 0
    assert not (tmp_path / "local-data").exists()
