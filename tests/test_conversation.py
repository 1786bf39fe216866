"""Conversations: a follow-up inherits what the earlier turns established (task, customer, topic)
unless it says otherwise, through the real pipeline, /api/ask and the OpenAI-compatible endpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from copilot import conversation
from copilot.api.app import create_app
from copilot.conversation import Turn
from copilot.intent import IntentClassifier
from copilot.knowledge.pack import load_pack
from copilot.models import Slots
from copilot.normalize import normalize
from copilot.pipeline import answer
from copilot.service import Copilot
from copilot.settings import Settings
from tests.conftest import PACK_DIR
from tests.llm_server import ServerThread, start_llm
from tests.multiturn_eval import MULTITURN_TEST, load_cases, score

BAKERY_HANGZHOU = "杭州有没有做烘焙的客户案例？"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("conversation")


@pytest.fixture(scope="module")
def copilot(data_dir) -> Copilot:
    return Copilot(Settings(_env_file=None, data_dir=data_dir))


@pytest.fixture(scope="module")
def reader() -> IntentClassifier:
    """The real slot vocabulary; reading mentions needs no example vectors."""
    return IntentClassifier(load_pack(PACK_DIR), np.zeros((0, 1)))


def case_place(copilot: Copilot, source: str) -> tuple[str, str]:
    case = copilot.pack.case(source)
    return case.city, copilot.pack.rules.region_for_province(case.province)


# Pure functions ---------------------------------------------------------------------------------
def test_a_new_city_replaces_the_old_one_in_the_standalone_query(reader):
    resolved = conversation.resolve("那上海的呢？", [BAKERY_HANGZHOU], reader)
    assert resolved.followup and resolved.query == "上海有没有做烘焙的客户案例?"


def test_follow_ups_chain_and_a_new_subject_keeps_the_setting(reader):
    chained = conversation.resolve("中型的呢？", [BAKERY_HANGZHOU, "那上海的呢？"], reader)
    assert "上海" in chained.query and "中型" in chained.query and "杭州" not in chained.query
    refund = conversation.resolve("那退款呢？", ["收银台扫码支付失败怎么办？"], reader)
    assert refund.followup and refund.query.startswith("退款") and "支付失败" not in refund.query
    target = conversation.resolve("如果达不到呢？", ["续费率目标定多少合适？"], reader)
    assert target.query.startswith("续费率目标定多少合适") and "达不到" in target.query


@pytest.mark.parametrize("question", ["会员积分什么时候过期？", "续费应该由谁负责？", "帮我起草一份成功计划",
                                      "那个打印机不出纸怎么办？"])
def test_a_question_with_a_topic_of_its_own_is_not_a_follow_up(reader, question):
    resolved = conversation.resolve(question, [BAKERY_HANGZHOU], reader)
    assert not resolved.followup and resolved.query == normalize(question)


def test_slots_are_overridden_group_by_group_and_urgency_is_the_current_messages():
    earlier = [Slots(industry="烘焙", city="杭州", province="浙江", region="华东", tier="中型", account_tier="中型",
                     urgency="urgent")]
    merged = conversation.inherit(earlier, Slots(city="上海", province="上海", region="华东"))
    assert (merged.industry, merged.city, merged.province, merged.tier, merged.urgency) == \
        ("烘焙", "上海", "上海", "中型", "normal")
    by_province = conversation.inherit(earlier, Slots(province="江苏", region="华东"))
    assert (by_province.city, by_province.province) == (None, "江苏")


def test_history_takes_strings_and_role_objects_and_keeps_the_last_turns():
    history = [{"role": "system", "content": "客户是成都的奶茶连锁"}] + [f"问题{i}" for i in range(10)] + \
        [Turn(role="assistant", content="好的")]
    turns = conversation.turns(history)
    assert turns[0].role == "system" and len(turns) == 1 + conversation.MAX_TURNS
    assert [t.content for t in turns[1:]] == ["问题5", "问题6", "问题7", "问题8", "问题9", "好的"]
    assert str(turns[-1]) == "助手：好的"


# Through the real pipeline ----------------------------------------------------------------------
def test_other_city_follow_up_keeps_the_case_search_and_the_industry(copilot):
    response = answer(copilot.deps, "那上海的呢？", "sales", history=[BAKERY_HANGZHOU])
    slots = response.intent.slots
    assert response.grounded and response.intent.task == "find_cases"
    assert (slots.industry, slots.city, slots.province, slots.region) == ("烘焙", "上海", "上海", "华东")
    assert response.citations[0].source == "case-bakery-shanghai-01"
    assert all(case_place(copilot, c.source)[1] == "华东" for c in response.citations if c.kind == "case")
    assert "小满" not in response.answer.split("\n")[0]  # no Hangzhou case leads the answer


def test_other_size_follow_up_keeps_the_success_plan_topic(copilot):
    response = answer(copilot.deps, "那小微客户呢？", "csm", history=["中型客户的成功计划怎么做？"])
    assert response.grounded and response.intent.slots.tier == "小微"
    assert response.citations[0].source in {"pb-one-to-one-vs-one-to-n", "faq-cs-006", "pb-success-plan"}
    plan = answer(copilot.deps, "那小微客户呢？", "csm", history=["给杭州这家中型烘焙连锁起草客户成功计划"])
    assert plan.intent.task == "draft_plan"
    assert (plan.intent.slots.tier, plan.intent.slots.industry, plan.intent.slots.city) == ("小微", "烘焙", "杭州")
    assert "1:N" in plan.answer or "一对多" in plan.answer


def test_conditional_follow_up_keeps_the_renewal_topic(copilot):
    response = answer(copilot.deps, "如果达不到呢？", "csm", history=["续费率目标定多少合适？"])
    assert response.grounded
    assert {c.source for c in response.citations} & {"pb-low-renewal-root-cause", "pb-csm-renewal-kpi"}


def test_a_new_question_does_not_inherit_the_topic(copilot):
    response = answer(copilot.deps, "免费试用一般给客户开多长时间？", "sales", history=[BAKERY_HANGZHOU])
    assert response.grounded and response.intent.task != "find_cases"
    assert response.citations[0].source in {"pb-free-trial", "faq-sales-003"}
    assert not any(c.kind == "case" for c in response.citations)
    assert response.intent.slots.industry == "烘焙"  # who the customer is still carries over


def test_support_follow_up_answers_the_new_subject_without_raising_the_old_alarm(copilot):
    urgent = "我们是年费200万的大客户，所有门店都无法收银了，紧急！"
    response = answer(copilot.deps, "那小票打印机呢？", "support", history=[urgent])
    assert response.intent.task == "faq" and response.actions == []
    assert response.citations[0].source == "faq-pos-007"
    refund = answer(copilot.deps, "那退款呢？", "support", history=["收银台扫码支付失败怎么办？"])
    assert refund.citations[0].source in {"faq-pos-005", "faq-pos-004"}


def test_multi_turn_eval_set_scores_through_the_pipeline(copilot):
    cases = load_cases()
    assert len(cases) >= 32 and {c.role for c in cases} == {"sales", "csm", "support"}
    share, results = score(copilot.deps, cases)
    print(f"multi-turn score {share:.3f}")
    assert share >= 0.9, [r for r in results if not r.passed]


def test_held_out_follow_ups_do_not_regress(copilot):
    """The test split's follow-ups were written apart from the code and never tuned on: a guard
    against regressions, at the level first measured (28 / 36 = 0.778), not a goal."""
    cases = load_cases(MULTITURN_TEST)
    assert len(cases) >= 30
    share, results = score(copilot.deps, cases)
    print(f"held-out multi-turn score {share:.3f}")
    assert share >= 0.75, [r for r in results if not r.passed]


# HTTP: /api/ask and the OpenAI-compatible endpoint ---------------------------------------------
@pytest.fixture(scope="module")
def client(data_dir, copilot):
    with TestClient(create_app(Settings(_env_file=None, data_dir=data_dir))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(data_dir, copilot):
    with ServerThread(create_app(Settings(_env_file=None, data_dir=data_dir))) as running:
        yield running


@pytest.mark.parametrize("history", [
    [BAKERY_HANGZHOU],
    [{"role": "user", "content": BAKERY_HANGZHOU}, {"role": "assistant", "content": "为你找到 3 个杭州的烘焙案例。"}],
])
def test_api_ask_takes_history_as_strings_or_role_objects(client, history):
    body = client.post("/api/ask", json={"question": "那上海的呢？", "role": "sales", "history": history}).json()
    assert body["intent"]["task"] == "find_cases"
    assert (body["intent"]["slots"]["industry"], body["intent"]["slots"]["city"]) == ("烘焙", "上海")


def test_api_ask_rejects_a_turn_with_an_unknown_role(client):
    response = client.post("/api/ask", json={"question": "那上海的呢？", "role": "sales",
                                             "history": [{"role": "boss", "content": "x"}]})
    assert response.status_code == 422


def test_openai_follow_up_reads_system_and_assistant_turns_and_reports_usage(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    completion = client.chat.completions.create(model="copilot-sales", messages=[
        {"role": "system", "content": "你在协助销售。客户是成都的一家奶茶连锁。"},
        {"role": "user", "content": "有没有同行案例？"},
    ])
    extra = completion.model_extra["copilot"]
    assert (extra["intent"]["slots"]["city"], extra["intent"]["slots"]["industry"]) == ("成都", "茶饮")
    assert extra["citations"][0]["source"].startswith("case-tea-chengdu")
    usage = completion.usage
    assert usage.prompt_tokens >= len("你在协助销售。客户是成都的一家奶茶连锁。有没有同行案例？") - 4
    assert usage.completion_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    follow_up = client.chat.completions.create(model="copilot-sales", messages=[
        {"role": "user", "content": BAKERY_HANGZHOU},
        {"role": "assistant", "content": completion.choices[0].message.content},
        {"role": "user", "content": "那上海的呢？"},
    ])
    extra = follow_up.model_extra["copilot"]
    assert extra["intent"]["task"] == "find_cases" and extra["intent"]["slots"]["city"] == "上海"
    assert extra["citations"][0]["source"] == "case-bakery-shanghai-01"


def test_openai_stream_reports_usage_when_asked(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    chunks = list(client.chat.completions.create(model="copilot-csm", stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "续费应该由谁负责？"}]))
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > chunks[-1].usage.prompt_tokens > 0


def test_assistant_turns_reach_an_llm_composer_as_context(data_dir, copilot):
    script, llm = start_llm()
    with llm:
        settings = Settings(_env_file=None, data_dir=data_dir, llm_model="test-model", llm_base_url=llm.url + "/v1",
                            llm_api_key="test", llm_max_retries=0)
        with ServerThread(create_app(settings)) as app:
            from openai import OpenAI

            script.push(json.dumps({"task": "find_cases", "slots": {"city": "上海"}}), "上海有一家面包连锁可参考[1]。")
            OpenAI(base_url=app.url + "/v1", api_key="unused").chat.completions.create(model="copilot-sales", messages=[
                {"role": "user", "content": BAKERY_HANGZHOU},
                {"role": "assistant", "content": "杭州有小满面包工坊等 3 个案例。"},
                {"role": "user", "content": "那上海的呢？"},
            ])
    sent = json.dumps(script.requests[-1]["messages"], ensure_ascii=False)
    assert "助手：杭州有小满面包工坊等 3 个案例。" in sent and "用户：" + BAKERY_HANGZHOU in sent
