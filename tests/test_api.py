"""The HTTP service: ask, search, errors as JSON, API keys, and the OpenAI-compatible endpoint
driven by the real `openai` client and LangChain `ChatOpenAI` against a running server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from copilot.api.app import create_app
from copilot.settings import Settings
from tests.llm_server import ServerThread

KEYS = {"sales-key": "sales", "support-key": "support", "admin-key": "admin"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def client(data_dir):
    with TestClient(create_app(Settings(_env_file=None, data_dir=data_dir))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keyed(data_dir):
    app = create_app(Settings(_env_file=None, data_dir=data_dir, api_keys=KEYS))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(data_dir):
    with ServerThread(create_app(Settings(_env_file=None, data_dir=data_dir))) as running:
        yield running


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_healthz_reports_the_index(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["chunks"] >= 200 and body["pack_issues"] == 0


def test_ask_returns_answer_first_with_citations_and_intent(client):
    body = client.post("/api/ask", json={"question": "小票打印机打出来是空白的怎么办", "role": "support"}).json()
    assert set(body) >= {"answer", "grounded", "citations", "intent", "choices", "actions"}
    assert body["grounded"] and body["citations"][0]["kind"] == "faq"
    assert set(body["citations"][0]) == {"id", "kind", "source", "title", "text", "score"}
    assert set(body["intent"]) == {"role", "task", "slots"}


def test_search_endpoint_filters_by_kind(client):
    body = client.post("/api/search", json={"query": "成都茶饮连锁", "kinds": ["case"], "k": 3}).json()
    assert body["query"] == "成都茶饮连锁"
    assert [r["kind"] for r in body["results"]] == ["case"] * 3


@pytest.mark.parametrize("payload,status", [
    ('{"question": ', 422),
    ('{"role": "sales"}', 422),
    ('{"question": "", "role": "sales"}', 422),
    ('{"question": "   ", "role": "sales"}', 400),
    ('{"question": "' + "长" * 2001 + '", "role": "sales"}', 422),
    ('{"question": "你好", "role": "ceo"}', 422),
])
def test_bad_requests_get_4xx_with_a_json_error(client, payload, status):
    response = client.post("/api/ask", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_unknown_model_is_404_with_openai_style_error(client):
    response = client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 404
    assert "copilot-support" in response.json()["error"]["message"]


def test_keys_are_required_when_configured(keyed):
    assert keyed.post("/api/ask", json={"question": "你好", "role": "sales"}).status_code == 401
    assert keyed.post("/api/ask", json={"question": "你好", "role": "sales"}, headers=auth("nope")).status_code == 401


def test_a_key_cannot_act_as_another_role(keyed):
    response = keyed.post("/api/ask", json={"question": "你好", "role": "sales"}, headers=auth("support-key"))
    assert response.status_code == 403 and "support" in response.json()["error"]["message"]


def test_support_key_never_sees_internal_knowledge(keyed):
    internal = {"audience": "internal"}
    for headers, allowed in ((auth("support-key"), False), (auth("admin-key"), True)):
        body = keyed.post("/api/search", json={"query": "折扣审批 内部 价格底线", "k": 20}, headers=headers).json()
        sources = {r["source"] for r in body["results"]}
        chunks = keyed.app.state.copilot.retriever
        has_internal = any((chunks.chunk(r["id"]).meta or {}).get("audience") == internal["audience"]
                           for r in body["results"])
        assert has_internal is allowed, sources


def test_models_list_one_per_role(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    assert {m.id for m in client.models.list()} == {"copilot-sales", "copilot-csm", "copilot-support"}


def test_openai_client_gets_answer_with_footnotes_and_sources(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="copilot-support", messages=[{"role": "user", "content": "顾客付款码扫了一直超时怎么办"}])
    content = completion.choices[0].message.content
    assert "来源：" in content and "[1]" in content
    extra = completion.model_extra["copilot"]
    assert extra["grounded"] and extra["citations"][0]["kind"] == "faq"


def test_openai_client_streams_and_ends_with_sources(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="copilot-csm", stream=True, messages=[{"role": "user", "content": "续费应该由谁负责？"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and "客户成功经理" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["copilot"]["citations"]


def test_multi_turn_earlier_turns_inform_the_intent(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    completion = client.chat.completions.create(model="copilot-sales", messages=[
        {"role": "user", "content": "我在跟成都一家奶茶连锁谈"},
        {"role": "assistant", "content": "好的。"},
        {"role": "user", "content": "有没有同行案例？"},
    ])
    slots = completion.model_extra["copilot"]["intent"]["slots"]
    assert (slots["city"], slots["industry"]) == ("成都", "茶饮")
    assert completion.model_extra["copilot"]["citations"][0]["kind"] == "case"


def test_langchain_chat_openai_invoke_and_stream(server):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="copilot-support", base_url=server.url + "/v1", api_key="unused", max_retries=0)
    reply = chat.invoke("会员积分可以设置有效期吗")
    assert "[1]" in reply.content
    streamed = "".join(str(chunk.content) for chunk in chat.stream("会员积分可以设置有效期吗"))
    assert streamed == reply.content


def test_admin_promotes_a_real_question_into_the_eval_set(keyed, data_dir):
    from copilot.evals import load_questions

    body = {"question": "收银机周末老是掉线怎么办", "role": "support", "expected_sources": ["faq-pos-001"]}
    assert keyed.post("/api/evals/promote", json=body, headers=auth("support-key")).status_code == 403
    response = keyed.post("/api/evals/promote", json=body, headers=auth("admin-key"))
    assert response.status_code == 201
    promoted = load_questions([data_dir / "evals" / "promoted.yaml"])
    assert [(q.question, q.expected_sources) for q in promoted] == [(body["question"], ["faq-pos-001"])]
    keyed.post("/api/evals/promote", json=body, headers=auth("admin-key"))  # promoting twice keeps one
    assert len(load_questions([data_dir / "evals" / "promoted.yaml"])) == 1
