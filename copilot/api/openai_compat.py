"""OpenAI-compatible chat API, so any OpenAI client, LangChain `ChatOpenAI` or chat front-end
can use the copilot. One model per role; sources travel as footnotes in the text and in full
in the extra `copilot` field (on the last chunk when streaming)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from copilot import conversation, pipeline
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.errors import InvalidInput, NotFound
from copilot.modeling import Model
from copilot.models import AskResponse

router = APIRouter(tags=["openai-compatible"])

MODELS = {"copilot-sales": "sales", "copilot-csm": "csm", "copilot-support": "support"}
STREAM_PIECE = 12  # characters per streamed delta
# A chat client resends the whole conversation each time; only its last few turns are read
# (conversation.MAX_TURNS), so these bounds are far above what a real conversation sends.
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = conversation.MAX_TURN_INPUT_CHARS
MAX_CONVERSATION_CHARS = 200_000


def _too_long(limit: int, where: str = "") -> PydanticCustomError:
    # The type of pydantic's own max_length error, so the Chinese summary reads "最多 N 个字".
    return PydanticCustomError("string_too_long", "Text should have at most {max_length} characters" + where,
                               {"max_length": limit})


class ChatMessage(Model):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = Field(default=None, description=(
        f"Text, or OpenAI content parts; at most {MAX_MESSAGE_CHARS} characters of text"))

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""

    @model_validator(mode="after")
    def _bounded(self) -> ChatMessage:
        if len(self.text()) > MAX_MESSAGE_CHARS:
            raise _too_long(MAX_MESSAGE_CHARS)
        return self


class ChatRequest(Model):
    model_config = ConfigDict(extra="allow")  # temperature, top_p… are accepted and ignored
    model: str = Field(max_length=64, examples=list(MODELS))
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: dict[str, Any] | None = None  # {"include_usage": true} adds a usage chunk at the end

    @model_validator(mode="after")
    def _bounded(self) -> ChatRequest:
        if sum(len(m.text()) for m in self.messages) > MAX_CONVERSATION_CHARS:
            raise _too_long(MAX_CONVERSATION_CHARS, " in all messages together")
        return self


@router.get("/v1/models")
def list_models() -> dict:
    """One model per role."""
    now = int(time.time())
    return {"object": "list", "data": [{"id": m, "object": "model", "created": now, "owned_by": "copilot"}
                                       for m in MODELS]}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, copilot: CopilotDep, principal: PrincipalDep):
    """Chat with the copilot, multi-turn: the last user message is answered; earlier user turns and a
    system message describing the customer inform the intent, a follow-up ("那上海的呢？") inherits
    the earlier question, assistant turns are context for an LLM composer. Streaming via SSE."""
    role = MODELS.get(body.model)
    if role is None:
        raise NotFound(f"Unknown model {body.model!r}; use one of {', '.join(MODELS)}")
    principal.require_role(role)
    question, history = split_conversation(body.messages)
    response = await run_in_threadpool(pipeline.answer, copilot.deps, question, role, None,
                                       history, principal.name, principal.audiences)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    content = with_footnotes(response)
    extra = response.model_dump(mode="json", exclude={"answer"})
    usage = estimate_usage([question, *(t.content for t in history)], content)
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _stream(completion_id, body.model, content, extra, usage if include_usage else None)
        return StreamingResponse(chunks, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return JSONResponse({
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage, "copilot": extra,
    })


def split_conversation(messages: list[ChatMessage]) -> tuple[str, list[conversation.Turn]]:
    """The last user message, and what came before it as typed turns (system messages kept, then
    only the last few user and assistant turns); tool messages carry nothing for the copilot."""
    last = max((i for i, m in enumerate(messages) if m.role == "user" and m.text().strip()), default=None)
    if last is None:
        raise InvalidInput("The conversation has no user message to answer")
    speakers = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
    earlier = [conversation.Turn.of(m.text(), speakers[m.role])
               for m in messages[:last] if m.role in speakers and m.text().strip()]
    return messages[last].text(), conversation.turns(earlier)


_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """No tokenizer runs here, so usage is an estimate from characters: one token per CJK character
    (Chinese BPE vocabularies give 0.6–1.5) and one per four other characters, as for English."""
    cjk = len(_CJK.findall(text))
    return cjk + -(-(len(text) - cjk) // 4)


def estimate_usage(prompt: list[str], completion: str) -> dict[str, int]:
    prompt_tokens = sum(estimate_tokens(text) for text in prompt)
    completion_tokens = estimate_tokens(completion)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def with_footnotes(response: AskResponse) -> str:
    lines = [response.answer]
    if response.citations:
        lines.append("\n来源：")
        lines += [f"[{i}] {c.title} — {c.source}" for i, c in enumerate(response.citations, 1)]
    if response.choices:
        lines.append("\n你可能想问：")
        lines += [f"- {choice}" for choice in response.choices]
    return "\n".join(lines)


def _stream(completion_id: str, model: str, content: str, extra: dict, usage: dict | None) -> Iterator[str]:
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def event(data: dict) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
        return event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more})

    yield chunk({"role": "assistant", "content": ""})
    for start in range(0, len(content), STREAM_PIECE):
        yield chunk({"content": content[start:start + STREAM_PIECE]})
    yield chunk({}, "stop", copilot=extra)
    if usage is not None:  # as OpenAI does when asked to: a last chunk with no choices, only the usage
        yield event({**head, "choices": [], "usage": usage})
    yield "data: [DONE]\n\n"
