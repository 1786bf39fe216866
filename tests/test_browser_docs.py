"""The API docs work offline: /docs references only assets this server ships, and Swagger UI renders
the operations in Chromium with every request to another host blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from test_browser import browser_test, chromium  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """The real app on a loopback port (no index warm-up: the docs do not need it)."""
    from copilot.api.app import create_app
    from copilot.api.background import ServerThread
    from copilot.settings import Settings

    app = create_app(Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("docs-data")), warm=False)
    with ServerThread(app) as running:
        yield running.url


def test_docs_reference_only_local_assets_that_are_served(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url:\s*'([^']+)'", page.text)
        assert urls and not [u for u in urls if urlparse(u).netloc], urls
        assert "http://" not in page.text and "https://" not in page.text
        assets = [u for u in urls if u.startswith("/static/")]
        assert {"/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"} <= set(assets)
        for url in assets:
            response = client.get(url)
            assert response.status_code == 200, url
        assert "javascript" in client.get("/static/swagger-ui/swagger-ui-bundle.js").headers["content-type"]
        assert "text/css" in client.get("/static/swagger-ui/swagger-ui.css").headers["content-type"]
        assert "Apache License" in client.get("/static/swagger-ui/LICENSE").text
        assert client.get("/static/app.css").status_code == 200  # the web UI's own /static still answers
        redoc = client.get("/redoc", follow_redirects=False)
        assert redoc.status_code in (302, 307) and redoc.headers["location"] == "/docs"
        assert client.get("/openapi.json").json()["paths"]


@browser_test
def test_docs_render_the_operations_with_the_internet_blocked(chromium, server):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    context.set_default_timeout(20_000)
    blocked: list[str] = []
    local = urlparse(server).netloc

    def only_this_server(route):
        if urlparse(route.request.url).netloc == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/docs")
        page.wait_for_selector(".opblock", state="visible")
        assert page.locator(".opblock").count() > 10
        assert page.locator(".info .title").first.inner_text().startswith("Best-practice Copilot")
        assert page.get_by_text("/api/actions", exact=False).first.is_visible()
        assert page.locator(".errors-wrapper").count() == 0  # the OpenAPI 3.1 document parsed
    finally:
        context.close()
    assert not errors, errors
    assert not blocked, f"requests to other hosts: {blocked}"
