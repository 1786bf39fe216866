"""Asking about the company's own customers in chat: one account ("麦香坊现在怎么样？", either script) or
the book ("哪些客户续费风险高？") is answered from the imported accounts, with the same health, risk and
next best actions as the accounts API; practice questions about renewal still go to the knowledge."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from copilot.accounts.sample import MAIXIANGFANG, write_sample_sheets
from copilot.api.app import create_app
from tests.conftest import build_settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("account-answers")
    write_sample_sheets(root / "demo")
    app = create_app(build_settings(root, data_dir=root / "data"))
    with TestClient(app) as test_client:
        app.state.copilot.ingest([str(root / "demo")])
        yield test_client


def ask(client, question: str, role: str = "csm") -> dict:
    response = client.post("/api/ask", json={"question": question, "role": role})
    assert response.status_code == 200, response.text
    return response.json()


def test_how_is_an_account_doing_answers_from_its_data_in_either_script(client):
    bakery = client.get("/api/accounts", params={"q": "麦香坊"}).json()["items"][0]
    detail = client.get(f"/api/accounts/{bakery['id']}").json()["insight"]
    for question in ("麦香坊现在怎么样？", "麥香坊現在怎麼樣？", "how is 麦香坊 doing"):
        reply = ask(client, question)
        assert reply["intent"]["task"] == "account_insight", question
        text = reply["answer"]
        assert MAIXIANGFANG in text and "续费风险**高**" in text
        assert detail["renewal_risk"]["drivers"][0]["reason"] in text  # the same reason the API gives
        assert detail["next_best_actions"][0]["title"] in text and "下一步建议" in text
        assert "示例数据" in text and reply["citations"] == []


def test_which_customers_are_at_risk_lists_the_riskiest_first(client):
    book = client.get("/api/accounts", params={"sort": "risk", "risk": "高", "limit": 500}).json()["items"]
    open_book = [a for a in book if a["outcome"] is None]
    reply = ask(client, "哪些客户续费风险高？")
    assert reply["intent"]["task"] == "account_insight"
    text = reply["answer"]
    assert text.index(open_book[0]["name"]) < text.index(open_book[1]["name"])
    assert open_book[0]["risk_summary"] in text and f"{len(open_book)} 个续费风险高" in text
    for question in ("Which accounts are at risk of churn?", "我的客户里谁最可能流失", "列出高风险客户"):
        assert ask(client, question, role="sales")["intent"]["task"] == "account_insight", question


def test_practice_questions_and_issues_of_an_account_still_go_to_the_knowledge(client):
    for question in ("客户续费率低怎么办？", "续费前多久开始准备", "麦香坊的小票打印机不出纸",
                     "上半年丢了十几家客户，流失原因分析还应该往哪几层去挖？"):
        assert ask(client, question, role="support")["intent"]["task"] != "account_insight", question


def test_without_accounts_the_answer_says_how_to_bring_them_in(tmp_path):
    app = create_app(build_settings(tmp_path, data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        reply = ask(client, "哪些客户续费风险高？")
    assert reply["intent"]["task"] == "account_insight" and "copilot ingest" in reply["answer"]


def test_readers_of_public_knowledge_only_get_no_account_data(client):
    """Health, renewal risk and owners are internal: a caller limited to public knowledge (a support
    person, a chat channel, the widget) is not answered from the accounts."""
    from copilot import pipeline

    copilot = client.app.state.copilot
    for question in ("哪些客户续费风险高？", "麦香坊现在怎么样？"):
        reply = pipeline.answer(copilot.deps, question, "support", audiences=["public"])
        assert reply.intent.task != "account_insight", question
        assert "续费风险**高**" not in reply.answer and "个续费风险高" not in reply.answer, question
        assert pipeline.answer(copilot.deps, question, "csm", audiences=["public", "internal"]).intent.task \
            == "account_insight", question
