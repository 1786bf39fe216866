"""One account's insight as the API and the CSM see it: health, renewal risk, where it is on the
customer journey, and the next best actions, from the account's own activity and a Markov model
of the journey fitted on every account's history."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from copilot.accounts.health import Health, Risk, health, renewal_risk
from copilot.accounts.journey import Action, Transitions, journey_states, next_best_actions, state_at, transition_matrix
from copilot.accounts.models import Account, Activity
from copilot.knowledge.pack import Pack


class AccountInsight(BaseModel):
    health: Health
    renewal_risk: Risk
    journey_state: str
    next_best_actions: list[Action]


def fit_journey(accounts: list[Account], activity: dict[str, list[Activity]], pack: Pack, today: date) -> Transitions:
    """Transition probabilities from the accounts' own monthly histories (the rules give the prior)."""
    rules = pack.rules.insight
    histories = [[state for _, state in journey_states(a, activity.get(a.id, []), rules, today)] for a in accounts]
    return transition_matrix([h for h in histories if h], rules)


def account_insight(account: Account, activity: list[Activity], transitions: Transitions, pack: Pack,
                    today: date, audiences: list[str] | None = None) -> AccountInsight:
    rules = pack.rules.insight
    state = state_at(account, activity, rules, today)
    playbooks = [p for p in pack.playbooks if audiences is None or p.audience in audiences]
    return AccountInsight(health=health(account, activity, rules, today),
                          renewal_risk=renewal_risk(account, activity, rules, today), journey_state=state,
                          next_best_actions=next_best_actions(account, state, transitions, playbooks, rules, today))
