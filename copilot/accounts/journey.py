"""Customer journey: monthly states by rule, a Markov transition matrix estimated from many accounts
(rules give the Dirichlet prior, data the probabilities), renewal probability, next best actions
tied to playbooks, and the backtest of the renewal-risk model."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any, get_args

import numpy as np
from pydantic import Field

from copilot.accounts.health import history, renewal_risk, usage_measure
from copilot.accounts.models import Account, Activity
from copilot.knowledge.schema import Playbook
from copilot.modeling import Model
from copilot.rules import Insight, JourneyRules, JourneyState

STATES: tuple[JourneyState, ...] = get_args(JourneyState)
ABSORBING: tuple[JourneyState, ...] = ("renewed", "churned")
STATE_LABELS = {"onboarding": "上线中", "first_value": "已见首次价值", "adoption": "稳定使用", "expansion": "扩展中",
                "at_risk": "有风险", "renewed": "已续费", "churned": "已流失"}


class Action(Model):
    title: str
    playbook_id: str
    why: str
    uplift: float = Field(description="Renewal probability from the target state minus from the current one")
    target: JourneyState
    step: str = Field(default="", description="The playbook's first step")


@dataclass(frozen=True)
class Transitions:
    """Row-stochastic monthly transition matrix over STATES, with the observed counts behind it."""

    matrix: np.ndarray
    counts: np.ndarray

    def p(self, a: JourneyState, b: JourneyState) -> float:
        return float(self.matrix[STATES.index(a), STATES.index(b)])


# States ---------------------------------------------------------------------------------------------
def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def _state(months_in: int, change: float | None, adoption: float | None, reached: bool,
           rules: JourneyRules) -> JourneyState:
    if months_in < rules.onboarding_months:
        return "onboarding"
    if change is not None and change <= -rules.at_risk_decline:
        return "at_risk"
    if not reached:
        return "at_risk" if months_in >= rules.no_value_months else "onboarding"
    if adoption is not None and adoption >= rules.adoption_min:
        growing = change is not None and change >= rules.expansion_growth
        return "expansion" if growing else "adoption"
    return "first_value"


def journey_states(account: Account, activity: list[Activity], rules: Insight,
                   today: date | None = None) -> list[tuple[str, JourneyState]]:
    """(month, state) for each complete month before `today`; with no `today`, the whole history
    and, when the account's renewal outcome is known, that outcome in its renewal month."""
    cutoff = today or date.max
    rows = history(activity, account.id, cutoff)
    if not rows:
        return []
    j = rules.journey
    measure, _ = usage_measure(rows)
    usage = {r.month: getattr(r, measure) for r in rows}
    by_index = {_month_index(m): v for m, v in usage.items()}
    start = _month_index(account.signed_on.strftime("%Y-%m")) if account.signed_on else _month_index(rows[0].month)
    states: list[tuple[str, JourneyState]] = []
    adoption, done, reached = None, 0, False
    for row in rows:
        i = _month_index(row.month)
        adoption = row.feature_adoption if row.feature_adoption is not None else adoption
        done += row.milestones_done or 0
        reached = reached or done >= j.first_value_milestones or (adoption or 0) >= j.first_value_adoption
        now, then = by_index.get(i), by_index.get(i - 3)
        change = (now - then) / then if now is not None and then else None
        states.append((row.month, _state(i - start, change, adoption, reached, j)))
    if today is None and account.outcome and account.renews_on:
        month = account.renews_on.strftime("%Y-%m")
        states = [(m, s) for m, s in states if m < month] + [(month, account.outcome)]
    return states


def training_states(account: Account, activity: list[Activity], rules: Insight, today: date) -> list[JourneyState]:
    """The states of the complete months before `today`, ending in the renewal outcome when one is
    known: without the outcomes a model fitted on the book never sees a month reach renewed or
    churned, and its renewal probabilities would be the prior's alone."""
    return [state for _, state in journey_states(account, history(activity, account.id, today), rules)]


def state_at(account: Account, activity: list[Activity], rules: Insight, today: date) -> JourneyState:
    """The account's state in its last complete month (onboarding when it has none yet)."""
    states = journey_states(account, activity, rules, today)
    return states[-1][1] if states else "onboarding"


# Markov chain ---------------------------------------------------------------------------------------
def transition_matrix(histories: list[list[JourneyState]], rules: Insight,
                      prior_strength: float | None = None) -> Transitions:
    """Posterior-mean transitions: observed counts plus `prior_strength` pseudo-transitions per row
    spread as rules.yaml `insight.journey.prior`; renewed and churned are absorbing."""
    n = len(STATES)
    counts = np.zeros((n, n))
    for seq in histories:
        for a, b in pairwise(seq):
            if a in ABSORBING:
                break
            counts[STATES.index(a), STATES.index(b)] += 1
    prior = np.zeros((n, n))
    for a, row in rules.journey.prior.items():
        total = sum(row.values())
        for b, weight in row.items():
            prior[STATES.index(a), STATES.index(b)] = weight / total if total else 0.0
    strength = rules.journey.prior_strength if prior_strength is None else prior_strength
    matrix = counts + strength * prior
    for i, state in enumerate(STATES):
        if state in ABSORBING or matrix[i].sum() <= 0:
            matrix[i] = 0.0
            matrix[i, i] = 1.0
    return Transitions(matrix=matrix / matrix.sum(axis=1, keepdims=True), counts=counts)


def renewal_probability(transitions: Transitions, state: JourneyState, months: int) -> float:
    """Chance of reaching `renewed` within `months` monthly steps from `state`."""
    if months <= 0:
        return 1.0 if state == "renewed" else 0.0
    reach = np.linalg.matrix_power(transitions.matrix, months)
    return float(reach[STATES.index(state), STATES.index("renewed")])


def months_left(account: Account, today: date | None, rules: Insight) -> int:
    if account.renews_on and today:
        return max(1, math.ceil((account.renews_on - today).days / 30.44))
    return rules.journey.horizon_months


def next_best_actions(account: Account, state: JourneyState, transitions: Transitions, playbooks: list[Playbook],
                      rules: Insight, today: date | None = None) -> list[Action]:
    """Playbooks that move the account from `state` to a better one, ranked by renewal uplift."""
    months = months_left(account, today, rules)
    base = renewal_probability(transitions, state, months)
    actions: list[Action] = []
    used: set[str] = set()
    for entry in rules.actions.targets.get(state, []):
        fits = [pb for pb in playbooks if pb.id not in used
                and (not entry.journeys or pb.journey in entry.journeys)
                and (not entry.topics or pb.topic in entry.topics)]
        fits.sort(key=lambda pb: entry.topics.index(pb.topic) if pb.topic in entry.topics else 0)
        target_p = renewal_probability(transitions, entry.target, months)
        for pb in fits[:rules.actions.per_target]:
            used.add(pb.id)
            why = (f"{entry.why}：从「{STATE_LABELS[state]}」到「{STATE_LABELS[entry.target]}」，"
                   f"{months} 个月内续费概率 {base:.0%} → {target_p:.0%}")
            actions.append(Action(title=pb.title, playbook_id=pb.id, why=why, uplift=round(target_p - base, 4),
                                  target=entry.target, step=pb.steps[0]))
    actions.sort(key=lambda a: -a.uplift)
    return actions[:rules.actions.max_actions]


# Backtest -------------------------------------------------------------------------------------------
def _metrics(y: list[int], scores: list[float]) -> dict[str, float | None]:
    if not y:
        return {"auc": None, "precision_at_10": None}
    k = max(1, math.ceil(0.1 * len(y)))
    top = sorted(range(len(y)), key=lambda i: -scores[i])[:k]
    from sklearn.metrics import roc_auc_score  # ~1 s to import: only the backtest needs it

    auc = float(roc_auc_score(y, scores)) if 0 < sum(y) < len(y) else None
    return {"auc": auc, "precision_at_10": sum(y[i] for i in top) / k}


def backtest(accounts: list[Account], activities: list[Activity], rules: Insight,
             holdout_share: float = 0.3, seed: int = 7) -> dict[str, Any]:
    """Renewal-risk AUC and precision at the top 10 % on accounts with a known outcome, scored
    with activity before each renewal date only; the journey matrix is fitted on the rest."""
    known = sorted((a for a in accounts if a.outcome and a.renews_on), key=lambda a: a.id)
    random.Random(seed).shuffle(known)
    n_hold = min(len(known), max(1, round(len(known) * holdout_share))) if known else 0
    holdout, train = known[:n_hold], known[n_hold:]
    by_account: dict[str, list[Activity]] = {}
    for a in activities:
        by_account.setdefault(a.account_id, []).append(a)

    def churned(accts: list[Account]) -> list[int]:
        return [int(a.outcome == "churned") for a in accts]

    def risk(accts: list[Account]) -> list[float]:
        return [renewal_risk(a, by_account.get(a.id, []), rules, a.renews_on).probability for a in accts]

    fitted = transition_matrix([[s for _, s in journey_states(a, by_account.get(a.id, []), rules)] for a in train],
                               rules)
    journey_risk = [1 - renewal_probability(fitted, state_at(a, by_account.get(a.id, []), rules, a.renews_on),
                                            rules.journey.horizon_months) for a in holdout]
    y_hold = churned(holdout)
    return {
        "accounts": len(known), "holdout": len(holdout),
        "churn_rate": sum(churned(known)) / len(known) if known else None,
        **_metrics(y_hold, risk(holdout)),
        "all": _metrics(churned(known), risk(known)),
        "journey": _metrics(y_hold, journey_risk),
    }
