"""One account's insight as the API and the CSM see it: health, renewal risk, where it is on the
customer journey, and the next best actions, from the account's own activity and a Markov model
of the journey fitted on every account's history. A chosen next best action becomes a task that a
human confirms before anything is written anywhere."""

from __future__ import annotations

from datetime import date
from typing import Any


from copilot.accounts.health import Health, MilestoneCounts, Risk, health, renewal_risk
from copilot.accounts.journey import (
    STATE_LABELS,
    Action,
    Transitions,
    next_best_actions,
    state_at,
    training_states,
    transition_matrix,
)
from copilot.accounts.models import Account, Activity
from copilot.errors import InvalidInput
from copilot.knowledge.pack import Pack
from copilot.modeling import Model

ACCOUNT_TASK = "account_task"  # the action type; its policy is in rules.yaml `actions`


class AccountInsight(Model):
    health: Health
    renewal_risk: Risk
    journey_state: str
    journey_label: str
    next_best_actions: list[Action]


class AccountTask(Model):
    """What a proposed account task says and carries (the arguments the outbox and webhook get)."""

    summary: str
    arguments: dict[str, Any]


def fit_journey(accounts: list[Account], activity: dict[str, list[Activity]], pack: Pack, today: date) -> Transitions:
    """Transition probabilities from the accounts' own monthly histories and known renewal outcomes
    (the rules give the prior)."""
    rules = pack.rules.insight
    histories = [training_states(a, activity.get(a.id, []), rules, today) for a in accounts]
    return transition_matrix([h for h in histories if h], rules)


def account_insight(account: Account, activity: list[Activity], transitions: Transitions, pack: Pack,
                    today: date, audiences: list[str] | None = None,
                    milestones: MilestoneCounts | None = None) -> AccountInsight:
    """Health, risk, journey state and next best actions; `milestones`: its tracked plan milestones."""
    rules = pack.rules.insight
    state = state_at(account, activity, rules, today)
    playbooks = [p for p in pack.playbooks if audiences is None or p.audience in audiences]
    return AccountInsight(health=health(account, activity, rules, today, milestones),
                          renewal_risk=renewal_risk(account, activity, rules, today, milestones), journey_state=state,
                          journey_label=STATE_LABELS.get(state, state),
                          next_best_actions=next_best_actions(account, state, transitions, playbooks, rules, today))


def account_task(account: Account, insight: AccountInsight, playbook_id: str, note: str | None = None) -> AccountTask:
    """The next best action the CSM chose, as a task to confirm; only one the insight offers now."""
    action = next((a for a in insight.next_best_actions if a.playbook_id == playbook_id), None)
    if action is None:
        offered = ", ".join(a.playbook_id for a in insight.next_best_actions) or "none"
        raise InvalidInput(f"{playbook_id!r} is not a next best action for {account.name} now; offered: {offered}",
                           zh=f"「{playbook_id}」不是{account.name}当前的下一步最佳行动；可选：{offered}")
    risk = insight.renewal_risk
    lines = [f"# 客户任务：{action.title}", "",
             f"- 客户：{account.name}" + (f"（{account.tier}）" if account.tier else ""),
             f"- 负责人：{account.csm or '未指定'}",
             f"- 续费日期：{account.renews_on.isoformat() if account.renews_on else '未知'}",
             f"- 当前：{risk.summary}（{risk.probability:.0%}）；旅程阶段「{insight.journey_label}」", "",
             "## 为什么做", action.why, "", "## 第一步", action.step or "见打法", "",
             "## 依据的最佳实践", f"{action.title}（{action.playbook_id}）"]
    if note:
        lines += ["", "## 备注", note]
    arguments = {"customer": account.name, "title": action.title, "account_id": account.id,
                 "playbook_id": action.playbook_id, "markdown": "\n".join(lines) + "\n"}
    return AccountTask(summary=f"为{account.name}安排「{action.title}」", arguments=arguments)
