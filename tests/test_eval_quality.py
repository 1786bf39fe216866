"""Regression guard: the real eval over the seeds and the sample pack must stay above the bar we
reached. Ingests the seed documents once (a few minutes with the bundled model). The bars on the
test split are regression guards set below the figures in the README, not targets tuned on it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from copilot import evals
from copilot.pipeline import threshold
from copilot.service import Copilot
from copilot.settings import PROJECT_ROOT, Settings

SEEDS = Path(os.environ.get("COPILOT_SEEDS_DIR", PROJECT_ROOT.parent / "shared" / "seeds"))

# Regression guards on the held-out test split, a few points under the figures in the README (hit@1 0.748,
# hit@5 0.921, 75.0 % out-of-scope declined with 5.8 % in-scope declined, confidence AUC 0.939, 67.8 % of
# answers state the fact). The decline bars moved on 2026-12-04 (were 78 % / 12 %, from 84.4 % / 9.7 %): the
# decline model was refitted on the sample pack and two company workspaces together, with its signals read
# against off-topic questions on the same knowledge; it ranks better on both test sets (AUC 0.935 -> 0.939
# here, 0.752 -> 0.853 on the company workspaces) and its dev threshold now sits where fewer in-scope and
# fewer out-of-scope questions are declined.
TEST_HIT1, TEST_HIT5 = 0.70, 0.90
TEST_OOS_DECLINED, TEST_IN_SCOPE_DECLINED, TEST_AUC = 0.70, 0.09, 0.92
TEST_STATES_FACT = 0.60

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed documents not found at {SEEDS}")]


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    copilot = Copilot(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("eval")))
    report = copilot.indexer.ingest([str(SEEDS)])
    assert not report.failed
    questions = evals.load_questions([PROJECT_ROOT / "evals" / "dev", PROJECT_ROOT / "evals" / "test"])
    results = evals.run_eval(questions, evals.pipeline_search(copilot.deps), modes=("bm25", "dense", "rrf", "hybrid"))
    return evals.summarize(results, threshold(copilot.deps))


def test_both_splits_are_big_enough(metrics):
    assert metrics["dev"]["hybrid"]["overall"]["n"] >= 250
    assert metrics["test"]["hybrid"]["overall"]["n"] >= 100
    assert metrics["test"]["declines"]["oos_n"] >= 50


def test_production_fusion_beats_each_channel_and_plain_rrf_on_test(metrics):
    test = metrics["test"]
    for baseline in ("bm25", "dense", "rrf"):
        assert test["hybrid"]["overall"]["mrr"] > test[baseline]["overall"]["mrr"], baseline


def test_right_passage_first_on_questions_never_tuned_on(metrics):
    hybrid = metrics["test"]["hybrid"]["overall"]
    assert hybrid["hit@1"] >= TEST_HIT1 and hybrid["hit@5"] >= TEST_HIT5


def test_out_of_scope_questions_are_declined_and_in_scope_ones_answered(metrics):
    declines = metrics["test"]["declines"]
    assert declines["oos_declined"] >= TEST_OOS_DECLINED
    assert declines["in_scope_declined"] <= TEST_IN_SCOPE_DECLINED
    assert declines["auc"] >= TEST_AUC


def test_answers_state_the_fact(metrics):
    answers = metrics["test"]["answers"]["overall"]
    assert answers["n"] >= 50 and answers["states_fact"] >= TEST_STATES_FACT
