"""Hybrid retrieval: BM25 over jieba tokens + dense vectors from Chroma, fused by weighted,
normalised scores; metadata filters; also a LangChain `BaseRetriever`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from copilot.embeddings import Embedder
from copilot.knowledge.catalog import Catalog, embedding_key
from copilot.lexical import LexicalIndex, QueryExpander, tokenize
from copilot.models import Chunk, Evidence, SearchFilters, SearchResult
from copilot.normalize import normalize
from copilot.vectorstore import VectorStore

_FILTER_FIELDS = ("industry", "province", "region", "tier")
# English questions lean more on the multilingual embedding: their BM25 side only has the
# glossary's translations to go on. Tuned on the eval set.
ENGLISH_DENSE_WEIGHT = 0.5
# Filters passing at least this share of passages are applied after an unfiltered vector query.
UNFILTERED_MIN_SHARE = 0.2
MAX_UNFILTERED = 1000


@dataclass
class _Snapshot:
    """Everything search needs in memory, rebuilt when the catalog's version changes."""

    version: str
    chunks: list[Chunk]
    row_of: dict[str, int]
    lexical: LexicalIndex
    columns: dict[str, np.ndarray]  # kind, audience, industry, ... as arrays for fast masks
    vectors: np.ndarray | None  # float16 copy for selective filters; None when some are missing


class HybridRetriever:
    def __init__(self, catalog: Catalog, embedder: Embedder, store: VectorStore,
                 dense_weight: float = 0.5, candidates: int = 60,
                 glossary: dict[str, list[str]] | None = None) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.store = store
        self.dense_weight = dense_weight
        self.candidates = candidates
        self._expander = QueryExpander(glossary or {})
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        self._embed_query = lru_cache(maxsize=512)(self.embedder.query)

    # Loading ---------------------------------------------------------------------------
    def snapshot(self) -> _Snapshot:
        version = self.catalog.version()
        if self._snapshot is None or self._snapshot.version != version:
            with self._lock:
                if self._snapshot is None or self._snapshot.version != version:
                    self._snapshot = self._load(version)
        return self._snapshot

    def _load(self, version: str) -> _Snapshot:
        rows = self.catalog.all_chunks()
        chunks = [c for c, _ in rows]
        columns = {"kind": np.array([c.kind for c in chunks], dtype=object)}
        for name in ("audience", *_FILTER_FIELDS):
            columns[name] = np.array([str(c.meta.get(name) or "") for c in chunks], dtype=object)
        return _Snapshot(version, chunks, {c.id: i for i, c in enumerate(chunks)},
                         LexicalIndex([t for _, t in rows]), columns, self._load_vectors(chunks))

    def _load_vectors(self, chunks: list[Chunk]) -> np.ndarray | None:
        keys = [embedding_key(self.embedder.name, c.indexed_text) for c in chunks]
        cached = self.catalog.cached_vectors(keys)
        if len(cached) < len(set(keys)):
            return None
        return np.stack([cached[k] for k in keys]).astype(np.float16) if keys else None

    def chunk(self, chunk_id: str) -> Chunk | None:
        snap = self.snapshot()
        row = snap.row_of.get(chunk_id)
        return snap.chunks[row] if row is not None else None

    # Search ----------------------------------------------------------------------------
    def embed_query(self, query: str) -> np.ndarray:
        text = normalize(query)
        terms = self._expander.terms(text) if _mostly_latin(text) else []
        if terms:
            # Glossary terms pull an English question towards the Chinese passages it is about.
            text = f"{text} ({' '.join(terms)})"
        return self._embed_query(text)

    def search(self, query: str, k: int = 5, filters: SearchFilters | None = None,
               boosts: dict[str, float] | None = None, query_vector: np.ndarray | None = None,
               dense_weight: float | None = None) -> SearchResult:
        text = normalize(query)
        snap = self.snapshot()
        if not snap.chunks or not text:
            return SearchResult(query=query, results=[])
        filters = filters or SearchFilters()
        mask = self._mask(snap, filters)
        tokens = tokenize(text)
        if _mostly_latin(text):
            tokens += self._expander.expand(text)
        lexical = snap.lexical.scores(tokens, mask)
        vector = query_vector if query_vector is not None else self.embed_query(query)
        dense = self._dense(snap, vector, filters, mask)
        weight = self.dense_weight if dense_weight is None else dense_weight
        if dense_weight is None and _mostly_latin(text):
            weight = max(weight, ENGLISH_DENSE_WEIGHT)
        fused = self._fuse(snap, lexical, dense, boosts or {}, weight)
        results = [self._evidence(snap, row, score, lexical[row], dense_of) for row, score, dense_of in fused[:k]]
        pool = np.array([score for _, score in dense], dtype=np.float32)
        return SearchResult(query=query, results=results,
                            dense_lift=float(pool[0] - pool.mean()) if pool.size else 0.0,
                            lexical_top=float(lexical.max()) if lexical.size else 0.0)

    def _dense(self, snap: _Snapshot, vector: np.ndarray, filters: SearchFilters,
               mask: np.ndarray) -> list[tuple[str, float]]:
        """Nearest allowed passages from Chroma.

        Chroma's metadata-filtered query is slow on large collections (hundreds of ms at 100k), so
        when the filter lets most passages through (role routing usually does) we ask for more
        neighbours unfiltered and apply the filter here; a selective filter is scored exactly
        against the in-memory copy of the vectors.
        """
        allowed = int(mask.sum())
        if allowed == 0:
            return []
        want = min(self.candidates, allowed)
        share = allowed / len(snap.chunks)

        def keep(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
            return [(id_, s) for id_, s in hits if id_ in snap.row_of and mask[snap.row_of[id_]]][:want]

        if share >= UNFILTERED_MIN_SHARE:
            hits = keep(self.store.query(vector, min(int(want / share * 1.5) + 10, MAX_UNFILTERED), None))
            if len(hits) >= want // 2:
                return hits
        if snap.vectors is not None:
            # A selective filter leaves few rows: scoring them exactly is faster than Chroma's
            # filtered query, which scans metadata across the whole collection.
            rows = np.flatnonzero(mask)
            scores = snap.vectors[rows].astype(np.float32) @ vector
            best = np.argsort(-scores)[:want]
            return [(snap.chunks[rows[i]].id, float(scores[i])) for i in best]
        return keep(self.store.query(vector, want, _where(filters)))

    def _mask(self, snap: _Snapshot, filters: SearchFilters) -> np.ndarray:
        mask = np.ones(len(snap.chunks), dtype=bool)
        if filters.kinds:
            mask &= np.isin(snap.columns["kind"], filters.kinds)
        if filters.audiences:
            mask &= np.isin(snap.columns["audience"], filters.audiences)
        for name in _FILTER_FIELDS:
            value = getattr(filters, name)
            if value:
                mask &= snap.columns[name] == value
        return mask

    def _fuse(self, snap: _Snapshot, lexical: np.ndarray, dense: list[tuple[str, float]],
              boosts: dict[str, float], weight: float) -> list[tuple[int, float, float]]:
        """Weighted sum of per-query min-max normalised scores, times the task's kind boost."""
        n = min(self.candidates, int((lexical > 0).sum()))
        lexical_rows = np.argpartition(-lexical, n - 1)[:n] if n else np.array([], dtype=int)
        top_lexical = float(lexical[lexical_rows].max()) if n else 0.0
        dense_of = {snap.row_of[id_]: score for id_, score in dense}
        if dense_of:
            top_dense, floor = max(dense_of.values()), min(dense_of.values())
            spread = max(top_dense - floor, 1e-6)
        rows = set(lexical_rows.tolist()) | set(dense_of)
        fused = []
        for row in rows:
            lexical_part = float(lexical[row]) / top_lexical if top_lexical else 0.0
            dense_part = ((dense_of[row] - floor) / spread if len(dense_of) > 1 else 1.0) if row in dense_of else 0.0
            score = weight * dense_part + (1 - weight) * lexical_part
            score *= boosts.get(snap.chunks[row].kind, 1.0)
            fused.append((row, score, dense_of.get(row, 0.0)))
        fused.sort(key=lambda item: -item[1])
        return fused

    @staticmethod
    def _evidence(snap: _Snapshot, row: int, score: float, lexical: float, dense: float) -> Evidence:
        chunk = snap.chunks[row]
        title = f"{chunk.title} / {chunk.context}" if chunk.context else chunk.title
        return Evidence(id=chunk.id, kind=chunk.kind, source=chunk.source, title=title, text=chunk.text,
                        score=round(score, 4), meta=chunk.meta, bm25=float(lexical), dense=float(dense))


def _mostly_latin(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) / len(letters) > 0.6


def _where(filters: SearchFilters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if filters.kinds:
        clauses.append({"kind": {"$in": list(filters.kinds)}})
    if filters.audiences:
        clauses.append({"audience": {"$in": list(filters.audiences)}})
    for name in _FILTER_FIELDS:
        value = getattr(filters, name)
        if value:
            clauses.append({name: value})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class CopilotRetriever(BaseRetriever):
    """The hybrid retriever as a LangChain retriever."""

    retriever: Any
    k: int = 5
    filters: SearchFilters | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        found = self.retriever.search(query, k=self.k, filters=self.filters)
        return [Document(page_content=e.text, id=e.id,
                         metadata={"id": e.id, "kind": e.kind, "source": e.source, "title": e.title,
                                   "score": e.score})
                for e in found.results]
