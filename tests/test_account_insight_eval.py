"""`copilot eval insight`: the renewal-risk backtest on held-out accounts and next-best-action
coverage, on the sample book by default and on a workspace's imported accounts, as a table and
as JSON; the plain `copilot eval [FILES]` keeps scoring the eval questions."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from copilot.accounts.sample import write_sample_sheets
from copilot.cli import app
from tests.conftest import PACK_DIR


def env(tmp_path) -> dict[str, str]:
    return {"COPILOT_KNOWLEDGE_DIR": str(PACK_DIR), "COPILOT_DATA_DIR": str(tmp_path / "data")}


def run(tmp_path, *args: str):
    return CliRunner().invoke(app, ["eval", "insight", *args], env=env(tmp_path))


def shares(result: dict) -> list[float | None]:
    return [result["risk"]["auc"], result["risk"]["precision_at_10"], result["risk_all"]["auc"],
            result["risk_all"]["precision_at_10"], result["journey"]["auc"], result["coverage"], result["churn_rate"]]


def test_on_the_sample_book_the_figures_are_there_and_are_shares(tmp_path):
    done = run(tmp_path, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["source"] == "sample" and result["accounts"] == 600
    assert result["holdout"] >= 30 and result["with_outcome"] > result["holdout"]
    assert all(x is not None and 0 <= x <= 1 for x in shares(result)), shares(result)
    assert result["risk"]["auc"] > 0.6  # the risk score ranks churners above renewers on unseen accounts
    assert 0 < result["covered"] <= result["at_risk"] and result["coverage"] == result["covered"] / result["at_risk"]
    assert run(tmp_path, "--json").stdout == done.stdout  # reproducible

    table = run(tmp_path)
    assert table.exit_code == 0, table.output
    for label in ("续费风险 AUC（留出）", "前 10% 精确率", "下一步行动覆盖率", f"{result['risk']['auc']:.2f}"):
        assert label in table.stdout
    small = run(tmp_path, "--accounts", "60")
    assert "留出太少" in small.stdout  # six held-out accounts: the table says the figures are noisy


def test_on_the_workspace_it_reads_the_imported_accounts_or_says_what_to_do(tmp_path):
    empty = run(tmp_path, "--workspace")
    assert empty.exit_code == 2 and "copilot ingest" in empty.output

    sheets = write_sample_sheets(tmp_path / "demo", n=120)
    ingest = CliRunner().invoke(app, ["ingest", *map(str, sheets)], env=env(tmp_path))
    assert ingest.exit_code == 0, ingest.output
    done = run(tmp_path, "--workspace", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["source"] == "workspace" and result["accounts"] == 120
    assert all(x is None or 0 <= x <= 1 for x in shares(result))
    assert result["at_risk"] > 0 and result["coverage"] is not None
