"""Split newly written eval questions (evals/incoming/*.yaml) into dev and test, once.

Within each file, questions are grouped by role and style and dealt alternately to dev and test
(ordered by a hash of the id, so the split does not follow the writing order). The result is
written to evals/dev/<file> and evals/test/<file>; the incoming file is removed.
"""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent / "evals"


def split(path: Path) -> tuple[list[dict], list[dict]]:
    questions = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for q in questions:
        groups[(q.get("role"), q.get("style"), bool(q.get("out_of_scope")))].append(q)
    dev, test = [], []
    turn = 0
    for key in sorted(groups, key=str):
        for q in sorted(groups[key], key=lambda q: hashlib.sha256(q["id"].encode()).hexdigest()):
            (dev if turn % 2 == 0 else test).append(q)
            turn += 1
    order = {q["id"]: i for i, q in enumerate(questions)}
    return sorted(dev, key=lambda q: order[q["id"]]), sorted(test, key=lambda q: order[q["id"]])


def main(names: list[str]) -> None:
    for name in names:
        path = ROOT / "incoming" / name
        header = "".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                         if line.startswith("#"))
        for folder, part in zip(("dev", "test"), split(path)):
            out = ROOT / folder / name
            note = f"# {folder} half of the questions written for Step 5 (scripts/split_evals.py)\n"
            out.write_text(note + header + yaml.safe_dump({"questions": part}, allow_unicode=True, sort_keys=False,
                                                          width=120), encoding="utf-8")
            print(f"{out.relative_to(ROOT.parent)}: {len(part)}")
        path.unlink()


if __name__ == "__main__":
    main(sys.argv[1:])
