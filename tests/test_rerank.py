"""The optional reranker stage: a real HybridRetriever over the tiny pack, a fake rerank endpoint
at the network edge (tests/fake_rerank.py) speaking the Jina/Cohere and the TEI shapes."""

from __future__ import annotations

import pytest

from conftest import build_settings
from copilot.rerank import Reranker, parse_ranking, rerank_fused
from fake_rerank import RerankScript, ServerThread, fake_rerank_app

QUERY = "小票打印机不出纸怎么办"


@pytest.fixture(scope="module")
def fake():
    script = RerankScript()
    with ServerThread(fake_rerank_app(script)) as running:
        yield script, running.url


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, tiny_pack_dir):
    from copilot.service import Copilot

    copilot = Copilot(build_settings(tmp_path_factory.mktemp("rerank"), tiny_pack_dir))
    return copilot.retriever


@pytest.fixture
def script(fake):
    script, _url = fake
    script.mode, script.requests[:] = "reverse", []
    return script


def ids(result) -> list[str]:
    return [e.id for e in result.results]


def with_reranker(retriever, reranker):
    """The same loaded index, searched with this reranker (the instance attribute shadows the default)."""
    retriever.reranker = reranker
    return retriever


@pytest.fixture
def plain(retriever):
    retriever.reranker = None
    yield retriever
    retriever.reranker = None


@pytest.mark.parametrize("path", ["/rerank", "/tei/rerank"])
def test_the_order_follows_the_reranker(plain, fake, script, path):
    _script, url = fake
    fused = ids(plain.search(QUERY, k=5))
    reranked = with_reranker(plain, Reranker(url + path, model="bge-reranker-v2-m3", top_n=5)).search(QUERY, k=5)
    assert ids(reranked) == fused[::-1]  # the fake ranks the candidates last-first
    scores = [e.score for e in reranked.results]
    assert scores == sorted(scores, reverse=True)  # fused scores handed out again in the new order
    [request] = script.requests
    assert request["path"] == path and request["body"]["query"] == QUERY
    assert len(request["body"]["documents"]) == 5 and request["body"]["model"] == "bge-reranker-v2-m3"


def test_only_the_top_n_are_reranked(plain, fake, script):
    _script, url = fake
    fused = ids(plain.search(QUERY, k=6))
    reranked = ids(with_reranker(plain, Reranker(url + "/rerank", top_n=3)).search(QUERY, k=6))
    assert reranked == fused[:3][::-1] + fused[3:]
    assert len(script.requests[0]["body"]["documents"]) == 3


@pytest.mark.parametrize("mode", ["error", "slow", "garbage"])
def test_a_failing_reranker_keeps_the_fused_order(plain, fake, script, mode, caplog):
    _script, url = fake
    script.mode, script.sleep_s = mode, 2.0
    fused = ids(plain.search(QUERY, k=5))
    reranked = with_reranker(plain, Reranker(url + "/rerank", top_n=5, timeout_s=0.5)).search(QUERY, k=5)
    assert ids(reranked) == fused and len(script.requests) == 1
    assert "keeping the fused order" in caplog.text


def test_an_endpoint_that_is_down_keeps_the_fused_order(plain):
    from copilot.api.background import free_port

    fused = ids(plain.search(QUERY, k=5))
    down = Reranker(f"http://127.0.0.1:{free_port()}/rerank", timeout_s=1)
    assert ids(with_reranker(plain, down).search(QUERY, k=5)) == fused


def test_off_by_default_no_call_is_made(tmp_path, fake, script, retriever):
    _script, url = fake
    assert Reranker.from_settings(build_settings(tmp_path)) is None
    assert type(retriever).reranker is None
    retriever.reranker = Reranker.from_settings(build_settings(tmp_path))
    retriever.search(QUERY, k=5)
    assert script.requests == []
    configured = Reranker.from_settings(build_settings(tmp_path, rerank_url=url + "/rerank", rerank_top_n=7))
    assert configured is not None and (configured.url, configured.top_n) == (url + "/rerank", 7)


def test_both_response_shapes_parse():
    assert parse_ranking({"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]},
                         2) == [(1, 0.9), (0, 0.1)]
    assert parse_ranking([{"index": 0, "score": 0.2}, {"index": 1, "score": 0.8}], 2) == [(0, 0.2), (1, 0.8)]
    for bad in ({"results": [{"index": 5, "relevance_score": 1}]}, {"detail": "x"}, [{"score": 1}]):
        with pytest.raises(Exception):
            parse_ranking(bad, 2)
    assert rerank_fused(None, "q", [(3, 0.9), (1, 0.5)], str) == [(3, 0.9), (1, 0.5)]


def test_the_setting_turns_the_reranker_on_for_the_copilots_own_search(tmp_path, tiny_pack_dir, fake, script):
    """COPILOT_RERANK_URL reaches the retriever the API and the assistant use."""
    from copilot.service import Copilot

    _script, url = fake
    plain = Copilot(build_settings(tmp_path / "off", tiny_pack_dir)).retriever
    assert plain.reranker is None
    copilot = Copilot(build_settings(tmp_path / "on", tiny_pack_dir, rerank_url=url + "/rerank", rerank_top_n=5))
    reranked = copilot.retriever.search(QUERY, k=5)
    assert script.requests, "the rerank endpoint was not called"
    assert ids(reranked) == ids(plain.search(QUERY, k=5))[::-1]
