"""What every request must satisfy before any route runs: a Host this server answers to, no control
characters, a JSON body of bounded size.

NUL and the other C0/C1 control characters have no business in an id, a filter or a question, and
Postgres refuses NUL in text outright (a 500 from deep inside a route). One pure ASGI middleware
checks the decoded path, the query string and every key and string of a JSON body, so no route has
to remember to; free text may keep tab, newline and carriage return.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot.settings import Settings

# (request, (English, Chinese) message, error type, status) -> the response to send.
Respond = Callable[[Request, tuple[str, str], str, int], ASGIApp]

# Far above the largest legitimate body (a plan with its 200,000-character Markdown, \u-escaped by
# clients that write ASCII-only JSON); file uploads are multipart and bounded by their own route.
MAX_JSON_BYTES = 4 * 1024 * 1024
# Control characters (Unicode Cc: C0, DEL, C1) and lone surrogates (unencodable); free text may
# keep tab, newline and carriage return.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def bad_character(text: str, free_text: bool = True) -> bool:
    """Whether `text` holds a character no request may carry (in free text: but tab and newlines)."""
    return (_FREE_TEXT_CONTROL if free_text else _ANY_CONTROL).search(text) is not None


Where = tuple[str, str]  # the place of a problem, in English and in Chinese


def url_problem(scope: Scope) -> Where | None:
    """Where the path or the query string holds a control character, if anywhere."""
    if bad_character(scope.get("path", ""), free_text=False):
        return "the path", "路径"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace"):
        if bad_character(name, free_text=False):
            return "the query string", "查询参数"
        if bad_character(value):
            return f"query parameter {name}", f"查询参数 {name} "
    return None


def json_problem(body: Any) -> Where | None:
    """Where a parsed JSON body holds a control character ("messages.0.content"), if anywhere."""
    stack: list[tuple[list[str], Any]] = [([], body)]
    while stack:  # iterative: a deeply nested body must not exhaust the recursion limit
        loc, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(([*loc, key], item) for key, item in value.items())
            if not any(bad_character(key, free_text=False) for key in value):
                continue
        elif isinstance(value, list):
            stack.extend(([*loc, str(i)], item) for i, item in enumerate(value))
            continue
        elif not isinstance(value, str) or not bad_character(value):
            continue
        field = ".".join(loc)
        return (f"field {field}", f"字段 {field} ") if field else ("the body", "请求体")
    return None


def _is_json(scope: Scope) -> bool:
    # FastAPI reads a body without a content type as JSON too.
    headers = dict(scope.get("headers") or [])
    media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return not media or media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _declared_length(scope: Scope) -> int | None:
    value = dict(scope.get("headers") or []).get(b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class InputGuard:
    """Pure ASGI middleware: refuses control characters in the URL and in JSON bodies (400) and JSON
    bodies over MAX_JSON_BYTES (413), with the API's JSON error body, in the caller's language."""

    def __init__(self, app: ASGIApp, respond: Respond, max_json_bytes: int = MAX_JSON_BYTES) -> None:
        self.app = app
        self.respond = respond
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if where := url_problem(scope):
            await self._refuse(scope, receive, send, 400, where)
            return
        if scope.get("method") in ("POST", "PUT", "PATCH", "DELETE") and _is_json(scope):
            if (_declared_length(scope) or 0) > self.max_json_bytes:
                await self._refuse(scope, receive, send, 413)
                return
            body, more = await self._read(receive)
            if more:
                await self._refuse(scope, receive, send, 413)
                return
            if where := self._body_problem(body):
                await self._refuse(scope, receive, send, 400, where)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The body, and whether it ran past the limit (then reading stopped there)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_json_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    @staticmethod
    def _body_problem(body: bytes) -> Where | None:
        if not body:
            return None
        try:
            parsed = json.loads(body)
        except Exception:  # not JSON (or absurdly nested): the route answers with its own 4xx
            return None
        return json_problem(parsed)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int,
                      where: Where | None = None) -> None:
        if where is None:
            limit = f"{self.max_json_bytes // (1024 * 1024)} MB"
            message = (f"The request body is larger than {limit}", f"请求内容超过 {limit} 的上限，请精简后重试")
        else:
            message = (f"Invalid request: {where[0]} contains a control character (such as NUL); remove it and retry",
                       f"请求有误：{where[1]}里有控制字符（如 NUL 空字符），请删掉后重试")
        response = self.respond(Request(scope), message, "invalid_request_error", status)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then passes on (to see a disconnect)."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if done:
            return await receive()
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# Hosts ------------------------------------------------------------------------------------------
# Starlette's TrustedHostMiddleware cuts the Host header at its first ":", so IPv6 literals
# ([::1]:8000) cannot be listed; use a name.
LOOPBACK_HOSTS = ["localhost", "127.0.0.1"]
LOOPBACK_BINDS = {"127.0.0.1", "localhost", "::1"}
WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def allowed_hosts(settings: Settings) -> list[str] | None:
    """Host header values the server answers to, or None for any.

    Bound to loopback with no trusted_hosts configured, nothing is checked: only this machine can
    connect. Otherwise a request must name this machine (the loopback names, its host name and, when
    bound to every interface, the addresses that name resolves to; else the bound address) or one of
    COPILOT_TRUSTED_HOSTS, so a forged Host header or a DNS-rebinding web page is refused with a 400.
    So `copilot serve --host 0.0.0.0` answers http://localhost:8000 and http://<hostname>:8000 at
    once; a public name (copilot.example.com) or another address must be listed in trusted_hosts.
    """
    trusted = list(settings.trusted_hosts)
    if "*" in trusted:
        return None
    if not trusted and settings.host in LOOPBACK_BINDS:
        return None
    hosts = [*LOOPBACK_HOSTS, *trusted]
    if settings.host not in LOOPBACK_BINDS:
        hosts += _machine_names() if settings.host in WILDCARD_BINDS else [settings.host]
    return list(dict.fromkeys(hosts))


def _machine_names() -> list[str]:
    name = socket.gethostname()
    try:
        addresses = [str(info[4][0]) for info in socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)]
    except OSError:  # the host name does not resolve: the name alone
        addresses = []
    return [name, *addresses]

