"""Errors reach people in their language: Chinese for the UI and Chinese callers, English on request,
and a stable machine `type` either way."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import PACK_DIR, REPO_ROOT, build_settings
from copilot.errors import STATUS_CODES, ConfigError, CopilotError, Forbidden, InvalidInput, NotFound
from workflow_fixtures import API_KEYS, auth

ZH, EN = {"Accept-Language": "zh-CN,zh;q=0.9"}, {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from copilot.api.app import create_app

    settings = build_settings(tmp_path_factory.mktemp("papercut-errors"), PACK_DIR, api_keys=API_KEYS)
    with TestClient(create_app(settings, warm=False)) as test_client:
        yield test_client


@pytest.fixture
def action_id(client):
    return client.app.state.copilot.actions.propose("save_plan", "保存计划", {"markdown": "# 计划"}, "t", "csm").id


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_a_missing_action_in_chinese_and_in_english(client):
    zh = error(client.get("/api/actions/nope", headers={**auth("csm"), **ZH}), 404)
    assert zh["type"] == "not_found" and zh["message"].startswith("没有 id 为 nope 的操作")
    en = error(client.get("/api/actions/nope", headers={**auth("csm"), **EN}), 404)
    assert en["type"] == "not_found" and en["message"].startswith("No action with id 'nope'")


def test_chinese_is_the_default_and_the_preferred_language_wins(client):
    url, headers = "/api/actions/nope", auth("csm")
    assert error(client.get(url, headers=headers), 404)["message"].startswith("没有")
    preferred = {"en;q=0.4, zh-TW;q=0.8": "没有", "fr-FR, en;q=0.5, zh;q=0.3": "No action",
                 "*": "没有", "zh-CN;q=0, en;q=0.1": "No action"}
    for accept, start in preferred.items():
        response = client.get(url, headers={**headers, "Accept-Language": accept})
        assert error(response, 404)["message"].startswith(start), accept
        assert response.headers["content-language"] == ("en" if start == "No action" else "zh-CN")


def test_permissions_in_chinese_keep_the_role_names(client, action_id):
    denied = error(client.post(f"/api/actions/{action_id}/confirm", json={"decision": "approve"},
                               headers={**auth("support"), **ZH}), 403)
    assert denied["type"] == "forbidden"
    assert denied["message"] == "角色 support 不能确认 save_plan 类操作；可确认的角色：csm、admin"
    acting = error(client.post("/api/ask", json={"question": "你好", "role": "sales"},
                               headers={**auth("support"), **ZH}), 403)
    assert acting["message"] == "service-support-1 的角色是 support，不能以 sales 的身份操作"
    missing = error(client.post("/api/ask", json={"question": "你好", "role": "sales"}, headers=ZH), 401)
    assert missing["type"] == "unauthorized" and missing["message"].startswith("请先登录，或在请求头中带上密钥")


def test_an_already_decided_action_in_chinese(client, action_id):
    url = f"/api/actions/{action_id}/confirm"
    assert client.post(url, json={"decision": "reject"}, headers=auth("csm")).status_code == 200
    again = error(client.post(url, json={"decision": "approve"}, headers={**auth("csm"), **ZH}), 409)
    assert again["type"] == "conflict" and "已经有人处理过" in again["message"] and "已拒绝" in again["message"]


def test_validation_errors_get_a_chinese_summary_and_keep_the_details(client):
    response = client.post("/api/ask", json={"question": "", "role": "ceo"}, headers={**auth("admin"), **ZH})
    body = error(response, 422)
    assert body["type"] == "invalid_request_error"
    assert body["message"].startswith("请求有误：question：至少 1 个字；role：只能是 ")
    assert [d["loc"] for d in body["details"]] == [["body", "question"], ["body", "role"]]
    assert all(d["msg"] for d in body["details"])
    missing = error(client.post("/api/ask", json={}, headers={**auth("admin"), **ZH}), 422)
    assert "question：必填" in missing["message"]
    broken = error(client.post("/api/ask", content='{"question": ', headers={**auth("admin"), **ZH,
                                                                            "content-type": "application/json"}), 422)
    assert broken["message"].startswith("请求有误：请求体：不是合法的 JSON")
    english = error(client.post("/api/ask", json={}, headers={**auth("admin"), **EN}), 422)
    assert english["message"].startswith("Invalid request: body.question")


def test_unknown_routes_and_models(client):
    assert error(client.get("/api/nothing-here", headers=ZH), 404)["message"] == "接口不存在：/api/nothing-here"
    assert error(client.get("/api/nothing-here", headers=EN), 404)["message"] == "Not Found"
    chat = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
    model = error(client.post("/v1/chat/completions", json=chat, headers={**auth("admin"), **ZH}), 404)
    assert model["type"] == "not_found" and model["message"].startswith("没有模型 gpt-4：")
    assert "copilot-support" in model["message"]


def test_every_error_has_a_stable_code_and_a_chinese_message():
    from copilot.api.deps import Unauthorized

    assert [c.code for c in (InvalidInput, NotFound, Forbidden, Unauthorized, ConfigError)] == \
        ["invalid_input", "not_found", "forbidden", "unauthorized", "config_error"]
    assert set(STATUS_CODES.values()) >= {"invalid_input", "not_found", "forbidden", "unauthorized", "config_error"}
    given = InvalidInput("bad", zh="不对")
    assert (str(given), given.message_for("en"), given.message_for("zh")) == ("bad", "bad", "不对")
    framed = ConfigError("Set COPILOT_EMBEDDING_MODEL")
    assert framed.message_for("zh") == "服务配置有误，请联系管理员：Set COPILOT_EMBEDDING_MODEL"
    assert CopilotError("x").message_for("zh") == "出错了：x"


def test_the_web_ui_asks_for_chinese():
    common = (REPO_ROOT / "copilot" / "web" / "static" / "common.js").read_text(encoding="utf-8")
    headers = common[common.index("function headers("):common.index("async function errorFrom")]
    assert '"Accept-Language": "zh-CN"' in headers
