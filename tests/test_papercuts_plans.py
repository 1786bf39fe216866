"""Success plans: every named key person shows up, and a plan drafted in chat carries the customer's name."""

from __future__ import annotations

from datetime import date

import pytest

from copilot.workflows.plans import KeyPerson, PlanCustomer, customer_name_from_text, draft_plan, render_plan
from workflow_fixtures import real_copilot  # noqa: F401 - fixture


def bakery(*people: KeyPerson, **changes) -> PlanCustomer:
    fields = dict(name="杭州麦香烘焙（示例）", industry="烘焙", city="杭州", annual_fee=200_000,
                  products=["云铺收银", "云铺会员"], goals=["提升会员复购"], signing_date=date(2025, 3, 1),
                  key_people=list(people))
    return PlanCustomer(**{**fields, **changes})


def test_a_key_person_whose_title_fits_no_role_is_still_in_the_plan(real_copilot):
    plan = draft_plan(real_copilot, bakery(KeyPerson(name="陈总", title="总经理"),
                                           KeyPerson(name="周敏", title="品牌总监"),
                                           KeyPerson(name="小林", title="", side="我方")))
    assert [p.name for p in plan.other_people] == ["周敏", "小林"]
    markdown = render_plan(real_copilot.prompts, plan)
    line = next(line for line in markdown.splitlines() if line.startswith("其他关键人："))
    assert "周敏（客户方·品牌总监）" in line and "小林（我方）" in line and "陈总" not in line
    assert "|\n\n其他关键人：" in markdown  # after the owners table, not a row of it


def test_a_second_person_for_a_filled_role_is_listed_too(real_copilot):
    plan = draft_plan(real_copilot, bakery(KeyPerson(name="陈总", title="总经理"), KeyPerson(name="吴总", title="总经理")))
    assert {o.role: o.person for o in plan.owners}["老板/总经理"] == "陈总"
    assert [p.name for p in plan.other_people] == ["吴总"]


def test_everyone_placed_means_no_extra_line(real_copilot):
    plan = draft_plan(real_copilot, bakery(KeyPerson(name="陈总", title="总经理")))
    assert plan.other_people == []
    assert "其他关键人" not in render_plan(real_copilot.prompts, plan)


@pytest.mark.parametrize("question, name", [
    ("帮麦香坊（杭州烘焙连锁，年费18万）出一份成功计划", "麦香坊"),
    ("给客户「蜀茶坊」起草客户成功计划，成都奶茶连锁", "蜀茶坊"),
    ("做一份麦香坊的客户成功计划", "麦香坊"),
    ("客户叫麦香坊，杭州烘焙连锁，帮我出个成功计划", "麦香坊"),
    ("帮 ABC Coffee 做一份成功计划", "ABC Coffee"),
    ("帮我起草一份成功计划", None),
    ("给杭州这家中型烘焙连锁起草客户成功计划", None),
    ("帮我给成都一家中型火锅连锁出一份客户成功计划", None),
    ("给深圳一家年费30万的运动户外连锁起草客户成功计划", None),
    ("给刚签的客户做成功计划，里面必须写哪几块内容", None),
    ("帮杭州烘焙连锁出一份成功计划", None),
    ("定期给客户管理层出数据报告", None),
])
def test_the_customer_name_in_a_chat_question(question, name):
    assert customer_name_from_text(question) == name


def test_a_plan_named_from_the_question_is_titled_with_it(real_copilot):
    customer = bakery(name=customer_name_from_text("帮麦香坊（杭州烘焙连锁，年费18万）出一份成功计划"))
    assert render_plan(real_copilot.prompts, draft_plan(real_copilot, customer)).startswith("# 麦香坊 · 联合客户成功计划")


def test_a_plan_drafted_in_chat_carries_the_customer_name(real_copilot):
    from copilot.pipeline import answer

    response = answer(real_copilot.deps, "帮麦香坊（杭州烘焙连锁，年费18万）出一份成功计划", "csm")
    assert response.answer.startswith("# 麦香坊 · 联合客户成功计划")
