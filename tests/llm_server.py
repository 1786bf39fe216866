"""A local OpenAI-protocol test server with scripted replies: the only fake in the suite, at
the network edge where a real LLM endpoint would be."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from copilot.api.background import ServerThread, free_port  # noqa: F401 - re-exported for tests


@dataclass
class Script:
    """What the server does for each next request: text, {"status": 500}, {"sleep": s, "text": t},
    or {"hang": True} (never answers; the request ends when the client gives up)."""

    replies: deque = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def push(self, *replies: Any) -> None:
        self.replies.extend(replies)


def _app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        script.requests.append(body)
        reply = script.replies.popleft() if script.replies else "（没有脚本回复）"
        if isinstance(reply, dict) and "status" in reply:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=reply["status"])
        if isinstance(reply, dict) and "hang" in reply:
            await _hang(request)
            return JSONResponse({"error": {"message": "hung up"}}, status_code=504)
        if isinstance(reply, dict) and "sleep" in reply:
            await asyncio.sleep(reply["sleep"])  # not time.sleep: other requests are served meanwhile
            reply = reply.get("text", "")
        return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "test"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        script.requests.append(body)
        return {"object": "list", "model": body.get("model"),
                "data": [{"object": "embedding", "index": i, "embedding": bag_of_chars(t)} for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    return app


async def _hang(request: Request, limit_s: float = 60.0) -> None:
    """Answer nothing until the client disconnects (a hung endpoint). Ending with the client, not
    after a fixed time, keeps the server free to shut down when the test is over."""
    until = time.monotonic() + limit_s
    while time.monotonic() < until and not await request.is_disconnected():
        await asyncio.sleep(0.05)


def bag_of_chars(text: str, dim: int = 64) -> list[float]:
    """A deterministic stand-in embedding: texts sharing characters point the same way."""
    vector = [0.0] * dim
    for ch in text:
        vector[ord(ch) % dim] += 1.0
    return vector


def start_llm() -> tuple[Script, ServerThread]:
    script = Script()
    return script, ServerThread(_app(script))
