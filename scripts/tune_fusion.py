"""Compare fusion settings on the dev evals (never the test split): prints hit@1 / hit@5 / MRR of
the production find stage for each setting, best MRR first.

    .venv/bin/python scripts/tune_fusion.py --data-dir copilot-data
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

from copilot import evals, pipeline
from copilot.service import Copilot
from copilot.settings import PROJECT_ROOT, Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("copilot-data"))
    args = parser.parse_args()
    copilot = Copilot(Settings(data_dir=args.data_dir))
    deps = copilot.deps
    questions = [q for q in evals.load_questions([PROJECT_ROOT / "evals" / "dev"]) if not q.out_of_scope]
    prepared = []
    for q in questions:
        vector = deps.retriever.embed_query(q.question)
        prepared.append((q, vector, pipeline.understand(deps, q.question, q.role, None, q.history or None, vector)))
    base = deps.retriever.fusion
    rows = []
    for method, dense, bigram_share in itertools.product(("rrf", "weighted"), (0.3, 0.4, 0.5, 0.6, 0.7),
                                                         (0.0, 0.3, 0.5)):
        deps.retriever.fusion = replace(base, method=method, dense=dense, words=1 - bigram_share, bigrams=bigram_share)
        ranks = []
        for q, vector, intent in prepared:
            evidence, _ = pipeline.find(deps, q.question, intent, vector, k=10)
            ranks.append(next((i for i, e in enumerate(evidence, 1) if evals.is_hit(e, q)), None))
        n = len(ranks)
        rows.append((sum(1 / r for r in ranks if r) / n, sum(r == 1 for r in ranks) / n,
                     sum(bool(r and r <= 5) for r in ranks) / n, method, dense, bigram_share))
        print(f"{method:>8} dense {dense:.1f} bigrams {bigram_share:.1f}: hit@1 {rows[-1][1]:.3f} "
              f"hit@5 {rows[-1][2]:.3f} MRR {rows[-1][0]:.3f}", flush=True)
    print("best first:")
    for mrr, h1, h5, method, dense, bigram_share in sorted(rows, reverse=True)[:8]:
        print(f"  {method:>8} dense {dense:.1f} bigrams {bigram_share:.1f}: hit@1 {h1:.3f} hit@5 {h5:.3f} MRR {mrr:.3f}")


if __name__ == "__main__":
    main()
