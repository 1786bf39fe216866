"""Retrieval evals: frontline questions with expected sources, scored as hit@1, hit@5 and MRR
per role, for BM25-only, dense-only and hybrid retrieval side by side."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, Field

from copilot.errors import InvalidInput
from copilot.models import Evidence, Role

if TYPE_CHECKING:
    from copilot.pipeline import Deps
from copilot.normalize import normalize

# bm25 and dense: plain retrieval with the role's routing. hybrid: the production "find" stage
# (fused retrieval + intent-driven boosts and business rules), with its grounding decision.
MODES = ("bm25", "dense", "hybrid")


class EvalQuestion(BaseModel):
    id: str
    role: Role
    question: str
    task: str | None = None
    expected_sources: list[str] = Field(default_factory=list)
    contains: str | None = None
    out_of_scope: bool = False


class QuestionResult(BaseModel):
    id: str
    mode: str
    role: str
    question: str
    out_of_scope: bool
    rank: int | None  # 1-based rank of the first correct passage, None when missed
    confidence: float
    top: list[str]


def load_questions(paths: list[Path]) -> list[EvalQuestion]:
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InvalidInput(f"No such eval file or folder: {path}")
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    questions: list[EvalQuestion] = []
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for raw in data.get("questions") or []:
            try:
                questions.append(EvalQuestion(**raw))
            except Exception as exc:
                raise InvalidInput(f"{file}: question {raw.get('id', '?')}: {exc}") from exc
    return questions


def is_hit(evidence: Evidence, question: EvalQuestion) -> bool:
    source_ok = any(evidence.source == s or evidence.source.endswith("/" + s) for s in question.expected_sources)
    if not source_ok:
        return False
    if question.contains and evidence.kind == "doc":
        return normalize(question.contains) in normalize(f"{evidence.title}\n{evidence.text}")
    return True


# (question, mode) -> (ranked evidence, grounding confidence)
Search = Callable[[EvalQuestion, str], tuple[list[Evidence], float]]


def run_eval(questions: list[EvalQuestion], search: Search, k: int = 10) -> list[QuestionResult]:
    results = []
    for mode in MODES:
        for question in questions:
            evidence, confidence = search(question, mode)
            rank = next((i for i, e in enumerate(evidence[:k], 1) if is_hit(e, question)), None)
            results.append(QuestionResult(
                id=question.id, mode=mode, role=question.role, question=question.question,
                out_of_scope=question.out_of_scope, rank=None if question.out_of_scope else rank,
                confidence=confidence, top=[e.source for e in evidence[:5]]))
    return results


def pipeline_search(deps: "Deps", k: int = 10) -> Search:
    """The search each mode stands for, on the given pipeline dependencies."""
    from copilot import pipeline
    from copilot.models import SearchFilters

    def search(question: EvalQuestion, mode: str) -> tuple[list[Evidence], float]:
        vector = deps.retriever.embed_query(question.question)
        intent = pipeline.understand(deps, question.question, question.role, None, None, vector)
        if mode == "hybrid":
            evidence, found = pipeline.find(deps, question.question, intent, vector, k=k)
            return evidence, pipeline.grounding_confidence(found, intent)
        route = deps.pack.rules.role_route(question.role)
        found = deps.retriever.search(question.question, k=k, query_vector=vector,
                                      dense_weight=0.0 if mode == "bm25" else 1.0,
                                      filters=SearchFilters(kinds=route.kinds, audiences=route.audiences))
        return found.results, pipeline.grounding_confidence(found, intent)

    return search


def summarize(results: list[QuestionResult], threshold: float) -> dict:
    """Metrics per mode and role, plus out-of-scope detection at the grounding threshold."""
    groups: dict[tuple[str, str], list[QuestionResult]] = defaultdict(list)
    for r in results:
        if not r.out_of_scope:
            groups[(r.mode, r.role)].append(r)
            groups[(r.mode, "overall")].append(r)
    metrics = {}
    for (mode, role), rows in sorted(groups.items()):
        metrics.setdefault(mode, {})[role] = {
            "n": len(rows),
            "hit@1": round(sum(r.rank == 1 for r in rows) / len(rows), 3),
            "hit@5": round(sum(r.rank is not None and r.rank <= 5 for r in rows) / len(rows), 3),
            "mrr": round(sum(1 / r.rank for r in rows if r.rank) / len(rows), 3),
        }
    hybrid = [r for r in results if r.mode == "hybrid"]
    flagged = [r for r in hybrid if r.confidence < threshold]
    true_oos = [r for r in hybrid if r.out_of_scope]
    caught = [r for r in flagged if r.out_of_scope]
    metrics["out_of_scope"] = {
        "threshold": threshold,
        "n": len(true_oos),
        "precision": round(len(caught) / len(flagged), 3) if flagged else None,
        "recall": round(len(caught) / len(true_oos), 3) if true_oos else None,
    }
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
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    questions = (data or {}).get("questions") or []
    if any(q.get("question") == question.question and q.get("role") == question.role for q in questions):
        return path
    questions.append(question.model_dump(exclude_none=True, exclude_defaults=True) | {"id": question.id,
                                                                                      "role": question.role})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"questions": questions}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a file
    return path


def default_eval_paths(project_evals: Path, data_dir: Path) -> list[Path]:
    promoted = data_dir / "evals" / PROMOTED_FILE
    return [project_evals] + ([promoted] if promoted.exists() else [])
