"""Sales workflow: peer cases ranked by the facets in rules.yaml, explained, with a value estimate."""

from __future__ import annotations

from statistics import median

import pytest
from pydantic import ValidationError

from copilot.errors import InvalidInput, NotFound
from copilot.models import Customer, Slots
from copilot.matching import facet_scores
from copilot.workflows.cases import (NOT_ENOUGH, CaseSearchRequest, OnepagerRequest, find_cases,
                                     propose_onepager, render_onepager)
from workflow_fixtures import real_copilot  # noqa: F401 - fixture

WENZHOU_BAKERY = Customer(name="温州麦香（示例）", industry="烘焙", city="温州", annual_fee=200_000, situation=["连锁"])


def search(copilot, audiences=None, **request):
    return find_cases(copilot, CaseSearchRequest(**request), audiences)


def test_weights_come_from_rules_and_renormalise_over_known_facets(real_copilot):
    rules = real_copilot.pack.rules.case_matching.weights
    found = search(real_copilot, profile=WENZHOU_BAKERY)
    assert set(found.weights) == {"industry", "location", "tier", "situation"}  # no free text: no semantic
    assert sum(found.weights.values()) == pytest.approx(1.0, abs=1e-3)
    known = sum(rules[f] for f in found.weights)
    for facet, weight in found.weights.items():
        assert weight == pytest.approx(rules[facet] / known, abs=1e-3)


def test_breakdown_adds_up_to_the_score_and_matches_are_ranked(real_copilot):
    found = search(real_copilot, profile=WENZHOU_BAKERY)
    assert found.matches
    for m in found.matches:
        assert set(m.breakdown) == {"industry", "location", "tier", "situation", "semantic"}
        assert sum(m.breakdown.values()) == pytest.approx(m.score, abs=1e-3)
        assert m.breakdown["semantic"] == 0
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True)


def test_wenzhou_bakery_finds_zhejiang_cases_by_province_fallback(real_copilot):
    assert not [c for c in real_copilot.pack.cases if c.industry == "烘焙" and c.city == "温州"]
    found = search(real_copilot, profile=WENZHOU_BAKERY)
    top = found.matches[0]
    assert top.case.industry == "烘焙" and top.case.province == "浙江"
    assert "同省（浙江）" in top.why and "同行业（烘焙）" in top.why
    weights, level = found.weights, real_copilot.pack.rules.case_matching.location_levels["province"]
    zhejiang = [m for m in found.matches if m.case.province == "浙江"]
    assert len(zhejiang) >= 2
    for m in zhejiang:
        assert "同省（浙江）" in m.why
        assert m.breakdown["location"] == pytest.approx(weights["location"] * level, abs=1e-3)
    assert all(m.good_match for m in found.matches) and found.good_matches == len(found.matches)


def test_location_levels_city_then_province_then_region(real_copilot):
    rules = real_copilot.pack.rules
    levels = rules.case_matching.location_levels
    slots = Slots(city="杭州", province="浙江", region="华东")
    by_id = {c.id: c for c in real_copilot.pack.cases}
    expected = {"case-bakery-hangzhou-01": (levels["city"], "同城（杭州）"),
                "case-bakery-ningbo-01": (levels["province"], "同省（浙江）"),
                "case-bakery-shanghai-01": (levels["region"], "同区域（华东）"),
                "case-bakery-chengdu-01": (0.0, None)}
    for case_id, (level, reason) in expected.items():
        scores, why = facet_scores(rules, slots, by_id[case_id], 0.0)
        assert scores["location"] == level, case_id
        assert (reason in why) if reason else not [w for w in why if w.startswith("同")], case_id


def test_same_tier_beats_adjacent_tier(real_copilot):
    rules = real_copilot.pack.rules
    by_id = {c.id: c for c in real_copilot.pack.cases}
    slots = Slots(tier="中型")
    same, why_same = facet_scores(rules, slots, by_id["case-bakery-hangzhou-01"], 0.0)  # 18万: 中型
    near, why_near = facet_scores(rules, slots, by_id["case-bakery-ningbo-01"], 0.0)  # 168万: 大型
    far, _ = facet_scores(rules, slots, by_id["case-bakery-hangzhou-03"], 0.0)  # 3980: 小微
    assert (same["tier"], near["tier"], far["tier"]) == (1.0, rules.case_matching.adjacent_tier_credit, 0.0)
    assert "同规模（中型）" in why_same and "相邻规模（大型）" in why_near


def test_internal_cases_are_hidden_from_public_audiences(real_copilot):
    profile = Customer(industry="烘焙", city="深圳", tier="大型")
    everyone = [m.case.id for m in search(real_copilot, profile=profile).matches]
    public = [m.case.id for m in search(real_copilot, ["public"], profile=profile).matches]
    assert everyone[0] == "case-bakery-shenzhen-01"  # internal in the pack
    assert "case-bakery-shenzhen-01" not in public
    internal = {c.id for c in real_copilot.pack.cases if c.audience == "internal"}
    assert not internal & set(public)


def test_value_estimate_is_present_and_explained(real_copilot):
    found = search(real_copilot, profile=WENZHOU_BAKERY)
    estimate = found.value_estimate
    assert estimate is not None
    good_ids = [m.case.id for m in found.matches if m.good_match]
    assert estimate.based_on == good_ids
    assert "中位数" in estimate.method and str(len(good_ids)) in estimate.method
    assert estimate.summary and estimate.metrics
    results = {(m.case.id, r.metric): r for m in found.matches for r in m.case.results}
    for metric in estimate.metrics:
        assert metric.based_on and set(metric.based_on) <= set(good_ids)
        assert metric.metric in estimate.summary
        afters = [results[(cid, metric.metric)].after for cid in metric.based_on]
        assert metric.typical_after == pytest.approx(median(afters))
    assert estimate.time_to_first_value_days == median(m.case.time_to_first_value_days for m in found.matches)


def test_a_first_value_time_is_estimated_only_from_cases_that_state_one(real_copilot):
    from copilot.workflows.cases import estimate_value

    rules = real_copilot.pack.rules
    good = [m for m in search(real_copilot, profile=WENZHOU_BAKERY).matches if m.good_match]
    assert len(good) >= 2
    # A case sheet without the column: its cases do not say how long first value took.
    unstated = [m.model_copy(update={"case": m.case.model_copy(update={"time_to_first_value_days": None})})
                for m in good]
    estimate = estimate_value(rules, unstated)
    assert estimate.time_to_first_value_days is None and "首次见到价值" not in estimate.summary
    mixed = estimate_value(rules, [unstated[0], *good[1:]])
    assert mixed.time_to_first_value_days == median(m.case.time_to_first_value_days for m in good[1:])


def test_nothing_close_enough_says_so_and_shows_only_flagged_alternatives(real_copilot):
    rules = real_copilot.pack.rules
    found = search(real_copilot, profile=Customer(industry="汽车", city="哈尔滨", tier="大型"), k=10)
    assert found.good_matches == 0
    assert found.note == NOT_ENOUGH
    assert 0 < len(found.matches) <= rules.case_workflow.alternatives
    assert all(not m.good_match and m.score < rules.case_matching.good_match for m in found.matches)
    assert found.value_estimate is None


def test_good_matches_are_never_padded_with_weak_ones(real_copilot):
    found = search(real_copilot, profile=Customer(industry="母婴", city="南京", tier="中型", situation=["会员复购"]), k=20)
    assert found.good_matches == len(found.matches)
    assert all(m.good_match for m in found.matches)


def test_free_text_only_extracts_the_profile_and_uses_semantic_similarity(real_copilot):
    found = search(real_copilot, query="温州一家做面包的连锁店，年费20万左右，想提升会员复购")
    assert (found.profile.industry, found.profile.city, found.profile.province, found.profile.tier) == \
        ("烘焙", "温州", "浙江", "中型")
    assert "semantic" in found.weights
    assert found.matches[0].case.industry == "烘焙" and found.matches[0].case.province == "浙江"
    assert any(m.breakdown["semantic"] > 0 for m in found.matches)
    assert any("描述相近" in m.why for m in found.matches)


def test_profile_overrides_what_the_text_says(real_copilot):
    found = search(real_copilot, query="成都的奶茶店", profile=Customer(industry="烘焙"))
    assert found.profile.industry == "烘焙" and found.profile.city == "成都"


def test_a_request_needs_something_to_match_on(real_copilot):
    with pytest.raises(ValidationError):
        CaseSearchRequest()
    with pytest.raises(ValidationError):
        CaseSearchRequest(query="  ")
    with pytest.raises(InvalidInput):
        search(real_copilot, profile=Customer())


def test_onepager_names_the_case_its_numbers_and_why_it_fits(real_copilot):
    request = OnepagerRequest(case_id="case-bakery-hangzhou-01", prospect=WENZHOU_BAKERY, recipient="陈总")
    markdown = render_onepager(real_copilot, real_copilot.prompts, request)
    assert "麦田里烘焙（示例）" in markdown and "致：陈总" in markdown
    assert "| 会员复购率 | 18% | 31% |" in markdown
    assert "同省（浙江）" in markdown and "温州麦香（示例）" in markdown


def test_onepager_is_proposed_not_sent_and_hides_internal_cases(real_copilot):
    request = OnepagerRequest(case_id="case-bakery-hangzhou-02")
    markdown, action = propose_onepager(real_copilot, real_copilot.prompts, real_copilot.actions, request,
                                        "tester", "sales")
    assert action.status == "proposed" and action.type == "send_case_onepager"
    assert action.arguments["markdown"] == markdown and action.arguments["case_id"] == "case-bakery-hangzhou-02"
    assert not (real_copilot.settings.outbox / f"{action.id}.md").exists()
    with pytest.raises(NotFound):
        render_onepager(real_copilot, real_copilot.prompts, OnepagerRequest(case_id="case-bakery-shenzhen-01"),
                        ["public"])
    with pytest.raises(NotFound):
        render_onepager(real_copilot, real_copilot.prompts, OnepagerRequest(case_id="no-such-case"))
