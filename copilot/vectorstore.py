"""Chroma adapter: embedded PersistentClient by default, a `chroma run` server by setting.

We always hand Chroma precomputed vectors and an explicit embedding function, because its
default function downloads a model on first use, which fails offline.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from copilot.embeddings import Embedder
from copilot.settings import Settings


class _ChromaEmbeddingFunction:
    """Adapts our embedder to Chroma's EmbeddingFunction protocol."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: list[str]) -> list[np.ndarray]:  # noqa: A002 - Chroma's name
        return list(self._embedder.passages(list(input)))

    def embed_query(self, input: list[str]) -> list[np.ndarray]:  # noqa: A002
        return [self._embedder.query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "copilot"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "_ChromaEmbeddingFunction":
        raise NotImplementedError("the copilot embedding function is always passed explicitly")

    def is_legacy(self) -> bool:
        # Legacy functions are not persisted with the collection, so reopening it never tries
        # (and fails) to rebuild ours from config; we pass it explicitly every time.
        return True

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


class VectorStore:
    """Opened on first use: with exact in-memory search, a command that only reads never pays
    Chroma's import and start (about a second)."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._settings = settings
        self._embedder = embedder

    @cached_property
    def _collection(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = self._settings
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.vector_store == "chroma-http":
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                         settings=chroma_settings)
        else:
            path = settings.ensure_data_dir() / "chroma"
            client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        # One collection per embedding model, so switching models never mixes vector spaces.
        return client.get_or_create_collection(
            name=f"{settings.collection}-{_slug(self._embedder.name)}",
            embedding_function=_ChromaEmbeddingFunction(self._embedder),
            metadata={"hnsw:space": "cosine"},
        )

    def upsert(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None:
        batch = 4000  # below Chroma's max batch size
        for start in range(0, len(ids), batch):
            end = start + batch
            self._collection.upsert(ids=ids[start:end], embeddings=vectors[start:end],
                                    metadatas=metadatas[start:end])

    def delete(self, ids: list[str]) -> None:
        if ids:
            self._collection.delete(ids=ids)

    def is_empty(self) -> bool:
        """Whether the store holds no vectors; an embedded store never created is not opened."""
        if self._settings.vector_store != "chroma-http" and not (self._settings.data_dir / "chroma").exists():
            return True
        return self.count() == 0

    def count(self) -> int:
        return self._collection.count()

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple[str, float]]:
        """Nearest ids with cosine similarity, best first (fewer when the collection is smaller).

        No count() first: it costs a round trip per query, and Chroma caps n_results itself."""
        if k <= 0:
            return []
        found = self._collection.query(query_embeddings=[vector], n_results=k, where=where,
                                       include=["distances"])
        return [(id_, 1.0 - dist) for id_, dist in zip(found["ids"][0], found["distances"][0])]


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]
