"""A small, real OpenID Connect provider for the tests: the company's identity provider at the
network edge. Discovery, JWKS, an /authorize that signs in whoever the test set as `identity`
(no login form), a /token that checks the client, the code, its redirect URI and PKCE and
returns an RS256 ID token, and /userinfo."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from copilot.api.background import ServerThread

CLIENT_ID = "copilot-test"
CLIENT_SECRET = "copilot-test-secret"


@dataclass
class Identity:
    """Who the provider says is signing in."""

    sub: str
    email: str | None = None
    email_verified: bool = True
    name: str = ""

    def claims(self) -> dict:
        claims = {"sub": self.sub, "name": self.name}
        if self.email is not None:
            claims |= {"email": self.email, "email_verified": self.email_verified}
        return claims


@dataclass
class Provider:
    """The provider's state; tests set `identity` before each sign-in."""

    identity: Identity = field(default_factory=lambda: Identity("sub-0"))
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"}, private=True))
    codes: dict[str, dict] = field(default_factory=dict)
    access_tokens: dict[str, Identity] = field(default_factory=dict)
    token_requests: int = 0

    def id_token(self, identity: Identity, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **identity.claims()}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


def _error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _client_credentials(request: Request, form) -> tuple[str | None, str | None]:
    """client_secret_basic (Authlib's default) or client_secret_post."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _app(provider: Provider) -> FastAPI:
    app = FastAPI()

    @app.get("/.well-known/openid-configuration")
    def discovery():
        base = provider.issuer
        return {"issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo", "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", "profile"]}

    @app.get("/jwks")
    def jwks():
        return {"keys": [provider.key.as_dict(private=False)]}

    @app.get("/authorize")
    def authorize(request: Request):
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return _error("invalid_request")
        code = secrets.token_urlsafe(16)
        provider.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                                "challenge": q.get("code_challenge"), "identity": provider.identity}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}",
                                status_code=302)

    @app.post("/token")
    async def token(request: Request):
        provider.token_requests += 1
        form = await request.form()
        if _client_credentials(request, form) != (CLIENT_ID, CLIENT_SECRET):
            return _error("invalid_client", 401)
        grant = provider.codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return _error("invalid_grant")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant["challenge"] and digest != grant["challenge"]:
            return _error("invalid_grant")
        access_token = secrets.token_urlsafe(16)
        provider.access_tokens[access_token] = grant["identity"]
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                "id_token": provider.id_token(grant["identity"], grant["nonce"])}

    @app.get("/userinfo")
    def userinfo(request: Request):
        identity = provider.access_tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))
        return identity.claims() if identity else _error("invalid_token", 401)

    return app


def start_provider() -> tuple[Provider, ServerThread]:
    """`provider, server = start_provider(); with server: ...` (the issuer is the server's URL)."""
    provider = Provider()
    server = ServerThread(_app(provider))
    provider.issuer = server.url
    return provider, server
