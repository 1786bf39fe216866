"""How fast a running server serves a change to one document, at 1k / 10k / 100k passages.

A fresh data dir gets N generated passages (sample data: sentences of the seed handbook recombined,
in documents of 50 passages) written straight into the catalog with random unit vectors as their
cached embeddings: embedding 100k passages on this CPU would take hours and says nothing about
reloading. Then, with one retriever "serving":
- cold: the first search loads everything (what a worker start costs);
- cold from the snapshot: the same in a process that finds the index snapshot the first one kept;
- one document changed (another worker re-ingested it): time of the first search that sees it;
- one document removed: likewise;
- the same change with in-place updates switched off (a full reload, as before they existed).
Prints the figures and writes benchmarks/reload.json.

    python scripts/bench_reload.py [--passages 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.knowledge.catalog import content_hash, embedding_key, vector_texts  # noqa: E402
from copilot.lexical import tokenize  # noqa: E402
from copilot.models import Chunk  # noqa: E402
from copilot.service import Copilot  # noqa: E402
from copilot.settings import Settings  # noqa: E402

PER_DOC = 50
SEEDS = Path(os.environ.get("COPILOT_SEEDS_DIR", ROOT.parent / "shared" / "seeds"))


def sentences() -> list[str]:
    found: list[str] = []
    for path in sorted(SEEDS.glob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="ignore")
            found += [s.strip() for s in re.split(r"[。！？\n]", text) if 8 <= len(s.strip()) <= 80]
    return found or ["（示例数据）门店收银系统每天闭店后自动对账"]


def make_doc(key: str, n: int, rng: random.Random, pool: list[str], marker: str = "") -> list[Chunk]:
    chunks = []
    for i in range(n):
        text = "（示例数据）" + "。".join(rng.sample(pool, 3)) + (marker if i == 0 else "")
        chunks.append(Chunk(id=f"{key}#{i}", doc_key=key, position=i, kind="doc", source=key, title=key,
                            text=text, meta={"audience": "public"}))
    return chunks


def write_doc(copilot: Copilot, key: str, chunks: list[Chunk], rng: np.random.Generator) -> None:
    texts = [vector_texts(c) for c in chunks]
    for chunk, views in zip(chunks, texts):
        chunk.views = views
    vectors = {}
    for views in texts:
        for view in views:
            v = rng.standard_normal(copilot.embedder.dim).astype(np.float32)
            vectors[embedding_key(copilot.embedder.name, view)] = v / np.linalg.norm(v)
    copilot.catalog.store_vectors(vectors)
    digest = content_hash("".join(c.text for c in chunks))
    copilot.catalog.replace_document(key, key, "doc", key, digest, chunks,
                                     [tokenize("\n".join(v)) for v in texts], texts)


def first_search_that_sees(copilot: Copilot, query: str, check) -> float:
    """Seconds of the first search after the version check is due (the change is already committed)."""
    time.sleep(0.6)  # past the retriever's twice-a-second look at the shared version
    start = time.perf_counter()
    found = copilot.retriever.search(query, k=5)
    took = time.perf_counter() - start
    assert check(found), "the change was not served"
    return took


def run(passages: int, pool: list[str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="copilot-bench-reload-"))
    settings = Settings(_env_file=None, data_dir=work / "data", exact_search_max_vectors=10_000_000)
    writer = Copilot(settings)
    writer.indexer.sync_pack(writer.pack)
    rng, vectors = random.Random(7), np.random.default_rng(7)
    start = time.perf_counter()
    docs = max(1, passages // PER_DOC)
    for d in range(docs):
        write_doc(writer, f"/bench/doc{d}.md", make_doc(f"/bench/doc{d}.md", PER_DOC, rng, pool), vectors)
    built = time.perf_counter() - start
    total = writer.catalog.chunk_count()

    server = Copilot(settings)  # another process in real life: it only shares the database
    start = time.perf_counter()
    server.retriever.search("会员积分怎么设置", k=5)
    cold = time.perf_counter() - start
    server.retriever.wait_for_snapshot_file()
    restarted = Copilot(settings)  # a worker (or CLI command) starting once the snapshot is on disk
    start = time.perf_counter()
    restarted.retriever.search("会员积分怎么设置", k=5)
    cold_from_disk = time.perf_counter() - start

    marker = "，本段已改为：冷柜温度超过八度要在三十分钟内报修"
    key = "/bench/doc0.md"
    write_doc(writer, key, make_doc(key, PER_DOC, random.Random(99), pool, marker), vectors)
    changed = first_search_that_sees(server, "冷柜温度超过八度多久内报修",
                                     lambda f: any("三十分钟内报修" in e.text for e in f.results))
    writer.indexer.remove_documents([key])
    removed = first_search_that_sees(server, "冷柜温度超过八度多久内报修",
                                      lambda f: not any(e.source == key for e in f.results))
    # The same change once more with in-place updates switched off: what every change cost before.
    server.retriever.incremental_min = 10**9
    write_doc(writer, key, make_doc(key, PER_DOC, random.Random(98), pool, marker), vectors)
    reloaded = first_search_that_sees(server, "冷柜温度超过八度多久内报修",
                                      lambda f: any("三十分钟内报修" in e.text for e in f.results))
    warm = []
    for _ in range(20):
        start = time.perf_counter()
        server.retriever.search("会员积分怎么设置", k=5)
        warm.append(time.perf_counter() - start)
    row = {"passages": total, "generated_s": round(built, 1), "cold_load_s": round(cold, 3),
           "cold_load_from_snapshot_s": round(cold_from_disk, 3),
           "one_document_changed_s": round(changed, 3), "one_document_removed_s": round(removed, 3),
           "full_reload_s": round(reloaded, 3), "applied_in_place": total >= server.settings.incremental_index_min_passages,
           "search_after_ms_p50": round(1000 * float(np.median(warm)), 1)}
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reload.json")
    args = parser.parse_args()
    pool = sentences()
    rows = [run(n, pool) for n in args.passages]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "per_document": PER_DOC,
              "goal": "a one-document change served in < 1 s at 100k passages", "results": rows}
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
