"""The embeddable support widget: one <script> tag puts the support assistant on a page of another origin.

    <script src="https://copilot.example.com/widget.js" data-key="wk_help" async></script>

A widget key (COPILOT_WIDGET_KEYS: key -> allowed origins) is no API key. It is printed in a public
page's source, so it is an identifier, not a secret: what protects it is the Origin check, which
browsers enforce. It reaches only `/widget/api/*`, as role support reading public knowledge only,
without the company's customer data, under the actor name `widget:<origin host>`. Proposed actions
(an andon ticket) stay proposed: the widget never confirms anything.

CORS: a preflight is answered for an origin some widget key allows; a response carries
`Access-Control-Allow-Origin` only when the origin is one the presented key allows. Everything else
is refused with the API's JSON error and no allow header, so the browser keeps it from the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot import pipeline
from copilot.api.deps import CopilotDep, Unauthorized
from copilot.conversation import MAX_TURN_INPUT_CHARS, Turn
from copilot.errors import ConfigError, Forbidden
from copilot.feedback import FeedbackIn, reader_of, record_feedback
from copilot.modeling import Model
from copilot.models import AskResponse
from copilot.settings import Settings

log = logging.getLogger(__name__)

WIDGET_JS = Path(__file__).resolve().parent.parent / "web" / "static" / "widget.js"
API_PREFIX = "/widget/api/"
KEY_HEADER = "x-widget-key"
WIDGET_ROLE = "support"
WIDGET_AUDIENCES = ["public"]
MAX_QUESTION = 2000
MAX_TURNS = 6
PREFLIGHT_MAX_AGE_S = 600
SCRIPT_MAX_AGE_S = 300  # pages pick up a new widget.js within minutes

router = APIRouter(tags=["widget"])


# Keys and origins ---------------------------------------------------------------------------------
def normalize_origin(origin: str) -> str | None:
    """'HTTPS://Help.Example.com/' -> 'https://help.example.com'; None for anything that is no origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


def widget_origins(settings: Settings) -> dict[str, frozenset[str]]:
    """{widget key: allowed origins}, checked: a malformed entry is a configuration error."""
    return _origins(tuple((key, tuple(origins)) for key, origins in settings.widget_keys.items()))


@lru_cache(maxsize=8)
def _origins(entries: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, frozenset[str]]:
    keys: dict[str, frozenset[str]] = {}
    for key, origins in entries:
        if not key.startswith("wk_") or len(key) < 6:
            raise ConfigError(f"Widget key {key[:6]!r}…: widget keys start with 'wk_' (COPILOT_WIDGET_KEYS)",
                              zh="COPILOT_WIDGET_KEYS 里的挂件密钥必须以 wk_ 开头")
        allowed = set()
        for origin in origins:
            if (normal := normalize_origin(origin)) is None:
                raise ConfigError(f"Widget key {key}: {origin!r} is no origin; write scheme://host[:port], "
                                  "e.g. https://help.example.com (COPILOT_WIDGET_KEYS)",
                                  zh=f"挂件密钥 {key} 的来源 {origin!r} 格式不对，应写成 https://help.example.com 这样的"
                                     "协议+域名(+端口)")
            allowed.add(normal)
        keys[key] = frozenset(allowed)
    return keys


def allows(settings: Settings, key: str, origin: str) -> bool:
    """Whether `key` is a widget key and `origin` one of its pages' origins."""
    normal = normalize_origin(origin) if origin else None
    return normal is not None and normal in widget_origins(settings).get(key, frozenset())


def any_allows(settings: Settings, origin: str) -> bool:
    normal = normalize_origin(origin) if origin else None
    return normal is not None and any(normal in allowed for allowed in widget_origins(settings).values())


@dataclass(frozen=True)
class WidgetCaller:
    """Who is asking through the widget: the key, the page's origin, and the name records use."""

    key: str
    origin: str

    @property
    def actor(self) -> str:
        return f"widget:{urlsplit(self.origin).hostname}"


class RateLimiter:
    """At most `per_minute` requests per (key, visitor address) in any sliding minute (in memory,
    per worker: a brake on a runaway page or script, not an accounting system)."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.seen: dict[tuple[str, str], deque[float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, key: str, visitor: str) -> int:
        """0 when the request may go ahead (and it is counted), else seconds to wait."""
        now = self.clock()
        with self.lock:
            if len(self.seen) > 10_000:  # forget idle visitors
                self.seen = {k: v for k, v in self.seen.items() if v and now - v[-1] < 60}
            times = self.seen.setdefault((key, visitor), deque())
            while times and now - times[0] >= 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(1, int(60 - (now - times[0])) + 1)
            times.append(now)
            return 0


def get_widget_caller(request: Request, copilot: CopilotDep) -> WidgetCaller:
    """The widget dependency (instead of the app's principal): a known widget key, from a page of
    one of its origins, within its rate."""
    settings = copilot.settings
    key = request.headers.get(KEY_HEADER, "").strip()
    origin = request.headers.get("origin", "").strip()
    if key not in widget_origins(settings):
        raise Unauthorized("Unknown widget key: check the data-key of the widget's <script> tag",
                           zh="挂件密钥无效：请检查 <script> 标签的 data-key")
    if not allows(settings, key, origin):
        raise Forbidden(f"This widget key is not allowed on {origin or 'a page without an Origin'}; "
                        "an admin adds the origin to COPILOT_WIDGET_KEYS",
                        zh="本网站未获授权使用这个在线助手挂件，请联系管理员在 COPILOT_WIDGET_KEYS 中添加本网站的地址")
    limiter: RateLimiter = request.app.state.widget_limiter
    visitor = request.client.host if request.client else "?"
    if wait := limiter.retry_after(key, visitor):
        english = request.headers.get("accept-language", "").lower().startswith("en")
        raise HTTPException(429, headers={"Retry-After": str(wait)}, detail=(
            f"Too many questions; try again in {wait} seconds" if english else f"提问太频繁了，请 {wait} 秒后再试"))
    return WidgetCaller(key=key, origin=normalize_origin(origin) or origin)


WidgetCallerDep = Annotated[WidgetCaller, Depends(get_widget_caller)]


# CORS ---------------------------------------------------------------------------------------------
class WidgetCors:
    """Pure ASGI middleware for /widget/api/*: answers preflights and adds the allow headers to the
    responses (errors included) for the origins the presented key allows, and only those."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        origin = headers.get("origin", "")
        if scope.get("method") == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, headers)(scope, receive, send)
            return
        allowed = allows(self.settings, headers.get(KEY_HEADER, "").strip(), origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if allowed:
                    extra.append((b"access-control-allow-origin", origin.encode("latin-1")))
                    extra.append((b"access-control-expose-headers", b"Retry-After, Content-Language"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, origin: str, headers: dict[str, str]) -> Response:
        if not any_allows(self.settings, origin) or headers["access-control-request-method"].upper() != "POST":
            english = headers.get("accept-language", "").lower().startswith("en")
            message = ("This site may not use the support widget" if english
                       else "本网站未获授权使用在线助手挂件，请联系管理员")
            return JSONResponse({"error": {"message": message, "type": "forbidden"}}, status_code=403,
                                headers={"Vary": "Origin"})
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, X-Widget-Key, Accept-Language",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            "Vary": "Origin"})


# API ----------------------------------------------------------------------------------------------
class WidgetTurn(Model):
    """An earlier message of the visitor's conversation (a system note is not theirs to send)."""

    role: Literal["user", "assistant"] = "user"
    content: str = Field(min_length=1, max_length=MAX_TURN_INPUT_CHARS)


class WidgetAskRequest(Model):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    history: list[WidgetTurn] = Field(default_factory=list, max_length=MAX_TURNS,
                                      description=f"Up to {MAX_TURNS} earlier turns, oldest first")


class WidgetCitation(Model):
    n: int = Field(description="The [n] the answer cites it by")
    title: str
    kind: str


class WidgetEscalation(Model):
    """An andon ticket was drafted for staff to confirm; the visitor is told, nothing is confirmed."""

    sla_minutes: int | None = None


class WidgetAnswer(Model):
    answer: str
    grounded: bool
    citations: list[WidgetCitation] = Field(default_factory=list)
    choices: list[str] = Field(default_factory=list)
    escalation: WidgetEscalation | None = None


FALLBACK_ANSWER = "这个问题我暂时无法在线解答，请联系人工客服。"


def widget_answer(response: AskResponse, may_read) -> WidgetAnswer:
    """What a public page may show of an answer: titles of public sources only, no staff-facing notes."""
    if any(not may_read(c.source) for c in response.citations):  # never expected: retrieval is public-only
        log.error("widget answer cited non-public knowledge; withheld")
        return WidgetAnswer(answer=FALLBACK_ANSWER, grounded=False)
    ticket = next((a for a in response.actions if a.type == "escalation_ticket"), None)
    text = response.answer
    escalation = None
    if ticket is not None:
        # The pipeline's escalation text asks staff to confirm the ticket; the visitor reads the first
        # answer and the widget's own note instead.
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("⚠️")]
        text = "\n".join(lines).strip().removeprefix("先按这条处理：").strip()
        escalation = WidgetEscalation(sla_minutes=ticket.arguments.get("sla_minutes"))
    return WidgetAnswer(answer=text, grounded=response.grounded, choices=response.choices, escalation=escalation,
                        citations=[WidgetCitation(n=i, title=c.title, kind=c.kind)
                                   for i, c in enumerate(response.citations, start=1)])


@router.post("/widget/api/ask", response_model=WidgetAnswer)
async def widget_ask(body: WidgetAskRequest, copilot: CopilotDep, caller: WidgetCallerDep) -> WidgetAnswer:
    """Answer a help-centre visitor: the support pipeline over public knowledge, without customer data."""
    # The same pipeline as /api/ask, minus the company's own customers: a public visitor must not
    # read the account book, nor a named account's contacts in an andon note.
    deps = dataclasses.replace(copilot.deps, accounts=None, account_book=None, tracked_milestones=None)
    history = [Turn.of(turn.content, turn.role) for turn in body.history]
    response = await run_in_threadpool(pipeline.answer, deps, body.question, WIDGET_ROLE, None, history,
                                       caller.actor, WIDGET_AUDIENCES)
    return widget_answer(response, reader_of(copilot.pack, WIDGET_AUDIENCES))


class WidgetFeedbackIn(FeedbackIn):
    """FeedbackIn as the widget sends it: always as role support."""

    role: Literal["support"] | None = None


@router.post("/widget/api/feedback", status_code=201)
def widget_feedback(body: WidgetFeedbackIn, copilot: CopilotDep, caller: WidgetCallerDep) -> dict:
    """Thumbs up / down on a widget answer, recorded as support under the widget's actor name."""
    return {"id": record_feedback(copilot.engine, copilot.audit, body, caller.actor, WIDGET_ROLE)}


@router.get("/widget.js", include_in_schema=False)
def widget_script(request: Request) -> Response:
    """The loader: one file that builds the widget inside a Shadow DOM on the host page."""
    script, etag = _script()
    headers = {"Cache-Control": f"public, max-age={SCRIPT_MAX_AGE_S}", "ETag": etag,
               "X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "cross-origin"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)


def _script() -> tuple[bytes, str]:
    data = WIDGET_JS.read_bytes()
    return data, f'"{hashlib.sha256(data).hexdigest()[:16]}"'


def register(app: FastAPI) -> None:
    settings: Settings = app.state.copilot.settings
    widget_origins(settings)  # a malformed COPILOT_WIDGET_KEYS fails at start-up
    app.state.widget_limiter = RateLimiter(settings.widget_asks_per_minute)
    app.include_router(router)
    app.add_middleware(WidgetCors, settings=settings)
