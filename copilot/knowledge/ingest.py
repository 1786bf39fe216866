"""Incremental indexing of the knowledge pack and of user documents.

Unchanged files are skipped by content hash; chunk vectors come from the embedding cache
when their text was embedded before, so only new text is ever embedded.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from copilot.embeddings import Embedder
from copilot.errors import InvalidInput
from copilot.files import expand_paths
from copilot.knowledge.catalog import Catalog, content_hash, embedding_key, vector_id, vector_texts
from copilot.knowledge.chunking import chunk_blocks, sentence_windows
from copilot.knowledge.pack import PACK_DOC_PREFIX, Pack

SHEET_PREFIX = "sheet:"  # index documents of spreadsheet rows: sheet:<resolved path>
from copilot.knowledge.parsers import SUPPORTED, parse_file
from copilot.lexical import lexicon_version, tokenize
from copilot.models import Chunk
from copilot.vectorstore import VectorStore

# Called with the number of chunks just embedded, to drive a progress bar.
Progress = Callable[[int], None]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files in the folders that are not a supported type
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0

    @property
    def empty(self) -> bool:
        """Nothing was given to it (a sheet-only ingest has no documents to report)."""
        return not (self.added or self.updated or self.unchanged or self.removed or self.skipped or self.failed)

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.removed)} removed, {len(self.skipped)} skipped, {len(self.failed)} failed; {self.chunks} chunks, "
                f"{self.embedded} embedded in {self.seconds:.1f}s")


# Whether the vector store holds every vector ("complete") or is left empty while exact search
# serves ("deferred"); kept in the catalog, so every worker of a deployment agrees.
STORE_STATE = "vector_store"
# Vectors are written to the embedding cache in batches of at least this many: one transaction
# per encoder batch of 16 cost ~5 % of a 10k-row import on SQLite.
CACHE_FLUSH_VECTORS = 512
log = logging.getLogger(__name__)


class Indexer:
    """Keeps the catalog, the embedding cache and the vector store in step with the knowledge.

    The vector store is written only once the knowledge holds more than `exact_max_vectors`
    vectors: up to there the retriever scores every vector in memory and never asks the store,
    and Chroma's writes (~1 ms per vector on 2 cores, ~5 % of an import) would buy nothing.
    Passing that size fills the store from the embedding cache once; from then on it is kept
    in step with every change."""

    def __init__(self, catalog: Catalog, embedder: Embedder, store: VectorStore, embeddings_dir: Path | None = None,
                 batch_size: int = 16, exact_max_vectors: int = 0):
        self.catalog = catalog
        self.batch_size = batch_size
        self.embedder = embedder
        self.store = store
        self.embeddings_dir = embeddings_dir
        self.exact_max_vectors = exact_max_vectors
        self._preloaded = False

    # The bundled pack --------------------------------------------------------------------
    def sync_pack(self, pack: Pack, sheet_sources: dict[str, str] | None = None,
                  progress: Progress | None = None) -> IngestReport:
        """Keep the knowledge items in the index, one index document per YAML file and per
        spreadsheet; a no-op for every document whose items did not change."""
        started = time.perf_counter()
        report = IngestReport()
        self._preload_shipped_vectors()
        hashes = self.catalog.document_hashes()
        groups: dict[str, list[Chunk]] = {PACK_DOC_PREFIX + name: [] for name in ("cases", "faqs", "playbooks")}
        for chunk in pack.chunks():
            groups.setdefault(chunk.doc_key, []).append(chunk)
        for key, chunks in groups.items():
            # The tokenizer's domain words are part of what the index holds: new words re-tokenize.
            digest = content_hash("\n".join([lexicon_version(), *(c.model_dump_json() for c in chunks)]))
            if hashes.get(key) == digest:
                report.unchanged.append(key)
                continue
            (report.updated if key in hashes else report.added).append(key)
            if key.startswith(PACK_DOC_PREFIX):
                name = key.removeprefix(PACK_DOC_PREFIX)
                source, kind, title = f"knowledge/{name}.yaml", "pack", name
            else:
                source = (sheet_sources or {}).get(key, key.removeprefix(SHEET_PREFIX))
                kind, title = "sheet", Path(source).name
            report.embedded += self._index(key, source, kind, title, digest, chunks, progress)
            report.chunks += len(chunks)
        for key in hashes:
            if key.startswith(SHEET_PREFIX) and key not in groups:  # every row of the sheet is gone
                self._remove(key)
                report.removed.append(key)
        if report.added or report.updated:
            self._fill_store_when_needed()
        report.seconds = time.perf_counter() - started
        return report

    def pending_vectors(self, pack: Pack) -> int:
        """How many vectors a sync would embed (for a progress bar's total): texts of changed
        documents that are not in the embedding cache."""
        self._preload_shipped_vectors()
        texts = [t for chunk in pack.chunks() for t in vector_texts(chunk)]
        keys = {embedding_key(self.embedder.name, t) for t in texts}
        return len(keys) - len(self.catalog.cached_vectors(keys))

    def shipped_vectors_path(self) -> Path | None:
        if self.embeddings_dir is None:
            return None
        slug = "".join(c if c.isalnum() else "-" for c in self.embedder.name.lower())
        return self.embeddings_dir / f"{slug}.npz"

    def _preload_shipped_vectors(self) -> None:
        # Once per process: the pack sync, the intent examples and the scope texts all ask for it.
        if self._preloaded:
            return
        self._preloaded = True
        path = self.shipped_vectors_path()
        if path and path.exists():
            # Embeddings are never deleted: once a process stored this file's vectors, the next
            # ones skip reading and upserting them again (~0.08 s of every CLI command).
            stat = path.stat()
            stamp = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
            if self.catalog.state_value("shipped_vectors") == stamp:
                return
            data = np.load(path)
            self.catalog.store_vectors(dict(zip(data["keys"].tolist(), data["vectors"])))
            self.catalog.set_state_value("shipped_vectors", stamp)

    def export_pack_vectors(self, texts: list[str]) -> Path:
        """Write these texts' vectors next to the pack, so a fresh install embeds nothing."""
        vectors = self.embed_cached(texts)
        path = self.shipped_vectors_path()
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = [embedding_key(self.embedder.name, t) for t in texts]
        np.savez_compressed(path, keys=np.array(keys), vectors=vectors)
        return path

    def embed_cached(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Passage vectors through the content-hash cache (used for intent examples too)."""
        self._preload_shipped_vectors()
        return self._vectors(texts, progress)[0]

    # User documents ---------------------------------------------------------------------
    def ingest(self, paths: list[str], progress: Progress | None = None) -> IngestReport:
        files, folders, skipped = expand_paths(paths, SUPPORTED)
        return self.ingest_files(files, folders, skipped, progress)

    def ingest_files(self, files: list[tuple[str, Path]], folders: list[Path], skipped: list[str],
                     progress: Progress | None = None) -> IngestReport:
        """Index documents (as given, resolved); in the walked folders, drop documents whose file is gone."""
        started = time.perf_counter()
        report = IngestReport(skipped=skipped)
        hashes = self.catalog.document_hashes()
        sources = {d["key"]: d["source"] for d in self.catalog.documents()}
        seen = set()
        for given, path in files:
            key = str(path)
            seen.add(key)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if hashes.get(key) == digest:
                report.unchanged.append(given)
                continue
            try:
                parsed = parse_file(path)
            except InvalidInput as exc:
                report.failed.append((given, str(exc)))
                continue
            pieces = chunk_blocks(parsed.blocks)
            doc_id = hashlib.sha1(key.encode()).hexdigest()[:12]
            chunks = [Chunk(id=f"doc-{doc_id}-{i}", doc_key=key, position=i, kind="doc", source=given,
                            title=parsed.title, context=p.context, text=p.text, meta={"audience": "public"},
                            views=sentence_windows(p.text, p.context))
                      for i, p in enumerate(pieces)]
            (report.updated if key in hashes else report.added).append(given)
            report.embedded += self._index(key, given, "doc", parsed.title, digest, chunks, progress)
            report.chunks += len(chunks)
        for folder in folders:
            prefix = str(folder) + "/"
            for key in hashes:
                if key.startswith(prefix) and key not in seen and not Path(key).exists():
                    self._remove(key)
                    report.removed.append(sources.get(key, key))
        if report.added or report.updated:
            self._fill_store_when_needed()
        report.seconds = time.perf_counter() - started
        return report

    def remove_documents(self, keys: list[str]) -> list[str]:
        """Drop documents from the index by key (the resolved path); returns their sources."""
        sources = {d["key"]: d["source"] for d in self.catalog.documents() if d["kind"] == "doc"}
        gone = [k for k in keys if k in sources]
        for key in gone:
            self._remove(key)
        return [sources[k] for k in gone]

    def missing_documents(self) -> list[str]:
        """Keys of indexed documents whose file no longer exists."""
        return [d["key"] for d in self.catalog.documents() if d["kind"] == "doc" and not Path(d["key"]).exists()]

    # Shared steps -----------------------------------------------------------------------
    def _index(self, key: str, source: str, kind: str, title: str, digest: str, chunks: list[Chunk],
               progress: Progress | None = None) -> int:
        old_ids = set(self.catalog.vector_ids(key))
        before = self.catalog.indexed_chunks(key)
        # Tokens of an unchanged passage are reused only while the tokenizer's words are the ones
        # it was tokenized with.
        same_words = self.catalog.state_value("lexicon_version") == lexicon_version()
        ids, texts, metas, changed, tokens, per_chunk = [], [], [], [], [], []
        for chunk in chunks:
            own, meta = vector_texts(chunk), _store_meta(chunk)
            per_chunk.append(own)
            old = before.get(chunk.id)
            unchanged = old is not None and old[0] == own and _store_meta_of(old[2]) == meta
            for position, text in enumerate(own):
                ids.append(vector_id(chunk.id, position))
                texts.append(text)
                metas.append(meta)
                changed.append(not unchanged)
            tokens.append(old[1] if unchanged and same_words else tokenize("\n".join(own)))
        # Only new or changed passages are embedded (or read from the embedding cache) and go
        # to the vector store: re-sending a 1,000-row sheet's 5,000 vectors for one edited row
        # cost ~6 s.
        # An unchanged passage whose vector is not cached (another embedding model indexed it)
        # is embedded again: exact search needs every passage's vectors.
        keys = [embedding_key(self.embedder.name, text) for text in texts]
        missing = self.catalog.uncached(keys[i] for i, flag in enumerate(changed) if not flag)
        upsert = [i for i, flag in enumerate(changed) if flag or keys[i] in missing]
        vectors, embedded = self._vectors([texts[i] for i in upsert], progress)
        # Vectors first, catalog second: the catalog is what search trusts, so a crash in
        # between leaves the old document searchable and the next ingest redoes the work.
        store_complete = self._store_complete()
        if store_complete:
            self.store.upsert([ids[i] for i in upsert], vectors, [metas[i] for i in upsert])
        self.catalog.replace_document(key, source, kind, title, digest, chunks, tokens, per_chunk)
        self.catalog.set_state_value("lexicon_version", lexicon_version())
        if store_complete:
            self.store.delete(sorted(old_ids - set(ids)))
        return embedded

    def _remove(self, key: str) -> None:
        ids = self.catalog.vector_ids(key)
        self.catalog.delete_document(key)
        if self._store_complete():
            self.store.delete(ids)

    # The vector store ---------------------------------------------------------------------
    def _store_complete(self) -> bool:
        state = self.catalog.state_value(STORE_STATE)
        if state is None:
            # First look at this data dir: one indexed before writes were deferred keeps its store.
            state = "complete" if self.exact_max_vectors <= 0 or not self.store.is_empty() else "deferred"
            self.catalog.set_state_value(STORE_STATE, state)
        return state == "complete"

    def _fill_store_when_needed(self) -> None:
        """Fill the vector store from the catalog once the knowledge outgrows exact search. Called
        once per sync or ingest that changed something (counting the vectors reads every passage)."""
        if self._store_complete():
            return
        total = self.catalog.vector_count()
        if total <= self.exact_max_vectors:
            return
        # Marked complete first: a worker indexing at the same time then writes its own vectors
        # to the store too, instead of leaving them to a fill that may have read past them.
        self.catalog.set_state_value(STORE_STATE, "complete")
        log.info("the knowledge holds %d vectors, more than exact search's %d: filling the vector store",
                 total, self.exact_max_vectors)
        chunks = [chunk for chunk, _ in self.catalog.all_chunks()]
        for start in range(0, len(chunks), 1000):
            part = chunks[start:start + 1000]
            texts = [text for chunk in part for text in chunk.views]
            vectors, _ = self._vectors(texts, None)  # from the embedding cache
            ids = [vector_id(chunk.id, i) for chunk in part for i in range(len(chunk.views))]
            metas = [_store_meta(chunk) for chunk in part for _ in chunk.views]
            self.store.upsert(ids, vectors, metas)

    def _vectors(self, texts: list[str], progress: Progress | None) -> tuple[np.ndarray, int]:
        keys = [embedding_key(self.embedder.name, t) for t in texts]
        cached = self.catalog.cached_vectors(keys)
        # Each distinct text once, even when several passages share it.
        missing = list({k: i for i, k in reversed(list(enumerate(keys))) if k not in cached}.values())
        unsaved: dict[str, np.ndarray] = {}
        for start in range(0, len(missing), self.batch_size):
            part = missing[start:start + self.batch_size]
            fresh = self.embedder.passages([texts[i] for i in part])
            new = {keys[i]: fresh[j] for j, i in enumerate(part)}
            cached.update(new)
            unsaved.update(new)
            if len(unsaved) >= CACHE_FLUSH_VECTORS:
                # Saved as it goes: an import cut short keeps what it embedded for the next try.
                self.catalog.store_vectors(unsaved)
                unsaved = {}
            if progress:
                progress(len(part))
        self.catalog.store_vectors(unsaved)
        vectors = np.stack([cached[k] for k in keys]) if keys else np.zeros((0, self.embedder.dim), np.float32)
        return vectors, len(missing)


def _store_meta(chunk: Chunk) -> dict[str, str | int | float | bool]:
    return _store_meta_of({"kind": chunk.kind, "source": chunk.source, **chunk.meta})


def _store_meta_of(fields: dict) -> dict[str, str | int | float | bool]:
    """The metadata the vector store filters on."""
    meta: dict[str, str | int | float | bool] = {"kind": fields["kind"], "source": str(fields["source"])[:500]}
    for name in ("audience", "industry", "city", "province", "region", "tier"):
        meta[name] = str(fields.get(name) or "")
    return meta
