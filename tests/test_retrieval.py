"""Hybrid retrieval: metadata filters, the LangChain retriever, and one contract that every
deployment mode must keep (embedded Chroma, a `chroma run` server, Postgres for app data)."""

from __future__ import annotations

import os
import time

import pytest
from langchain_core.documents import Document

from conftest import build_settings
from copilot.models import SearchFilters
from copilot.langchain_retriever import CopilotRetriever
from copilot.retrieve import VERSION_CHECK_S

INTERNAL = {"case-apparel-gz", "faq-discount-approval", "pb-renewal", "pb-peer-case"}
PACK_SIZE = 11  # 4 cases + 4 FAQs + 3 playbooks in the tiny pack


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_pack_dir):
    """The tiny pack plus two short documents, embedded SQLite + Chroma."""
    from copilot.service import Copilot

    root = tmp_path_factory.mktemp("retrieval")
    docs = root / "docs"
    docs.mkdir()
    (docs / "错误码.txt").write_text("支付错误码说明\n错误码 E-4031 表示支付通道证书过期，需要在后台重新上传证书。\n",
                                    encoding="utf-8")
    (docs / "排班.md").write_text("# 门店排班\n\n周末排班要提前一周发布，临时调班需店长同意。\n", encoding="utf-8")
    copilot = Copilot(build_settings(root, tiny_pack_dir))
    report = copilot.indexer.ingest([str(docs)])
    assert report.failed == [] and len(report.added) == 2
    return copilot


def ids(result) -> list[str]:
    return [e.id for e in result.results]


def assert_store_in_step(copilot) -> None:
    """The vector store holds exactly the catalog's vectors once the knowledge is past exact
    search (then the store answers), and none before (nothing asks it, see Indexer)."""
    total = copilot.catalog.vector_count()
    assert copilot.store.count() == (total if total > copilot.settings.exact_search_max_vectors else 0)


# Filters ----------------------------------------------------------------------------------------
def test_unfiltered_search_ranks_the_answering_item_first(indexed):
    assert ids(indexed.retriever.search("小票打印机不出纸怎么办", k=3))[0] == "faq-printer"
    assert ids(indexed.retriever.search("八折以下的折扣要谁审批", k=3))[0] == "faq-discount-approval"


def test_kind_filter(indexed):
    found = indexed.retriever.search("续费", k=10, filters=SearchFilters(kinds=["faq"]))
    assert found.results and {e.kind for e in found.results} == {"faq"}
    found = indexed.retriever.search("排班", k=10, filters=SearchFilters(kinds=["doc", "playbook"]))
    assert {e.kind for e in found.results} <= {"doc", "playbook"} and found.results[0].kind == "doc"


def test_audience_filter_hides_internal_items(indexed):
    question = "八折以下的折扣要谁审批"
    public = indexed.retriever.search(question, k=20, filters=SearchFilters(audiences=["public"]))
    assert public.results and not INTERNAL & set(ids(public))
    internal = indexed.retriever.search(question, k=20, filters=SearchFilters(audiences=["internal"]))
    assert set(ids(internal)) == INTERNAL


@pytest.mark.parametrize(("filters", "expected"), [
    (SearchFilters(industry="茶饮"), ["case-tea-cd"]),
    (SearchFilters(industry="烘焙"), ["case-bakery-hz"]),
    (SearchFilters(tier="大型"), ["case-tea-cd"]),
    (SearchFilters(tier="中型"), ["case-bakery-hz"]),
    (SearchFilters(tier="中小"), ["case-apparel-gz"]),
    (SearchFilters(tier="小微"), ["case-fresh-bj"]),      # 4000 a year
    (SearchFilters(region="华南"), ["case-apparel-gz"]),
    (SearchFilters(region="华北"), ["case-fresh-bj"]),
    (SearchFilters(province="四川"), ["case-tea-cd"]),
    (SearchFilters(region="华南", audiences=["public"]), []),  # the only 华南 case is internal
    (SearchFilters(industry="烘焙", tier="大型"), []),
])
def test_case_facet_filters(indexed, filters, expected):
    found = indexed.retriever.search("会员复购和连锁门店的成功案例", k=10, filters=filters)
    assert ids(found) == expected


def test_exact_terms_are_found_in_hybrid_mode(indexed):
    """An error code means nothing to the embedding model; BM25 must still put it first."""
    for weight in (None, 0.0):
        top = indexed.retriever.search("E-4031", k=3, dense_weight=weight).results[0]
        assert "E-4031" in top.text and top.kind == "doc"


def test_k_and_empty_queries(indexed):
    assert len(indexed.retriever.search("会员", k=2).results) == 2
    assert indexed.retriever.search("   ", k=5).results == []


# LangChain -------------------------------------------------------------------------------------------
def test_langchain_retriever_returns_documents_with_metadata(indexed):
    retriever = CopilotRetriever(retriever=indexed.retriever, k=2)
    documents = retriever.invoke("小票打印机不出纸")
    assert 1 <= len(documents) <= 2 and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert top.metadata["id"] == top.id == "faq-printer"
    assert top.metadata["kind"] == "faq" and top.metadata["source"] == "faq-printer"
    assert top.metadata["title"] == "小票打印机不出纸怎么办？"
    assert isinstance(top.metadata["score"], float)
    assert "热敏纸" in top.page_content


def test_langchain_retriever_applies_filters(indexed):
    retriever = CopilotRetriever(retriever=indexed.retriever, k=5,
                                 filters=SearchFilters(kinds=["doc"], audiences=["public"]))
    batches = retriever.batch(["排班要提前多久发布", "E-4031 是什么错误"])
    assert [d.metadata["kind"] for docs in batches for d in docs] == ["doc"] * sum(len(d) for d in batches)
    assert batches[0][0].metadata["source"].endswith("排班.md")
    assert batches[1][0].metadata["source"].endswith("错误码.txt")


# One contract, every deployment mode ---------------------------------------------------------------------
@pytest.fixture(params=["embedded", "chroma-http", "postgres+chroma-http"])
def deployment(request) -> dict:
    """Settings fields of one deployment mode (the scale-out ones start or need real services)."""
    overrides: dict = {}
    if "chroma-http" in request.param:
        overrides.update(request.getfixturevalue("chroma_http_settings"))
    if "postgres" in request.param:
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    return overrides


class TestDeploymentContract:
    def test_pack_is_indexed_and_searchable(self, make_copilot, deployment):
        copilot = make_copilot(**deployment)
        for weight in (None, 0.0, 1.0):
            found = copilot.retriever.search("小票打印机不出纸", k=3, dense_weight=weight)
            assert ids(found)[0] == "faq-printer", (weight, ids(found))
        assert_store_in_step(copilot)
        assert copilot.catalog.chunk_count() == PACK_SIZE
        if "database_url" in deployment:
            assert copilot.engine.dialect.name == "postgresql"

    def test_filters_hold_in_the_vector_store(self, make_copilot, deployment):
        retriever = make_copilot(**deployment).retriever
        dense = 1.0  # dense-only, so the vector store's own metadata filter does the work
        found = retriever.search("连锁门店的成功案例", k=10, dense_weight=dense,
                                 filters=SearchFilters(kinds=["case"], tier="大型"))
        assert ids(found) == ["case-tea-cd"]
        found = retriever.search("折扣审批", k=20, dense_weight=dense, filters=SearchFilters(audiences=["public"]))
        assert len(found.results) == PACK_SIZE - len(INTERNAL) and not INTERNAL & set(ids(found))
        found = retriever.search("会员", k=10, dense_weight=dense, filters=SearchFilters(region="华东"))
        assert ids(found) == ["case-bakery-hz"]

    def test_reopening_reuses_the_index(self, make_copilot, deployment):
        first = make_copilot(**deployment)
        before = ids(first.retriever.search("会员积分什么时候过期", k=3))
        again = make_copilot(**deployment)  # a restart, or a second worker
        report = again.indexer.sync_pack(again.pack)
        assert (sorted(report.unchanged), report.embedded, report.chunks) == (
            ["pack:cases", "pack:faqs", "pack:playbooks"], 0, 0)
        assert ids(again.retriever.search("会员积分什么时候过期", k=3)) == before
        assert_store_in_step(again)

    def test_document_lifecycle_is_seen_by_every_worker(self, tmp_path, make_copilot, deployment):
        worker_a, worker_b = make_copilot(**deployment), make_copilot(**deployment)
        assert worker_b.retriever.search("质保", k=1).results  # B has loaded its snapshot
        folder = tmp_path / "docs"
        folder.mkdir()
        doc = folder / "质保.txt"
        doc.write_text("质保政策\n收银机硬件质保两年，人为损坏不在质保范围内。\n", encoding="utf-8")

        def settle() -> None:  # another worker looks at the shared index version at most twice a second
            time.sleep(VERSION_CHECK_S + 0.05)

        assert worker_a.indexer.ingest([str(folder)]).added == [str(doc)]
        settle()
        top = worker_b.retriever.search("收银机硬件质保几年", k=1).results[0]
        assert top.source == str(doc) and "质保两年" in top.text

        doc.write_text("质保政策\n收银机硬件质保延长为三年，进水和摔坏不保。\n", encoding="utf-8")
        assert worker_a.indexer.ingest([str(folder)]).updated == [str(doc)]
        settle()
        texts = [e.text for e in worker_b.retriever.search("收银机硬件质保几年", k=5).results]
        assert any("质保延长为三年" in t for t in texts) and not any("质保两年" in t for t in texts)

        doc.unlink()
        assert worker_a.indexer.ingest([str(folder)]).removed == [str(doc.resolve())]
        settle()
        assert all(e.kind != "doc" for e in worker_b.retriever.search("收银机硬件质保几年", k=20).results)
        assert_store_in_step(worker_b)
        assert worker_b.catalog.chunk_count() == PACK_SIZE


def test_a_passage_the_vector_index_lost_is_still_scored_on_meaning(tmp_path, make_copilot):
    """An approximate index can lag or miss a passage; what the keyword channels find still gets its
    true similarity, so it is not ranked as if it meant nothing."""
    copilot = make_copilot(exact_search_max_vectors=0)  # every dense query goes to Chroma, as at scale
    before = copilot.retriever.search("小票打印机不出纸", k=3, dense_weight=0.9).results[0]
    assert before.id == "faq-printer" and before.dense > 0.5
    lost = [i for i in copilot.catalog.vector_ids("pack:faqs") if i.startswith("faq-printer")]
    copilot.store.delete(lost)  # Chroma no longer returns it
    after = copilot.retriever.search("小票打印机不出纸", k=3, dense_weight=0.9).results[0]
    assert after.id == "faq-printer" and after.dense == pytest.approx(before.dense, abs=1e-3)


def test_a_running_worker_applies_a_changed_document_without_reloading_everything(tmp_path, make_copilot):
    """At scale a changed document is swapped into the loaded index (seconds saved per change at
    100k passages, see scripts/bench_reload.py); what is served must match a fresh load."""
    worker_a = make_copilot()
    worker_b = make_copilot(incremental_index_min_passages=0)  # the large-index path, on the tiny pack
    queries = ["收银机硬件质保几年", "小票打印机不出纸", "会员积分什么时候过期", "连锁门店的成功案例"]
    assert worker_b.retriever.search(queries[0], k=1).results
    loaded = worker_b.retriever.snapshot().lexical
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = folder / "质保.txt"
    for step, text in enumerate(("质保政策\n收银机硬件质保两年，人为损坏不在质保范围内。\n",
                                 "质保政策\n收银机硬件质保延长为三年，进水和摔坏不保。\n", None)):
        if text is None:
            doc.unlink()
        else:
            doc.write_text(text, encoding="utf-8")
        worker_a.indexer.ingest([str(folder)])
        time.sleep(VERSION_CHECK_S + 0.05)
        fresh = make_copilot()  # a worker that loads everything now
        for query in queries:
            served = [e.id for e in worker_b.retriever.search(query, k=3).results]
            assert served[:1] == [e.id for e in fresh.retriever.search(query, k=3).results][:1], (step, query)
        texts = [e.text for e in worker_b.retriever.search(queries[0], k=10).results]
        assert any("质保两年" in t for t in texts) == (step == 0)
        assert any("质保延长为三年" in t for t in texts) == (step == 1)
    assert worker_b.retriever.snapshot().lexical is loaded  # applied in place, never rebuilt


def test_the_next_process_loads_the_index_snapshot_and_never_serves_a_stale_one(tmp_path, make_copilot, monkeypatch):
    """Every CLI command is a new process: the keyword indexes the first one built are kept on disk
    for the next, keyed by the catalog's version, so a changed knowledge is never served stale."""
    import copilot.retrieve as retrieve

    question = "小票打印机不出纸怎么办"
    first = make_copilot().retriever
    expected = ids(first.search(question, k=3))
    first.wait_for_snapshot_file()
    snapshots = lambda: sorted((tmp_path / "data-main" / "cache").glob("snapshot-*.pickle"))  # noqa: E731
    assert len(snapshots()) == 1

    with monkeypatch.context() as patched:
        def build(*args, **kwargs):
            raise AssertionError("the keyword indexes were built again")

        patched.setattr(retrieve.LexicalIndex, "__init__", build)
        assert ids(make_copilot().retriever.search(question, k=3)) == expected  # the next command

    doc = tmp_path / "质保.txt"
    doc.write_text("质保政策\n收银机硬件质保两年，人为损坏不在质保范围内。\n", encoding="utf-8")
    make_copilot().indexer.ingest([str(doc)])
    after = make_copilot().retriever
    found = after.search("收银机硬件质保几年", k=3).results
    after.wait_for_snapshot_file()
    assert found[0].kind == "doc" and "质保两年" in found[0].text
    assert len(snapshots()) == 1  # the old version's file is gone

    snapshots()[0].write_bytes(b"not a snapshot")  # a torn or foreign file is rebuilt, never fatal
    cache = snapshots()[0].parent
    abandoned, writing = cache / ".snapshot-x.pickle.1.tmp", cache / ".snapshot-y.pickle.2.tmp"
    for leftover in (abandoned, writing):
        leftover.write_bytes(b"half a snapshot")
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))  # a process killed while writing, long ago
    rebuilt = make_copilot().retriever
    assert ids(rebuilt.search(question, k=3)) == ids(after.search(question, k=3))
    rebuilt.wait_for_snapshot_file()
    assert not abandoned.exists() and writing.exists()  # another process's write in progress is left alone


def test_passages_added_to_a_loaded_index_score_as_if_indexed():
    from collections import Counter

    import numpy as np

    from copilot.lexical import LexicalIndex, tokenize

    texts = ["会员积分每年年底清零", "小票打印机不出纸先换纸卷", "收银机硬件质保两年", "会员储值卡可以退吗"]
    corpus = [tokenize(t) for t in texts]
    index = LexicalIndex(corpus)
    query = tokenize("会员积分什么时候清零")
    as_added = index.scores_of(query, [Counter(d) for d in corpus], np.array([len(d) for d in corpus], np.float32))
    assert np.allclose(as_added, index.scores(query), atol=1e-5) and as_added.max() > 0


def test_typos_of_the_knowledges_words_are_corrected_by_sound_and_right_words_are_kept():
    from collections import Counter

    from copilot.lexical import Speller

    speller = Speller(Counter({"续费": 10, "收银机": 5, "健康度": 5, "会员积分": 5, "行业": 5}))
    assert speller.correct("续废怎么算") == "续费怎么算"
    assert speller.correct("收银鸡坏了") == "收银机坏了"
    assert speller.correct("客户健康渡低") == "客户健康度低"
    assert speller.correct("杭业案例") == "行业案例"  # 行 read as in the word (háng), not its usual xíng
    for right in ("会员积分什么时候过期", "续签合同", "收银台"):
        assert speller.correct(right) == right


def test_words_can_be_added_while_other_threads_search():
    """jieba-rs refuses to segment while a word is being added; a knowledge import teaches the
    segmenter new words while a running server answers questions."""
    import threading

    from copilot.lexical import add_domain_words, tokenize

    errors: list[Exception] = []

    def run(work) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)

    searches = [threading.Thread(target=run, args=(lambda: [tokenize("会员积分什么时候过期小票打印机不出纸")
                                                           for _ in range(3000)],)) for _ in range(3)]
    adding = threading.Thread(target=run, args=(lambda: [add_domain_words([f"测试词{i}号"]) for i in range(300)],))
    for thread in [*searches, adding]:
        thread.start()
    for thread in [*searches, adding]:
        thread.join()
    assert errors == []
    assert "测试词7号" in tokenize("请问测试词7号怎么用")


def test_the_vector_store_is_filled_when_the_knowledge_outgrows_exact_search(tmp_path, make_copilot):
    """Below the exact-search size nothing is written to Chroma (an import runs at the encoder's
    pace); the change that passes it fills Chroma with every vector, and Chroma then answers."""
    small = make_copilot()
    assert small.retriever.search("小票打印机不出纸", k=1).results[0].id == "faq-printer"
    assert small.store.is_empty() and not (small.settings.data_dir / "chroma").exists()
    pack_vectors = small.catalog.vector_count()

    # The same data dir, now configured to leave exact search below what one more document brings.
    grown = make_copilot(exact_search_max_vectors=pack_vectors)
    doc = tmp_path / "质保.txt"
    doc.write_text("质保政策\n收银机硬件质保两年，人为损坏不在质保范围内。\n", encoding="utf-8")
    grown.indexer.ingest([str(doc)])
    assert grown.store.count() == grown.catalog.vector_count() > pack_vectors
    hits = [i for i, _ in grown.store.query(grown.retriever.embed_query("收银机硬件质保几年"), 3, None)]
    assert any(i.startswith("doc-") for i in hits)  # the new document's passages are in Chroma
    top = grown.retriever.search("收银机硬件质保几年", k=1, dense_weight=1.0).results[0]
    assert top.source == str(doc)

    # From then on every change reaches the store, removals included.
    doc.unlink()
    grown.indexer.remove_documents([str(doc.resolve())])
    assert grown.store.count() == grown.catalog.vector_count() == pack_vectors


def test_a_data_dir_indexed_before_deferral_keeps_its_store_in_step(tmp_path, make_copilot):
    """A store filled by an earlier version is kept up to date, not frozen half-stale."""
    from copilot.knowledge.ingest import STORE_STATE
    import sqlalchemy as sa
    from copilot import db

    old = make_copilot(exact_search_max_vectors=0)
    old.retriever
    with old.catalog.engine.begin() as conn:  # as an earlier version left it: no state recorded
        conn.execute(sa.delete(db.state).where(db.state.c.key == STORE_STATE))
    now = make_copilot()
    doc = tmp_path / "排班.md"
    doc.write_text("# 门店排班\n\n周末排班要提前一周发布，临时调班需店长同意。\n", encoding="utf-8")
    now.indexer.ingest([str(doc)])
    assert now.store.count() == now.catalog.vector_count()
