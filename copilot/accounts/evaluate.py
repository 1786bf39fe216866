"""How far the account insight can be trusted, in numbers: the renewal-risk backtest on held-out
accounts whose renewal outcome is known (AUC, precision at the top 10 %), and the share of
at-risk accounts the copilot can point to a next best action backed by a real playbook.
Runs on the sample book (reproducible) or on the accounts a workspace imported."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from copilot.accounts.health import renewal_risk
from copilot.accounts.insight import fit_journey
from copilot.accounts.journey import backtest, next_best_actions, state_at
from copilot.accounts.models import Account, Activity
from copilot.accounts.sample import sample_accounts
from copilot.accounts.store import AccountStore
from copilot.errors import InvalidInput
from copilot.knowledge.pack import Pack
from copilot.modeling import Model

# The sample book's months end in 2026-11: scoring it "on" 2026-12-01 gives the same figures on any day.
SAMPLE_TODAY = date(2026, 12, 1)


class Ranking(Model):
    auc: float | None = Field(description="Chance a churner is ranked above a renewer; 0.5 = guessing")
    precision_at_10: float | None = Field(description="Share of churners among the riskiest 10 %")


class InsightEval(Model):
    source: Literal["sample", "workspace"]
    today: date
    accounts: int
    with_outcome: int = Field(description="Accounts with a past renewal whose outcome is known")
    holdout: int = Field(description="Of those, held out: scored, never fitted on")
    churn_rate: float | None
    risk: Ranking = Field(description="Renewal risk on the held-out accounts, from activity before each renewal")
    risk_all: Ranking = Field(description="Renewal risk on every account with an outcome (no fitting involved)")
    journey: Ranking = Field(description="The Markov journey model fitted on the other accounts, on the held-out ones")
    at_risk: int = Field(description="Current accounts (not churned) whose renewal risk is 高 today")
    covered: int = Field(description="Of those, with at least one next best action backed by a playbook")
    coverage: float | None
    improving: int = Field(description="Of those, whose top action raises the modelled renewal probability")


def _ranking(scores: dict) -> Ranking:
    return Ranking(auc=scores.get("auc"), precision_at_10=scores.get("precision_at_10"))


def evaluate_insight(accounts: list[Account], activity: list[Activity], pack: Pack, today: date,
                     source: Literal["sample", "workspace"], holdout_share: float = 0.3, seed: int = 7) -> InsightEval:
    """Backtest the renewal risk and measure next-best-action coverage on one book of accounts."""
    rules = pack.rules.insight
    tested = backtest(accounts, activity, rules, holdout_share=holdout_share, seed=seed)
    by_account: dict[str, list[Activity]] = {}
    for row in activity:
        by_account.setdefault(row.account_id, []).append(row)
    transitions = fit_journey(accounts, by_account, pack, today)
    playbooks = {p.id for p in pack.playbooks}
    current = [a for a in accounts if a.outcome != "churned"]
    at_risk = covered = improving = 0
    for account in current:
        rows = by_account.get(account.id, [])
        if renewal_risk(account, rows, rules, today).level != "高":
            continue
        at_risk += 1
        state = state_at(account, rows, rules, today)
        actions = [a for a in next_best_actions(account, state, transitions, pack.playbooks, rules, today)
                   if a.playbook_id in playbooks]
        covered += bool(actions)
        improving += bool(actions) and actions[0].uplift > 0
    return InsightEval(
        source=source, today=today, accounts=len(accounts), with_outcome=tested["accounts"],
        holdout=tested["holdout"], churn_rate=tested["churn_rate"], risk=_ranking(tested),
        risk_all=_ranking(tested["all"]), journey=_ranking(tested["journey"]), at_risk=at_risk, covered=covered,
        coverage=covered / at_risk if at_risk else None, improving=improving)


# The demo book has 60 accounts, of which only ~6 are held out: too few for an AUC worth reading.
SAMPLE_ACCOUNTS = 600
SMALL_HOLDOUT = 30  # below this many held-out accounts the table warns that the figures are noisy


def evaluate_sample(pack: Pack, seed: int = 7, n: int = SAMPLE_ACCOUNTS) -> InsightEval:
    """The evaluation on a reproducible sample book (every account marked 示例)."""
    accounts, activity = sample_accounts(seed=seed, n=n)
    return evaluate_insight(accounts, activity, pack, SAMPLE_TODAY, "sample", seed=seed)


def evaluate_workspace(store: AccountStore, pack: Pack, today: date) -> InsightEval:
    """The evaluation on the accounts and activity a workspace imported."""
    accounts = store.accounts()
    if not accounts:
        raise InvalidInput("No accounts imported yet: `copilot ingest accounts.xlsx activity.xlsx`, or use --sample",
                           zh="还没有导入客户：先用 copilot ingest 导入客户表和活动表，或加 --sample 用示例数据")
    activity = [row for rows in store.all_activity().values() for row in rows]
    return evaluate_insight(accounts, activity, pack, today, "workspace")


def rows(result: InsightEval) -> list[tuple[str, str, str]]:
    """(measure, value, what it means) for a readable table, in Chinese."""
    def share(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    return [
        ("客户数", str(result.accounts), f"{'示例数据' if result.source == 'sample' else '工作区导入的客户'}，按 {result.today} 计算"),
        ("有续费结果的客户", str(result.with_outcome), f"留出 {result.holdout} 个只用于检验"
         + (f"，流失率 {result.churn_rate:.0%}" if result.churn_rate is not None else "")
         + ("（留出太少，下面的数字波动很大）" if result.holdout < SMALL_HOLDOUT else "")),
        ("续费风险 AUC（留出）", share(result.risk.auc), "流失客户排在续费客户前面的概率；0.5 等于瞎猜"),
        ("续费风险 前 10% 精确率（留出）", share(result.risk.precision_at_10), "风险最高的 10% 里真正流失的比例"),
        ("续费风险 AUC（全部有结果的）", share(result.risk_all.auc), "规则打分不依赖拟合，可在全部客户上检验"),
        ("旅程模型 AUC（留出）", share(result.journey.auc), "马尔可夫旅程模型在其余客户上拟合后的排序能力"),
        ("当前高风险客户", str(result.at_risk), "未流失、今天续费风险为「高」的客户"),
        ("下一步行动覆盖率", share(result.coverage), f"{result.covered} 个至少有一条来自打法的下一步行动"),
        ("首选行动提升续费概率", f"{result.improving}/{result.at_risk}", "首选行动在模型里确实提高续费概率的客户数"),
    ]
