"""The one paradigm as code: understand intent -> find evidence + rules -> compose -> propose.

`answer()` calls the stages in order with typed hand-offs and nothing else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from copilot import conversation
from copilot.accounts.models import Account
from copilot.accounts.resolve import AccountResolver, Mention, as_customer, contact_card
from copilot.accounts.store import name_key
from copilot.actions import STATUS_ZH, ActionStore, AuditLog
from copilot.compose import LlmComposer, TemplateComposer, renumber_citations
from copilot.errors import InvalidInput
from copilot.intent import IntentClassifier
from copilot.llm_budget import LlmBudget
from copilot.knowledge.pack import Pack
from copilot.matching import effective_weights, merge_customer, score_case
from copilot.models import (MAX_QUESTION_CHARS, AskResponse, Classification, Customer, Draft, Evidence, Intent, ProposedActionOut, Role, SearchFilters,
                            SearchResult, Slots)
from copilot.normalize import normalize
from copilot.retrieve import HybridRetriever
from copilot.rules import Grounding

if TYPE_CHECKING:
    from copilot.accounts.book import Book
    from copilot.accounts.health import MilestoneCounts
    from copilot.calibration import Reference

EVIDENCE_K = 6


@dataclass
class Deps:
    pack: Pack
    retriever: HybridRetriever
    classifier: IntentClassifier
    composer: TemplateComposer
    actions: ActionStore
    audit: AuditLog
    llm: LlmComposer | None = None
    llm_intent: bool = True
    audiences: dict[str, list[str]] = field(default_factory=dict)  # per-caller override
    accounts: AccountResolver | None = None  # the company's own customers, found by name in a question
    account_book: Callable[[], Book] | None = None  # their health and risk, as the accounts API has them
    tracked_milestones: Callable[[str], MilestoneCounts | None] | None = None  # of an account's saved plans
    decline_reference: Callable[[], Reference | None] | None = None  # off-topic questions' signals here


def answer(deps: Deps, question: str, role: Role, customer: Customer | None = None,
           history: list[str | conversation.Turn] | None = None, actor: str = "anonymous",
           audiences: list[str] | None = None) -> AskResponse:
    question = validate_question(question)
    resolved = conversation.resolve(question, history, deps.classifier)
    query = resolved.query  # "那上海的呢？" → a whole question
    # Health, renewal risk and owners are internal business data: only for callers who read internal knowledge.
    reads_accounts = audiences is None or "internal" in audiences
    if reads_accounts and deps.accounts is not None and deps.account_book is not None and (about := _account_answer(
            query, role, deps.accounts, deps.account_book, deps.tracked_milestones, deps.composer.prompts,
            deps.pack, audiences)):
        # "麦香坊现在怎么样？": the company's own customer data answers, not the best-practice knowledge.
        deps.audit.record(actor, "ask", None, {"role": role, "question": question, "task": about.intent.task,
                                               "grounded": True, "answer": about.answer[:2000], "sources": []})
        return about
    mention = find_account(deps, [question, *reversed(resolved.context)])
    if mention is not None:  # what the CRM knows about the customer, unless the caller said otherwise
        customer = as_customer(mention.account, customer)
    vector = deps.retriever.embed_query(query)
    budget = deps.llm.budget() if deps.llm is not None else None  # all this request's LLM calls share it
    intent = understand(deps, question, role, customer, history, vector, query, budget)
    evidence, found = find(deps, query, intent, vector, audiences)
    confidence = grounding_confidence(found, intent, deps.pack.rules.grounding, reference_for(deps, query))
    grounded = should_answer(deps, intent, evidence, confidence)
    if not grounded and intent.scope_margin < 0:
        intent = intent.model_copy(update={"task": "out_of_scope"})
    choices = likely_questions(evidence, grounded, confidence)
    if intent.task == "draft_plan" and (intent.slots.industry or intent.slots.tier):
        # Deliver a usable result: the full plan, not advice about plans (and no answer drafted to be thrown away).
        draft, grounded, choices = plan_draft(deps, intent, evidence, audiences, question,
                                              mention.account if mention else None), True, []
    elif grounded and (options := vague_choices(query, evidence)):
        # Too little said to pick one answer: let the person choose rather than guess.
        draft, choices = Draft(answer=deps.composer.prompts.render("choose.md.j2", choices=options),
                               explanation="问题比较宽泛，知识库里有几条都可能是你要的。"), options
    else:
        draft = (deps.llm.compose(query, intent, evidence, grounded, choices, history, budget) if deps.llm
                 else deps.composer.compose(query, intent, evidence, grounded, choices))
    actions, repeat = propose(deps, question, intent, draft.answer, evidence, customer, actor, mention, grounded) \
        if grounded or intent.task == "escalation" else ([], False)
    cited = [evidence[i] for i in draft.cited if i < len(evidence)] if grounded else []
    text = renumber_citations(draft.answer, draft.cited) if grounded else draft.answer
    if any(a.type == "escalation_ticket" for a in actions):
        text = escalation_text(deps, actions[0], repeat, draft.answer if grounded else "")
    response = AskResponse(answer=text, explanation=draft.explanation, grounded=grounded,
                           citations=cited, intent=intent, choices=choices, actions=actions,
                           composer=draft.composer, llm_fallback=draft.llm_error is not None,
                           fallbacks=list(budget.fallbacks) if budget else [],
                           confidence=confidence, classification=classify_service(deps, intent, evidence, grounded))
    deps.audit.record(actor, "ask", None, {
        "role": role, "question": question, "task": intent.task, "grounded": grounded,
        "confidence": confidence, "answer": text[:2000], "sources": [c.source for c in cited],
        "fallbacks": response.fallbacks})
    return response


def should_answer(deps: Deps, intent: Intent, evidence: list[Evidence], confidence: float) -> bool:
    """Answer, or say plainly that the knowledge does not cover it."""
    if intent.task == "find_cases" and (intent.slots.industry or intent.slots.city or intent.slots.province
                                        or intent.slots.tier):
        # A case search with a customer profile is answered by facet matching over the case
        # library, not by how well the words of the question match a passage.
        return any(e.kind == "case" for e in evidence)
    return bool(evidence) and confidence >= threshold(deps)


def asks_a_listed_question(question: str, evidence: list[Evidence]) -> bool:
    """The best passage is an FAQ and the question is, word for word, its question or one of the
    similar questions the knowledge lists for it. The decline model weighs signals fitted on the
    sample pack; a company's own small or English knowledge moves them (a three-row English sheet
    declined "forgot password", one of its own listed questions), and a listed question is covered
    whatever they say."""
    if not evidence or evidence[0].kind != "faq" or not evidence[0].matched:
        return False
    best = evidence[0]
    return best.matched != best.meta.get("answer") and _bare(best.matched) == _bare(question)


def _bare(text: str) -> str:
    return re.sub(r"[\W_]+", "", normalize(text).casefold())


def _account_answer(*args: Any) -> AskResponse | None:
    # Imported here: the accounts book (health, journeys, insights) is only for callers who read
    # internal data, and importing it costs a support agent's command ~0.2 s.
    from copilot.accounts.answers import respond

    return respond(*args)


def find_account(deps: Deps, texts: list[str]) -> Mention | None:
    """The account the conversation is about: named in the first text that names one (the
    question, then earlier turns, latest first)."""
    if deps.accounts is None:
        return None
    return next((found for text in texts if (found := deps.accounts.mention(text))), None)


def validate_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InvalidInput("The question is empty: type what you want to know")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"The question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return question


def understand(deps: Deps, question: str, role: Role, customer: Customer | None,
               history: list[str] | None, vector: Any, query: str | None = None,
               budget: LlmBudget | None = None) -> Intent:
    """`query` is the standalone form of a follow-up ("那上海的呢？" -> the whole question): the
    LLM reads that, as it sees no history. `budget` is the request's LLM time (a fresh one if None)."""
    intent = deps.classifier.classify(question, role, vector, history)
    if deps.llm is not None and deps.llm_intent:
        intent = deps.llm.understand(query or question, intent, budget)
    if customer is not None:
        intent = intent.model_copy(update={"slots": merge_customer(deps.pack.rules, intent.slots, customer)})
    return intent


def find(deps: Deps, question: str, intent: Intent, vector: Any,
         audiences: list[str] | None = None, k: int = EVIDENCE_K) -> tuple[list[Evidence], SearchResult]:
    """Hybrid retrieval with the role's routing, the task's boosts and the slots' preferences."""
    rules = deps.pack.rules
    route = rules.role_route(intent.role)
    allowed = [a for a in route.audiences if audiences is None or a in audiences]
    # A case search looks at a wider pool: the facet rules below may promote a case that the
    # text alone ranked low (a same-size peer in the same province, say).
    pool = 30 if intent.task == "find_cases" else max(k, EVIDENCE_K * 2)
    found = deps.retriever.search(question, k=pool, query_vector=vector,
                                  filters=SearchFilters(kinds=route.kinds, audiences=allowed),
                                  boosts=rules.task_boosts(intent.task))
    evidence = found.results
    evidence = match_peer_cases(deps, intent.slots, evidence, rerank=intent.task == "find_cases")
    return evidence[:k], found


def plan_draft(deps: Deps, intent: Intent, evidence: list[Evidence], audiences: list[str] | None,
               question: str = "", account: Account | None = None) -> Draft:
    """A joint success plan from what the question says about the customer, and what the CRM
    says about the account it names (its contacts and owners become the plan's key people)."""
    # Imported here: only a plan request pays for the plan builder (Step 6: start-up).
    from copilot.workflows.plans import (PlanCustomer, customer_from_account, customer_name_from_text, draft_plan,
                                         render_plan)

    slots = intent.slots
    customer = PlanCustomer(name=None if account else customer_name_from_text(question), industry=slots.industry,
                            city=slots.city, province=slots.province, tier=slots.tier,
                            annual_fee=slots.annual_fee, situation=slots.situation,
                            goals=slots.situation + ([slots.product] if slots.product else []))
    if account is not None:
        customer = customer_from_account(account, customer)
    plan = draft_plan(deps, customer, audiences)
    used = {ref.id for ref in plan.sources}
    return Draft(answer=render_plan(deps.composer.prompts, plan),
                 explanation="按客户规模、目标和同行案例组装的联合成功计划草稿；可在「成功计划」页补充关键人和签约日期后保存或分享。",
                 cited=[i for i, e in enumerate(evidence) if e.source in used])


def match_peer_cases(deps: Deps, slots: Slots, evidence: list[Evidence], rerank: bool) -> list[Evidence]:
    """Business rule: the best material is a peer from the same industry, place and size.
    Every case is scored by the case-matching facets (text similarity is one of them) and carries
    its plain-language reasons; for a case search, cases are re-ranked by that score and go first."""
    rules = deps.pack.rules
    cases = [e for e in evidence if e.kind == "case" and deps.pack.case(e.source)]
    if not cases:
        return evidence
    top = max(e.score for e in cases) or 1.0
    weights = effective_weights(rules, slots, has_text=True)
    for e in cases:
        match = score_case(rules, slots, deps.pack.case(e.source), e.score / top, weights)
        e.meta = {**e.meta, "why": [w for w in match.why if w != "描述相近"]}  # a copy: meta is the index's
        if rerank:
            e.score = match.score
    if not rerank:
        return evidence
    cases.sort(key=lambda e: -e.score)
    return cases + [e for e in evidence if e not in cases]


def classify_service(deps: Deps, intent: Intent, evidence: list[Evidence], grounded: bool) -> Classification:
    """Category and standardisation from the matched FAQ (an unmatched question is not standard),
    urgency from the question; the service matrix in rules.yaml says passive or active service."""
    faq = evidence[0] if grounded and evidence and evidence[0].kind == "faq" else None
    standardized = bool(faq and faq.meta.get("standardized", True))
    urgent = intent.slots.urgency == "urgent"
    cell = deps.pack.rules.service_cell(standardized, urgent)
    return Classification(category=faq.meta.get("category") if faq else None, standardized=standardized,
                          urgency=intent.slots.urgency, service_mode=cell.mode if cell else "",
                          channel=cell.channel if cell else "")


def reference_for(deps: Deps, text: str) -> dict[str, float]:
    """What an off-topic question in this text's script scores on this knowledge: measured on it,
    or, where the knowledge has no out-of-scope examples to measure with, the sample pack's figures."""
    from copilot.calibration import script_of

    measured = deps.decline_reference() if deps.decline_reference is not None else None
    if measured is not None:
        return measured.for_text(text)
    means = deps.pack.rules.grounding.reference
    return means.get(script_of(text)) or next(iter(means.values()), {})


def decline_features(found: SearchResult, intent: Intent, reference: dict[str, float] | None = None) -> dict[str, float]:
    """The signals the answer-or-decline decision weighs: how clearly the best passage stands out
    on each retrieval channel, how much of the question it covers (each also relative to what an
    off-topic question scores on this knowledge), and whether the question sits nearer to in-scope
    than to out-of-scope example questions."""
    from copilot.calibration import relative

    return {**found.signals, **relative(found.signals, reference or {}), "scope_margin": intent.scope_margin,
            "scope_out": intent.scope_out, "scope_logit": intent.scope_logit}


def grounding_confidence(found: SearchResult, intent: Intent, grounding: Grounding | None = None,
                         reference: dict[str, float] | None = None) -> float:
    """0..1: the probability that the knowledge covers this question, from a logistic model whose
    weights live in knowledge/rules.yaml (fitted on the dev evals by scripts/fit_decline.py)."""
    if not found.results:
        return 0.0
    if asks_a_listed_question(found.query, found.results):
        return 1.0
    grounding = grounding or Grounding()
    features = decline_features(found, intent, reference)
    if not grounding.weights:
        # No fitted model: an even blend of the dense lift, keyword evidence and scope margin.
        def clip(x: float) -> float:
            return min(max(x, 0.0), 1.0)
        parts = (clip((features.get("dense_lift", 0.0) - 0.005) / 0.03),
                 clip(features.get("words_top", 0.0) / 12.0), clip((features["scope_margin"] + 0.05) / 0.1))
        return round(sum(parts) / len(parts), 4)
    z = grounding.bias + sum(w * features.get(name, 0.0) for name, w in grounding.weights.items())
    return round(1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0))), 4)


def threshold(deps: Deps) -> float:
    return deps.pack.rules.grounding.min_confidence


VAGUE_MAX_CHARS = 8
# A runner-up FAQ within this share of the best one's score fits about as well. Checked on evals/dev:
# 1 of the 3 vague questions there gets choices, none of the 10 specific short ones does (cautious on
# purpose: a wrong menu costs a click, a wrong guess costs trust; widening it is left for later).
VAGUE_CLOSE = 0.9


def vague_choices(question: str, evidence: list[Evidence]) -> list[str]:
    """2-4 FAQ or playbook titles when the question is a few words that several of them fit about
    equally ("账号的问题", "怎么退款"); empty when one answer clearly fits."""
    words = re.sub(r"[\W_]+", "", question)
    if len(words) > VAGUE_MAX_CHARS or len(evidence) < 2:
        return []
    options = [e for e in evidence if e.kind in ("faq", "playbook")][:4]
    if len(options) < 2 or options[0] is not evidence[0]:
        return []
    close = [e for e in options if e.score >= VAGUE_CLOSE * options[0].score]
    return [e.title for e in close] if len(close) >= 2 else []


# A declined question offers the nearest FAQs as choices only at or above this confidence: well below
# it the question is about something else (the weather, a joke) and the nearest FAQs are unrelated.
# Checked on dev (sample pack, with the per-knowledge decline model): all 8 in-scope questions declined by
# mistake score 0.031 or more and keep their choices; 28 of the 62 declined out-of-scope ones score less.
CHOICES_MIN_CONFIDENCE = 0.02


def likely_questions(evidence: list[Evidence], grounded: bool, confidence: float = 1.0) -> list[str]:
    """Choices instead of typing: when unsure, or when two FAQs fit almost equally."""
    faqs = [e for e in evidence if e.kind in ("faq", "playbook")]
    if not grounded:
        return [e.title for e in faqs[:3]] if confidence >= CHOICES_MIN_CONFIDENCE else []
    if len(faqs) >= 2 and evidence[0].kind == "faq" and faqs[1].score >= 0.97 * faqs[0].score:
        return [e.title for e in faqs[:3]]
    return []


def propose(deps: Deps, question: str, intent: Intent, drafted: str, evidence: list[Evidence],
            customer: Customer | None, actor: str, mention: Mention | None = None,
            grounded: bool = True) -> tuple[list[ProposedActionOut], bool]:
    """Andon: an urgent issue of a key account becomes an escalation ticket for a human to confirm.
    The same issue of the same account while its ticket is open joins that ticket (True: a repeat)."""
    andon = deps.pack.rules.andon
    tier = intent.slots.account_tier
    if intent.slots.urgency != "urgent" or tier not in andon.key_account_tiers:
        return [], False
    account = mention.account if mention else None
    issue = issue_key(question, evidence, grounded, mention)
    if account is not None:
        found = deps.actions.find_open("escalation_ticket", {"account_id": account.id, "issue_key": issue})
        if found and (joined := deps.actions.add_repeat(found.id, {"question": question, "actor": actor}, actor)):
            return [joined], True
    sla = andon.sla_minutes.get(tier, 60)
    ticket = {"question": question, "customer": customer.model_dump() if customer else {"tier": tier},
              "account_tier": tier, "sla_minutes": sla, "queue": andon.ticket_queue, "issue_key": issue,
              **ticket_knowledge(drafted, evidence)}
    if account is not None:
        ticket |= {"account_id": account.id, "account_name": account.name, "csm": account.csm,
                   "sales": account.sales, "contact": contact_card(account)}
    who = f"{account.name}（{tier}客户）" if account else f"{tier}客户"
    summary = f"安灯升级：{who}紧急问题，SLA {sla} 分钟 → {andon.ticket_queue}"
    if ticket.get("withheld"):
        summary += f"（已略去 {ticket['withheld']} 条内部资料）"
    return [deps.actions.propose("escalation_ticket", summary, ticket, actor, intent.role)], False


# A ticket is read in the support queue, by roles that may not read internal knowledge: it only
# ever holds what every role may read.
TICKET_AUDIENCE = "public"
_MARKER = re.compile(r"\[(\d{1,2})\]")


def ticket_knowledge(drafted: str, evidence: list[Evidence]) -> dict[str, Any]:
    """The drafted answer and sources a ticket carries, the audiences of what it holds, and how
    many internal passages it left out (a count only: the support queue must not learn their titles).
    The drafted answer goes only when none of the passages it drew on is internal."""
    drawn = drawn_on(drafted, evidence)
    internal = {e.id for e in [*evidence[:3], *drawn] if not is_public(e)}
    keep_draft = not any(e.id in internal for e in drawn)
    held = [e for e in evidence[:3] if e.id not in internal] + (drawn if keep_draft else [])
    knowledge: dict[str, Any] = {"drafted_answer": drafted if keep_draft else "",
                                 "sources": [e.source for e in evidence[:3] if e.id not in internal],
                                 "audiences": sorted({audience_of(e) for e in held})}
    if internal:
        knowledge |= {"withheld": len(internal), "left_out_note": (
            f"工单会流转到支持队列，已略去 {len(internal)} 条仅限内部的资料"
            f"{'和据此起草的答案' if not keep_draft else ''}；详情请问提问人。")}
    return knowledge


def drawn_on(drafted: str, evidence: list[Evidence]) -> list[Evidence]:
    """The passages a drafted answer drew on: those its citation markers name, and those whose
    title or opening text it repeats (a FAQ answer served verbatim, a menu of titles)."""
    cited = {int(n) - 1 for n in _MARKER.findall(drafted)}
    return [e for i, e in enumerate(evidence) if i in cited or _repeats(drafted, e)]


def _repeats(drafted: str, e: Evidence) -> bool:
    answer = str(e.meta.get("answer") or "")
    return any(piece and piece in drafted for piece in (e.title, answer[:40], e.text[:40]))


def audience_of(e: Evidence) -> str:
    return str(e.meta.get("audience") or "internal")  # unlabelled knowledge is not assumed public


def is_public(e: Evidence) -> bool:
    return audience_of(e) == TICKET_AUDIENCE


def issue_key(question: str, evidence: list[Evidence], grounded: bool, mention: Mention | None) -> str:
    """What counts as "the same issue" for one open ticket per account: the FAQ the question was
    answered from, else the question itself, folded, without the account's name (沃尔玛 and 沃尔玛中国
    reporting the same outage are one issue)."""
    if grounded and evidence and evidence[0].kind == "faq":
        return f"faq:{evidence[0].source}"
    text = normalize(question)
    if mention is not None:
        text = text.replace(mention.words, " ")
    return f"question:{name_key(text)}"


def escalation_text(deps: Deps, ticket: ProposedActionOut, repeat: bool, first_answer: str) -> str:
    """What the person asking reads: the ticket drafted (or joined), whose account it is and who owns it."""
    args = ticket.arguments
    contact = {"name": "", "title": "", "phone": "", "email": "", **(args.get("contact") or {})}
    return deps.composer.prompts.render(
        "escalation.md.j2", tier=args["account_tier"], sla=args["sla_minutes"], queue=args["queue"],
        first_answer=first_answer, account=args.get("account_name", ""), csm=args.get("csm", ""),
        sales=args.get("sales", ""), contact=contact if contact["name"] else None, repeat=repeat,
        status=STATUS_ZH.get(ticket.status, ticket.status), reports=1 + len(args.get("repeats", [])))
