"""Question -> typed `Intent`: task by nearest labelled examples, slots by gazetteer and regex.

The offline classifier reuses the query embedding that retrieval computes anyway, so
understanding costs one matrix product. An LLM, when configured, fills the same `Intent`
(see compose.LlmComposer.understand) and falls back to this one on any error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from copilot import conversation, geo
from copilot.conversation import Turn
from copilot.knowledge.pack import Pack
from copilot.models import Intent, Role, Slots
from copilot.normalize import contains_word, normalize
from copilot.scope import ScopeModel

# Explicit words that settle the task before the classifier is asked.
_TASK_HINTS: list[tuple[str, re.Pattern[str]]] = [
    ("draft_plan", re.compile(r"((起草|拟|写|做|出|生成|制定|draft|write|create).{0,12}(成功计划|success plan|计划))", re.I)),
    ("find_cases", re.compile(r"(案例|标杆|参考客户|对标|同行.{0,6}(客户|效果|数据|品牌)|(有没有|有哪些|找几个|推荐几个|找一个)"
                              r".{0,15}(客户|品牌|商家)(在用|用过|用了|做得|的例子)|peer|\bcases?\b|reference customer)", re.I)),
]
_FEE = re.compile(r"(?:年费|年订阅费?|订阅费|客单价|预算|合同额|签了|签约)\D{0,6}?(\d+(?:\.\d+)?)\s*(万|w|k|千|元)?", re.I)
_FEE_ALONE = re.compile(r"(\d+(?:\.\d+)?)\s*(万|w)\s*(?:/年|一年|每年|年费)", re.I)
_KEY_ACCOUNT = re.compile(r"(大客户|重点客户|战略客户|KA客户|\bKA\b|key account|VIP客户)", re.I)
_TIER_WORDS = {"大型": r"大型|大客户", "中型": r"中型", "中小": r"中小", "小微": r"小微|夫妻店|单店"}


@dataclass
class _Examples:
    tasks: list[str]
    vectors: np.ndarray


class IntentClassifier:
    def __init__(self, pack: Pack, example_vectors: np.ndarray, scope: ScopeModel | None = None) -> None:
        self.scope = scope
        self._examples = _Examples([t for item in pack.intents for t in [item.task] * len(item.examples)],
                                   example_vectors)
        self.use_pack(pack)

    @staticmethod
    def example_texts(pack: Pack) -> list[str]:
        return [normalize(e) for item in pack.intents for e in item.examples]

    def out_of_scope_examples(self) -> list[str]:
        """The out-of-scope example questions, normalised."""
        return [normalize(e) for item in self.pack.intents if item.task == "out_of_scope" for e in item.examples]

    def classify(self, question: str, role: Role, query_vector: np.ndarray,
                 history: Sequence[str | Turn] | None = None) -> Intent:
        text = normalize(question)
        turn = conversation.resolve(text, history, self)
        # Earlier turns (and a system message) fill in who the customer is, the latest word winning;
        # urgency belongs to this message alone, or a follow-up would raise the same escalation again.
        slots = conversation.inherit([self.slots(t) for t in turn.context], self.slots(text))
        task, confidence, hinted = self._task(text, query_vector)
        if turn.followup and not hinted:
            # A follow-up keeps the conversation's task unless it asks for another one.
            task, confidence, hinted = self._task(turn.query, query_vector)
        task = self._apply_rules(task, hinted, confidence, role, slots)
        return Intent(role=role, task=task, slots=slots, confidence=round(confidence, 3),
                      **self._scope(query_vector))

    @staticmethod
    def _apply_rules(task: str, hinted: bool, confidence: float, role: Role, slots: Slots) -> str:
        """Business sense on top of the nearest examples: escalation needs urgency; a plan needs to
        be asked for (or the examples to agree strongly); a case search needs to be asked for."""
        if task in ("faq", "escalation"):
            return "escalation" if slots.urgency == "urgent" else "faq"
        if task == "draft_plan" and not (hinted or confidence >= 0.75):
            return "practice_question"
        if task == "find_cases" and not hinted:
            return "faq" if role == "support" else "practice_question"
        return task

    def _scope(self, vector: np.ndarray) -> dict[str, float]:
        """Similarity to the nearest in-scope and out-of-scope example question, and their margin."""
        tasks = np.array(self._examples.tasks)
        if not len(tasks) or "out_of_scope" not in tasks:
            return {"scope_margin": 0.0, "scope_in": 0.0, "scope_out": 0.0}
        sims = self._examples.vectors @ vector
        inside, outside = float(sims[tasks != "out_of_scope"].max()), float(sims[tasks == "out_of_scope"].max())
        return {"scope_margin": inside - outside, "scope_in": inside, "scope_out": outside,
                "scope_logit": self.scope.logit(vector) if self.scope else 0.0}

    def _task(self, text: str, vector: np.ndarray) -> tuple[str, float, bool]:
        for task, pattern in _TASK_HINTS:
            if pattern.search(text):
                return task, 1.0, True
        if not len(self._examples.tasks):
            return "practice_question", 0.0, False
        sims = self._examples.vectors @ vector
        # Out-of-scope examples only feed the scope signals: whether to answer at all is the decline
        # model's call (pipeline.grounding_confidence), which weighs them against the retrieval evidence.
        sims = np.where(np.array(self._examples.tasks) == "out_of_scope", -np.inf, sims)
        if not np.isfinite(sims).any():
            return "practice_question", 0.0, False
        top = np.argsort(-sims)[:7]
        votes: dict[str, float] = {}
        for i in top:
            # Sharpened weights: the bunching of cosine scores makes plain votes too flat.
            votes[self._examples.tasks[i]] = votes.get(self._examples.tasks[i], 0.0) + float(np.exp((sims[i] - sims[top[0]]) * 50))
        task = max(votes, key=votes.get)
        return task, votes[task] / sum(votes.values()), False

    def use_pack(self, pack: Pack) -> None:
        """Read slots with this knowledge's words (called again when the knowledge changes)."""
        self.pack = pack
        self.rules = pack.rules
        gazetteer = pack.gazetteer
        self._cities = sorted(gazetteer.cities, key=len, reverse=True)
        self._provinces = sorted(gazetteer.provinces(), key=len, reverse=True)
        self._regions = sorted(gazetteer.regions, key=len, reverse=True)
        # Industries of the company's own cases join the gazetteer's (an industry is its own word).
        self._industries = {**{name: [name] for name in pack.industries()}, **gazetteer.industries}
        self._situations = gazetteer.situations
        situation_words = {w for words in self._situations.values() for w in words}
        # Product names, plus their short forms ("收银" for 云铺收银) unless a short form is also a
        # situation word ("连锁" describes the customer more often than the product).
        self._products = {p.name: [p.name] + ([p.name.removeprefix("云铺")] if p.name.removeprefix("云铺")
                                                not in situation_words else [])
                          for p in pack.vendor.products}

    def mentions(self, text: str) -> dict[str, str]:
        """The words that set each slot group, e.g. {"place": "杭州", "industry": "面包", "tier": "年费5万"}."""
        place = next((w for w in [*self._cities, *self._provinces, *self._regions] if contains_word(text, w)), None)
        if place is None and (found := geo.find_places(text)):
            place = found[0].name
        industry = next((max(hits, key=len) for words in self._industries.values()
                         if (hits := [w for w in words if contains_word(text, w)])), None)
        fee = _FEE.search(text) or _FEE_ALONE.search(text)
        tier = fee.group(0) if fee else next(
            (m.group(0) for pattern in _TIER_WORDS.values() if (m := re.search(pattern, text))), None)
        product = next((f for forms in self._products.values() for f in sorted(forms, key=len, reverse=True)
                        if contains_word(text, f)), None)
        found = {"place": place, "industry": industry, "tier": tier, "product": product}
        return {group: word for group, word in found.items() if word}

    def slots(self, text: str) -> Slots:
        city = next((c for c in self._cities if contains_word(text, c)), None)
        province = self.rules.province_for_city(city) if city else next(
            (p for p in self._provinces if contains_word(text, p)), None)
        if city is None and province is None and (places := geo.find_places(text)):
            # Any city or county of China, not only the gazetteer's.
            place = places[0]
            city, province = (None, place.province) if place.level == "province" else (place.name, place.province)
        region = self.rules.region_for_province(province) if province else next(
            (r for r in self._regions if contains_word(text, r)), None)
        industry = next((name for name, words in self._industries.items()
                         if any(contains_word(text, w) for w in words)), None)
        fee = _annual_fee(text)
        tier = self.rules.tier_for_fee(fee) if fee is not None else next(
            (t for t, pattern in _TIER_WORDS.items() if re.search(pattern, text)), None)
        urgent_words = self.rules.andon.urgent_words
        return Slots(
            industry=industry, city=city, province=province, region=region,
            tier=tier, annual_fee=fee,
            product=next((name for name, forms in self._products.items()
                          if any(contains_word(text, f) for f in forms)), None),
            situation=[name for name, words in self._situations.items() if any(contains_word(text, w) for w in words)],
            # Latin words on word boundaries: "download" is not "down".
            urgency="urgent" if any(contains_word(text, w) for w in urgent_words) else "normal",
            account_tier="大型" if _KEY_ACCOUNT.search(text) else tier,
        )


def _annual_fee(text: str) -> int | None:
    match = _FEE.search(text) or _FEE_ALONE.search(text)
    if not match:
        return None
    amount, unit = float(match.group(1)), (match.group(2) or "").lower()
    multiplier = {"万": 10_000, "w": 10_000, "k": 1_000, "千": 1_000}.get(unit, 1)
    if not unit and amount < 1000:  # "年费5" with no unit reads as 万 in this trade
        multiplier = 10_000
    return int(amount * multiplier)
