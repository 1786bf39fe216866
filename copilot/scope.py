"""Is a question about what the knowledge covers at all? A linear model over the question's
embedding, fitted when the copilot starts on the knowledge's own questions (FAQ questions and
their variants, playbook situations, in-scope intent examples) against the out-of-scope examples
of knowledge/intents.yaml. It learns from the knowledge, never from the evals, so it follows a
company's own knowledge and any embedding model."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


class ScopeModel:
    def __init__(self, inside: np.ndarray, outside: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        self.ready = len(inside) >= 5 and len(outside) >= 5
        if not self.ready:
            return
        x = np.vstack([inside, outside])
        y = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
        # Balanced: a pack has many more questions than out-of-scope examples.
        model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000).fit(x, y)
        self._weights = model.coef_[0].astype(np.float32)
        self._bias = float(model.intercept_[0])

    @classmethod
    def cached(cls, key: str, folder: Path, vectors: Callable[[], tuple[np.ndarray, np.ndarray]]) -> ScopeModel:
        """The model fitted on what `key` names (the texts and the embedder), from the data dir
        when it was fitted before: fitting (and importing scikit-learn for it), and even fetching
        the vectors of every knowledge question, cost every CLI command time otherwise."""
        path = folder / f"scope-{key}.npz"
        try:
            with np.load(path) as saved:
                model = cls.__new__(cls)
                model.ready, model._weights, model._bias = bool(saved["ready"]), saved["weights"], float(saved["bias"])
                return model
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # none yet, or half written
            pass
        inside, outside = vectors()
        model = cls(inside, outside)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("scope-*.npz"):
            stale.unlink(missing_ok=True)
        weights = model._weights if model.ready else np.zeros(0, np.float32)
        with path.open("wb") as handle:  # np.savez would add its own suffix to a temp name
            np.savez(handle, ready=model.ready, weights=weights, bias=model._bias if model.ready else 0.0)
        return model

    def logit(self, vector: np.ndarray) -> float:
        """Log-odds that the question is in scope (0 when the knowledge gives too little to learn from)."""
        if not self.ready:
            return 0.0
        return float(self._weights @ vector + self._bias)
