"""FAQ-paraphrase benchmark: held-out paraphrases of the pack's FAQs (evals/benchmark/), top-1 and
top-5 for BM25 alone, dense alone, plain reciprocal-rank fusion of the two, and the copilot's
production find stage, in one run. Never tuned on. Writes benchmarks/faq_paraphrases.json.

    .venv/bin/python scripts/bench_faq_paraphrases.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from copilot import evals
from copilot.service import Copilot
from copilot.settings import PROJECT_ROOT, Settings

OUT = PROJECT_ROOT / "benchmarks" / "faq_paraphrases.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary one (the sample pack only)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="copilot-bench-"))
    copilot = Copilot(Settings(_env_file=None, data_dir=data_dir))
    questions = evals.load_questions([PROJECT_ROOT / "evals" / "benchmark" / "faq_paraphrases.yaml"])
    results = evals.run_eval(questions, evals.pipeline_search(copilot.deps),
                             modes=("bm25", "dense", "rrf", "hybrid"))
    table: dict[str, dict] = defaultdict(dict)
    for mode in ("bm25", "dense", "rrf", "hybrid"):
        groups: dict[str, list] = defaultdict(list)
        for r in results:
            if r.mode == mode:
                for group in ("overall", f"style:{r.style}"):
                    groups[group].append(r)
        for group, rows in sorted(groups.items()):
            table[group][mode] = {"n": len(rows), "top1": round(sum(r.rank == 1 for r in rows) / len(rows), 3),
                                  "top5": round(sum(bool(r.rank and r.rank <= 5) for r in rows) / len(rows), 3)}
    name = {"bm25": "BM25", "dense": "dense", "rrf": "RRF(BM25+dense)", "hybrid": "copilot"}
    print(f"{len(questions)} paraphrases of {len({s for q in questions for s in q.expected_sources})} FAQs")
    print(f"{'group':<20}" + "".join(f"{name[m]:>22}" for m in name))
    for group in sorted(table, key=lambda g: (g != "overall", g)):
        cells = "".join(f"{table[group][m]['top1']:>13.3f} / {table[group][m]['top5']:.3f}" for m in name)
        print(f"{group:<20}{cells}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"questions": len(questions), "metrics": table}, ensure_ascii=False, indent=2) + "\n",
                   encoding="utf-8")
    print(f"wrote {OUT.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
