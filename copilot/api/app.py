"""FastAPI app factory: `create_app(settings)` builds one self-contained app (one per test)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from copilot import __version__
from copilot.errors import CopilotError
from copilot.service import Copilot
from copilot.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, warm: bool = True) -> FastAPI:
    settings = settings or Settings()
    copilot = Copilot(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if warm:  # load the index, the model and the classifier before the first request
            _ = copilot.deps
        yield

    app = FastAPI(title="Best-practice Copilot", version=__version__, lifespan=lifespan,
                  description="Answers, peer cases, success plans and confirmed actions for SaaS go-to-market teams.")
    app.state.copilot = copilot
    _install_error_handlers(app)

    from copilot.api import routes, openai_compat

    app.include_router(routes.router)
    app.include_router(openai_compat.router)
    _include_optional(app)
    return app


def _include_optional(app: FastAPI) -> None:
    """Routers of the workflows and the web UI, when present."""
    import importlib

    for name in ("copilot.api.workflows", "copilot.api.web"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


def error_body(message: str, type_: str, details: object | None = None) -> dict:
    body: dict = {"error": {"message": message, "type": type_}}
    if details is not None:
        body["error"]["details"] = details
    return body


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CopilotError)
    async def copilot_error(_request: Request, exc: CopilotError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), type(exc).__name__), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        message = f"Invalid request: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return JSONResponse(error_body(message, "invalid_request_error", details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), "http_error"), status_code=exc.status_code)
