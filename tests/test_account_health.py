"""Account insight: health parts, renewal risk drivers, journey states, transitions, next best
actions and the leakage-free backtest, on hand-built accounts (no database)."""

from __future__ import annotations

import random
from datetime import date

import pytest
from conftest import PACK_DIR

from copilot.accounts.health import health, renewal_risk
from copilot.accounts.journey import (
    STATES,
    backtest,
    journey_states,
    next_best_actions,
    renewal_probability,
    transition_matrix,
)
from copilot.accounts.models import Account, Activity
from copilot.knowledge.pack import load_pack
from copilot.rules import Insight

TODAY = date(2023, 10, 5)


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK_DIR)


@pytest.fixture(scope="module")
def rules(pack) -> Insight:
    return pack.rules.insight


def months(start: str, n: int) -> list[str]:
    year, mon = int(start[:4]), int(start[5:7]) - 1
    return [f"{year + (mon + i) // 12}-{(mon + i) % 12 + 1:02d}" for i in range(n)]


def series(account_id: str, start: str = "2023-01", **measures: list) -> list[Activity]:
    n = max(len(v) for v in measures.values())
    return [Activity(account_id=account_id, month=m, **{k: v[i] for k, v in measures.items() if i < len(v)})
            for i, m in enumerate(months(start, n))]


def account(account_id: str, **kw) -> Account:
    return Account(id=account_id, name=account_id, signed_on=kw.pop("signed_on", date(2023, 1, 1)),
                   renews_on=kw.pop("renews_on", date(2024, 1, 15)), **kw)


DECLINING = series("down", active_stores=[18, 19, 20, 20, 20, 20, 8, 8, 8], logins=[300, 320, 330, 330, 320, 300, 150, 120, 100],
                   feature_adoption=[0.5, 0.6, 0.7, 0.7, 0.6, 0.6, 0.4, 0.3, 0.3], tickets=[2, 2, 3, 2, 2, 2, 6, 9, 12],
                   nps=[30, None, None, 20, None, None, -10, None, None], milestones_done=[0, 1, 1, 1, 0, 0, 0, 0, 0],
                   milestones_late=[0, 0, 0, 0, 1, 1, 1, 1, 0])
GROWING = series("up", active_stores=[5, 6, 8, 10, 10, 11, 14, 17, 20], logins=[80, 100, 130, 160, 170, 180, 220, 260, 300],
                 feature_adoption=[0.3, 0.4, 0.5, 0.55, 0.6, 0.6, 0.7, 0.75, 0.8], tickets=[6, 5, 5, 4, 3, 3, 2, 1, 1],
                 nps=[10, None, None, 30, None, None, 50, None, None], milestones_done=[0, 1, 1, 1, 1, 1, 1, 0, 1],
                 milestones_late=[0, 0, 0, 0, 0, 1, 0, 0, 0])


# Health and risk ------------------------------------------------------------------------------------
def test_declining_account_is_less_healthy_and_riskier(rules):
    down_h, up_h = health(account("down"), DECLINING, rules, TODAY), health(account("up"), GROWING, rules, TODAY)
    down_r, up_r = renewal_risk(account("down"), DECLINING, rules, TODAY), renewal_risk(account("up"), GROWING, rules, TODAY)
    assert down_h.score < up_h.score and down_h.narrow.score < up_h.narrow.score
    assert down_r.probability > up_r.probability
    assert down_r.level == "高" and up_r.level == "低"
    top = down_r.drivers[0]
    assert top.indicator == "usage_decline"
    assert top.reason == "活跃门店 3 个月从 20 降到 8（-60%）"
    assert down_r.summary.startswith("续费风险高：活跃门店 20→8") and "工单上升" in down_r.summary
    assert [d.contribution for d in down_r.drivers] == sorted((d.contribution for d in down_r.drivers), reverse=True)


def test_parts_add_up_to_the_score(rules):
    h = health(account("down"), DECLINING, rules, TODAY)
    for part in (h.narrow, h.broad):
        assert sum(p.points for p in part.parts) == pytest.approx(part.score, abs=1e-6)
        assert sum(p.weight for p in part.parts) == pytest.approx(1, abs=1e-3)
    assert h.score == h.broad.score
    assert {p.name for p in h.narrow.parts} == {"usage", "logins", "adoption", "milestones"}
    assert {p.name for p in h.broad.parts} == {"narrow", "tickets", "nps"}
    assert h.narrow.missing == [] and h.narrow.note == ""


def test_missing_measures_are_left_out_and_weights_renormalise(rules):
    rows = series("thin", active_stores=[10, 10, 10, 10, 10, 10], feature_adoption=[0.5] * 6)
    h = health(account("thin"), rows, rules, TODAY)
    weights = {p.name: p.weight for p in h.narrow.parts}
    assert set(weights) == {"usage", "adoption"}
    assert weights["usage"] / weights["adoption"] == pytest.approx(0.40 / 0.25, rel=1e-3)
    assert set(h.narrow.missing) == {"logins", "milestones"} and "重新分配" in h.narrow.note
    assert sum(p.points for p in h.narrow.parts) == pytest.approx(h.narrow.score)
    assert h.narrow.score == pytest.approx(100 * (1.0 * 0.40 + 0.5 * 0.25) / 0.65, abs=0.01)
    assert set(h.broad.missing) == {"tickets", "nps"} and h.score == h.narrow.score


def test_activity_after_today_is_ignored(rules):
    later = DECLINING + series("down", start="2023-10", active_stores=[100], feature_adoption=[1.0])
    assert renewal_risk(account("down"), later, rules, TODAY) == renewal_risk(account("down"), DECLINING, rules, TODAY)


# Journey ----------------------------------------------------------------------------------------------
def test_journey_states_follow_the_rules(rules):
    rows = series("j", active_stores=[5, 5, 5, 5, 5, 5, 8], feature_adoption=[0.1, 0.2, 0.35, 0.6, 0.6, 0.6, 0.6])
    assert [s for _, s in journey_states(account("j"), rows, rules)] == [
        "onboarding", "onboarding", "first_value", "adoption", "adoption", "adoption", "expansion"]
    falling = series("f", active_stores=[10, 10, 10, 10, 10, 6], feature_adoption=[0.6] * 6)
    assert journey_states(account("f"), falling, rules)[-1][1] == "at_risk"
    stuck = series("s", active_stores=[3] * 5, feature_adoption=[0.1] * 5)
    assert [s for _, s in journey_states(account("s"), stuck, rules)] == [
        "onboarding", "onboarding", "onboarding", "onboarding", "at_risk"]
    ended = journey_states(account("j", renews_on=date(2023, 6, 10), outcome="renewed"), rows, rules)
    assert ended[-1] == ("2023-06", "renewed") and len(ended) == 6


def test_transition_matrix_rows_sum_to_one_and_follow_the_data(rules):
    histories = [["adoption"] * 9 + ["expansion"]] * 20  # 160 stays, 20 moves
    m = transition_matrix(histories, rules, prior_strength=1)
    assert m.matrix.sum(axis=1) == pytest.approx([1] * len(STATES))
    assert m.p("adoption", "adoption") == pytest.approx(160 / 180, abs=0.01)
    assert m.p("adoption", "expansion") == pytest.approx(20 / 180, abs=0.01)
    assert transition_matrix(histories, rules, prior_strength=0).p("adoption", "adoption") == pytest.approx(160 / 180)
    assert m.p("renewed", "renewed") == 1 and m.p("churned", "churned") == 1
    # No data: the prior alone.
    prior = transition_matrix([], rules)
    assert prior.p("at_risk", "churned") == pytest.approx(1.5 / 9)


def test_renewal_is_likelier_from_adoption_than_from_risk(rules):
    for m in (transition_matrix([], rules), transition_matrix([["at_risk", "at_risk", "churned"],
                                                               ["adoption", "adoption", "renewed"]] * 5, rules)):
        at_risk = renewal_probability(m, "at_risk", 6)
        assert renewal_probability(m, "adoption", 6) > at_risk
        assert renewal_probability(m, "expansion", 6) > at_risk
        assert 0 <= at_risk <= 1
    assert renewal_probability(transition_matrix([], rules), "renewed", 3) == 1


def test_next_best_actions_for_an_at_risk_account_come_from_real_playbooks(pack, rules):
    m = transition_matrix([], rules)
    actions = next_best_actions(account("down"), "at_risk", m, pack.playbooks, rules, TODAY)
    ids = {p.id for p in pack.playbooks}
    assert actions and all(a.playbook_id in ids for a in actions)
    assert len({a.playbook_id for a in actions}) == len(actions)
    assert [a.uplift for a in actions] == sorted((a.uplift for a in actions), reverse=True)
    assert all(a.uplift > 0 and "续费概率" in a.why for a in actions)
    journeys = {p.id: p.journey for p in pack.playbooks}
    assert all(journeys[a.playbook_id] in {"价值兑现", "上线", "续费扩展"} for a in actions)


# Backtest ----------------------------------------------------------------------------------------------
def population(n: int = 80, seed: int = 1) -> tuple[list[Account], list[Activity]]:
    """Churners decline before their renewal and recover after it; renewers do the opposite, so
    reading post-renewal months would invert the ranking."""
    rng = random.Random(seed)
    accounts, rows = [], []
    for i in range(n):
        churn = i % 3 == 0
        aid = f"a{i}"
        accounts.append(account(aid, renews_on=date(2024, 1, 10), outcome="churned" if churn else "renewed"))
        base = rng.randint(10, 40)
        pre = [base * (1 - (0.08 if churn else -0.04) * k + rng.uniform(-0.05, 0.05)) for k in range(12)]
        post = [base * (2.0 if churn else 0.2)] * 6
        adoption = [0.3 if churn else 0.7] * 12 + [0.9 if churn else 0.1] * 6
        tickets = [rng.randint(1, 4) + (k // 4 if churn else 0) for k in range(12)] + [0 if churn else 20] * 6
        rows += series(aid, active_stores=[round(v) for v in pre + post], feature_adoption=adoption, tickets=tickets)
    return accounts, rows


def test_backtest_ranks_churners_without_reading_after_renewal(rules):
    accounts, rows = population()
    result = backtest(accounts, rows, rules, holdout_share=0.3, seed=7)
    assert result["accounts"] == 80 and result["holdout"] == 24
    assert result["auc"] > 0.8 and result["all"]["auc"] > 0.8
    assert result["precision_at_10"] >= 0.67
    assert result["journey"]["auc"] is None or result["journey"]["auc"] >= 0.5


def test_backtest_scores_match_truncated_history(rules):
    accounts, rows = population(n=6)
    churner = accounts[0]
    before = [r for r in rows if r.account_id == churner.id and r.month < "2024-01"]
    everything = [r for r in rows if r.account_id == churner.id]
    full = renewal_risk(churner, everything, rules, churner.renews_on)
    assert full == renewal_risk(churner, before, rules, churner.renews_on)
    assert full.drivers[0].indicator == "usage_decline"
