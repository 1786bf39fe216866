"""CSM: a joint success plan assembled deterministically from knowledge/plan_templates.yaml
(the file's header says how), the cadence and ownership rules, the best peer case and the
playbooks it follows. No LLM: the same customer and signing date always give the same plan."""

from __future__ import annotations

import ast
import calendar
import operator
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from copilot.accounts.models import Account
from copilot.accounts.resolve import AccountResolver, as_customer
from copilot.actions import ActionStore
from copilot.compose import Prompts
from copilot.errors import ConfigError, InvalidInput
from copilot.knowledge.pack import Pack
from copilot.knowledge.pack_models import Outcome, PlanTemplates, QuickWinTemplate, Side, TierPlan
from copilot.modeling import Model
from copilot.models import Customer, ProposedActionOut, ShortText, Tier
from copilot.normalize import contains_word, normalize
from copilot.workflows import WorkflowDeps
from copilot.workflows.cases import CaseSearchRequest, find_cases

# Who a rules.yaml ownership value puts in charge, by plan role.
OWNER_ROLES = {"csm": "客户成功经理", "sales": "销售"}
MAX_KEY_PEOPLE = 30


# Signing dates a plan accepts: beyond these a date is a typo, and date arithmetic would overflow.
SIGNING_RANGE = (date(2000, 1, 1), date(2100, 12, 31))


class KeyPerson(Model):
    name: str = Field(min_length=1, max_length=50)
    title: str = Field(default="", max_length=50)
    side: Side = "客户方"


class PlanCustomer(Customer):
    goals: list[ShortText] = Field(default_factory=list, max_length=20)
    key_people: list[KeyPerson] = Field(default_factory=list, max_length=MAX_KEY_PEOPLE)
    # Bounded: the plan counts years ahead from it (a date near 9999 overflowed into a 500).
    signing_date: date | None = Field(default=None, ge=SIGNING_RANGE[0], le=SIGNING_RANGE[1],
                                      description="YYYY-MM-DD, 2000-01-01 to 2100-12-31; today when left out")


class PlanRequest(Model):
    customer: PlanCustomer = Field(default_factory=PlanCustomer)
    account_id: str | None = Field(default=None, max_length=255, description=(
        "One of the company's accounts: its record fills the profile (name, industry, city, size, products, "
        "signing date, contacts as key people); fields given in `customer` still win"))


class FirstValue(Model):
    description: str
    days: int
    date: date
    outcome: str


class Milestone(Model):
    outcome: str
    day: int
    date: date
    title: str
    metric: str
    owner_us: str
    owner_client: str


class QuickWin(Model):
    title: str
    action: str
    products: list[str]
    impact: int
    resources: int
    probability: int
    score: float
    days: int
    due: date
    owner_side: Side
    owner: str
    metric: str


class OwnerTask(Model):
    what: str
    due: date


class Owner(Model):
    side: Side
    role: str
    person: str | None = Field(default=None, description="A key person whose title fits the role")
    duty: str
    tasks: list[OwnerTask] = Field(default_factory=list)
    next_deadline: date | None = None


class Cadence(Model):
    style: str
    plan_format: str
    csm_model: str
    kickoff: str
    kickoff_by: date
    review: str
    review_every_days: int | None
    first_reviews: list[date]
    business_review: str
    business_review_dates: list[date]
    touch: str
    sponsor: str | None = None


class Indicator(Model):
    name: str
    health: str
    kind: str
    metric: str
    healthy: str
    warning: str


class Renewal(Model):
    date: date
    prepare_from: date
    owner: str
    new_sale_until: date | None = Field(default=None, description="Upsell before this date counts as a new sale")


class ExpansionStep(Model):
    product: str
    why: str
    owner: str


class SourceRef(Model):
    id: str
    kind: Literal["case", "playbook"]
    title: str
    why: str = ""


class SuccessPlan(Model):
    customer: PlanCustomer
    account_id: str | None = Field(default=None, description="The account the plan is for, when drafted for one")
    tier: Tier
    style: str
    outcomes: list[str] = Field(description="Keys of the plan_templates outcomes the goals selected")
    desired_outcome: str
    first_value: FirstValue
    milestones: list[Milestone]
    quick_wins: list[QuickWin]
    owners: list[Owner]
    other_people: list[KeyPerson] = Field(default_factory=list,
                                          description="Key people whose title fits no role in the plan: still listed")
    cadence: Cadence
    leading_indicators: list[str]
    renewal_indicators: list[Indicator]
    renewal: Renewal
    expansion: list[ExpansionStep]
    sources: list[SourceRef]


# Assembly ------------------------------------------------------------------------------------------
def draft_plan(deps: WorkflowDeps, customer: PlanCustomer, audiences: list[str] | None = None,
               today: date | None = None) -> SuccessPlan:
    """The full plan for one customer; the peer case comes from the cases workflow (profile only)."""
    pack = deps.pack
    tier = plan_tier(pack, customer)
    signing = customer.signing_date or today or date.today()
    customer = customer.model_copy(update={"signing_date": signing, "tier": tier})
    situation = sorted(set(customer.situation) | goal_situations(pack, customer.goals))
    peers = find_cases(deps, CaseSearchRequest(k=1, profile=customer.model_copy(update={"situation": situation})),
                       audiences)
    best = [m for m in peers.matches if m.good_match][:1]
    peer_refs = [SourceRef(id=m.case.id, kind="case", title=f"{m.case.company}：{m.case.summary}",
                           why="最相近的同行案例：" + "、".join(m.why)) for m in best]
    return build_plan(pack, customer, tier, signing, peer_refs, audiences)


def draft_for_request(deps: WorkflowDeps, request: PlanRequest, audiences: list[str] | None = None,
                      accounts: AccountResolver | None = None) -> SuccessPlan:
    """`draft_plan` for an API request: with an account, its record is the profile (NotFound if unknown)."""
    if not request.account_id:
        return draft_plan(deps, request.customer, audiences)
    if accounts is None:
        raise InvalidInput("Accounts are not available here: give the customer's profile instead of account_id")
    customer = customer_from_account(accounts.get(request.account_id), request.customer)
    return draft_plan(deps, customer, audiences).model_copy(update={"account_id": request.account_id})


def customer_from_account(account: Account, given: PlanCustomer | None = None) -> PlanCustomer:
    """The account record as a plan profile; whatever the caller stated (non-empty) wins. Its contacts
    are the customer's key people, its CSM and sales owner ours."""
    given = given or PlanCustomer()
    ours = [KeyPerson(name=name[:50], title=title, side="我方")
            for name, title in ((account.csm, "客户成功经理"), (account.sales, "销售")) if name]
    theirs = [KeyPerson(name=c.name[:50], title=c.title[:50], side="客户方") for c in account.contacts if c.name]
    people = theirs[:MAX_KEY_PEOPLE - len(ours)] + ours  # a CRM may list dozens of contacts
    profile = as_customer(account, given)
    return PlanCustomer(**profile.model_dump(), goals=given.goals, key_people=given.key_people or people,
                        signing_date=given.signing_date or _plausible(account.signed_on))


def _plausible(signed_on: date | None) -> date | None:
    """A CRM's signing date, unless it is outside what a plan accepts (a 1900 spreadsheet default,
    a typo): then the plan starts today, as when the date is missing."""
    return signed_on if signed_on and SIGNING_RANGE[0] <= signed_on <= SIGNING_RANGE[1] else None


def build_plan(pack: Pack, customer: PlanCustomer, tier: str, signing: date, peer_refs: list[SourceRef],
               audiences: list[str] | None) -> SuccessPlan:
    templates = pack.plan_templates
    tier_info = templates.tiers.get(tier)
    if not tier_info:
        raise ConfigError(f"plan_templates.yaml has no tier {tier!r}")
    outcomes = select_outcomes(templates, customer.goals)
    people = PeopleMatcher(pack, customer.key_people)
    milestones = sorted((Milestone(outcome=o.key, day=m.day, date=signing + timedelta(days=m.day), title=m.title,
                                   metric=m.metric, owner_us=people.display("我方", m.owner_us),
                                   owner_client=people.display("客户方", m.owner_client))
                         for o in outcomes for m in o.milestones), key=lambda m: m.day)  # stable
    quick_wins = [QuickWin(**q.model_dump(exclude={"owner", "for_goals"}), score=round(score, 2),
                           due=signing + timedelta(days=q.days), owner=people.display(q.owner_side, q.owner))
                  for q, score in select_quick_wins(templates, outcomes, customer.products, offered(pack))]
    first = min(outcomes, key=lambda o: o.first_value_days)
    bought = set(customer.products) or {p for o in outcomes for p in o.products}
    plan_owners = owners(pack, people, milestones, quick_wins, tier_info)
    placed = {(o.side, o.person) for o in plan_owners if o.person}
    return SuccessPlan(
        customer=customer, tier=tier, style=tier_info.style, outcomes=[o.key for o in outcomes],
        desired_outcome="；".join(o.desired_outcome for o in outcomes),
        first_value=FirstValue(description=first.first_value, days=first.first_value_days,
                               date=signing + timedelta(days=first.first_value_days), outcome=first.key),
        milestones=milestones, quick_wins=quick_wins,
        owners=plan_owners, other_people=[p for p in customer.key_people if (p.side, p.name) not in placed],
        cadence=cadence(pack, tier, tier_info, signing),
        leading_indicators=_unique(i for o in outcomes for i in o.leading_indicators),
        renewal_indicators=[Indicator(**i.model_dump()) for i in templates.renewal_indicators
                            if i.health in tier_info.indicators],
        renewal=renewal(pack, tier_info, signing, people),
        expansion=expansion(pack, tier, outcomes, bought, people),
        sources=peer_refs + playbook_refs(pack, tier, audiences))


def plan_tier(pack: Pack, customer: Customer) -> str:
    if customer.tier:
        return customer.tier
    if customer.annual_fee is not None:
        return pack.rules.tier_for_fee(customer.annual_fee)
    raise InvalidInput("Say how big the customer is: give the tier (大型/中型/中小/小微) or the annual fee")


def select_outcomes(templates: PlanTemplates, goals: list[str]) -> list[Outcome]:
    """Outcomes whose goal words appear in the goals, in file order, at most max_outcomes; else default."""
    text = normalize(" ".join(goals)).lower()
    chosen = [o for o in templates.outcomes if o.key != "default"
              and any(contains_word(text, w) for w in o.goal_words)][:templates.scoring.max_outcomes]
    default = [o for o in templates.outcomes if o.key == "default"]
    if not chosen and not default:
        raise ConfigError("plan_templates.yaml needs an outcome with key: default")
    return chosen or default


def offered(pack: Pack) -> set[str]:
    """The products the company sells (its vendor.yaml): a plan never recommends anything else,
    whatever product names the plan templates mention."""
    return pack.vendor.product_names()


def select_quick_wins(templates: PlanTemplates, outcomes: list[Outcome], products: list[str],
                      catalogue: set[str] | None = None) -> list[tuple[QuickWinTemplate, float]]:
    """Eligible candidates by score, then probability, fewer resources, fewer days, file order.
    With a catalogue, a quick win needing a product the company does not sell is left out."""
    keys = {o.key for o in outcomes}
    owned = set(products)
    eligible = [(i, q) for i, q in enumerate(templates.quick_wins)
                if (keys & set(q.for_goals) or "default" in q.for_goals)
                and (not owned or set(q.products) <= owned)
                and (catalogue is None or set(q.products) <= catalogue)]
    scored = [(q, evaluate(templates.scoring.formula, q), i) for i, q in eligible]
    scored.sort(key=lambda t: (-t[1], -t[0].probability, t[0].resources, t[0].days, t[2]))
    return [(q, s) for q, s, _ in scored[:templates.scoring.pick]]


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(formula: str, item: QuickWinTemplate | Mapping[str, Any]) -> float:
    """Arithmetic over a quick win's numeric fields (+ - * / and brackets), nothing else."""
    values = item.model_dump() if isinstance(item, BaseModel) else item

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and isinstance(values.get(node.id), (int, float)):
            return float(values[node.id])
        raise ConfigError(f"plan_templates.yaml scoring.formula {formula!r}: cannot evaluate {ast.dump(node)}")

    try:
        return walk(ast.parse(formula, mode="eval"))
    except (SyntaxError, ZeroDivisionError) as exc:
        raise ConfigError(f"plan_templates.yaml scoring.formula {formula!r}: {exc}") from None


def goal_situations(pack: Pack, goals: list[str]) -> set[str]:
    text = normalize(" ".join(goals))
    return {name for name, words in pack.gazetteer.situations.items() if any(contains_word(text, w) for w in words)}


class PeopleMatcher:
    """Puts a key person's name on a plan role when their title fits it (same side only)."""

    def __init__(self, pack: Pack, people: list[KeyPerson]) -> None:
        self.people = people
        self.titles = pack.rules.success_plan.role_titles

    def person(self, side: str, role: str) -> KeyPerson | None:
        words = [role, *role.split("/"), *self.titles.get(role, [])]
        return next((p for p in self.people if p.side == side and p.title
                     and any(w and (w.lower() in p.title.lower() or p.title.lower() in w.lower()) for w in words)), None)

    def display(self, side: str, role: str) -> str:
        person = self.person(side, role)
        return f"{person.name}（{role}）" if person else role


def owners(pack: Pack, people: PeopleMatcher, milestones: list[Milestone], quick_wins: list[QuickWin],
           tier_info: TierPlan) -> list[Owner]:
    """Every role with work in the plan, both sides, with its tasks and nearest deadline."""
    duties, sides = pack.plan_templates.duties, pack.plan_templates.owners
    tasks: dict[tuple[str, str], list[OwnerTask]] = {("我方", "客户成功经理"): [], ("客户方", "老板/总经理"): []}
    if tier_info.sponsor and "高层赞助人" in tier_info.sponsor:
        tasks[("我方", "高层赞助人")] = []
    for m in milestones:
        for side, shown in (("我方", m.owner_us), ("客户方", m.owner_client)):
            tasks.setdefault((side, _role_of(shown)), []).append(OwnerTask(what=m.title.split("：")[0], due=m.date))
    for q in quick_wins:
        tasks.setdefault((q.owner_side, _role_of(q.owner)), []).append(OwnerTask(what=f"快速见效：{q.title}", due=q.due))
    for side, roles in sides.items():  # roles a key person fills take part too
        for role in roles:
            if people.person(side, role):
                tasks.setdefault((side, role), [])
    result = []
    for (side, role), items in tasks.items():
        person = people.person(side, role)
        items = sorted(items, key=lambda t: t.due)
        result.append(Owner(side=side, role=role, person=person.name if person else None, duty=duties.get(role, ""),
                            tasks=items, next_deadline=items[0].due if items else None))
    order = {s: i for i, s in enumerate(sides)}
    return sorted(result, key=lambda o: (order.get(o.side, 9), _index(sides.get(o.side, []), o.role)))


def _role_of(shown: str) -> str:
    return shown.split("（", 1)[1].rstrip("）") if "（" in shown and shown.endswith("）") else shown


def _index(items: list[str], item: str) -> int:
    return items.index(item) if item in items else len(items)


def cadence(pack: Pack, tier: str, info: TierPlan, signing: date) -> Cadence:
    every, qbr_every = info.review_every_days, info.qbr_every_days
    exec_review = pack.rules.cadence[tier].exec if tier in pack.rules.cadence else ""
    return Cadence(
        style=info.style, plan_format=info.plan_format, csm_model=info.csm_model, kickoff=info.kickoff,
        kickoff_by=signing + timedelta(days=info.kickoff_within_days), review=info.review, review_every_days=every,
        first_reviews=[signing + timedelta(days=every * n) for n in (1, 2, 3)] if every else [],
        business_review=info.qbr or exec_review or "无",
        business_review_dates=[signing + timedelta(days=qbr_every * n) for n in (1, 2)] if qbr_every else [],
        touch=info.touch, sponsor=info.sponsor)


def renewal(pack: Pack, info: TierPlan, signing: date, people: PeopleMatcher) -> Renewal:
    due = add_months(signing, 12)
    ownership = pack.rules.ownership
    window = ownership.new_sale_window.months
    return Renewal(date=due, prepare_from=due - timedelta(days=info.renewal_prep_days),
                   owner=people.display("我方", OWNER_ROLES[ownership.renewal]),
                   new_sale_until=add_months(signing, window) if window else None)


def expansion(pack: Pack, tier: str, outcomes: list[Outcome], bought: set[str],
              people: PeopleMatcher) -> list[ExpansionStep]:
    """Products not yet bought, from the chosen outcomes; cross-sell owner by the ownership rules."""
    cross = pack.rules.ownership.cross_sell
    role = "销售" if tier in cross.sales_if_tiers else OWNER_ROLES[cross.otherwise]
    steps, seen, sold = [], set(bought), offered(pack)
    for o in outcomes:
        for step in o.expansion:
            if step.product not in seen and step.product in sold:
                seen.add(step.product)
                steps.append(ExpansionStep(product=step.product, why=step.why, owner=people.display("我方", role)))
    return steps


def playbook_refs(pack: Pack, tier: str, audiences: list[str] | None) -> list[SourceRef]:
    rules = pack.rules.success_plan
    topics = [*rules.playbook_topics, *rules.tier_playbook_topics.get(tier, [])]
    return [SourceRef(id=p.id, kind="playbook", title=p.title, why=f"方法依据（{p.topic}）")
            for topic in topics for p in pack.playbooks
            if p.topic == topic and (audiences is None or p.audience in audiences)]


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


# The customer's name in a chat question -----------------------------------------------------------
_NAME = r"[^\t\n\r，,。．.；;：:！!？?、（）()「」『』“”\"'《》【】\[\]给帮为替的份个]{2,30}?"
_OPEN, _CLOSE = r"[「『“\"《]?", r"[」』”\"》]?"
_NOTE = r"\s*(?:[（(][^）)]*[）)])?\s*"  # "麦香坊（杭州烘焙连锁，年费18万）"
_NAME_PATTERNS = [re.compile(p) for p in (
    # 帮麦香坊（…）出一份成功计划 / 给客户「麦香坊」做个计划
    rf"(?:帮|给|为|替)我?(?:给|为)?\s*(?:客户)?{_OPEN}({_NAME}){_CLOSE}{_NOTE}"
    r"(?:出|做|写|起草|草拟|拟|定|制定|准备|整理|生成|弄|搞|列)[^，,。；;！!？?]*?(?:计划|规划|方案|plan)",
    # 麦香坊的成功计划 / 做一份麦香坊的客户成功计划
    rf"(?:^|[\s，,。；;：:！!？?、帮给为替份个])\s*{_OPEN}({_NAME}){_CLOSE}{_NOTE}的(?:联合)?(?:客户)?成功计划",
    # 客户叫麦香坊，… / 客户：麦香坊
    rf"客户(?:名称|名字|名|叫|是|\s*[:：])\s*[:：]?\s*{_OPEN}({_NAME}){_CLOSE}(?=[（(，,。；;！!？?\s]|$)",
)]
# Words that make a phrase a description ("杭州一家年费18万的烘焙连锁"), not a name.
_NOT_A_NAME = re.compile(r"^(?:我|你|您|他|她|它|咱|这|那|该|某|本|每|各|新签|刚签)|[一这那某几哪]家|"
                         r"\d\s*(?:万|千|家|店|元|块)|年费|(?:客户|商户|商家|连锁|门店|店铺|计划)$")


def customer_name_from_text(text: str) -> str | None:
    """The customer's name when a chat question gives one ("帮麦香坊（…）出一份成功计划" -> 麦香坊), else None."""
    for pattern in _NAME_PATTERNS:
        for found in pattern.finditer(text or ""):
            name = found.group(1).strip()
            if len(name) >= 2 and not _NOT_A_NAME.search(name):
                return name
    return None


# Export and actions --------------------------------------------------------------------------------
def render_plan(prompts: Prompts, plan: SuccessPlan) -> str:
    return prompts.render("plan.md.j2", plan=plan, c=plan.customer)


def propose_plan_action(prompts: Prompts, actions: ActionStore, plan: SuccessPlan, action: Literal["save", "share"],
                        actor: str, role: str, recipient: str | None = None,
                        markdown: str | None = None, accounts: AccountResolver | None = None, *,
                        pack: Pack) -> ProposedActionOut:
    """Saving or sharing a plan changes the world: store it as a proposed action to confirm.

    `markdown` is the export as the person edited it; without it the plan is rendered afresh.
    A plan for an account must name one that exists (NotFound otherwise), so it is saved under it.
    A shared plan goes to the customer: internal knowledge is left out, and the action says what."""
    if plan.account_id and accounts is not None:
        accounts.get(plan.account_id)
    edited = bool(markdown and markdown.strip())
    if action == "share":  # to the customer: internal knowledge stays behind
        plan, markdown, left_out = outbound(pack, prompts, plan, markdown if edited else None)
    else:
        markdown, left_out = markdown if edited else render_plan(prompts, plan), []
    name = plan.customer.name or "客户"
    summary = (f"保存「{name}」的客户成功计划" if action == "save"
               else f"分享「{name}」的客户成功计划给 {recipient or '客户'}")
    arguments = {"customer": name, "recipient": recipient, "markdown": markdown, "edited": edited,
                 "plan": plan.model_dump(mode="json")}
    if left_out:
        summary += f"（已略去 {len(left_out)} 项内部资料）"
        arguments |= {"left_out": left_out, "left_out_note": left_out_note(left_out)}
    return actions.propose(f"{action}_plan", summary, arguments, actor, role)


# What may leave the company -----------------------------------------------------------------------
OUTBOUND_AUDIENCE = "public"


def outbound(pack: Pack, prompts: Prompts, plan: SuccessPlan,
             markdown: str | None) -> tuple[SuccessPlan, str, list[dict[str, str]]]:
    """What a shared plan may carry (the plan and its export, as edited or rendered afresh) and the
    internal items left out of it."""
    plan, left_out = outbound_plan(pack, plan)
    markdown, named = without_internal_lines(pack, markdown or render_plan(prompts, plan))
    seen = {item["id"] for item in left_out}
    return plan, markdown, left_out + [item for item in named if item["id"] not in seen]


def outbound_plan(pack: Pack, plan: SuccessPlan) -> tuple[SuccessPlan, list[dict[str, str]]]:
    """The plan without the sources a customer may not read. The plan comes from the client, so each
    source is looked up in the pack: one it does not know is left out too."""
    audience = {item.id: item.audience for item in [*pack.cases, *pack.playbooks]}
    kept = [s for s in plan.sources if audience.get(s.id) == OUTBOUND_AUDIENCE]
    dropped = [{"id": s.id, "kind": s.kind, "title": s.title} for s in plan.sources if s not in kept]
    return plan.model_copy(update={"sources": kept}), dropped


def without_internal_lines(pack: Pack, markdown: str) -> tuple[str, list[dict[str, str]]]:
    """The Markdown without the lines that name an internal item (by id or title): an edited export
    may have copied one in. Returns the items it named."""
    named = [item for item in internal_items(pack) if _names(markdown, item)]
    if not named:
        return markdown, []
    lines = [line for line in markdown.splitlines() if not any(_names(line, item) for item in named)]
    return "\n".join(lines), named


def internal_items(pack: Pack) -> list[dict[str, str]]:
    return ([{"id": c.id, "kind": "case", "title": c.company} for c in pack.cases if c.audience != OUTBOUND_AUDIENCE]
            + [{"id": p.id, "kind": "playbook", "title": p.title} for p in pack.playbooks
               if p.audience != OUTBOUND_AUDIENCE]
            + [{"id": f.id, "kind": "faq", "title": f.question} for f in pack.faqs if f.audience != OUTBOUND_AUDIENCE])


def _names(text: str, item: dict[str, str]) -> bool:
    # Ids are matched whole: "faq-billing-01" is not named by "faq-billing-010". A case is matched by
    # id only: its company may well be the very customer the plan is for.
    if re.search(rf"(?<![\w-]){re.escape(item['id'])}(?![\w-])", text):
        return True
    return item["kind"] != "case" and len(item["title"]) >= 4 and item["title"] in text


def left_out_note(left_out: list[dict[str, str]]) -> str:
    titles = "、".join(f"「{item['title']}」" for item in left_out[:5]) + ("等" if len(left_out) > 5 else "")
    return f"发给客户的内容不含仅限内部的资料，已略去 {len(left_out)} 项：{titles}。"
