"""Decline signals measured against off-topic questions asked of the same knowledge.

How high the best passage scores means little on its own: a 14-row English FAQ sheet and the
sample pack with its handbook give the same question very different cosines and BM25 scores (the
corpus's size, its language, its length). What carries over is how far a question stands above
what an off-topic question scores *here*. So the out-of-scope example questions (intents.yaml)
are searched once on this knowledge with each role's routing, per script (Latin or Chinese: an
English question against Chinese text scores lower across the board), and the decline model reads
each signal relative to their mean: a difference for bounded signals, a log ratio for BM25 scores,
whose scale grows with the corpus.

Searching ~200 examples costs a second or two, so a reference is kept in the data dir and reused
until the index grows or shrinks by more than REMEASURE_SHARE (a statistic of the whole corpus
hardly moves when one document changes), the embedding model changes or the examples do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from copilot.files import write_bytes_atomically
from copilot.modeling import Model
from copilot.normalize import mostly_latin

# Signals read as a difference from the reference, and those read as a log ratio.
DIFFERENCES = ("dense_top", "dense_lift", "dense_gap", "fused_top", "bigram_cover", "idf_cover", "unknown_share")
LOG_RATIOS = ("words_top", "bigrams_top")
SCRIPTS = ("han", "latin")
# Examples searched per script and role: enough for a steady mean, few enough to measure in ~1 s.
EXAMPLES_PER_SCRIPT = 40
REMEASURE_SHARE = 0.1


class Reference(Model):
    """Mean decline signals of off-topic example questions on one knowledge base, per script."""

    key: str  # the embedding model and the examples it was measured with
    passages: int  # live passages in the index when measured
    means: dict[str, dict[str, float]]  # script -> signal -> mean

    def for_text(self, text: str) -> dict[str, float]:
        """The reference for a question's script (the other script's when this one had no examples)."""
        script = script_of(text)
        return self.means.get(script) or next(iter(self.means.values()), {})


def script_of(text: str) -> str:
    return "latin" if mostly_latin(text) else "han"


def relative(signals: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """`rel_<signal>`: each retrieval signal against the off-topic reference."""
    out = {f"rel_{name}": signals.get(name, 0.0) - reference.get(name, 0.0) for name in DIFFERENCES}
    for name in LOG_RATIOS:
        out[f"rel_{name}"] = math.log((signals.get(name, 0.0) + 1.0) / (reference.get(name, 0.0) + 1.0))
    return out


def pick_examples(texts: Sequence[str], per_script: int = EXAMPLES_PER_SCRIPT) -> list[int]:
    """Indexes of up to per_script examples of each script, spread evenly over the list (which
    is grouped by kind of off-topic question in intents.yaml)."""
    chosen: list[int] = []
    for script in SCRIPTS:
        rows = [i for i, text in enumerate(texts) if script_of(text) == script]
        step = max(len(rows) / per_script, 1.0)
        chosen += sorted({rows[int(j * step)] for j in range(min(per_script, len(rows)))})
    return chosen


# (question text, its query vector, a role) -> the search's decline signals
Search = Callable[[str, np.ndarray, str], dict[str, float]]


def measure(key: str, passages: int, texts: Sequence[str], roles: Sequence[str],
            embed_query: Callable[[str], np.ndarray], search: Search) -> Reference | None:
    """Search the chosen examples with each role, embedded as the questions they stand for;
    None without any example to measure."""
    per_script: dict[str, list[dict[str, float]]] = {}
    for i in pick_examples(texts):
        vector = embed_query(texts[i])
        for role in roles:
            per_script.setdefault(script_of(texts[i]), []).append(search(texts[i], vector, role))
    if not per_script:
        return None
    names = DIFFERENCES + LOG_RATIOS
    means = {script: {n: round(float(np.mean([s.get(n, 0.0) for s in rows])), 5) for n in names}
             for script, rows in per_script.items()}
    return Reference(key=key, passages=passages, means=means)


def still_fits(reference: Reference, key: str, passages: int) -> bool:
    return reference.key == key and abs(passages - reference.passages) <= REMEASURE_SHARE * max(reference.passages, 1)


def load(path: Path) -> Reference | None:
    try:
        return Reference.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or from an older version: measured again
        return None


def save(path: Path, reference: Reference) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, json.dumps(reference.model_dump(), ensure_ascii=False).encode("utf-8"))
