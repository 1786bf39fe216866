"""Scores a multi-turn eval set (evals/dev/multiturn.yaml; evals/test/multiturn.yaml is held out) through the real pipeline: a case
passes when the follow-up's intent matches `expect` and, where given, one of `expected_sources`
(or `also_accept`) is among the top 5 retrieved passages.

    .venv/bin/python -m tests.multiturn_eval [--data-dir DIR] [FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from copilot import conversation, pipeline
from copilot.models import Role

MULTITURN = Path(__file__).resolve().parents[1] / "evals" / "dev" / "multiturn.yaml"
MULTITURN_TEST = MULTITURN.parents[1] / "test" / "multiturn.yaml"  # held out: report it, never tune on it
TOP_K = 5


class MultiTurnCase(BaseModel):
    id: str
    role: Role
    style: str = ""
    history: list[str] = Field(min_length=1)
    question: str
    expect: dict[str, Any] = Field(default_factory=dict)
    expected_sources: list[str] = Field(default_factory=list)
    also_accept: list[dict[str, str]] = Field(default_factory=list)


class CaseResult(BaseModel):
    id: str
    passed: bool
    problems: list[str]
    query: str
    top: list[str]


def load_cases(path: Path = MULTITURN) -> list[MultiTurnCase]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [MultiTurnCase(**raw) for raw in data.get("questions") or []]


def score_case(deps: pipeline.Deps, case: MultiTurnCase) -> CaseResult:
    """Ask the follow-up as the API does; retrieval is read the way answer() runs it."""
    response = pipeline.answer(deps, case.question, case.role, history=case.history, actor="eval")
    query = conversation.resolve(case.question, case.history, deps.classifier).query
    vector = deps.retriever.embed_query(query)
    intent = pipeline.understand(deps, case.question, case.role, None, case.history, vector)
    evidence, _ = pipeline.find(deps, query, intent, vector)
    top = [e.source for e in evidence[:TOP_K]]
    problems = []
    for key, want in case.expect.items():
        got = response.intent.task if key == "task" else getattr(response.intent.slots, key)
        if got != want:
            problems.append(f"{key}: expected {want!r}, got {got!r}")
    accepted = set(case.expected_sources) | {a["source"] for a in case.also_accept}
    if accepted and not accepted & set(top):
        problems.append(f"none of {sorted(accepted)} in the top {TOP_K}")
    return CaseResult(id=case.id, passed=not problems, problems=problems, query=query, top=top)


def score(deps: pipeline.Deps, cases: list[MultiTurnCase]) -> tuple[float, list[CaseResult]]:
    """Share of cases that pass, and each case's result."""
    results = [score_case(deps, case) for case in cases]
    return sum(r.passed for r in results) / max(len(results), 1), results


def main() -> None:
    from copilot.service import Copilot
    from copilot.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=MULTITURN)
    parser.add_argument("--data-dir", type=Path, default=Path("copilot-data"))
    args = parser.parse_args()
    copilot = Copilot(Settings(_env_file=None, data_dir=args.data_dir))
    share, results = score(copilot.deps, load_cases(args.file))
    for r in results:
        print(f"{'ok  ' if r.passed else 'FAIL'} {r.id:14} {r.query[:40]:42} {'; '.join(r.problems)}")
    print(f"multi-turn score: {share:.3f} ({sum(r.passed for r in results)}/{len(results)})")


if __name__ == "__main__":
    main()
