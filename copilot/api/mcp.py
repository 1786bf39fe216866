"""MCP over streamable HTTP at /mcp, on the same app, port and identity as the HTTP API.

The caller is resolved by `deps.get_principal`, exactly as for /api/*: a person's or a service key in
`Authorization: Bearer <key>` (or a signed-in session); keyless local mode is the local admin; an
unknown or missing key when keys are required is refused with the API's 401 JSON before any MCP
message is read. The principal travels to the tools in the request's ASGI scope.

Stateless JSON mode: every POST is self-contained (no session held in a worker's memory), so it works
behind several uvicorn workers and a load balancer. The SDK's session manager runs inside the app's
lifespan (`app.state.mcp_lifespan`, entered by `create_app`), a fresh one per lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from copilot.api.deps import get_principal
from copilot.errors import CopilotError
from copilot.mcp_server import PRINCIPAL_SCOPE_KEY, build_server

MCP_PATH = "/mcp"


def register(app: FastAPI) -> None:
    server = build_server(app.state.copilot)
    endpoint = McpEndpoint()

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # Host and Origin checks are the app's own (TrustedHostMiddleware, keys); the SDK's
        # loopback-only default would refuse a server bound to a LAN name.
        server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                   transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        manager = server.session_manager  # a new one each time: a manager runs only once
        async with manager.run():
            endpoint.handle = manager.handle_request
            try:
                yield
            finally:
                endpoint.handle = None

    app.state.mcp_lifespan = lifespan
    app.router.routes.append(Route(MCP_PATH, endpoint=endpoint, include_in_schema=False))


class McpEndpoint:
    """ASGI endpoint: authenticate as the API does, then hand the request to the SDK."""

    def __init__(self) -> None:
        self.handle = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from copilot.api.app import error_body, error_response

        request = Request(scope, receive)
        try:
            request.app.state.copilot.refresh_if_changed()
            scope[PRINCIPAL_SCOPE_KEY] = get_principal(request)
        except CopilotError as exc:
            response = error_response(request, (exc.message_for("en"), exc.message_for("zh")), exc.code,
                                      exc.http_status)
            if exc.http_status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        if self.handle is None:  # the app was called without its lifespan
            from fastapi.responses import JSONResponse

            body = error_body("MCP is not running: serve the app with its lifespan (uvicorn does)", "unavailable")
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        await self.handle(scope, receive, send)
