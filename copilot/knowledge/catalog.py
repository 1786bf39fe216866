"""The chunk catalog in SQL: documents, chunks with their tokens, and the embedding cache.

The catalog is the source of truth; Chroma and the BM25 index are rebuilt from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.models import Chunk
from copilot.normalize import normalize


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_key(model: str, text: str) -> str:
    return content_hash(f"{model}\n{text}")


def vector_texts(chunk: Chunk) -> list[str]:
    """What gets embedded for a passage, normalised like every query: the passage itself first,
    then each of its views (an FAQ's questions, a playbook's situations, a sentence window)."""
    texts = [normalize(chunk.indexed_text)]
    for view in chunk.views:
        text = normalize(view)
        if text and text not in texts:
            texts.append(text)
    return texts


def vector_id(chunk_id: str, position: int) -> str:
    """The vector store id of a passage's n-th vector (0 = the passage itself)."""
    return chunk_id if position == 0 else f"{chunk_id}~{position}"


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Changes made through this object: readers in the same process see them at once,
        # without waiting for their next look at the shared version.
        self.local_changes = 0

    # Documents -------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(db.documents.c.key, db.documents.c.content_hash)).all())

    def documents(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.documents).order_by(db.documents.c.source)).mappings().all()
        return [dict(r) for r in rows]

    def chunk_ids(self, doc_key: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(db.chunks.c.id).where(db.chunks.c.doc_key == doc_key)).scalars())

    def vector_ids(self, doc_key: str) -> list[str]:
        """Every vector store id of a document's passages (the passages and their views)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.chunks.c.id, db.chunks.c.vector_texts)
                                .where(db.chunks.c.doc_key == doc_key)).all()
        return [vector_id(id_, i) for id_, texts in rows for i in range(len(texts or [""]))]

    def indexed_chunks(self, doc_key: str) -> dict[str, tuple[list[str], list[str], dict]]:
        """A document's chunks as indexed: id -> (embedded texts, BM25 tokens, vector-store metadata
        inputs), so a re-index can leave unchanged passages alone."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.chunks.c.id, db.chunks.c.kind, db.chunks.c.source, db.chunks.c.meta,
                                          db.chunks.c.tokens, db.chunks.c.vector_texts)
                                .where(db.chunks.c.doc_key == doc_key)).mappings().all()
        return {r["id"]: (r["vector_texts"] or [], r["tokens"].split(" ") if r["tokens"] else [],
                          {"kind": r["kind"], "source": r["source"], **(r["meta"] or {})}) for r in rows}

    def state_value(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(db.state.c.value).where(db.state.c.key == key)).scalar()

    def set_state_value(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            db.upsert(conn, db.state, {"key": key, "value": value}, key="key")

    def replace_document(self, key: str, source: str, kind: str, title: str, doc_hash: str,
                         chunks: list[Chunk], tokens: list[list[str]], texts: list[list[str]]) -> None:
        """Swap a document's chunks in one transaction, so readers never see half a document.
        Rows that hold the same as before are left alone: one edited row of a 10,000-row sheet
        rewrites one row, not 10,000."""
        now = datetime.now(timezone.utc)
        rows = [{"id": c.id, "doc_key": key, "position": c.position, "kind": c.kind, "source": c.source,
                 "title": c.title[:500], "context": c.context, "text": c.text, "tokens": " ".join(t),
                 "meta": c.meta, "vector_texts": v} for c, t, v in zip(chunks, tokens, texts)]
        for row in rows:
            row["content_hash"] = _row_hash(row)
        with self.engine.begin() as conn:
            held = dict(conn.execute(sa.select(db.chunks.c.id, db.chunks.c.content_hash)
                                     .where(db.chunks.c.doc_key == key)).all())
            write = [row for row in rows if held.get(row["id"]) != row["content_hash"]]
            stale = sorted(held.keys() - {row["id"] for row in rows} | {row["id"] for row in write} & held.keys())
            for start in range(0, len(stale), 500):
                conn.execute(sa.delete(db.chunks).where(db.chunks.c.id.in_(stale[start:start + 500])))
            if write:
                conn.execute(sa.insert(db.chunks), write)
            db.upsert(conn, db.documents, {"key": key, "source": source, "kind": kind, "title": title[:500],
                                           "content_hash": doc_hash, "updated_at": now}, key="key")
            self._bump_version(conn)

    def delete_document(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(db.chunks).where(db.chunks.c.doc_key == key))
            conn.execute(sa.delete(db.documents).where(db.documents.c.key == key))
            self._bump_version(conn)

    # Chunks ----------------------------------------------------------------------------
    def all_chunks(self) -> list[tuple[Chunk, list[str]]]:
        """Every chunk with its BM25 tokens, in a stable order. A chunk's views are the
        normalised texts its vectors were made of (the passage itself first)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.chunks).order_by(db.chunks.c.id)).mappings().all()
        return [_chunk_row(r) for r in rows]

    def chunks_of(self, doc_keys: list[str]) -> list[tuple[Chunk, list[str]]]:
        """The chunks of some documents, as `all_chunks` gives them."""
        found = []
        with self.engine.connect() as conn:
            for start in range(0, len(doc_keys), 500):
                part = doc_keys[start:start + 500]
                rows = conn.execute(sa.select(db.chunks).where(db.chunks.c.doc_key.in_(part))
                                    .order_by(db.chunks.c.id)).mappings().all()
                found += [_chunk_row(r) for r in rows]
        return found

    def vector_count(self) -> int:
        """How many vectors the store should hold: every passage's own plus its views'."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.chunks.c.vector_texts)).scalars()
            return sum(len(texts or [""]) for texts in rows)

    def chunk_counts(self) -> dict[str, int]:
        """Passages per document."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.chunks.c.doc_key, sa.func.count()).group_by(db.chunks.c.doc_key)).all()
        return dict(rows)

    def chunk_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(db.chunks)).scalar_one()

    # Embedding cache -------------------------------------------------------------------
    def cached_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                rows = conn.execute(sa.select(db.embeddings).where(db.embeddings.c.key.in_(part))).all()
                found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def uncached(self, keys: Iterable[str]) -> set[str]:
        """The keys whose vector is not in the embedding cache (the vectors are not read)."""
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                found.update(conn.execute(sa.select(db.embeddings.c.key).where(db.embeddings.c.key.in_(part))).scalars())
        return set(keys) - found

    def store_vectors(self, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        missing = self.uncached(vectors)
        new = [{"key": k, "vector": np.asarray(v, dtype=np.float32).tobytes()}
               for k, v in vectors.items() if k in missing]
        if new:  # another worker may be storing the same vectors right now (both start on one pack)
            with self.engine.begin() as conn:
                db.insert_ignoring_duplicates(conn, db.embeddings, new)

    # Index version: lets every worker notice that another one changed the index ------------
    def version(self) -> str:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(db.state.c.value).where(db.state.c.key == "index_version")).scalar()
        return value or "0"

    def _bump_version(self, conn: sa.Connection) -> None:
        self.local_changes += 1
        value = datetime.now(timezone.utc).isoformat()
        db.upsert(conn, db.state, {"key": "index_version", "value": value}, key="key")


def _row_hash(row: dict[str, Any]) -> str:
    """What a chunk row holds, but its hash: tells a row to rewrite from one to leave alone."""
    return content_hash(json.dumps({k: v for k, v in row.items() if k != "content_hash"},
                                   ensure_ascii=False, sort_keys=True, default=str))


def _chunk_row(r: Any) -> tuple[Chunk, list[str]]:
    chunk = Chunk(id=r["id"], doc_key=r["doc_key"], position=r["position"], kind=r["kind"], source=r["source"],
                  title=r["title"], context=r["context"], text=r["text"], meta=r["meta"] or {})
    # Rows indexed before passages had several vectors hold only the passage's own.
    chunk.views = r["vector_texts"] or [chunk.indexed_text]
    return chunk, r["tokens"].split(" ") if r["tokens"] else []
