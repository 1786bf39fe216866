"""Newcomer paper cuts on the command line: the serve port, and action ids that `actions list` shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from conftest import PACK_DIR, REPO_ROOT, build_settings
from copilot.cli import app

runner = CliRunner()


# Port ----------------------------------------------------------------------------------------------
@pytest.fixture
def served(monkeypatch, tmp_path):
    """Run `copilot serve` without serving: returns where uvicorn would have listened."""
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kwargs: calls.append(kwargs))
    for name in ("COPILOT_PORT", "COPILOT_HOST", "COPILOT_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env

    def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
        result = runner.invoke(app, ["serve", "--data-dir", str(tmp_path / "data"), *args], env=env)
        return result.exit_code, (calls[-1] if calls else {})

    return serve


def test_serve_listens_on_8000_by_default(served):
    code, where = served()
    assert code == 0 and (where["host"], where["port"]) == ("127.0.0.1", 8000)


def test_copilot_port_env_picks_the_port_and_the_option_wins(served):
    assert served(env={"COPILOT_PORT": "8123"})[1]["port"] == 8123
    assert served("--port", "9001", env={"COPILOT_PORT": "8123"})[1]["port"] == 9001


def test_copilot_host_env_still_refuses_open_binding_without_keys(served):
    code, where = served(env={"COPILOT_HOST": "0.0.0.0"})
    assert code == 2 and not where


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_takes_port_from_the_environment():
    def dry_run(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "PORT"}
        return subprocess.run(["make", "-n", "-C", str(REPO_ROOT), "run"], env={**clean, **env},
                              capture_output=True, text=True, check=True).stdout

    assert "copilot serve --port 8080" in dry_run(PORT="8080")
    assert "--port" not in dry_run()  # COPILOT_PORT / the default decide


# Action ids ----------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path, monkeypatch):
    """A data dir with three actions whose ids are chosen: two differ only in their last character."""
    from copilot.service import Copilot

    ids = iter(uuid.UUID(i) for i in ("abcdef12-3000-4000-8000-000000000001",
                                      "abcdef12-3000-4000-8000-000000000002",
                                      "12345678-9abc-4def-8000-000000000003"))
    monkeypatch.setattr("copilot.actions.uuid", SimpleNamespace(uuid4=lambda: next(ids)))
    copilot = Copilot(build_settings(tmp_path, PACK_DIR))
    actions = [copilot.actions.propose("save_plan", f"保存计划 {n}", {"markdown": f"# 计划 {n}"}, "tester", "csm")
               for n in range(3)]
    return str(copilot.settings.data_dir), [a.id for a in actions]


def cli(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "80"})


def test_the_listed_ids_are_whole_and_confirm_accepts_them(store):
    data_dir, (first, second, third) = store
    listed = cli("actions", "list", "--data-dir", data_dir)
    assert listed.exit_code == 0, listed.output
    shown = {line.split("│")[1].strip() for line in listed.output.splitlines() if line.startswith("│ ")} - {""}
    assert shown == {first, second, third[:8]}  # short where that is unique, never cut with "…"
    assert "copilot actions confirm <id>" in listed.output
    done = cli("actions", "confirm", third[:8], "--approve", "--data-dir", data_dir)
    assert done.exit_code == 0 and "executed" in done.output and third in done.output


def test_confirm_takes_the_full_id_or_any_unique_prefix(store):
    data_dir, (first, second, _third) = store
    assert cli("actions", "confirm", first, "--reject", "--data-dir", data_dir).exit_code == 0
    unique = cli("actions", "confirm", second[:-1] + "2", "--reject", "--data-dir", data_dir)
    assert unique.exit_code == 0 and "rejected" in unique.output
    assert cli("actions", "show", "1234", "--data-dir", data_dir).exit_code == 0


def test_an_ambiguous_prefix_lists_the_candidates(store):
    data_dir, (first, second, _third) = store
    result = cli("actions", "confirm", "abcdef12", "--approve", "--data-dir", data_dir)
    assert result.exit_code == 2
    assert "several action ids" in result.output
    assert first in result.output.replace("\n", "") and second in result.output.replace("\n", "")


def test_an_unknown_id_says_how_to_find_one(store):
    data_dir, _ = store
    for command in (["confirm", "ffff", "--approve"], ["retry", "ffff"], ["show", "ffff"]):
        result = cli("actions", *command, "--data-dir", data_dir)
        assert result.exit_code == 2 and "No action with id 'ffff'" in result.output
        assert "copilot actions list" in result.output.replace("\n", "")
