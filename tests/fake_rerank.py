"""A local rerank endpoint for tests, at the network edge where Xinference, TEI or vLLM would be:
`POST /rerank` answers Jina/Cohere style ({results: [{index, relevance_score}]}), `POST /tei/rerank`
answers TEI style ([{index, score}]). It ranks the documents in reverse (last first) unless told
otherwise, and records every request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from copilot.api.background import ServerThread  # noqa: F401 - re-exported for tests


@dataclass
class RerankScript:
    mode: str = "reverse"  # reverse | error (HTTP 500) | slow (sleeps `sleep_s`) | garbage
    sleep_s: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)


def fake_rerank_app(script: RerankScript) -> FastAPI:
    app = FastAPI()

    async def ranking(request: Request) -> list[tuple[int, float]] | JSONResponse:
        body = await request.json()
        script.requests.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        if script.mode == "error":
            return JSONResponse({"error": "model not loaded"}, status_code=500)
        if script.mode == "slow":
            await asyncio.sleep(script.sleep_s)
        documents = body.get("documents") or body.get("texts") or []
        n = len(documents)
        return [(i, round(1.0 - rank / max(n, 1), 4)) for rank, i in enumerate(reversed(range(n)))]

    @app.post("/rerank")
    async def jina(request: Request):
        ranked = await ranking(request)
        if isinstance(ranked, JSONResponse):
            return ranked
        if script.mode == "garbage":
            return {"results": [{"document": "?"}]}
        top_n = (script.requests[-1]["body"].get("top_n") or len(ranked))
        return {"model": script.requests[-1]["body"].get("model"),
                "results": [{"index": i, "relevance_score": s} for i, s in ranked[:top_n]]}

    @app.post("/tei/rerank")
    async def tei(request: Request):
        ranked = await ranking(request)
        if isinstance(ranked, JSONResponse):
            return ranked
        # TEI answers in index order, each with its score: the client must sort.
        return [{"index": i, "score": s} for i, s in sorted(ranked)]

    return app
