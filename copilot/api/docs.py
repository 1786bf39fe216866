"""API docs that work offline: Swagger UI at /docs from assets shipped in a Python package.

FastAPI's own /docs and /redoc load their JavaScript and CSS from a CDN, so they are blank on a
machine without internet. Here Swagger UI's files come from the `swagger-ui-py` package (Swagger UI
5.x, Apache-2.0; its LICENSE file is served next to them) and are served under /static/swagger-ui/.
There is no offline ReDoc bundle in any Python package, so /redoc sends readers to /docs.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount

log = logging.getLogger(__name__)

ASSETS_URL = "/static/swagger-ui"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def swagger_ui_dir() -> Path | None:
    """The folder of Swagger UI's built files inside the installed `swagger_ui` package (found
    without importing it: only its files are used); None when it is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def register(app: FastAPI) -> None:
    """Swagger UI at /docs, its assets under /static/swagger-ui/, /redoc -> /docs."""
    assets = swagger_ui_dir()
    if assets is None:  # still usable online: FastAPI's CDN links
        log.warning("swagger-ui-py is not installed (pip install swagger-ui-py): /docs loads Swagger UI from a CDN")
        js, css = {}, {}
    else:
        # First in the routing table: the web UI mounts /static as a whole, which would otherwise
        # answer /static/swagger-ui/* with a 404.
        app.router.routes.insert(0, Mount(ASSETS_URL, app=StaticFiles(directory=assets), name="swagger-ui"))
        js = {"swagger_js_url": f"{ASSETS_URL}/swagger-ui-bundle.js"}
        css = {"swagger_css_url": f"{ASSETS_URL}/swagger-ui.css"}
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} — API",
            **js, **css,
            swagger_favicon_url="/static/favicon.svg", oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            # No badge fetched from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse(DOCS_URL)
