"""OpenAI-compatible chat API, so any OpenAI client, LangChain `ChatOpenAI` or chat front-end
can use the copilot. One model per role; sources travel as footnotes in the text and in full
in the extra `copilot` field (on the last chunk when streaming)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from copilot import pipeline
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.errors import InvalidInput, NotFound
from copilot.models import AskResponse

router = APIRouter(tags=["openai-compatible"])

MODELS = {"copilot-sales": "sales", "copilot-csm": "csm", "copilot-support": "support"}
STREAM_PIECE = 12  # characters per streamed delta


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p… are accepted and ignored
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


@router.get("/v1/models")
def list_models() -> dict:
    """One model per role."""
    now = int(time.time())
    return {"object": "list", "data": [{"id": m, "object": "model", "created": now, "owned_by": "copilot"}
                                       for m in MODELS]}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, copilot: CopilotDep, principal: PrincipalDep):
    """Chat with the copilot; multi-turn (earlier user turns inform intent), streaming via SSE."""
    role = MODELS.get(body.model)
    if role is None:
        raise NotFound(f"Unknown model {body.model!r}; use one of {', '.join(MODELS)}")
    principal.require_role(role)
    user_turns = [m.text() for m in body.messages if m.role == "user" and m.text().strip()]
    if not user_turns:
        raise InvalidInput("The conversation has no user message to answer")
    response = await run_in_threadpool(pipeline.answer, copilot.deps, user_turns[-1], role, None,
                                       user_turns[:-1], principal.name, principal.audiences)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    content = with_footnotes(response)
    extra = response.model_dump(mode="json", exclude={"answer"})
    if body.stream:
        return StreamingResponse(_stream(completion_id, body.model, content, extra), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return JSONResponse({
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "copilot": extra,
    })


def with_footnotes(response: AskResponse) -> str:
    lines = [response.answer]
    if response.citations:
        lines.append("\n来源：")
        lines += [f"[{i}] {c.title} — {c.source}" for i, c in enumerate(response.citations, 1)]
    if response.choices:
        lines.append("\n你可能想问：")
        lines += [f"- {choice}" for choice in response.choices]
    return "\n".join(lines)


def _stream(completion_id: str, model: str, content: str, extra: dict) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for start in range(0, len(content), STREAM_PIECE):
        yield chunk({"content": content[start:start + STREAM_PIECE]})
    yield chunk({}, "stop", copilot=extra)
    yield "data: [DONE]\n\n"
