"""Fixtures and helpers shared by the workflow tests (cases, plans, actions, API).

Import the fixtures into a test module to use them. They run on the real bundled pack with a
temporary data dir; the pack's vectors ship in knowledge/embeddings, so indexing embeds nothing.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PACK_DIR, build_settings

API_KEYS = {"k-sales": "sales", "k-csm": "csm", "k-support": "support", "k-admin": "admin"}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer k-{role}"}


@pytest.fixture(scope="module")
def real_copilot(tmp_path_factory):
    """One Copilot over the shipped pack per test module (its index loads only when asked for)."""
    from copilot.service import Copilot

    return Copilot(build_settings(tmp_path_factory.mktemp("workflows"), PACK_DIR))


class WebhookReceiver:
    """A local HTTP endpoint that records what it is sent; it can be started after its port is known."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[dict] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append({"headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """Not listening until `.start()`: posts to it fail with a refused connection before that."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    receiver = WebhookReceiver(port)
    yield receiver
    receiver.stop()
