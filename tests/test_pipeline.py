"""The ask pipeline on the real sample pack, template mode: answer first, citations, honest
'not found' with choices, andon escalation as a stored proposal."""

from __future__ import annotations

import pytest

from copilot.models import Customer
from copilot.pipeline import answer
from copilot.service import Copilot


@pytest.fixture(scope="module")
def copilot(tmp_path_factory) -> Copilot:
    from copilot.settings import Settings

    return Copilot(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("pipeline")))


def ask(copilot: Copilot, question: str, role: str = "support", **kwargs):
    return answer(copilot.deps, question, role, **kwargs)


def test_faq_question_returns_the_faq_answer_verbatim_with_its_citation(copilot):
    faq = next(f for f in copilot.pack.faqs if f.id == "faq-pos-001")
    response = ask(copilot, faq.variants[0])
    assert response.grounded
    assert response.citations[0].id == faq.id
    assert response.answer == faq.answer
    assert response.intent.task in ("faq", "escalation")


def test_traditional_and_simplified_questions_cite_the_same_faq(copilot):
    simplified = ask(copilot, "会员积分怎么设置过期时间")
    traditional = ask(copilot, "會員積分怎麼設置過期時間")
    assert simplified.citations and traditional.citations
    assert simplified.citations[0].id == traditional.citations[0].id


def test_practice_question_answers_with_sentences_not_whole_chunks(copilot):
    response = ask(copilot, "规模化阶段扩张节奏怎么把握？", role="csm")
    assert response.grounded
    assert response.citations[0].id == "pb-scaling-rhythm"
    assert "NDR" in response.answer
    assert len(response.answer) < sum(len(c.text) for c in response.citations)
    markers = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", response.answer)}
    assert markers and markers <= set(range(1, len(response.citations) + 1))  # each marker names a shown source


def test_faq_answers_practice_questions_it_covers(copilot):
    response = ask(copilot, "续费应该由谁来负责？", role="csm")
    assert response.grounded
    assert response.citations[0].kind == "faq"
    assert "客户成功经理" in response.answer


def test_out_of_scope_question_is_not_answered_and_offers_no_made_up_content(copilot):
    response = ask(copilot, "帮我写一首关于秋天落叶的七言诗")
    assert response.grounded is False
    assert response.citations == []
    assert "没有找到" in response.answer


def test_sales_case_question_ranks_peers_and_says_why(copilot):
    response = ask(copilot, "杭州的烘焙连锁，年费十几万，有没有同行案例？", role="sales")
    assert response.intent.task == "find_cases"
    assert response.intent.slots.city == "杭州" and response.intent.slots.industry == "烘焙"
    assert response.citations[0].kind == "case"
    assert "同行业（烘焙）" in response.answer and "同城（杭州）" in response.answer


def test_customer_profile_overrides_guessed_slots(copilot):
    response = ask(copilot, "有没有同行的成功案例？", role="sales",
                   customer=Customer(industry="茶饮", city="成都", annual_fee=30000))
    slots = response.intent.slots
    assert (slots.industry, slots.city, slots.province, slots.tier) == ("茶饮", "成都", "四川", "中小")


def test_urgent_issue_of_key_account_proposes_an_escalation_ticket(copilot):
    response = ask(copilot, "我们是大客户，所有门店都无法收银了，紧急！")
    assert response.intent.slots.urgency == "urgent"
    tickets = [a for a in response.actions if a.type == "escalation_ticket"]
    assert len(tickets) == 1
    assert tickets[0].status == "proposed"
    assert tickets[0].arguments["sla_minutes"] == 30
    assert "安灯" in response.answer
    stored = copilot.actions.get(tickets[0].id)
    assert stored is not None and stored["status"] == "proposed"


def test_urgent_issue_of_small_account_gets_no_andon(copilot):
    response = ask(copilot, "小店收银机打不开了，紧急", customer=Customer(annual_fee=3000))
    assert response.intent.slots.account_tier == "小微"
    assert response.actions == []


@pytest.mark.parametrize("question", ["", "   ", "问" * 2001])
def test_bad_questions_get_a_clear_error(copilot, question):
    from copilot.errors import InvalidInput

    with pytest.raises(InvalidInput):
        ask(copilot, question)


def test_every_question_lands_in_the_audit_trail(copilot):
    ask(copilot, "小票打印机打不出字怎么办", actor="tester")
    entries = copilot.audit.entries(event="ask")
    assert any(e["actor"] == "tester" and "打印机" in e["payload"]["question"] for e in entries)


def test_urgency_of_an_earlier_turn_does_not_escalate_a_follow_up(copilot):
    history = ["我们是年费200万的大客户，所有门店都无法收银，紧急！"]
    response = ask(copilot, "你们支持海外门店用美元结算吗？", history=history)
    assert response.intent.slots.urgency == "normal"
    assert response.intent.slots.account_tier == "大型"  # who the customer is carries over
    assert response.actions == []


def test_support_questions_are_classified_into_the_service_matrix(copilot):
    standard = ask(copilot, "小票打印机打出来是空白的怎么办")
    assert standard.classification.category == "收银"
    assert standard.classification.standardized and standard.classification.urgency == "normal"
    assert standard.classification.service_mode == "被动服务"
    urgent = ask(copilot, "我们是大客户，所有门店都无法收银了，紧急！")
    assert urgent.classification.urgency == "urgent"
    assert urgent.classification.service_mode.startswith(("被动服务（加速）", "主动服务（安灯）"))


def test_asking_for_a_plan_delivers_the_plan_itself(copilot):
    response = ask(copilot, "给杭州这家中型烘焙连锁起草客户成功计划", role="csm")
    assert response.intent.task == "draft_plan"
    assert response.grounded
    assert "价值里程碑" in response.answer and "快速见效" in response.answer and "烘焙" in response.answer


# Step 5: understanding real frontline questions, and knowing when not to answer -----------------
def test_near_domain_question_outside_the_knowledge_is_declined_plainly(copilot):
    # Shares words with the refund and invoice FAQs, but is about the company's own expenses.
    response = ask(copilot, "出差住酒店的钱怎么报销，要填什么单子？", "support")
    assert not response.grounded and response.citations == []
    assert "没有找到" in response.answer and response.intent.task == "out_of_scope"


def test_typos_and_homophones_of_domain_words_still_find_the_answer(copilot):
    right = ask(copilot, "收银机打不出小票", "support")
    typo = ask(copilot, "收银鸡打不出小票", "support")
    assert typo.grounded and typo.citations[0].id == right.citations[0].id == "faq-pos-007"


def test_a_situation_described_in_frontline_words_finds_the_playbook(copilot):
    # No concept named: a playbook's situations are embedded on their own.
    response = ask(copilot, "销售和CSM都说这单增购是自己的，到底算谁的？", "sales")
    assert response.grounded
    assert {c.id for c in response.citations} & {"pb-upsell-as-new-sale", "pb-upsell-cross-sell-owner", "faq-cs-003"}


def test_practice_answer_leads_with_the_conclusion_not_a_fragment(copilot):
    response = ask(copilot, "续费到底该谁负责？", "csm")
    first = response.answer.split("\n")[0]
    assert "客户成功经理" in first or "CSM" in first
    assert not first.rstrip("[]0123456789").endswith(("：", ":"))


def test_a_plan_request_is_routed_to_the_plan_without_composing_an_answer(copilot):
    response = ask(copilot, "给杭州这家中型烘焙连锁起草客户成功计划", "csm")
    assert response.grounded and response.intent.task == "draft_plan"
    assert "里程碑" in response.answer or "首次价值" in response.answer
