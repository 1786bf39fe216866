"""LLM mode against a local OpenAI-protocol server with scripted replies: grounded drafts are
served, bad citations are re-asked once, and every failure falls back to the template answer."""

from __future__ import annotations

import json

import pytest

from copilot.pipeline import answer
from copilot.service import Copilot
from copilot.settings import Settings
from tests.llm_server import free_port, start_llm

PRACTICE = "规模化阶段扩张节奏怎么把握？"  # answered by a playbook, so the LLM composes
INTENT = json.dumps({"task": "practice_question", "slots": {"industry": None, "urgency": "normal"}})


@pytest.fixture(scope="module")
def llm():
    script, server = start_llm()
    with server:
        yield script, server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("llm")


def make_copilot(data_dir, base_url: str, timeout: float = 5.0) -> Copilot:
    settings = Settings(_env_file=None, data_dir=data_dir, llm_model="test-model", llm_base_url=base_url,
                        llm_api_key="test", llm_timeout_s=timeout, llm_max_retries=0)
    return Copilot(settings)


@pytest.fixture
def copilot(llm, data_dir):
    script, server = llm
    script.replies.clear()
    script.requests.clear()
    return make_copilot(data_dir, server.url + "/v1")


def test_grounded_llm_draft_is_served_with_its_citations(llm, copilot):
    script, _ = llm
    script.push(INTENT, "扩张节奏要看 UE 和 NDR：NDR 低于 80% 时不做大规模扩编[1]。")
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.composer == "llm" and not response.llm_fallback
    assert response.answer.startswith("扩张节奏要看 UE 和 NDR")
    assert response.citations[0].id == "pb-scaling-rhythm"
    sent = json.dumps(script.requests[-1]["messages"], ensure_ascii=False)
    assert "NDR" in sent and "[1]" in sent  # the evidence went to the model, numbered


def test_llm_reads_the_intent_into_the_same_type(llm, copilot):
    script, _ = llm
    script.push(json.dumps({"task": "find_cases", "slots": {"industry": "茶饮", "city": "成都"}}), "好的[1]")
    response = answer(copilot.deps, "帮我看看有什么可以参考的", "sales")
    assert response.intent.task == "find_cases"
    assert (response.intent.slots.industry, response.intent.slots.city) == ("茶饮", "成都")


def test_invalid_intent_json_falls_back_to_the_offline_classifier(llm, copilot):
    script, _ = llm
    script.push("这不是 JSON", "扩张要看 NDR[1]。")
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.intent.task == "practice_question"
    assert response.composer == "llm"


def test_draft_without_citations_is_reasked_once(llm, copilot):
    script, _ = llm
    script.push(INTENT, "扩张节奏看心情。", "扩张节奏由 NDR 决定[1]。")
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.composer == "llm"
    assert response.answer == "扩张节奏由 NDR 决定[1]。"
    reask = script.requests[-1]["messages"][-1]["content"]
    assert "没有标注任何出处编号" in reask


def test_draft_citing_missing_evidence_twice_falls_back_to_the_template(llm, copilot):
    script, _ = llm
    script.push(INTENT, "见资料[9]。", "还是见资料[9]。")
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.composer == "template" and response.llm_fallback
    assert "[9]" not in response.answer
    assert response.citations[0].id == "pb-scaling-rhythm"


def test_endpoint_error_falls_back_to_the_template(llm, copilot):
    script, _ = llm
    script.push(INTENT, {"status": 500})
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.llm_fallback and response.grounded and response.citations


def test_slow_endpoint_times_out_to_the_template(llm, data_dir):
    script, server = llm
    script.replies.clear()
    script.push({"sleep": 3, "text": INTENT}, {"sleep": 3, "text": "太慢了[1]"})
    copilot = make_copilot(data_dir, server.url + "/v1", timeout=0.5)
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.llm_fallback and "太慢了" not in response.answer


def test_unreachable_endpoint_still_answers(data_dir):
    copilot = make_copilot(data_dir, f"http://127.0.0.1:{free_port()}/v1", timeout=1)
    response = answer(copilot.deps, PRACTICE, "csm")
    assert response.grounded and response.llm_fallback


def test_matched_faq_is_served_verbatim_without_asking_the_llm(llm, copilot):
    script, _ = llm
    script.push(json.dumps({"task": "faq", "slots": {}}))
    faq = next(f for f in copilot.pack.faqs if f.id == "faq-pos-001")
    response = answer(copilot.deps, faq.variants[0], "support")
    assert response.answer == faq.answer
    asked = [r for r in script.requests if faq.variants[0] in json.dumps(r["messages"], ensure_ascii=False)]
    assert asked and all("response_format" in r for r in asked)  # only the intent call, no compose call
