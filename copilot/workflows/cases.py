"""Sales: peer cases for a prospect, ranked by the facets in rules.yaml `case_matching` (scored
in `copilot.matching`), each with why it matched, the peer's numbers, and a value estimate
drawn from the good matches."""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any

from pydantic import Field, model_validator

from copilot.accounts.models import Account
from copilot.accounts.resolve import AccountResolver, as_customer, contact_card
from copilot.actions import ActionStore
from copilot.compose import Prompts
from copilot.errors import Forbidden, InvalidInput, NotFound
from copilot.knowledge.schema import Result
from copilot.matching import CaseMatch, effective_weights, facet_scores, merge_customer, score_case
from copilot.modeling import Model
from copilot.models import MAX_QUESTION_CHARS, Customer, ProposedActionOut, SearchFilters, Slots
from copilot.normalize import normalize
from copilot.rules import Rules
from copilot.workflows import WorkflowDeps

NOT_ENOUGH = "没有足够相近的案例，以下是最接近的备选。"
# What may go to a customer: a one-pager is outbound, so an internal case never becomes one.
OUTBOUND_AUDIENCE = "public"


class CaseSearchRequest(Model):
    query: str | None = Field(default=None, max_length=MAX_QUESTION_CHARS, description="Free text about the prospect")
    profile: Customer | None = Field(default=None, description="What is known about the prospect")
    account_id: str | None = Field(default=None, max_length=255, description=(
        "One of the company's accounts: its industry, city, size and products are the profile "
        "(fields given in `profile` still win); an account named in the query is used the same way"))
    k: int = Field(default=5, ge=1, le=20)

    @model_validator(mode="after")
    def _something_to_match(self) -> "CaseSearchRequest":
        if not (self.query or "").strip() and self.profile is None and not self.account_id:
            raise ValueError("give a query, a profile, an account_id, or any of them together")
        return self


class MetricEstimate(Model):
    metric: str
    typical_before: float | None
    typical_after: float
    unit: str
    change_pct: float | None = Field(default=None, description="Median relative change, in percent")
    based_on: list[str]


class ValueEstimate(Model):
    summary: str
    method: str
    metrics: list[MetricEstimate]
    time_to_first_value_days: float | None = None
    based_on: list[str] = Field(default_factory=list)


class AccountRef(Model):
    id: str
    name: str


class CaseSearchResult(Model):
    matches: list[CaseMatch]
    good_matches: int
    note: str
    value_estimate: ValueEstimate | None
    profile: Slots = Field(description="The prospect as understood from the profile and the text")
    weights: dict[str, float] = Field(description="Facet weights used, renormalised over the known facets")
    account: AccountRef | None = Field(default=None, description="The account whose record filled the profile")
    internal_cases: list[str] = Field(default_factory=list, description=(
        "Ids of the matches that are internal-only: they inform the seller but never go to a customer"))


class OnepagerRequest(Model):
    case_id: str = Field(min_length=1, max_length=255)
    prospect: Customer | None = None
    recipient: str | None = Field(default=None, max_length=200)
    account_id: str | None = Field(default=None, max_length=255, description=(
        "Send to this account: it is the prospect, and its primary contact the recipient unless one is named"))


# Search ------------------------------------------------------------------------------------------
def find_cases(deps: WorkflowDeps, request: CaseSearchRequest, audiences: list[str] | None = None,
               accounts: AccountResolver | None = None) -> CaseSearchResult:
    """Rank the cases the caller may see; never pad the good matches with weak ones."""
    rules = deps.pack.rules
    text = (request.query or "").strip()
    account = _account(accounts, request.account_id)
    if account is None and text and accounts is not None and (mention := accounts.mention(text)):
        # "给麦香坊找几个案例": the account's record says more than its name, which says nothing to match on.
        account, text = mention.account, normalize(text).replace(mention.words, " ").strip()
    profile = as_customer(account, request.profile) if account else request.profile
    slots = understand(deps, text, profile)
    weights = effective_weights(rules, slots, bool(text))
    if not weights:
        raise InvalidInput("Nothing to match on: give the prospect's industry, city, size or situation, or describe it")
    cases = [c for c in deps.pack.cases if audiences is None or c.audience in audiences]
    semantic = text_similarity(deps, text, audiences, len(cases)) if text else {}
    ranked = sorted(((score_case(rules, slots, case, semantic.get(case.id, 0.0), weights), i)
                     for i, case in enumerate(cases)),
                    key=lambda item: (-item[0].score, -item[0].breakdown["semantic"], item[1]))
    scored = [match for match, _ in ranked]
    good = [m for m in scored if m.good_match][:request.k]
    if good:
        matches, note = good, f"找到 {len(good)} 个相近案例（综合得分 ≥ {rules.case_matching.good_match:g}），按匹配度排序。"
    else:
        matches = [m for m in scored if m.score > 0][:min(request.k, rules.case_workflow.alternatives)]
        note = NOT_ENOUGH if matches else "没有找到可参考的案例：请补充客户的行业、城市、规模或情境。"
    return CaseSearchResult(matches=matches, good_matches=len(good), note=note,
                            value_estimate=estimate_value(rules, good) if good else None,
                            profile=slots, weights={f: round(w, 4) for f, w in weights.items()},
                            account=AccountRef(id=account.id, name=account.name) if account else None,
                            internal_cases=[m.case.id for m in matches if _is_internal(deps, m.case.id)])


def _is_internal(deps: WorkflowDeps, case_id: str) -> bool:
    case = deps.pack.case(case_id)
    return case is None or case.audience != OUTBOUND_AUDIENCE


def _account(accounts: AccountResolver | None, account_id: str | None) -> Account | None:
    """The account a request names by id; NotFound for an unknown one."""
    if not account_id:
        return None
    if accounts is None:
        raise InvalidInput("Accounts are not available here: give the prospect's profile instead of account_id")
    return accounts.get(account_id)


def understand(deps: WorkflowDeps, text: str, profile: Customer | None) -> Slots:
    """Slots from the free text, overridden by whatever the explicit profile says."""
    slots = deps.classifier.slots(normalize(text)) if text else Slots()
    return merge_customer(deps.pack.rules, slots, profile) if profile is not None else slots  # type: ignore[arg-type]


def text_similarity(deps: WorkflowDeps, text: str, audiences: list[str] | None, k: int) -> dict[str, float]:
    """Hybrid-search score of each case for the free text, relative to the best case (0..1)."""
    found = deps.retriever.search(text, k=max(k, 1), filters=SearchFilters(kinds=["case"], audiences=audiences))
    top = max((e.score for e in found.results), default=0.0)
    return {e.source: e.score / top for e in found.results} if top > 0 else {}


# Value estimate ------------------------------------------------------------------------------------
def estimate_value(rules: Rules, good: list[CaseMatch]) -> ValueEstimate:
    """Median outcome per metric over the good matches; metrics backed by more cases first."""
    by_metric: dict[str, list[tuple[str, Result]]] = {}
    for match in good:
        for result in match.case.results:
            by_metric.setdefault(result.metric, []).append((match.case.id, result))
    ranked = sorted(by_metric.items(), key=lambda item: -len(item[1]))  # stable: best match's metrics first
    metrics = [_metric_estimate(metric, rows) for metric, rows in ranked[:rules.case_workflow.estimate_max_metrics]]
    ids = [m.case.id for m in good]
    # Only cases that say how long first value took count (a sheet may not have the column).
    known = [m.case.time_to_first_value_days for m in good if m.case.time_to_first_value_days]
    ttfv = median(known) if known else None
    parts = "；".join(_describe(m) for m in metrics)
    first_value = f"；首次见到价值的时间中位约 {_num(ttfv)} 天" if ttfv is not None else ""
    summary = f"参考 {len(ids)} 个相近案例，这位客户可期待：{parts}{first_value}。这是按同行结果推算的参考，不是承诺。"
    method = (f"取综合得分 ≥ {rules.case_matching.good_match:g} 的 {len(ids)} 个相近案例（{'、'.join(ids)}），"
              "对每个指标取这些案例的中位数：有上线前数值的，给出前后中位数和变化幅度的中位数；"
              "百分比类指标可以直接参考前后水平，金额、人数等与规模相关的指标请按变化幅度参考。"
              "指标按支撑它的案例数排序。")
    return ValueEstimate(summary=summary, method=method, metrics=metrics, based_on=ids,
                         time_to_first_value_days=None if ttfv is None else float(ttfv))


def _metric_estimate(metric: str, rows: list[tuple[str, Result]]) -> MetricEstimate:
    unit = Counter(r.unit for _, r in rows).most_common(1)[0][0]
    rows = [(cid, r) for cid, r in rows if r.unit == unit]
    with_before = [(cid, r) for cid, r in rows if r.before is not None]
    used = with_before or rows
    changes = [(r.after - r.before) / r.before * 100 for _, r in with_before if r.before]
    return MetricEstimate(
        metric=metric, unit=unit, based_on=[cid for cid, _ in used],
        typical_before=round(median(r.before for _, r in with_before), 2) if with_before else None,  # type: ignore[misc]
        typical_after=round(median(r.after for _, r in used), 2),
        change_pct=round(median(changes), 1) if changes else None)


def _describe(m: MetricEstimate) -> str:
    cases = f"（{len(m.based_on)} 个案例）"
    if m.typical_before is None:
        return f"{m.metric}达到约 {_num(m.typical_after)}{m.unit}{cases}"
    if m.unit == "%":
        return f"{m.metric}从约 {_num(m.typical_before)}% 到 {_num(m.typical_after)}%{cases}"
    levels = f"{_num(m.typical_before)}{m.unit} 到 {_num(m.typical_after)}{m.unit}"
    if m.change_pct is None:  # no baseline to scale from
        return f"{m.metric}同行从 {levels}{cases}"
    return f"{m.metric}变化约 {m.change_pct:+g}%（同行从 {levels}）{cases}"


def _num(x: float) -> str:
    return f"{round(float(x), 1):g}"


# One-pager ---------------------------------------------------------------------------------------
def render_onepager(deps: WorkflowDeps, prompts: Prompts, request: OnepagerRequest,
                    audiences: list[str] | None = None, accounts: AccountResolver | None = None) -> str:
    """A Markdown one-pager about one case, addressed to the prospect when one is given."""
    rules = deps.pack.rules
    case = deps.pack.case(request.case_id)
    if case is None or (audiences is not None and case.audience not in audiences):
        raise NotFound(f"No case with id {request.case_id!r}: find one with POST /api/cases/search")
    if case.audience != OUTBOUND_AUDIENCE:
        raise Forbidden(f"Case {case.id!r} is internal-only: it cannot go to a customer; pick a public case",
                        zh=f"案例「{case.company}」仅限内部参考，不能做成一页纸发给客户；请换一个公开案例")
    to = addressee(accounts, request)
    why: list[str] = []
    if to.prospect is not None:
        slots = merge_customer(rules, Slots(), to.prospect)  # type: ignore[arg-type]
        why = facet_scores(rules, slots, case, 0.0)[1]
    return prompts.render(
        "onepager.md.j2", vendor=deps.pack.vendor.vendor, case=case, tier=rules.tier_for_fee(case.annual_fee),
        fee=_num(case.annual_fee / 10_000), results=[_result_row(r) for r in case.results],
        prospect=to.prospect.model_dump() if to.prospect else None, why=why, recipient=to.recipient or "",
        title=(to.contact or {}).get("title", ""), account=to.account.name if to.account else "")


class Addressee(Model):
    """Whom a one-pager is for: the prospect, and the person it goes to as the CRM knows them."""

    account: Account | None = None
    prospect: Customer | None = None
    recipient: str | None = None
    contact: dict[str, str] | None = None


def addressee(accounts: AccountResolver | None, request: OnepagerRequest) -> Addressee:
    """With an account: it is the prospect (explicit fields win), and the recipient is the contact
    named in the request, else its primary contact."""
    account = _account(accounts, request.account_id)
    if account is None:
        return Addressee(prospect=request.prospect, recipient=request.recipient)
    contact = contact_card(account, request.recipient) if request.recipient else contact_card(account)
    return Addressee(account=account, prospect=as_customer(account, request.prospect), contact=contact,
                     recipient=request.recipient or (contact["name"] if contact else None))


def _result_row(result: Result) -> dict[str, Any]:
    before = f"{_num(result.before)}{result.unit}" if result.before is not None else "—"
    return {"metric": result.metric, "before": before, "after": f"{_num(result.after)}{result.unit}"}


def propose_onepager(deps: WorkflowDeps, prompts: Prompts, actions: ActionStore, request: OnepagerRequest,
                     actor: str, role: str, audiences: list[str] | None = None,
                     accounts: AccountResolver | None = None) -> tuple[str, ProposedActionOut]:
    """Render the one-pager and store "send it" as a proposed action for a human to confirm."""
    markdown = render_onepager(deps, prompts, request, audiences, accounts)
    case = deps.pack.case(request.case_id)
    assert case is not None
    to = addressee(accounts, request)
    who = " ".join(filter(None, [to.account.name if to.account else None, to.recipient])) or \
        (to.prospect.name if to.prospect and to.prospect.name else "客户")
    arguments = {"case_id": case.id, "company": case.company, "recipient": to.recipient,
                 "prospect": to.prospect.model_dump() if to.prospect else None, "markdown": markdown}
    if to.account is not None:
        arguments |= {"account_id": to.account.id, "account_name": to.account.name, "contact": to.contact}
    action = actions.propose("send_case_onepager", f"发送案例一页纸「{case.company}」给 {who}", arguments, actor, role)
    return markdown, action
