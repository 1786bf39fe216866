"""Company workspaces (evals/workspaces): a fresh `copilot init` workspace with a company's own FAQ
sheet, asked the questions its people would ask. Guards the held-out figures a few points under
those in evals/README.md."""

from __future__ import annotations

import pytest

from copilot import evals
from copilot.eval_workspaces import find_workspaces, open_workspace
from copilot.pipeline import threshold
from copilot.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT / "evals" / "workspaces"
# evals/README.md, test workspaces together: hit@1 0.839, hit@5 0.911; out of scope declined 43.5 %, in scope
# declined 0.0 %, confidence AUC 0.853 (before the decline signals were calibrated per knowledge base:
# 67.4 % / 32.1 %, AUC 0.752). Half the out-of-scope questions ask about the same product something no row
# answers, which similarity alone rarely tells apart.
TEST_HIT1, TEST_HIT5 = 0.78, 0.86
TEST_OOS_DECLINED, TEST_IN_SCOPE_DECLINED, TEST_AUC = 0.38, 0.06, 0.82

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def test_results(tmp_path_factory):
    results = []
    for workspace in find_workspaces(ROOT, ("test",)):
        copilot = open_workspace(workspace, tmp_path_factory.mktemp(workspace.name))
        questions = workspace.questions()
        rows = {item.id for item in copilot.knowledge_items()}
        missing = {s for q in questions for s in q.expected_sources if s not in rows}
        assert not missing, f"{workspace.name}: expected sources not in its sheet: {missing}"
        results += evals.run_eval(questions, evals.pipeline_search(copilot.deps), modes=("hybrid",))
    return evals.summarize(results, threshold(copilot.deps))["test"]


def test_each_split_has_an_english_and_a_chinese_company():
    for split in ("dev", "test"):
        names = [w.name for w in find_workspaces(ROOT, (split,))]
        assert any(n.endswith("-en") for n in names) and any(n.endswith("-zh") for n in names), split


def test_a_company_sheet_finds_the_right_row_for_questions_never_tuned_on(test_results):
    hybrid = test_results["hybrid"]["overall"]
    assert hybrid["n"] >= 50
    assert hybrid["hit@1"] >= TEST_HIT1 and hybrid["hit@5"] >= TEST_HIT5


def test_a_company_sheet_answers_what_it_covers_and_declines_off_topic(test_results):
    declines = test_results["declines"]
    assert declines["oos_n"] >= 40
    assert declines["oos_declined"] >= TEST_OOS_DECLINED
    assert declines["in_scope_declined"] <= TEST_IN_SCOPE_DECLINED
    assert declines["auc"] >= TEST_AUC
