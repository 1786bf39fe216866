"""The eval runner: frontline questions scored per role and per retrieval mode."""

from __future__ import annotations

import json
from textwrap import dedent

import pytest
from typer.testing import CliRunner

from copilot import evals
from copilot.cli import app
from copilot.errors import InvalidInput

EVAL_YAML = dedent("""\
    questions:
      - id: q-sales-bakery
        role: sales
        task: find_cases
        question: 有没有杭州面包连锁统一会员提升复购的案例？
        expected_sources: [case-bakery-hz]
      - id: q-sales-tea
        role: sales
        task: find_cases
        question: 成都奶茶店高峰期排队太长，有同行案例吗？
        expected_sources: [case-tea-cd]
      - id: q-support-printer
        role: support
        task: faq
        question: 小票打印机不出纸怎么办
        expected_sources: [faq-printer]
      - id: q-support-points
        role: support
        task: faq
        question: 會員積分的有效期是多久？
        expected_sources: [faq-points-expiry]
      - id: q-support-missing
        role: support
        task: faq
        question: 电子发票怎么开？
        expected_sources: [faq-invoice-not-written-yet]
      - id: q-support-doc
        role: support
        task: practice_question
        question: 周末排班要提前多久发布？
        expected_sources: [排班.md]
        contains: 提前一周
      - id: q-csm-renewal
        role: csm
        task: practice_question
        question: 续费应该由谁负责？
        expected_sources: [pb-renewal]
      - id: q-oos-weather
        role: support
        question: 明天北京的天气怎么样？
        out_of_scope: true
    """)
N_QUESTIONS = 8


TEST_YAML = dedent("""\
    questions:
      - id: t-support-printer
        role: support
        style: colloquial
        question: 打印小票的机器一张纸都不出
        expected_sources: [faq-not-this-one]
        also_accept:
          - {source: faq-printer, why: the printer FAQ answers it}
        facts: ["纸卷|纸"]
      - id: t-oos-tax
        role: support
        style: short
        question: 个税怎么算
        out_of_scope: true
    """)
MODES = ("bm25", "dense", "rrf", "previous", "hybrid")


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, tiny_pack_dir):
    """Ingest one document, then run `copilot eval` once for the whole module over a dev and a
    test folder."""
    root = tmp_path_factory.mktemp("evals")
    docs = root / "docs"
    docs.mkdir()
    (docs / "排班.md").write_text("# 门店排班\n\n周末排班要提前一周发布，临时调班需店长同意。\n", encoding="utf-8")
    (root / "dev").mkdir()
    (root / "test").mkdir()
    (root / "dev" / "questions.yaml").write_text(EVAL_YAML, encoding="utf-8")
    (root / "test" / "questions.yaml").write_text(TEST_YAML, encoding="utf-8")
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(root / "data")}
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", str(docs)], env=env)
    assert ingested.exit_code == 0, ingested.output
    out = root / "out" / "results.jsonl"
    result = runner.invoke(app, ["eval", str(root / "dev"), str(root / "test"), "--out", str(out), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def test_metrics_per_split_mode_role_and_style(eval_run):
    data, out = eval_run
    metrics = data["metrics"]
    assert data["results_file"] == str(out)
    dev, test = metrics["dev"], metrics["test"]
    for mode in MODES:
        assert {"overall", "role:sales", "role:support", "role:csm"} <= set(dev[mode])
        assert dev[mode]["overall"]["n"] == N_QUESTIONS - 1  # out-of-scope questions are not ranked
        assert dev[mode]["role:support"]["n"] == 4
        for row in dev[mode].values():
            assert set(row) == {"n", "hit@1", "hit@5", "mrr"}
            assert 0 <= row["mrr"] <= row["hit@5"] <= 1 and row["hit@1"] <= row["hit@5"]
    # The clear questions are answered by the production stage; the unanswerable one is not.
    assert dev["hybrid"]["role:sales"]["hit@1"] == 1.0
    assert dev["hybrid"]["role:csm"]["hit@1"] == 1.0
    assert dev["hybrid"]["role:support"]["hit@5"] == 0.75
    assert dev["declines"]["oos_n"] == 1 and dev["declines"]["in_scope_n"] == N_QUESTIONS - 1
    # The test split is scored on its own; an also_accept source counts as a hit.
    assert test["hybrid"]["overall"] == {"n": 1, "hit@1": 1.0, "hit@5": 1.0, "mrr": 1.0}
    assert test["hybrid"]["style:colloquial"]["n"] == 1
    assert test["answers"]["overall"]["n"] == 1


def test_cli_prints_dev_and_test_side_by_side(tmp_path, tiny_pack_dir, eval_run):
    _, out = eval_run
    root = out.parent.parent
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(root / "data")}
    result = CliRunner().invoke(app, ["eval", str(root / "dev"), str(root / "test"), "--out",
                                      str(tmp_path / "r.jsonl")], env=env)
    assert result.exit_code == 0, result.output
    assert "dev n" in result.output and "test n" in result.output and "style:colloquial" in result.output


def test_per_question_results_are_written(eval_run):
    _, out = eval_run
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(MODES) * (N_QUESTIONS + 2)
    by_key = {(r["id"], r["mode"]): r for r in rows}
    printer = by_key[("q-support-printer", "hybrid")]
    assert printer["rank"] == 1 and printer["top"][0] == "faq-printer" and printer["role"] == "support"
    assert printer["split"] == "dev" and printer["answered"] is True
    assert by_key[("q-support-doc", "hybrid")]["rank"] == 1  # a document matched by file name + phrase
    assert by_key[("q-oos-weather", "hybrid")]["out_of_scope"] is True
    assert by_key[("t-support-printer", "hybrid")]["states_fact"] is True
    summary = json.loads(out.with_suffix(".summary.json").read_text(encoding="utf-8"))
    assert summary["dev"]["hybrid"]["overall"]["n"] == N_QUESTIONS - 1


def test_answer_facts_and_first_sentence():
    assert evals.fact_found("CSM|客户成功经理", "续费由客户成功經理负责")  # script folded
    assert not evals.fact_found("销售", "续费由客户成功经理负责")
    assert evals.first_sentence("续费由CSM负责[1]。销售专注新客户。") == "续费由CSM负责[1]。"


def test_question_whose_expected_source_is_missing_is_a_miss(eval_run):
    _, out = eval_run
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    missing = [r for r in rows if r["id"] == "q-support-missing"]
    assert len(missing) == len(MODES) and all(r["rank"] is None for r in missing)
    assert all(r["top"] for r in missing if r["mode"] in ("dense", "hybrid"))  # something was found, just not it


def test_contains_must_match_for_document_sources():
    from copilot.models import Evidence

    question = evals.EvalQuestion(id="q", role="support", question="?", expected_sources=["排班.md"],
                                  contains="提前一周")
    right = Evidence(id="d-0", kind="doc", source="docs/排班.md", title="门店排班", text="周末排班要提前一周發布", score=1)
    wrong_passage = right.model_copy(update={"text": "临时调班需店长同意"})
    other_file = right.model_copy(update={"source": "docs/老排班.md"})
    assert evals.is_hit(right, question)
    assert not evals.is_hit(wrong_passage, question)
    assert not evals.is_hit(other_file, question)


def test_duplicate_ids_are_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("questions:\n  - {id: q1, role: csm, question: 续费谁负责}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("questions:\n  - {id: q1, role: csm, question: 增购谁负责}\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="q1"):
        evals.load_questions([tmp_path])


def test_bad_eval_files_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInput, match="No such eval file"):
        evals.load_questions([tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions:\n  - id: q-bad\n    role: boss\n    question: 谁负责？\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as excinfo:
        evals.load_questions([tmp_path])
    assert "bad.yaml" in str(excinfo.value) and "q-bad" in str(excinfo.value)


def test_cli_eval_without_questions_fails(tmp_path, tiny_pack_dir):
    (tmp_path / "empty.yaml").write_text("questions: []\n", encoding="utf-8")
    env = {"COPILOT_KNOWLEDGE_DIR": str(tiny_pack_dir), "COPILOT_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "empty.yaml")], env=env)
    assert result.exit_code == 2 and "No eval questions found" in result.output
