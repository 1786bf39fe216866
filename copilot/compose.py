"""Compose the answer: jinja2 templates offline, or an OpenAI-compatible LLM whose draft must
cite retrieved evidence (one re-ask, then the template answer)."""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from copilot.lexical import bigrams, tokenize
from copilot.llm_budget import LlmBudget
from copilot.modeling import Model
from copilot.models import Draft, Evidence, Intent
from copilot.rules import Rules

log = logging.getLogger(__name__)

ROLE_NAMES = {"sales": "销售", "csm": "客户成功经理", "support": "客服"}
_SENTENCE = re.compile(r"(?<=[。！？!?；;])|\n")
_CITATION = re.compile(r"\[(\d{1,2})\]")


class Prompts:
    def __init__(self, prompts_dir: Path) -> None:
        self._env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(prompts_dir)),
                                       undefined=jinja2.StrictUndefined, autoescape=False)

    def render(self, name: str, **values: Any) -> str:
        return self._env.get_template(name).render(**values).strip()


class TemplateComposer:
    """Deterministic answers: the FAQ answer verbatim, best sentences, or ranked cases."""

    def __init__(self, prompts: Prompts, rules: Rules) -> None:
        self.prompts = prompts
        self.rules = rules

    def compose(self, question: str, intent: Intent, evidence: list[Evidence], grounded: bool,
                choices: list[str]) -> Draft:
        if not grounded:
            return Draft(answer=self.prompts.render("not_found.md.j2", choices=choices),
                         explanation="检索到的资料与问题的相关度不够，按规则不作答。")
        top = evidence[0]
        has_cases = any(e.kind == "case" for e in evidence)
        if (intent.task == "find_cases" and has_cases) or (top.kind == "case" and intent.task != "faq"):
            return self._cases(evidence)
        if top.kind == "faq":
            return Draft(answer=self.prompts.render("answer_faq.md.j2", faq_answer=top.meta.get("answer") or top.text),
                         explanation=f"这是知识库中的标准答案：「{top.title}」。", cited=[0])
        return self._extract(question, evidence)

    def _cases(self, evidence: list[Evidence]) -> Draft:
        cases = [(i, e) for i, e in enumerate(evidence) if e.kind == "case"][:3]
        rows = [{"title": e.title, "summary": e.text.split("\n")[0], "why": e.meta.get("why", []),
                 "ref": i + 1} for i, e in cases]
        explanation = "按同行业、同城（或同省、同区域）、同规模和相似情境排序；最有效的销售素材是同行案例。"
        return Draft(answer=self.prompts.render("answer_cases.md.j2", cases=rows), explanation=explanation,
                     cited=[i for i, _ in cases])

    def _extract(self, question: str, evidence: list[Evidence]) -> Draft:
        """Answer first: the sentence of the best passage that states what was asked (a playbook's
        conclusion, the sentence of a document that matched), then up to two supporting sentences
        from the best passages, each with its citation."""
        lead = _lead_sentence(question, evidence[0])
        chosen = [(0, lead)] if lead else []
        support = []
        for rank, e in enumerate(evidence[:3]):
            for position, sentence in enumerate(_sentences(e.text)):
                if any(_similar(sentence, s) for _, s in chosen):
                    continue
                # Earlier passages and earlier sentences win ties: they are what retrieval trusted most.
                support.append((_relevance(question, sentence) - 0.15 * rank - 0.005 * position, rank, sentence))
        for score, rank, sentence in sorted(support, key=lambda item: -item[0]):
            if len(chosen) >= 3 or (chosen and score <= 0.05):
                break
            if not any(_similar(sentence, s) for _, s in chosen):
                chosen.append((rank, sentence))
        sentences = [s for _, s in chosen]
        citations = [rank + 1 for rank, _ in chosen]
        answer = self.prompts.render("answer_practice.md.j2", sentences=sentences, citations=citations)
        return Draft(answer=answer, explanation=f"摘自最相关的资料「{evidence[0].title}」等。",
                     cited=sorted({c - 1 for c in citations}))


_SCAFFOLD = re.compile(r"^(答|做法|情境|挑战|成果|行业|相似问法)[：:]\s*|^\d+[.、]\s*")


def _sentences(text: str) -> list[str]:
    """Whole sentences that can stand in an answer: no question scaffolding, headings or fragments
    that end on a colon."""
    found = []
    for raw in _SENTENCE.split(text):
        sentence = raw.strip()
        if not sentence or sentence.startswith(("问：", "相似问法")):
            continue
        while _SCAFFOLD.match(sentence):
            sentence = _SCAFFOLD.sub("", sentence, count=1).strip()
        if len(sentence) < 12 or sentence.endswith(("：", ":")):
            continue
        found.append(sentence)
    return found


def _lead_sentence(question: str, top: Evidence) -> str | None:
    """What the best passage says about this question, in one or two sentences. A playbook opens
    with its conclusion; a FAQ's answer opens with what to do; a document is cut to the sentence
    window that matched the question, and within it the sentence that overlaps it most."""
    if top.kind == "playbook":
        summary = _sentences(top.text.split("\n", 1)[0])
        if summary:
            return "".join(summary[:2]) if len("".join(summary[:2])) <= 140 else summary[0]
    if top.kind == "faq":
        answer = _sentences(str(top.meta.get("answer") or top.text))
        if answer:
            return answer[0]
    window = top.matched.split(": ", 1)[-1] if top.matched else ""
    candidates = _sentences(window) or _sentences(top.text)
    if not candidates:
        return None
    return max(candidates, key=lambda sentence: _relevance(question, sentence))


@lru_cache(maxsize=8192)
def _grams(text: str) -> frozenset[str]:
    """Words and character pairs of a sentence (cached: the same passages answer many questions)."""
    return frozenset(bigrams(text)) | frozenset(tokenize(text))


def _relevance(question: str, sentence: str) -> float:
    """Share of the question's words and character pairs that the sentence contains."""
    asked = _grams(question)
    return len(asked & _grams(sentence)) / len(asked) if asked else 0.0


def _similar(a: str, b: str) -> bool:
    ga, gb = _grams(a), _grams(b)
    return bool(ga and gb) and len(ga & gb) / min(len(ga), len(gb)) > 0.7


def renumber_citations(text: str, cited: list[int]) -> str:
    """Markers in a draft point into the evidence list ([k] = evidence k-1); the reader sees only
    the cited passages, so renumber them to their place in that shorter list."""
    place = {index + 1: position for position, index in enumerate(cited, 1)}
    return _CITATION.sub(lambda m: f"[{place.get(int(m.group(1)), m.group(1))}]", text)


class LlmComposer:
    """Any OpenAI-compatible chat endpoint through langchain-openai. Every call draws on the
    request's `LlmBudget`; a stage that fails or finds the budget spent answers offline and is
    named in `budget.fallbacks`."""

    def __init__(self, chat_model: Any, prompts: Prompts, fallback: TemplateComposer, vendor: str,
                 timeout_s: float = 20.0, max_retries: int = 1) -> None:
        self.chat_model = chat_model  # built without retries of its own: the budget decides them
        self.prompts = prompts
        self.fallback = fallback
        self.vendor = vendor
        self.timeout_s = timeout_s
        self.max_retries = max_retries

    def budget(self) -> LlmBudget:
        """The time for all the LLM calls of one request, starting now."""
        return LlmBudget(total_s=self.timeout_s, max_retries=self.max_retries)

    def understand(self, question: str, offline: Intent, budget: LlmBudget | None = None) -> Intent:
        """The LLM's reading of the question as the same typed Intent; the offline one on error."""
        budget = budget or self.budget()
        messages = [("system", "只输出 JSON：{\"task\": ..., \"slots\": {...}}"),
                    ("human", self.prompts.render("llm_intent.j2", question=question, role=offline.role))]
        chat = self.chat_model.bind(response_format={"type": "json_object"})
        try:
            reply = budget.call(lambda timeout_s: chat.invoke(messages, timeout=timeout_s))
            data = LlmIntent.model_validate_json(_json_block(str(reply.content)))
        except Exception as exc:  # bad JSON, wrong task name, endpoint down, no time left: offline reading
            log.warning("LLM intent fell back to the offline classifier: %s", exc)
            budget.fell_back("intent")
            return offline
        guessed = {k: v for k, v in data.slots.model_dump(exclude_unset=True).items() if v not in (None, [], "")}
        return offline.model_copy(update={"task": data.task, "slots": offline.slots.model_copy(update=guessed)})

    def compose(self, question: str, intent: Intent, evidence: list[Evidence], grounded: bool,
                choices: list[str], history: list[str] | None = None, budget: LlmBudget | None = None) -> Draft:
        template = self.fallback.compose(question, intent, evidence, grounded, choices)
        if not grounded or (evidence and evidence[0].kind == "faq" and intent.task in ("faq", "escalation")):
            # Nothing to ground on, or a matched FAQ: its answer is served as written.
            return template
        budget = budget or self.budget()
        messages = [("system", self.prompts.render("llm_system.j2", vendor=self.vendor,
                                                   role_name=ROLE_NAMES[intent.role])),
                    ("human", self.prompts.render("llm_answer.j2", question=question, evidence=evidence,
                                                  history=history or []))]
        try:
            for _attempt in range(2):
                reply = budget.call(lambda timeout_s: self.chat_model.invoke(messages, timeout=timeout_s))
                text = str(reply.content).strip()
                problem = citation_problem(text, len(evidence))
                if problem is None:
                    cited = sorted({int(n) - 1 for n in _CITATION.findall(text)})
                    return Draft(answer=text, explanation=template.explanation, cited=cited, composer="llm")
                messages += [("ai", text), ("human", self.prompts.render("llm_reask.j2", problem=problem,
                                                                         count=len(evidence)))]
            reason = f"LLM draft failed validation twice: {problem}"
        except Exception as exc:  # endpoint down, timeout, bad reply, no time left: serve the template answer
            reason = f"{type(exc).__name__}: {exc}"
        log.warning("LLM compose fell back to template: %s", reason)
        budget.fell_back("compose")
        return template.model_copy(update={"llm_error": reason[:300]})


class LlmSlots(Model):
    industry: str | None = None
    city: str | None = None
    product: str | None = None
    urgency: Literal["normal", "urgent"] | None = None


class LlmIntent(Model):
    # Not account_insight: questions about the company's own customers are recognised before.
    task: Literal["find_cases", "draft_plan", "faq", "practice_question", "escalation", "out_of_scope"]
    slots: LlmSlots = LlmSlots()


def _json_block(text: str) -> str:
    """The JSON object in a reply, tolerating ```json fences around it."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if start >= 0 and end > start else text


def citation_problem(text: str, evidence_count: int) -> str | None:
    """Why a draft is not acceptable, or None: it must cite, and only evidence that exists."""
    numbers = [int(n) for n in _CITATION.findall(text)]
    if not text:
        return "回答为空"
    if not numbers:
        return "没有标注任何出处编号"
    bad = sorted({n for n in numbers if not 1 <= n <= evidence_count})
    if bad:
        return f"引用了不存在的资料编号 {bad}"
    return None
