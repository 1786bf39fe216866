"""FastAPI app factory: `create_app(settings)` builds one self-contained app (one per test)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from copilot import __version__
from copilot.api.guard import InputGuard, allowed_hosts
from copilot.errors import CopilotError, Lang, validation_summary_zh
from copilot.modeling import Model
from copilot.service import Copilot
from copilot.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, warm: bool = True) -> FastAPI:
    settings = settings or Settings()
    copilot = Copilot(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        _ = copilot.action_runner  # settles actions a crashed process left executing
        if warm:  # load the index, the model and the classifier before the first request
            _ = copilot.deps
            copilot.decline_reference()  # measured once per knowledge base, kept in the data dir
        mcp_lifespan = getattr(_app.state, "mcp_lifespan", None)  # set by copilot.api.mcp.register
        if mcp_lifespan is None:
            yield
            return
        async with mcp_lifespan():  # the MCP SDK's session manager lives as long as the app
            yield

    app = FastAPI(title="Best-practice Copilot", version=__version__, lifespan=lifespan, responses=ERROR_RESPONSES,
                  docs_url=None, redoc_url=None,  # served offline by copilot/api/docs.py
                  description="Answers, peer cases, success plans and confirmed actions for SaaS go-to-market teams.")
    app.state.copilot = copilot
    _install_error_handlers(app)

    from copilot.api import routes, openai_compat

    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    _include_optional(app)
    # Added last, so they run first (before the routers' own middleware, e.g. sessions).
    app.add_middleware(InputGuard, respond=error_response)
    if (hosts := allowed_hosts(settings)) is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
    return app


def _include_optional(app: FastAPI) -> None:
    """Routers of the workflows and the web UI, when present."""
    import importlib

    for name in ("copilot.api.workflows", "copilot.api.knowledge", "copilot.api.accounts", "copilot.api.plans",
                 "copilot.api.users", "copilot.api.auth", "copilot.api.mcp", "copilot.api.channels",
                 "copilot.api.widget", "copilot.api.docs", "copilot.api.web"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


class ErrorDetail(Model):
    loc: list[str | int]
    msg: str


class ErrorInfo(Model):
    message: str = Field(description="What went wrong and what to do, in the caller's language (Chinese by default)")
    type: str = Field(description="Stable machine code, e.g. invalid_request_error, not_found, forbidden")
    details: list[ErrorDetail] | None = Field(default=None, description="Each invalid field (422 only)")


class ErrorResponse(Model):
    """Every error the API returns, whatever its status."""

    error: ErrorInfo


# Documented on every operation (instead of FastAPI's {"detail": …} shape, which this API never sends).
ERROR_RESPONSES: dict[int | str, dict] = {
    422: {"model": ErrorResponse, "description": "Invalid request: the fields that are wrong, and why"},
    "4XX": {"model": ErrorResponse, "description": "Refused: bad input, missing key, no permission, not found"},
}


def error_body(message: str, type_: str, details: object | None = None) -> dict:
    body: dict = {"error": {"message": message, "type": type_}}
    if details is not None:
        body["error"]["details"] = details
    return body


def request_language(request: Request) -> Lang:
    """English only when Accept-Language prefers it to Chinese; Chinese otherwise (the UI sends zh-CN)."""
    weighted = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, param = part.strip().lower().partition(";")
        try:
            weight = float(param.strip()[2:]) if param.strip().startswith("q=") else 1.0
        except ValueError:
            weight = 0.0
        if weight > 0 and tag.split("-")[0] in ("zh", "en"):
            weighted.append((weight, tag.split("-")[0]))
    # min() keeps the first of equal weights: the first listed wins a tie.
    return min(weighted, key=lambda w: -w[0])[1] if weighted else "zh"  # type: ignore[return-value]


# Chinese for the router's own errors (no such route, wrong method); other statuses keep the detail.
ZH_HTTP = {404: "接口不存在：{path}", 405: "这个接口不支持 {method} 请求"}


def _localized(request: Request, body: dict, status_code: int, headers: dict | None = None) -> JSONResponse:
    lang = request_language(request)
    return JSONResponse(body, status_code=status_code,
                        headers={**(headers or {}), "Content-Language": "zh-CN" if lang == "zh" else "en"})


def error_response(request: Request, message: tuple[str, str], type_: str, status_code: int) -> JSONResponse:
    """The JSON error for an (English, Chinese) message, in the caller's language."""
    english, chinese = message
    return _localized(request, error_body(chinese if request_language(request) == "zh" else english, type_),
                      status_code)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CopilotError)
    async def copilot_error(request: Request, exc: CopilotError) -> JSONResponse:
        message = exc.message_for(request_language(request))
        return _localized(request, error_body(message, exc.code), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors]
        if request_language(request) == "zh":
            message = validation_summary_zh(errors)
        else:
            first = details[0] if details else {"loc": [], "msg": "invalid request"}
            message = f"Invalid request: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return _localized(request, error_body(message, "invalid_request_error", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if (exc.status_code in ZH_HTTP and message == HTTPStatus(exc.status_code).phrase  # Starlette's default
                and request_language(request) == "zh"):
            message = ZH_HTTP[exc.status_code].format(path=request.url.path, method=request.method)
        return _localized(request, error_body(message, "http_error"), exc.status_code, exc.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug: JSON like every other error (the traceback is still logged by the server).
        return error_response(request, ("Internal server error; if it persists, tell the administrator",
                                         "服务器内部出错了，请稍后重试；如果一直出现，请联系管理员"), "server_error", 500)
