"""Evals: frontline questions with expected sources, split into dev (tuned on) and test (never
tuned on). Retrieval is scored as hit@1, hit@5 and MRR per role and style for each channel alone,
plain RRF, the previous fusion and the production find stage; the production stage also has its
answers scored (does the answer state the expected facts, and first) and its declines (no-answer
precision and recall on out-of-scope questions)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from filelock import FileLock
from pydantic import Field

from copilot.knowledge.pack import load_yaml
from copilot.errors import InvalidInput
from copilot.executors import write_atomically
from copilot.modeling import Model
from copilot.models import Evidence, Role
from copilot.retrieve import Fusion

if TYPE_CHECKING:
    from copilot.pipeline import Deps
from copilot.normalize import normalize

# bm25, dense: one channel alone, with the role's routing. rrf: plain reciprocal-rank fusion of
# those two (the textbook baseline). previous: the fusion before Step 5 (weighted min-max, dense
# 0.4, no bigram channel). hybrid: the production "find" stage (fused channels + intent-driven
# boosts and business rules), whose grounding decision is also scored.
MODES = ("bm25", "dense", "rrf", "previous", "hybrid")
_BASELINES = {"bm25": Fusion(method="weighted", dense=0.0, words=1.0, bigrams=0.0),
              "dense": Fusion(method="weighted", dense=1.0, words=0.0, bigrams=0.0),
              "rrf": Fusion(method="rrf", dense=0.5, words=1.0, bigrams=0.0),
              "previous": Fusion(method="weighted", dense=0.4, words=1.0, bigrams=0.0)}
SPLITS = ("dev", "test")


class AlsoAccept(Model):
    source: str
    why: str = Field(min_length=3, description="Why this item answers the question just as well")


class EvalQuestion(Model):
    id: str
    role: Role
    question: str
    split: str = "dev"  # the folder it came from: dev, test, benchmark, promoted
    style: str = "textbook"
    task: str | None = None
    expected_sources: list[str] = Field(default_factory=list)
    also_accept: list[AlsoAccept] = Field(default_factory=list)
    contains: str | None = None
    facts: list[str] = Field(default_factory=list)
    vague: bool = False
    out_of_scope: bool = False
    oos_type: str | None = None
    history: list[str] = Field(default_factory=list)
    expect: dict[str, Any] = Field(default_factory=dict)

    @property
    def acceptable(self) -> list[str]:
        return self.expected_sources + [a.source for a in self.also_accept]


class QuestionResult(Model):
    id: str
    split: str
    mode: str
    role: str
    style: str
    question: str
    out_of_scope: bool
    rank: int | None  # 1-based rank of the first correct passage, None when missed
    ranked: bool = True  # False: no expected source (out of scope, or a follow-up scored on its intent only)
    confidence: float
    top: list[str]
    answered: bool | None = None  # hybrid only: did the copilot answer rather than decline
    states_fact: bool | None = None  # hybrid only, questions with facts
    states_first: bool | None = None


def load_questions(paths: list[Path]) -> list[EvalQuestion]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidInput(f"No such eval file or folder: {path}")
        files.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for file in files:
        data = load_yaml(file.read_text(encoding="utf-8")) or {}
        split = file.parent.name if file.parent.name in (*SPLITS, "benchmark") else \
            ("promoted" if file.name == PROMOTED_FILE else "dev")
        for raw in data.get("questions") or []:
            try:
                question = EvalQuestion(**{"split": split, **raw})
            except Exception as exc:
                raise InvalidInput(f"{file}: question {raw.get('id', '?')}: {exc}") from exc
            if question.id in seen:
                raise InvalidInput(f"{file}: question id {question.id!r} is used twice")
            seen.add(question.id)
            questions.append(question)
    return questions


def is_hit(evidence: Evidence, question: EvalQuestion) -> bool:
    source_ok = any(evidence.source == s or evidence.source.endswith("/" + s) for s in question.acceptable)
    if not source_ok:
        return False
    if question.contains and evidence.kind == "doc":
        return normalize(question.contains) in normalize(f"{evidence.title}\n{evidence.text}")
    return True


def fact_found(fact: str, text: str) -> bool:
    """A fact is alternatives split by |; one of them must appear (case and script folded)."""
    haystack = normalize(text).lower()
    return any(normalize(alt).lower() in haystack for alt in fact.split("|") if alt.strip())


def first_sentence(answer: str) -> str:
    body = re.sub(r"^[#>*\-\s]+", "", answer.strip())
    return re.split(r"(?<=[。！？!?])|\n", body, maxsplit=1)[0]


@dataclass
class Outcome:
    """What the pipeline did with one question in one mode."""

    evidence: list[Evidence]
    confidence: float
    answer: str | None = None  # hybrid only
    answered: bool | None = None


# (question, mode) -> outcome
Search = Callable[[EvalQuestion, str], Outcome]


def run_eval(questions: list[EvalQuestion], search: Search, k: int = 10,
             modes: tuple[str, ...] = MODES) -> list[QuestionResult]:
    results = []
    for mode in modes:
        for question in questions:
            outcome = search(question, mode)
            rank = next((i for i, e in enumerate(outcome.evidence[:k], 1) if is_hit(e, question)), None)
            result = QuestionResult(
                id=question.id, split=question.split, mode=mode, role=question.role, style=question.style,
                question=question.question, out_of_scope=question.out_of_scope,
                rank=None if question.out_of_scope else rank, confidence=outcome.confidence,
                ranked=bool(question.acceptable) and not question.out_of_scope,
                top=[e.source for e in outcome.evidence[:5]], answered=outcome.answered)
            if outcome.answer is not None and question.facts and not question.out_of_scope:
                result.states_fact = all(fact_found(f, outcome.answer) for f in question.facts)
                lead = first_sentence(outcome.answer)
                result.states_first = all(fact_found(f, lead) for f in question.facts)
            results.append(result)
    return results


def pipeline_search(deps: "Deps", k: int = 10) -> Search:
    """The search each mode stands for, on the given pipeline dependencies."""
    from copilot import conversation, pipeline
    from copilot.models import SearchFilters

    def search(question: EvalQuestion, mode: str) -> Outcome:
        history = question.history or None
        # A follow-up is searched as the standalone question it stands for, as in production.
        query = conversation.resolve(question.question, history, deps.classifier).query if history \
            else question.question
        vector = deps.retriever.embed_query(query)
        intent = pipeline.understand(deps, question.question, question.role, None, history, vector)
        if mode == "hybrid":
            evidence, found = pipeline.find(deps, query, intent, vector, k=k)
            confidence = pipeline.grounding_confidence(found, intent, deps.pack.rules.grounding,
                                                       pipeline.reference_for(deps, query))
            answered = pipeline.should_answer(deps, intent, evidence, confidence)
            draft = deps.composer.compose(query, intent, evidence, answered, [])
            return Outcome(evidence, confidence, draft.answer, answered)
        route = deps.pack.rules.role_route(question.role)
        found = deps.retriever.search(query, k=k, query_vector=vector, fusion=_BASELINES[mode],
                                      filters=SearchFilters(kinds=route.kinds, audiences=route.audiences))
        return Outcome(found.results, pipeline.grounding_confidence(found, intent, deps.pack.rules.grounding,
                                                                    pipeline.reference_for(deps, query)))

    return search


def _retrieval(rows: list[QuestionResult]) -> dict:
    return {"n": len(rows),
            "hit@1": round(sum(r.rank == 1 for r in rows) / len(rows), 3),
            "hit@5": round(sum(r.rank is not None and r.rank <= 5 for r in rows) / len(rows), 3),
            "mrr": round(sum(1 / r.rank for r in rows if r.rank) / len(rows), 3)}


def _declines(rows: list[QuestionResult]) -> dict:
    """No-answer precision and recall: a decline is right when the question is out of scope."""
    declined = [r for r in rows if r.answered is False]
    oos = [r for r in rows if r.out_of_scope]
    in_scope = [r for r in rows if not r.out_of_scope]
    caught = [r for r in declined if r.out_of_scope]
    return {"oos_n": len(oos), "in_scope_n": len(in_scope), "auc": _auc(rows),
            "oos_declined": round(len(caught) / len(oos), 3) if oos else None,
            "in_scope_declined": round(sum(not r.out_of_scope for r in declined) / len(in_scope), 3)
            if in_scope else None,
            "precision": round(len(caught) / len(declined), 3) if declined else None}


def _auc(rows: list[QuestionResult]) -> float | None:
    """How well the confidence alone ranks in-scope questions above out-of-scope ones, whatever
    the threshold (1 = every in-scope question above every out-of-scope one, 0.5 = chance)."""
    from sklearn.metrics import roc_auc_score

    labels = [0 if r.out_of_scope else 1 for r in rows]
    return round(float(roc_auc_score(labels, [r.confidence for r in rows])), 3) if len(set(labels)) == 2 else None


def _answers(rows: list[QuestionResult]) -> dict:
    scored = [r for r in rows if r.states_fact is not None]
    if not scored:
        return {"n": 0}
    return {"n": len(scored), "states_fact": round(sum(r.states_fact for r in scored) / len(scored), 3),
            "states_first": round(sum(bool(r.states_first) for r in scored) / len(scored), 3)}


def summarize(results: list[QuestionResult], threshold: float) -> dict:
    """Per split: retrieval metrics per mode (overall, per role, per style), the decline decision
    and answer quality of the production mode."""
    metrics: dict[str, Any] = {"threshold": threshold}
    for split in sorted({r.split for r in results}):
        rows = [r for r in results if r.split == split]
        part: dict[str, Any] = {}
        for mode in [m for m in MODES if any(r.mode == m for r in rows)]:
            groups: dict[str, list[QuestionResult]] = defaultdict(list)
            for r in rows:
                if r.mode == mode and r.ranked:
                    for group in ("overall", f"role:{r.role}", f"style:{r.style}"):
                        groups[group].append(r)
            part[mode] = {g: _retrieval(v) for g, v in sorted(groups.items())}
        hybrid = [r for r in rows if r.mode == "hybrid"]
        if hybrid:
            part["declines"] = _declines(hybrid)
            part["answers"] = {"overall": _answers(hybrid),
                               **{f"role:{role}": _answers([r for r in hybrid if r.role == role])
                                  for role in sorted({r.role for r in hybrid})}}
        metrics[split] = part
    return metrics


def write_results(results: list[QuestionResult], metrics: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in results:
            fh.write(r.model_dump_json() + "\n")
    out.with_suffix(".summary.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")


PROMOTED_FILE = "promoted.yaml"


def promote(data_dir: Path, question: EvalQuestion) -> Path:
    """Append a real frontline question to the deployment's own eval set."""
    path = data_dir / "evals" / PROMOTED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read, append, write under a lock shared by every thread and worker: two promotions at once
    # would otherwise both append to the same old list and one would be lost.
    with FileLock(f"{path}.lock", timeout=30):
        data = load_yaml(path.read_text(encoding="utf-8")) if path.exists() else None
        questions = (data or {}).get("questions") or []
        if any(q.get("question") == question.question and q.get("role") == question.role for q in questions):
            return path
        questions.append(question.model_dump(exclude_none=True, exclude_defaults=True) | {"id": question.id,
                                                                                          "role": question.role})
        # Atomic: a crash never leaves half a file, and readers outside the lock see a whole one.
        write_atomically(path, yaml.safe_dump({"questions": questions}, allow_unicode=True, sort_keys=False))
    return path


def default_eval_paths(project_evals: Path, data_dir: Path) -> list[Path]:
    """The dev and test splits, plus the questions this deployment promoted from real use."""
    promoted = data_dir / "evals" / PROMOTED_FILE
    return [project_evals / split for split in SPLITS if (project_evals / split).is_dir()] + \
        ([promoted] if promoted.exists() else [])
