"""Eval workspaces: a small company's own knowledge with the questions asked about it.

The main evals measure the copilot on the sample pack it was built with. A company runs it on its
own sheets instead (`copilot init`, then `copilot ingest faq.xlsx`), where the decision to answer
or decline meets knowledge it was never fitted on: a dozen English FAQ rows, another industry's
Chinese ones. Each folder under `evals/workspaces/<split>/<name>/` holds such a company's sheets
(any csv or xlsx) and a `questions.yaml` in the usual eval format whose `expected_sources` are
the sheet's row ids. Opening one builds a fresh workspace exactly as a company would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from copilot.evals import SPLITS, EvalQuestion, load_questions

QUESTIONS_FILE = "questions.yaml"
SHEET_SUFFIXES = (".csv", ".xlsx")


@dataclass(frozen=True)
class Workspace:
    folder: Path
    split: str  # dev or test: which side of the tuning line its questions sit

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def sheets(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.suffix.lower() in SHEET_SUFFIXES)

    def questions(self) -> list[EvalQuestion]:
        # The split comes from the folder above the workspace, not from the file's own folder.
        return [q.model_copy(update={"split": self.split})
                for q in load_questions([self.folder / QUESTIONS_FILE])]


def find_workspaces(root: Path, splits: tuple[str, ...] = SPLITS) -> list[Workspace]:
    """The workspaces under root/<split>/ for each split asked for, in name order."""
    return [Workspace(folder, split) for split in splits if (root / split).is_dir()
            for folder in sorted((root / split).iterdir()) if (folder / QUESTIONS_FILE).is_file()]


def open_workspace(workspace: Workspace, work_dir: Path):
    """A Copilot on a new company workspace (`copilot init` defaults) with the workspace's sheets
    ingested, its data under work_dir. Raises when a sheet does not load cleanly: an eval on half
    a sheet would measure the wrong thing."""
    from copilot.knowledge.workspace import init_workspace
    from copilot.service import Copilot
    from copilot.settings import Settings, bundled

    knowledge = work_dir / "knowledge"
    if not (knowledge / "rules.yaml").exists():
        init_workspace(knowledge, bundled("knowledge"))
    copilot = Copilot(Settings(_env_file=None, data_dir=work_dir / "data", knowledge_dir=knowledge))
    report = copilot.ingest([str(p) for p in workspace.sheets], actor="eval")
    if not report.ok:
        problems = report.failed + [(s.source, e) for s in report.sheets for e in s.errors]
        raise ValueError(f"workspace {workspace.name}: sheets did not load cleanly: {problems}")
    return copilot
