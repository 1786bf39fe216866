"""Account health (narrow and broad, as the handbook defines them) and renewal risk from leading
indicators: pure functions over an account's monthly activity, no database."""

from __future__ import annotations

import math
from calendar import monthrange
from datetime import date
from typing import Literal, NamedTuple

from pydantic import Field

from copilot.accounts.models import Account, Activity
from copilot.modeling import Model
from copilot.rules import Insight, RiskIndicator

RiskLevel = Literal["高", "中", "低"]

PART_LABELS = {"usage": "使用活跃", "logins": "登录", "adoption": "核心功能使用率", "milestones": "价值兑现",
               "narrow": "狭义健康度", "tickets": "工单", "nps": "NPS"}


class HealthPart(Model):
    name: str
    label: str
    value: float = Field(ge=0, le=1, description="The measure scaled to 0–1, 1 = healthy")
    weight: float = Field(description="Weight after renormalising over the measures present")
    points: float = Field(description="value × weight × 100; the parts' points add up to the score")
    note: str


class HealthScore(Model):
    score: float | None = Field(description="0–100; None when no measure is present")
    parts: list[HealthPart] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Parts left out for lack of data")
    note: str = ""


class Health(Model):
    score: float | None = Field(description="The broad score: narrow health plus experience")
    narrow: HealthScore
    broad: HealthScore


class Driver(Model):
    indicator: RiskIndicator
    value: float
    contribution: float = Field(description="weight × value, in log-odds")
    reason: str
    label: str = Field(default="", description="Short form for the one-line summary")


class Risk(Model):
    probability: float = Field(ge=0, le=1)
    level: RiskLevel
    drivers: list[Driver] = Field(default_factory=list)
    summary: str


class MilestoneCounts(NamedTuple):
    """Success-plan milestones tracked in the copilot (saved plans), counted with the activity's."""

    done: int = 0
    late: int = 0


# Monthly series -----------------------------------------------------------------------------------
def month_end(month: str) -> date:
    year, mon = int(month[:4]), int(month[5:7])
    return date(year, mon, monthrange(year, mon)[1])


def history(activity: list[Activity], account_id: str, today: date) -> list[Activity]:
    """The account's complete months that ended before `today`, oldest first (no later data leaks in)."""
    rows = {a.month: a for a in activity if a.account_id == account_id and month_end(a.month) < today}
    return [rows[m] for m in sorted(rows)]


def usage_measure(rows: list[Activity]) -> tuple[str, str]:
    """Active stores when the account reports them, else active users."""
    if any(r.active_stores is not None for r in rows):
        return "active_stores", "活跃门店"
    return "active_users", "活跃用户"


def _values(rows: list[Activity], measure: str) -> list[float]:
    return [float(v) for r in rows if (v := getattr(r, measure)) is not None]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def windows(rows: list[Activity], measure: str, months: int) -> tuple[float | None, float | None]:
    """(mean of the last `months` rows, mean of the `months` rows before them); missing values skipped."""
    recent, before = rows[-months:], rows[-2 * months:-months] if len(rows) > months else []
    return _mean(_values(recent, measure)), _mean(_values(before, measure))


def latest(rows: list[Activity], measure: str) -> float | None:
    values = _values(rows, measure)
    return values[-1] if values else None


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 or abs(x) >= 10 else f"{x:.1f}"


# Health --------------------------------------------------------------------------------------------
def _vs_peak(rows: list[Activity], measure: str, label: str, months: int) -> tuple[float, str] | None:
    recent, _ = windows(rows, measure, months)
    peak = max(_values(rows, measure), default=0.0)
    if recent is None or peak <= 0:
        return None
    return min(1.0, recent / peak), f"{label}近 {months} 个月平均 {_num(recent)}，峰值 {_num(peak)}（{recent / peak:.0%}）"


def milestone_totals(rows: list[Activity], tracked: MilestoneCounts | None) -> tuple[float, float]:
    """Done and late milestones: the activity export's plus those tracked on saved plans."""
    tracked = tracked or MilestoneCounts()
    return (sum(_values(rows, "milestones_done")) + tracked.done,
            sum(_values(rows, "milestones_late")) + tracked.late)


def _narrow_measures(rows: list[Activity], months: int,
                     tracked: MilestoneCounts | None = None) -> dict[str, tuple[float, str] | None]:
    measure, label = usage_measure(rows)
    adoption = latest(rows, "feature_adoption")
    done, late = milestone_totals(rows, tracked)
    return {
        "usage": _vs_peak(rows, measure, label, months),
        "logins": _vs_peak(rows, "logins", "登录次数", months),
        "adoption": None if adoption is None else (adoption, f"核心功能使用率 {adoption:.0%}"),
        "milestones": (done / (done + late), f"里程碑按期 {_num(done)} 个，延期 {_num(late)} 个")
        if done + late > 0 else None,
    }


def _broad_measures(rows: list[Activity], months: int) -> dict[str, tuple[float, str] | None]:
    recent, before = windows(rows, "tickets", months)
    nps = latest(rows, "nps")
    tickets = None
    if recent is not None and before is not None:
        tickets = (min(1.0, (before + 1) / (recent + 1)), f"工单每月从 {_num(before)} 个到 {_num(recent)} 个")
    return {"tickets": tickets, "nps": None if nps is None else ((nps + 100) / 200, f"NPS {_num(nps)}")}


def combine(measures: dict[str, tuple[float, str] | None], weights: dict[str, float]) -> HealthScore:
    """Weighted 0–100 score; absent measures are left out and the other weights renormalise."""
    present = {k: m for k, m in measures.items() if m is not None and weights.get(k, 0) > 0}
    missing = [k for k in weights if k not in present and weights[k] > 0]
    total = sum(weights[k] for k in present)
    if not present or total <= 0:
        return HealthScore(score=None, missing=missing, note="没有可用的数据")
    parts = [HealthPart(name=k, label=PART_LABELS.get(k, k), value=round(v, 4), weight=round(weights[k] / total, 4),
                        points=round(v * weights[k] / total * 100, 2), note=note)
             for k, (v, note) in present.items()]
    note = ("缺少" + "、".join(PART_LABELS.get(k, k) for k in missing) + "数据，权重按其余各项重新分配"
            if missing else "")
    return HealthScore(score=round(sum(p.points for p in parts), 2), parts=parts, missing=missing, note=note)


def health(account: Account, activity: list[Activity], rules: Insight, today: date,
           milestones: MilestoneCounts | None = None) -> Health:
    """Narrow health (usage + outcome) and broad health (narrow + experience), 0–100 with parts.
    `milestones`: the account's tracked plan milestones, added to the activity's counts."""
    rows = history(activity, account.id, today)
    months = rules.health.window_months
    narrow = combine(_narrow_measures(rows, months, milestones), dict(rules.health.narrow))
    broad_measures = _broad_measures(rows, months)
    if narrow.score is not None:
        broad_measures["narrow"] = (narrow.score / 100, f"狭义健康度 {narrow.score:.0f}")
    broad = combine(broad_measures, dict(rules.health.broad))
    return Health(score=broad.score, narrow=narrow, broad=broad)


# Renewal risk --------------------------------------------------------------------------------------
def _change(before: float, recent: float) -> str:
    pct = (recent - before) / before * 100 if before else 0.0
    return f"{pct:+.0f}%"


def indicators(account: Account, rows: list[Activity], rules: Insight, today: date,
               milestones: MilestoneCounts | None = None) -> dict[RiskIndicator, tuple[float, str, str]]:
    """Leading indicators present in the data: value, reason (one line, Chinese), short label."""
    months = rules.health.window_months
    found: dict[RiskIndicator, tuple[float, str, str]] = {}
    measure, label = usage_measure(rows)
    recent, before = windows(rows, measure, months)
    if recent is not None and before:
        verb = "降到" if recent < before else "升到"
        found["usage_decline"] = ((before - recent) / before,
                                  f"{label} {months} 个月从 {_num(before)} {verb} {_num(recent)}（{_change(before, recent)}）",
                                  f"{label} {_num(before)}→{_num(recent)}")
    adoption = latest(rows, "feature_adoption")
    if adoption is not None:
        _, a_before = windows(rows, "feature_adoption", months)
        trend = f"（之前 {a_before:.0%}）" if a_before is not None else ""
        found["adoption_gap"] = (1 - adoption, f"核心功能使用率 {adoption:.0%}{trend}", f"功能使用率 {adoption:.0%}")
    t_recent, t_before = windows(rows, "tickets", months)
    if t_recent is not None and t_before is not None:
        word = "上升" if t_recent > t_before else "下降" if t_recent < t_before else "持平"
        found["ticket_rise"] = (math.log((t_recent + 1) / (t_before + 1)),
                                f"工单每月从 {_num(t_before)} 个到 {_num(t_recent)} 个（{word}）", f"工单{word}")
    nps = latest(rows, "nps")
    if nps is not None:
        found["nps_detraction"] = (-nps / 100, f"NPS {_num(nps)}", f"NPS {_num(nps)}")
    done, late = milestone_totals(rows, milestones)
    if done + late > 0:
        found["late_milestones"] = (late / (done + late), f"里程碑延期 {_num(late)} 个，共 {_num(done + late)} 个",
                                    f"里程碑延期 {_num(late)} 个")
    if account.renews_on:
        days = (account.renews_on - today).days
        found["renewal_near"] = (min(1.0, max(0.0, 1 - days / rules.risk.horizon_days)),
                                 f"距续费 {days} 天" if days >= 0 else f"续费日已过 {-days} 天", f"{days} 天后续费")
    return found


def risk_level(probability: float, rules: Insight) -> RiskLevel:
    return "高" if probability >= rules.risk.high else "中" if probability >= rules.risk.medium else "低"


def renewal_risk(account: Account, activity: list[Activity], rules: Insight, today: date,
                 milestones: MilestoneCounts | None = None) -> Risk:
    """Chance the account does not renew: logistic over the leading indicators, with its drivers.
    `milestones`: the account's tracked plan milestones, added to the activity's counts."""
    rows = history(activity, account.id, today)
    weights = rules.risk.weights
    drivers = [Driver(indicator=k, value=round(v, 4), contribution=round(weights.get(k, 0.0) * v, 4),
                      reason=reason, label=label)
               for k, (v, reason, label) in indicators(account, rows, rules, today, milestones).items()]
    drivers.sort(key=lambda d: -d.contribution)
    logit = rules.risk.bias + sum(d.contribution for d in drivers)
    probability = 1 / (1 + math.exp(-logit))
    level = risk_level(probability, rules)
    pushing = [d.label for d in drivers if d.contribution > 0 and d.indicator != "renewal_near"][:2]
    detail = "，".join(pushing) if pushing else ("缺少活动数据" if not rows else "先导指标平稳")
    return Risk(probability=round(probability, 4), level=level, drivers=drivers, summary=f"续费风险{level}：{detail}")
