"""Optional reranker after fusion: a cross-encoder served behind a standard rerank endpoint.

Two request/response shapes are spoken, both at `POST <rerank_url>`:
- Jina/Cohere style (Xinference, vLLM, Jina, Cohere): {model, query, documents, top_n} ->
  {results: [{index, relevance_score}]};
- Hugging Face TEI: {query, texts} -> [{index, score}].
The request carries both `documents` and `texts`, so one call suits either server; the answer's
shape says which one replied. Off unless `rerank_url` is set. A failed or slow reranker never
fails a search: the fused order stands and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from copilot.settings import Settings

if TYPE_CHECKING:  # imported when a reranker is configured: every search process imports this module
    import httpx

log = logging.getLogger(__name__)


class RerankError(RuntimeError):
    """The endpoint answered something that is not a ranking."""


class Reranker:
    def __init__(self, url: str, model: str = "", top_n: int = 20, timeout_s: float = 5.0,
                 api_key: str | None = None, client: httpx.Client | None = None) -> None:
        self.url = url
        self.model = model
        self.top_n = top_n
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> Reranker | None:
        """None unless `rerank_url` is set (the default: no reranking, no call)."""
        if not settings.rerank_url:
            return None
        return cls(settings.rerank_url, settings.rerank_model, settings.rerank_top_n, settings.rerank_timeout_s,
                   settings.rerank_api_key)

    def scores(self, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
        """(index into `documents`, relevance) best first, as the endpoint ranks them; raises on failure."""
        if not documents:
            return []
        body: dict[str, Any] = {"query": query, "documents": list(documents), "texts": list(documents),
                                "top_n": len(documents), "return_documents": False}
        if self.model:
            body["model"] = self.model
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        import httpx

        post = self.client.post if self.client is not None else httpx.post
        response = post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        return parse_ranking(response.json(), len(documents))

    def reorder(self, query: str, documents: Sequence[str]) -> list[int] | None:
        """The indexes of `documents` in the reranker's order (ones it left out keep their place
        after the ranked ones), or None when it failed: the caller keeps its own order."""
        try:
            ranked = self.scores(query, documents)
        except Exception as exc:  # timeout, refused, 5xx, a malformed answer: never fail the search
            log.warning("reranker at %s failed, keeping the fused order: %s: %s", self.url, type(exc).__name__, exc)
            return None
        order = [i for i, _ in sorted(ranked, key=lambda item: -item[1])]
        seen = set(order)
        return order + [i for i in range(len(documents)) if i not in seen]


def parse_ranking(payload: Any, count: int) -> list[tuple[int, float]]:
    """{results: [{index, relevance_score}]} (Jina/Cohere) or [{index, score}] (TEI) -> [(index, score)]."""
    items = payload.get("results") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise RerankError(f"unexpected rerank answer: {str(payload)[:200]}")
    ranked: dict[int, float] = {}
    for item in items:
        if not isinstance(item, dict) or "index" not in item:
            raise RerankError(f"unexpected rerank result: {str(item)[:200]}")
        score = item.get("relevance_score", item.get("score"))
        index = item["index"]
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(score, (int, float)):
            raise RerankError(f"unexpected rerank result: {str(item)[:200]}")
        ranked.setdefault(index, float(score))
    return list(ranked.items())


def rerank_fused(reranker: Reranker | None, query: str, fused: list[tuple[int, float]],
                 text_of: Any) -> list[tuple[int, float]]:
    """Reorder the top `reranker.top_n` of the fused (row, score) list by the reranker; the rest
    follows unchanged. The scores stay the fused ones, handed out again in the new order (the best
    score to the reranker's first), so anything downstream that sorts or thresholds on them keeps
    working on the same scale. Without a reranker, or when it fails, `fused` comes back as is."""
    if reranker is None or len(fused) < 2:
        return fused
    head, tail = fused[:reranker.top_n], fused[reranker.top_n:]
    order = reranker.reorder(query, [text_of(row) for row, _ in head])
    if order is None:
        return fused
    scores = sorted((score for _, score in head), reverse=True)
    return [(head[i][0], score) for i, score in zip(order, scores)] + tail
