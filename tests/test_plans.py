"""CSM workflow: a joint success plan assembled from plan_templates.yaml, dated from the signing day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from copilot.errors import ConfigError, InvalidInput
from copilot.workflows.plans import (KeyPerson, PlanCustomer, draft_plan, evaluate, propose_plan_action,
                                     render_plan)
from workflow_fixtures import real_copilot  # noqa: F401 - fixture

SIGNED = date(2025, 3, 1)


def bakery(**changes) -> PlanCustomer:
    fields = dict(name="杭州麦香烘焙（示例）", industry="烘焙", city="杭州", annual_fee=200_000,
                  products=["云铺收银", "云铺会员"], goals=["提升会员复购"], signing_date=SIGNED,
                  key_people=[KeyPerson(name="王芳", title="客户成功经理", side="我方"),
                              KeyPerson(name="陈总", title="总经理", side="客户方"),
                              KeyPerson(name="李娜", title="会员营销主管", side="客户方")])
    fields.update(changes)
    return PlanCustomer(**fields)


@pytest.fixture(scope="module")
def plan(real_copilot):
    return draft_plan(real_copilot, bakery())


def test_outcome_and_first_value_follow_the_goals(plan, real_copilot):
    outcome = next(o for o in real_copilot.pack.plan_templates.outcomes if o.key == "复购")
    assert plan.tier == "中型" and plan.outcomes == ["复购"]
    assert plan.desired_outcome == outcome.desired_outcome
    assert plan.first_value.date == SIGNED + timedelta(days=outcome.first_value_days)


def test_milestones_are_dated_from_the_signing_date(plan):
    assert len(plan.milestones) >= 3
    for m in plan.milestones:
        assert m.date == SIGNED + timedelta(days=m.day)
    assert [m.day for m in plan.milestones] == sorted(m.day for m in plan.milestones)


def test_at_most_two_quick_wins_chosen_by_the_score(plan, real_copilot):
    templates = real_copilot.pack.plan_templates
    formula = templates.scoring.formula
    eligible = [q for q in templates.quick_wins
                if ({"复购"} & set(q.for_goals) or "default" in q.for_goals)
                and set(q.products) <= {"云铺收银", "云铺会员"}]
    best = max(evaluate(formula, q) for q in eligible)
    assert 1 <= len(plan.quick_wins) <= templates.scoring.pick <= 2
    assert plan.quick_wins[0].score == pytest.approx(best)
    assert [q.score for q in plan.quick_wins] == sorted((q.score for q in plan.quick_wins), reverse=True)
    chosen = {q.title for q in plan.quick_wins}
    assert all(evaluate(formula, q) <= min(w.score for w in plan.quick_wins) for q in eligible if q.title not in chosen)
    for q in plan.quick_wins:
        assert q.score == pytest.approx(q.impact * q.probability / q.resources)
        assert q.due == SIGNED + timedelta(days=q.days)


def test_quick_wins_need_the_products_the_customer_bought(real_copilot):
    only_pos = draft_plan(real_copilot, bakery(products=["云铺收银"]))
    assert all(set(q.products) <= {"云铺收银"} for q in only_pos.quick_wins)


def test_owners_on_both_sides_use_key_people_whose_title_fits(plan):
    sides = {o.side for o in plan.owners}
    assert sides == {"我方", "客户方"}
    by_role = {o.role: o for o in plan.owners}
    assert by_role["客户成功经理"].person == "王芳"
    assert by_role["老板/总经理"].person == "陈总"
    assert by_role["会员运营"].person == "李娜"
    assert by_role["实施顾问"].person is None  # no key person fits: the role name stands
    for owner in plan.owners:
        if owner.tasks:
            assert owner.next_deadline == min(t.due for t in owner.tasks)
    assert any(m.owner_client == "李娜（会员运营）" for m in plan.milestones)


def test_a_title_never_fills_a_role_on_the_other_side(real_copilot):
    plan = draft_plan(real_copilot, bakery(key_people=[KeyPerson(name="赵六", title="客户成功经理", side="客户方")]))
    assert {o.role: o.person for o in plan.owners}["客户成功经理"] is None


@pytest.mark.parametrize("tier, style, every", [("大型", "1:1", 30), ("中型", "1:1", 30), ("中小", "1:N", 30),
                                                ("小微", "1:N", 14)])
def test_cadence_by_tier(real_copilot, tier, style, every):
    plan = draft_plan(real_copilot, bakery(tier=tier, annual_fee=None))
    assert plan.tier == tier and plan.style == style and plan.cadence.style == style
    assert plan.cadence.review_every_days == every
    assert plan.cadence.first_reviews[0] == SIGNED + timedelta(days=every)
    if style == "1:1":
        assert plan.cadence.business_review_dates
    else:
        assert "自动" in plan.cadence.review + plan.cadence.touch + plan.cadence.csm_model


def test_large_accounts_get_an_exec_sponsor_and_broad_health(real_copilot):
    large = draft_plan(real_copilot, bakery(tier="大型", annual_fee=None))
    small = draft_plan(real_copilot, bakery(tier="小微", annual_fee=None))
    assert "高层赞助人" in {o.role for o in large.owners}
    assert {i.health for i in large.renewal_indicators} == {"狭义", "广义"}
    assert {i.health for i in small.renewal_indicators} == {"狭义"}


def test_renewal_indicators_expansion_and_renewal_date(plan):
    assert plan.leading_indicators and plan.renewal_indicators
    assert plan.renewal.date == date(2026, 3, 1) and plan.renewal.prepare_from < plan.renewal.date
    assert plan.expansion and not {e.product for e in plan.expansion} & {"云铺收银", "云铺会员"}


def test_sources_name_the_peer_case_and_playbooks(plan, real_copilot):
    kinds = {s.kind for s in plan.sources}
    assert kinds == {"case", "playbook"}
    case = next(s for s in plan.sources if s.kind == "case")
    assert real_copilot.pack.case(case.id).industry == "烘焙"
    topics = {p.topic for p in real_copilot.pack.playbooks if p.id in {s.id for s in plan.sources}}
    assert {"成功计划", "快速见效"} <= topics


def test_public_only_callers_get_no_internal_sources(real_copilot):
    plan = draft_plan(real_copilot, bakery(), audiences=["public"])
    internal = {p.id for p in real_copilot.pack.playbooks if p.audience == "internal"} | \
        {c.id for c in real_copilot.pack.cases if c.audience == "internal"}
    assert not internal & {s.id for s in plan.sources}


def test_unmatched_goals_fall_back_to_the_default_outcome(real_copilot):
    plan = draft_plan(real_copilot, bakery(goals=["说不清楚"]))
    assert plan.outcomes == ["default"]


def test_the_tier_comes_from_the_fee_or_must_be_given(real_copilot):
    assert draft_plan(real_copilot, bakery(annual_fee=3_000)).tier == "小微"
    with pytest.raises(InvalidInput):
        draft_plan(real_copilot, bakery(annual_fee=None))


def test_the_plan_is_deterministic(real_copilot, plan):
    assert draft_plan(real_copilot, bakery()).model_dump() == plan.model_dump()


def test_markdown_export(plan, real_copilot):
    markdown = render_plan(real_copilot.prompts, plan)
    for heading in ("## 预期成果", "## 首次价值", "## 价值里程碑", "## 快速见效", "## 双方负责人", "## 会议节奏",
                    "## 续费先导指标", "## 扩展路径", "## 依据"):
        assert heading in markdown
    assert str(plan.milestones[0].date) in markdown and plan.quick_wins[0].title in markdown
    assert "王芳" in markdown


def test_saving_a_plan_is_a_proposed_action(plan, real_copilot):
    action = propose_plan_action(real_copilot.prompts, real_copilot.actions, plan, "share", "tester", "csm", "陈总",
                                 pack=real_copilot.pack)
    assert action.type == "share_plan" and action.status == "proposed"
    assert action.arguments["markdown"].startswith("# 杭州麦香烘焙（示例）")
    assert action.arguments["plan"]["customer"]["name"] == "杭州麦香烘焙（示例）"


def test_the_scoring_formula_is_arithmetic_only():
    assert evaluate("impact * probability / resources", {"impact": 4, "probability": 5, "resources": 2}) == 10
    with pytest.raises(ConfigError):
        evaluate("__import__('os').system('true')", {})
