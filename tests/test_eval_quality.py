"""Regression guard: the real eval over the seeds and the sample pack must stay above the bar
we reached. Ingests the seed documents once (a minute or two with the bundled model)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from copilot import evals
from copilot.pipeline import threshold
from copilot.service import Copilot
from copilot.settings import PROJECT_ROOT, Settings

SEEDS = Path(os.environ.get("COPILOT_SEEDS_DIR", PROJECT_ROOT.parent / "shared" / "seeds"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed documents not found at {SEEDS}")]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    copilot = Copilot(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("eval")))
    report = copilot.indexer.ingest([str(SEEDS)])
    assert not report.failed
    questions = evals.load_questions([PROJECT_ROOT / "evals"])
    results = evals.run_eval(questions, evals.pipeline_search(copilot.deps))
    return evals.summarize(results, threshold(copilot.deps))


def test_hybrid_beats_either_retriever_alone(metrics):
    hybrid = metrics["hybrid"]["overall"]
    assert hybrid["mrr"] > metrics["bm25"]["overall"]["mrr"]
    assert hybrid["mrr"] > metrics["dense"]["overall"]["mrr"]


def test_hybrid_puts_the_right_passage_first_for_nine_in_ten(metrics):
    hybrid = metrics["hybrid"]["overall"]
    assert hybrid["n"] >= 100
    assert hybrid["hit@1"] >= 0.89
    assert hybrid["hit@5"] >= 0.97


def test_out_of_scope_questions_are_mostly_refused(metrics):
    oos = metrics["out_of_scope"]
    assert oos["n"] >= 10
    assert oos["precision"] >= 0.8 and oos["recall"] >= 0.75
