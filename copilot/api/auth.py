"""Browser sessions and optional single sign-on with any OpenID Connect provider (Authlib).

A signed cookie (`copilot_session`) holds only the signed-in user's id; `deps.get_principal`
looks the user up on every request, so disabling someone ends their sessions at once. Sign-in
is the authorization-code flow with PKCE: Authlib checks state, nonce and the ID token
(signature against the provider's JWKS, iss, aud, exp). A person is matched by subject, or on
first sign-in by a *verified* email an admin registered (`copilot users add NAME --email ...`);
anyone else is refused and gets no session.

The cookie is `SameSite=Lax` and not `Secure` (the app cannot tell whether a TLS proxy sits in
front of it); serve it over HTTPS anyway. Cross-site writes with the cookie are refused below.
"""

from __future__ import annotations

import html
import logging
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from copilot.api.app import error_body, request_language
from copilot.api.deps import SESSION_USER
from copilot.errors import ConfigError, NotFound
from copilot.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "copilot_session"
SESSION_MAX_AGE_S = 12 * 3600  # idle time: the cookie is re-issued with every response
NEXT_KEY = "auth_next"
PROVIDER = "oidc"

router = APIRouter(tags=["sign-in"])


def register(app: FastAPI) -> None:
    """Sessions always (a signed-in browser is one way to call); sign-in routes when OIDC is set."""
    settings: Settings = app.state.copilot.settings
    app.state.oauth = _oauth_client(settings)
    app.add_middleware(RefuseCrossSiteWrites)
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie=SESSION_COOKIE,
                       max_age=SESSION_MAX_AGE_S, same_site="lax", https_only=False)
    app.include_router(router)


class SingleSignOnOff(NotFound):
    code = "sso_not_configured"


# Secrets and the provider ------------------------------------------------------------------------
def session_secret(settings: Settings) -> str:
    """COPILOT_SESSION_SECRET, else one generated into the data dir (0600) and shared by all workers."""
    if settings.session_secret:
        return settings.session_secret
    path = settings.ensure_data_dir() / "session-secret"
    if not path.exists():
        # Write aside, then link into place: exactly one worker's secret wins, and nobody reads half a file.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".session-secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            Path(temp).unlink(missing_ok=True)
    return path.read_text().strip()


def _oauth_client(settings: Settings):
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_client_id:
        raise ConfigError("COPILOT_OIDC_ISSUER is set but COPILOT_OIDC_CLIENT_ID is not",
                          zh="已设置 COPILOT_OIDC_ISSUER，但缺少 COPILOT_OIDC_CLIENT_ID")
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    client_kwargs = {"scope": settings.oidc_scopes, "code_challenge_method": "S256"}
    if not settings.oidc_client_secret:  # a public client: PKCE alone proves the caller
        client_kwargs["token_endpoint_auth_method"] = "none"
    return oauth.register(
        PROVIDER, client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=client_kwargs)


def safe_next(value: str | None) -> str:
    """A path on this server to return to; anything else (another host, a scheme) becomes "/"."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):  # browsers drop tabs/newlines: "/\t/evil"
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


# Routes -----------------------------------------------------------------------------------------
@router.get("/auth/login")
async def login(request: Request, next: str | None = None):  # noqa: A002 - the query parameter's name
    """Go to the company's identity provider; come back to `next` (a path on this server)."""
    client = _client(request)
    request.session[NEXT_KEY] = safe_next(next)
    try:
        return await client.authorize_redirect(request, str(request.url_for("auth_callback")))
    except httpx.HTTPError as exc:
        log.warning("single sign-on: provider metadata unavailable: %s", exc)
        return _refusal(request, 502, "provider_unavailable", "The company sign-in service cannot be reached; try again later",
                        "暂时连不上企业登录服务，请稍后再试")


@router.get("/auth/callback", name="auth_callback")
async def callback(request: Request):
    """The provider sends the browser back here with a code; a known person gets a session."""
    from authlib.integrations.base_client import OAuthError

    client = _client(request)
    next_path = safe_next(request.session.get(NEXT_KEY))
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        request.session.clear()
        log.info("single sign-on failed: %s", exc)
        return _refusal(request, 400, "sign_in_failed", "Sign-in did not complete; start again from the sign-in link",
                        "登录没有完成，请重新点击“企业账号登录”")
    except httpx.HTTPError as exc:
        request.session.clear()
        log.warning("single sign-on: provider unavailable: %s", exc)
        return _refusal(request, 502, "provider_unavailable", "The company sign-in service cannot be reached; try again later",
                        "暂时连不上企业登录服务，请稍后再试")
    claims = token.get("userinfo") or {}  # the validated ID token's claims
    user = _person(request, claims)
    request.session.clear()
    if user is None:
        return _refusal(request, 403, "not_registered", "Your company account has not been set up here; ask an admin",
                        "你的企业账号还没有开通，请联系管理员")
    request.session[SESSION_USER] = user.id
    request.app.state.copilot.audit.record(user.name, "signed_in", user.name, {"via": "single_sign_on"})
    return RedirectResponse(next_path, status_code=303)


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    """End this browser's session (a form post is sent home; a script gets 204)."""
    request.session.clear()
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/", status_code=303)
    return Response(status_code=204)


def _client(request: Request):
    client = request.app.state.oauth
    if client is None:
        raise SingleSignOnOff("Single sign-on is not configured on this server (set COPILOT_OIDC_ISSUER); use your key",
                              zh="本服务没有开通企业账号登录（未设置 COPILOT_OIDC_ISSUER），请使用密钥登录")
    return client


def _person(request: Request, claims: dict):
    """The active user these ID-token claims belong to; an email counts only when the provider verified it."""
    subject = claims.get("sub")
    if not subject:
        return None
    verified = claims.get("email_verified") in (True, "true")  # a few providers send the string
    email = claims.get("email") if verified else None
    user = request.app.state.copilot.users.link_single_sign_on(str(subject), email)
    if user is None:
        request.app.state.copilot.audit.record("single-sign-on", "sign_in_refused", None, {
            "email": claims.get("email"), "email_verified": verified})
    return user


def _refusal(request: Request, status: int, code: str, english: str, chinese: str) -> Response:
    """An error a person reads in their browser (HTML), or a JSON error for scripts."""
    lang = request_language(request)
    message = english if lang == "en" else chinese
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse(error_body(message, code), status_code=status,
                            headers={"Content-Language": "zh-CN" if lang == "zh" else "en"})
    page = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录</title>'
            f'<link rel="stylesheet" href="/static/app.css"></head><body><main class="main">'
            f'<h1>企业账号登录</h1><p id="auth-error">{html.escape(message)}</p>'
            f'<p><a href="/">返回首页</a></p></main></body></html>')
    return HTMLResponse(page, status_code=status)


# Cross-site writes --------------------------------------------------------------------------------
class RefuseCrossSiteWrites:
    """A write that rides on the session cookie must come from this site's own pages.

    SameSite=Lax already keeps the cookie off cross-site POSTs; this also covers sibling subdomains
    ("same-site") and older browsers. Browsers label requests with Sec-Fetch-Site; scripts and
    callers with a key send neither the label nor the cookie and are not affected.
    """

    UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self.UNSAFE:
            headers = dict(scope["headers"])
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
            cookie = headers.get(b"cookie", b"").decode("latin-1")
            if site in ("cross-site", "same-site") and f"{SESSION_COOKIE}=" in cookie:
                response = JSONResponse(error_body("Cross-site requests cannot use your session", "forbidden"),
                                        status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
