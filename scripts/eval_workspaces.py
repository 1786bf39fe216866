"""Score the copilot on company workspaces (evals/workspaces/<split>/<name>/): a fresh `copilot init`
workspace per folder, its sheets ingested, its questions asked through the production pipeline.
Prints per workspace and per split: out-of-scope declined, in-scope declined, the confidence's AUC
(in scope vs out of scope, whatever the threshold), hit@1 and hit@5; writes benchmarks/workspaces.json.

    python scripts/eval_workspaces.py [--split dev --split test] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from copilot import evals
from copilot.eval_workspaces import find_workspaces, open_workspace
from copilot.pipeline import threshold
from copilot.settings import PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", action="append", choices=evals.SPLITS)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "workspaces.json")
    args = parser.parse_args()
    splits = tuple(args.split or evals.SPLITS)
    report: dict[str, dict] = {}
    by_split: dict[str, list[evals.QuestionResult]] = {}
    decline_at = 0.0
    for workspace in find_workspaces(PROJECT_ROOT / "evals" / "workspaces", splits):
        with tempfile.TemporaryDirectory(prefix=f"ws-{workspace.name}-") as work:
            copilot = open_workspace(workspace, Path(work))
            results = evals.run_eval(workspace.questions(), evals.pipeline_search(copilot.deps), modes=("hybrid",))
            decline_at = threshold(copilot.deps)  # the same rules.yaml in every workspace
            summary = evals.summarize(results, decline_at)[workspace.split]
        by_split.setdefault(workspace.split, []).extend(results)
        report[f"{workspace.split}/{workspace.name}"] = summary
        print_line(f"{workspace.split}/{workspace.name}", summary)
        for r in results:
            if r.answered == r.out_of_scope:  # answered out of scope, or declined in scope
                print(f"    {'answered' if r.answered else 'declined'} {r.confidence:.3f} {r.id}: {r.question}")
    for split, results in by_split.items():
        summary = evals.summarize(results, decline_at)[split]
        report[split] = summary
        print_line(f"{split} (all workspaces)", summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def print_line(label: str, summary: dict) -> None:
    declines, hits = summary["declines"], summary["hybrid"].get("overall", {})
    print(f"{label:<28} oos declined {declines['oos_declined']:.3f} (n={declines['oos_n']})  "
          f"in-scope declined {declines['in_scope_declined']:.3f} (n={declines['in_scope_n']})  auc {declines['auc']:.3f}  "
          f"hit@1 {hits.get('hit@1', 0):.3f}  hit@5 {hits.get('hit@5', 0):.3f}")


if __name__ == "__main__":
    main()
