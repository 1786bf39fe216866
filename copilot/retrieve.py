"""Hybrid retrieval: dense vectors (several per passage, a passage scores by its best) + BM25
over jieba words + BM25 over character bigrams, fused by reciprocal rank or weighted normalised
scores; metadata filters; also a LangChain `BaseRetriever`."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from copilot.embeddings import Embedder
from copilot import lexical, models
from copilot.files import code_fingerprint, keep_pickle, read_pickle
from copilot.knowledge.catalog import Catalog, embedding_key
from copilot.lexical import LexicalIndex, QueryExpander, Speller, bigrams, tokenize
from copilot.models import Chunk, Evidence, SearchFilters, SearchResult
from copilot.normalize import mostly_latin, normalize
from copilot.rerank import Reranker, rerank_fused
from copilot.vectorstore import VectorStore


_FILTER_FIELDS = ("industry", "province", "region", "tier")
# English questions lean more on the multilingual embedding: their keyword side only has the
# glossary's translations to go on. Tuned on the dev set.
ENGLISH_DENSE_WEIGHT = 0.5
# Filters passing at least this share of passages are applied after an unfiltered vector query.
UNFILTERED_MIN_SHARE = 0.2
MAX_UNFILTERED = 1000
# Up to this many vectors, dense scores are exact products with an in-memory matrix (a few ms);
# beyond it the vector store's approximate index answers.
EXACT_MAX_VECTORS = 60_000
RRF_K = 60
VERSION_CHECK_S = 0.5
# Changed documents are applied to the loaded index in place of reloading it all (~1 s per 1k
# passages on 2 cores, mostly building the keyword indexes), until the passages added that way
# pass this share of the index (or INCREMENTAL_MIN_ADDED): then it is rebuilt, so that keyword
# statistics stay those of the whole knowledge. Below INCREMENTAL_MIN_PASSAGES a rebuild is quick
# and exact, and always chosen. scripts/bench_reload.py measures both.
INCREMENTAL_MAX_SHARE = 0.1
INCREMENTAL_MIN_ADDED = 1_000
INCREMENTAL_MIN_PASSAGES = 2_000
# A snapshot built from the catalog is kept on disk, keyed by the catalog's version and the code
# of what it holds, so that the next process (a CLI command, another worker, a restart) loads it
# instead of building the keyword indexes again.


@dataclass(frozen=True)
class Fusion:
    """How the three channels (dense vectors, jieba-word BM25, character-bigram BM25) combine.

    weighted: per-query min-max normalised scores, weighted; rrf: weighted reciprocal ranks.
    """

    method: Literal["weighted", "rrf"] = "weighted"
    dense: float = 0.5
    words: float = 0.7
    bigrams: float = 0.3


@dataclass
class _Added:
    """Passages written since the keyword indexes were built: scored with their statistics."""

    words: list[Counter[str]] = field(default_factory=list)
    grams: list[Counter[str]] = field(default_factory=list)
    word_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    gram_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class _Snapshot:
    """Everything search needs in memory. A changed document is applied in place of a rebuild: its
    old rows stop being live and its new ones are appended (see HybridRetriever._apply)."""

    version: str
    chunks: list[Chunk]
    row_of: dict[str, int]  # live rows only
    lexical: LexicalIndex  # over the first `indexed` rows
    bigram: LexicalIndex
    columns: dict[str, np.ndarray]  # kind, audience, industry, ... as arrays for fast masks
    vectors: np.ndarray | None  # one row per vector, or None when not all are cached
    vector_row: np.ndarray  # the passage row of each vector
    vector_start: np.ndarray  # each passage's first vector
    doc_hashes: dict[str, str]  # the documents as loaded, to tell which changed
    live: np.ndarray  # False for rows of documents changed or removed since
    added: _Added  # rows after `indexed`
    indexed: int

    @property
    def live_count(self) -> int:
        return len(self.row_of)


class HybridRetriever:
    reranker: Reranker | None = None  # set from settings where the retriever is built; None: no reranking

    def __init__(self, catalog: Catalog, embedder: Embedder, store: VectorStore,
                 dense_weight: float | None = None, candidates: int = 60,
                 glossary: dict[str, list[str]] | None = None, fusion: Fusion | None = None,
                 speller: Speller | None = None, exact_max_vectors: int = EXACT_MAX_VECTORS,
                 incremental_min: int = INCREMENTAL_MIN_PASSAGES, snapshot_dir: Path | None = None) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.store = store
        self.fusion = fusion or Fusion()
        if dense_weight is not None:  # an explicit setting wins over the rules
            self.fusion = replace(self.fusion, dense=dense_weight)
        self.candidates = candidates
        self.speller = speller
        self.exact_max_vectors = exact_max_vectors
        self.incremental_min = incremental_min
        self.snapshot_dir = snapshot_dir  # None: built in memory only
        self._saving: threading.Thread | None = None
        self._expander = QueryExpander(glossary or {})
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._seen_changes = -1
        self._lock = threading.Lock()
        self._embed_query = lru_cache(maxsize=512)(self.embedder.query)
        self.prepare = lru_cache(maxsize=512)(self._prepare)

    # Loading ---------------------------------------------------------------------------
    def snapshot(self) -> _Snapshot:
        # Asking the catalog for its version costs a round trip; twice a second is fresh enough.
        now = time.monotonic()
        if (self._snapshot is not None and now - self._checked_at < VERSION_CHECK_S
                and self._seen_changes == self.catalog.local_changes):
            return self._snapshot
        self._checked_at, self._seen_changes = now, self.catalog.local_changes
        version = self.catalog.version()
        if self._snapshot is None or self._snapshot.version != version:
            with self._lock:
                if self._snapshot is None or self._snapshot.version != version:
                    old = self._snapshot
                    self._snapshot = (self._apply(old, version) if old is not None and old.indexed >= self.incremental_min
                                      else None) or self._load(version)
        return self._snapshot

    def _load(self, version: str) -> _Snapshot:
        path = self._snapshot_path(version)
        if path is not None:
            kept = read_pickle(path, _Snapshot)
            if kept is not None and kept.version == version:
                return kept
        snap = self._build(version)
        if path is not None:
            # Written beside the search that built it: at 100k passages the file is hundreds of MB.
            # Not a daemon thread: a CLI command waits for it at exit, so the next one finds it.
            self._saving = threading.Thread(target=keep_pickle, args=(path, snap), name="index-snapshot")
            self._saving.start()
        return snap

    def wait_for_snapshot_file(self) -> None:
        """Until the snapshot last built is on disk (tests, benchmarks)."""
        if self._saving is not None:
            self._saving.join()

    def _snapshot_path(self, version: str) -> Path | None:
        if self.snapshot_dir is None:
            return None
        code = code_fingerprint(sys.modules[__name__], lexical, models)
        key = hashlib.sha256("\n".join([code, version, self.embedder.name,
                                         str(self.exact_max_vectors)]).encode()).hexdigest()[:20]
        return self.snapshot_dir / f"snapshot-{key}.pickle"

    def _build(self, version: str) -> _Snapshot:
        # Hashes before passages: a document written in between is seen as changed next time.
        hashes = self.catalog.document_hashes()
        rows = self.catalog.all_chunks()
        chunks = [c for c, _ in rows]
        vector_row = np.array([row for row, c in enumerate(chunks) for _ in c.views], dtype=np.int64)
        vector_start = np.cumsum([0] + [len(c.views) for c in chunks[:-1]]).astype(np.int64)
        return _Snapshot(version, chunks, {c.id: i for i, c in enumerate(chunks)},
                         LexicalIndex([t for _, t in rows]),
                         LexicalIndex([bigrams("\n".join(c.views)) for c in chunks]),
                         _columns(chunks), self._load_vectors(chunks), vector_row, vector_start,
                         hashes, np.ones(len(chunks), dtype=bool), _Added(), len(chunks))

    def _apply(self, old: _Snapshot, version: str) -> _Snapshot | None:
        """The snapshot with the documents changed since `old` swapped in, or None when a rebuild
        is due (too much added) or cannot be avoided (vectors missing)."""
        hashes = self.catalog.document_hashes()
        touched = {k for k in old.doc_hashes.keys() | hashes.keys() if old.doc_hashes.get(k) != hashes.get(k)}
        rows = self.catalog.chunks_of(sorted(touched & hashes.keys()))
        if len(old.added) + len(rows) > max(INCREMENTAL_MAX_SHARE * old.indexed, INCREMENTAL_MIN_ADDED):
            return None
        chunks = [c for c, _ in rows]
        vectors = self._load_vectors(chunks) if old.vectors is not None and chunks else None
        if old.vectors is not None and chunks and vectors is None:
            return None
        start = len(old.chunks)
        live = np.concatenate([old.live, np.ones(len(chunks), dtype=bool)])
        row_of = dict(old.row_of)
        for row, chunk in enumerate(old.chunks):
            if live[row] and chunk.doc_key in touched:
                live[row] = False
                del row_of[chunk.id]
        row_of.update({c.id: start + i for i, c in enumerate(chunks)})
        grams = [bigrams("\n".join(c.views)) for c in chunks]
        added = _Added(old.added.words + [Counter(t) for _, t in rows], old.added.grams + [Counter(g) for g in grams],
                       np.concatenate([old.added.word_lengths, np.array([len(t) for _, t in rows], np.float32)]),
                       np.concatenate([old.added.gram_lengths, np.array([len(g) for g in grams], np.float32)]))
        columns = _columns(chunks)
        sizes = [len(c.views) for c in chunks]
        if old.vectors is None:
            all_vectors = None
        elif vectors is None:
            all_vectors = old.vectors
        else:
            all_vectors = np.concatenate([old.vectors, vectors.astype(old.vectors.dtype)])
        return _Snapshot(
            version, old.chunks + chunks, row_of, old.lexical, old.bigram,
            {name: np.concatenate([old.columns[name], columns[name]]) for name in old.columns}, all_vectors,
            np.concatenate([old.vector_row, np.repeat(np.arange(start, start + len(chunks)), sizes)]).astype(np.int64),
            np.concatenate([old.vector_start, len(old.vector_row) + np.cumsum([0] + sizes[:-1])]).astype(np.int64)
            if chunks else old.vector_start,
            hashes, live, added, old.indexed)

    def _load_vectors(self, chunks: list[Chunk]) -> np.ndarray | None:
        keys = [embedding_key(self.embedder.name, text) for c in chunks for text in c.views]
        cached = self.catalog.cached_vectors(keys)
        if not keys or len(cached) < len(set(keys)):
            return None
        dtype = np.float32 if len(keys) <= self.exact_max_vectors else np.float16
        return np.stack([cached[k] for k in keys]).astype(dtype)

    def chunk(self, chunk_id: str) -> Chunk | None:
        snap = self.snapshot()
        row = snap.row_of.get(chunk_id)
        return snap.chunks[row] if row is not None else None

    # Search ----------------------------------------------------------------------------
    def _prepare(self, query: str) -> str:
        """The query as the index sees it: normalised, typos of the knowledge's words fixed."""
        text = normalize(query)
        return self.speller.correct(text) if self.speller else text

    def embed_query(self, query: str) -> np.ndarray:
        text = self.prepare(query)
        terms = self._expander.terms(text) if mostly_latin(text) else []
        if terms:
            # Glossary terms pull an English question towards the Chinese passages it is about.
            text = f"{text} ({' '.join(terms)})"
        return self._embed_query(text)

    def search(self, query: str, k: int = 5, filters: SearchFilters | None = None,
               boosts: dict[str, float] | None = None, query_vector: np.ndarray | None = None,
               dense_weight: float | None = None, fusion: Fusion | None = None) -> SearchResult:
        text = self.prepare(query)
        snap = self.snapshot()
        filters = filters or SearchFilters()
        if not snap.chunks or not text or filters.audiences == []:  # None: every audience; []: none
            return SearchResult(query=query, results=[])
        mask = self._mask(snap, filters)
        tokens = tokenize(text)
        latin = mostly_latin(text)
        if latin:
            tokens += self._expander.expand(text)
        grams = bigrams(text) + (bigrams(" ".join(self._expander.terms(text))) if latin else [])
        words = _keyword_scores(snap.lexical, snap.added.words, snap.added.word_lengths, tokens, mask, snap.indexed)
        chars = _keyword_scores(snap.bigram, snap.added.grams, snap.added.gram_lengths, grams, mask, snap.indexed)
        vector = query_vector if query_vector is not None else self.embed_query(query)
        # A set union of two short lists: np.union1d would import numpy.ma (~0.03 s per process).
        keyword_rows = np.array(sorted(set(_top_rows(words, self.candidates).tolist())
                                       | set(_top_rows(chars, self.candidates).tolist())), dtype=np.int64)
        dense, matched = self._dense(snap, vector, mask, filters, keyword_rows)
        fusion = fusion or self.fusion
        if dense_weight is not None:
            fusion = replace(fusion, dense=dense_weight)
        elif latin:
            fusion = replace(fusion, dense=max(fusion.dense, ENGLISH_DENSE_WEIGHT))
        fused = _fuse(fusion, words, chars, dense, self.candidates)
        signals = _signals(np.array(sorted(dense.values(), reverse=True)[:self.candidates], dtype=np.float32),
                           words, chars, tokens, grams, snap,
                           fused if fusion == self.fusion else _fuse(self.fusion, words, chars, dense, self.candidates))
        boosts = boosts or {}
        if boosts:
            fused = sorted(((row, score * boosts.get(snap.chunks[row].kind, 1.0)) for row, score in fused),
                           key=lambda item: -item[1])
        # Optional cross-encoder over the top candidates (copilot/rerank.py); off unless configured.
        fused = rerank_fused(self.reranker, text, fused, lambda row: _rerank_text(snap.chunks[row]))
        results = [self._evidence(snap, row, score, float(words[row]), dense.get(row, 0.0), matched.get(row, ""))
                   for row, score in fused[:k]]
        return SearchResult(query=query, results=results, signals=signals)

    def _dense(self, snap: _Snapshot, vector: np.ndarray, mask: np.ndarray, filters: SearchFilters,
               keyword_rows: np.ndarray) -> tuple[dict[int, float], dict[int, str]]:
        """Best cosine per allowed passage over all its vectors, and which text scored it."""
        allowed = int(mask.sum())
        if allowed == 0:
            return {}, {}
        if snap.vectors is not None and len(snap.vectors) <= self.exact_max_vectors:
            return self._dense_exact(snap, vector, mask)
        share = allowed / max(snap.live_count, 1)
        want = min(self.candidates, allowed)
        if share >= UNFILTERED_MIN_SHARE or snap.vectors is None:
            # Several vectors per passage: ask for more neighbours than passages wanted. Chroma's
            # filtered query is slow on large collections, so a permissive filter is applied here.
            where = _where(filters) if share < UNFILTERED_MIN_SHARE else None
            hits = self.store.query(vector, min(int(want * 3 / max(share, UNFILTERED_MIN_SHARE)) + 10,
                                                MAX_UNFILTERED), where)
            best: dict[int, float] = {}
            matched: dict[int, str] = {}
            for id_, score in hits:
                chunk_id, _, position = id_.partition("~")
                row = snap.row_of.get(chunk_id)
                if row is None or not mask[row] or score <= best.get(row, -1.0):
                    continue
                best[row] = score
                views = snap.chunks[row].views
                matched[row] = views[int(position or 0)] if int(position or 0) < len(views) else ""
            if snap.vectors is None:
                return best, matched
            if len(best) >= want // 2:
                # An approximate index can miss a passage (a just-written one included): what the
                # keyword channels found is scored exactly, so the fusion never sees it as dissimilar.
                self._rescore(snap, vector, [r for r in keyword_rows.tolist() if mask[r] and r not in best],
                              best, matched)
                return best, matched
        return self._dense_exact(snap, vector, mask)

    @staticmethod
    def _rescore(snap: _Snapshot, vector: np.ndarray, rows: list[int], best: dict[int, float],
                 matched: dict[int, str]) -> None:
        assert snap.vectors is not None
        for row in rows:
            start = int(snap.vector_start[row])
            views = snap.chunks[row].views
            scores = snap.vectors[start:start + len(views)].astype(np.float32) @ vector
            best[row] = float(scores.max())
            matched[row] = views[int(np.argmax(scores))]

    def _dense_exact(self, snap: _Snapshot, vector: np.ndarray, mask: np.ndarray) -> tuple[dict[int, float], dict[int, str]]:
        assert snap.vectors is not None
        scores = snap.vectors.astype(np.float32, copy=False) @ vector
        # A passage's vectors are contiguous: its score is the best of its slice.
        best = np.maximum.reduceat(scores, snap.vector_start)
        best[~mask] = -np.inf
        top_rows = np.flatnonzero(mask)
        top_rows = top_rows[np.argsort(-best[top_rows])[:self.candidates * 2]]
        matched = {}
        for row in top_rows.tolist():
            start = snap.vector_start[row]
            views = snap.chunks[row].views
            matched[row] = views[int(np.argmax(scores[start:start + len(views)]))]
        return {int(r): float(best[r]) for r in top_rows}, matched

    def _mask(self, snap: _Snapshot, filters: SearchFilters) -> np.ndarray:
        mask = snap.live.copy()
        if filters.kinds:
            mask &= np.isin(snap.columns["kind"], filters.kinds)
        if filters.audiences is not None:
            mask &= np.isin(snap.columns["audience"], filters.audiences)
        for name in _FILTER_FIELDS:
            value = getattr(filters, name)
            if value:
                mask &= snap.columns[name] == value
        return mask

    @staticmethod
    def _evidence(snap: _Snapshot, row: int, score: float, lexical: float, dense: float, matched: str) -> Evidence:
        chunk = snap.chunks[row]
        title = f"{chunk.title} / {chunk.context}" if chunk.context else chunk.title
        return Evidence(id=chunk.id, kind=chunk.kind, source=chunk.source, title=title, text=chunk.text,
                        score=round(score, 4), meta=chunk.meta, bm25=lexical, dense=dense, matched=matched)


def _rerank_text(chunk: Chunk) -> str:
    return f"{chunk.title}\n{chunk.text}"


def _columns(chunks: list[Chunk]) -> dict[str, np.ndarray]:
    columns = {"kind": np.array([c.kind for c in chunks], dtype=object)}
    for name in ("audience", *_FILTER_FIELDS):
        columns[name] = np.array([str(c.meta.get(name) or "") for c in chunks], dtype=object)
    return columns


def _keyword_scores(index: LexicalIndex, added: list[Counter[str]], lengths: np.ndarray, tokens: list[str],
                    mask: np.ndarray, indexed: int) -> np.ndarray:
    scores = index.scores(tokens, mask[:indexed])
    if not added:
        return scores
    return np.concatenate([scores, index.scores_of(tokens, added, lengths) * mask[indexed:]])


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the n best positive scores, best first."""
    n = min(n, int((scores > 0).sum()))
    if not n:
        return np.array([], dtype=int)
    rows = np.argpartition(-scores, n - 1)[:n]
    return rows[np.argsort(-scores[rows])]


def _fuse(fusion: Fusion, words: np.ndarray, chars: np.ndarray, dense: dict[int, float],
          candidates: int) -> list[tuple[int, float]]:
    """One score per candidate passage from the three channels, best first."""
    # The two keyword channels split what the dense weight leaves.
    lexical_total = fusion.words + fusion.bigrams or 1.0
    channels: list[tuple[float, list[int], dict[int, float]]] = []
    for weight, scores in ((fusion.words, words), (fusion.bigrams, chars)):
        rows = _top_rows(scores, candidates).tolist()
        channels.append(((1 - fusion.dense) * weight / lexical_total, rows, {r: float(scores[r]) for r in rows}))
    dense_rows = sorted(dense, key=lambda r: -dense[r])[:candidates]
    channels.append((fusion.dense, dense_rows, {r: dense[r] for r in dense_rows}))
    fused: dict[int, float] = {}
    for share, rows, scores in channels:
        if share <= 0 or not rows:
            continue
        if fusion.method == "rrf":
            for rank, row in enumerate(rows):
                # Scaled so that first place on every channel scores 1.
                fused[row] = fused.get(row, 0.0) + share * (RRF_K + 1) / (RRF_K + rank + 1)
        else:
            top, floor = scores[rows[0]], min(scores.values())
            spread = max(top - floor, 1e-6)
            for row in rows:
                part = (scores[row] - floor) / spread if len(rows) > 1 else 1.0
                fused[row] = fused.get(row, 0.0) + share * part
    return sorted(fused.items(), key=lambda item: -item[1])


@lru_cache(maxsize=4096)
def _passage_words(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def _signals(pool: np.ndarray, words: np.ndarray, chars: np.ndarray, tokens: list[str], grams: list[str],
             snap: _Snapshot, fused: list[tuple[int, float]]) -> dict[str, float]:
    """What the decline decision looks at: how clearly the best match stands out on each channel,
    and how much of the question the best passage covers."""
    signals = {"dense_top": float(pool[0]) if pool.size else 0.0,
               "dense_lift": float(pool[0] - pool.mean()) if pool.size else 0.0,
               "dense_gap": float(pool[0] - pool[1]) if pool.size > 1 else 0.0,
               "words_top": float(words.max()) if words.size else 0.0,
               "bigrams_top": float(chars.max()) if chars.size else 0.0,
               "bigram_cover": 0.0,
               # Reciprocal-rank agreement of the channels on the best passage (1 = first on all).
               "fused_top": fused[0][1] if fused else 0.0}
    if fused and grams:
        best = set(bigrams("\n".join(snap.chunks[fused[0][0]].views)))
        signals["bigram_cover"] = sum(g in best for g in grams) / len(grams)
    words_asked = list(dict.fromkeys(tokens))
    if words_asked:
        # Words the knowledge has never seen (报销, 差旅费 …) say a question is about something else;
        # the informative words the best passage does contain say it is about this.
        signals["unknown_share"] = sum(t not in snap.lexical.df for t in words_asked) / len(words_asked)
        if fused:
            best_words = _passage_words("\n".join(snap.chunks[fused[0][0]].views))
            weights = {t: snap.lexical.idf(t) for t in words_asked}
            signals["idf_cover"] = sum(w for t, w in weights.items() if t in best_words) / sum(weights.values())
    return signals


def _where(filters: SearchFilters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if filters.kinds:
        clauses.append({"kind": {"$in": list(filters.kinds)}})
    if filters.audiences is not None:  # [] reads nothing: Chroma refuses an empty $in rather than match all
        clauses.append({"audience": {"$in": list(filters.audiences)}})
    for name in _FILTER_FIELDS:
        value = getattr(filters, name)
        if value:
            clauses.append({name: value})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
