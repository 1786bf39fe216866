"""Single sign-on against a real (local) OpenID Connect provider: people an admin registered by
email sign in with their company account and are named in everything they do; anyone else, an
unverified email or a disabled person gets no session; `next` never leaves the server."""

from __future__ import annotations

import stat
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from copilot.api.app import create_app
from copilot.api.auth import SESSION_COOKIE, safe_next, session_secret
from copilot.cli import app as cli_app
from tests.conftest import build_settings
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, Identity, Provider, start_provider
from tests.test_browser import CHROMIUM_ARGS, CHROMIUM, browser_test

runner = CliRunner()
LI_LEI = Identity("idp-li-lei", "li.lei@example.com", name="李雷")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    provider, server = start_provider()
    with server:
        yield provider


def sso_settings(tmp_path, pack, provider: Provider, **overrides):
    return build_settings(tmp_path, pack, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                          oidc_client_secret=CLIENT_SECRET, **overrides)


@pytest.fixture
def settings(tmp_path, tiny_pack_dir, provider):
    return sso_settings(tmp_path, tiny_pack_dir, provider)


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, warm=False)) as test_client:
        yield test_client


def add_user(settings, name: str, role: str, email: str) -> None:
    """As an admin would: `copilot users add NAME --role ROLE --email EMAIL --no-key`."""
    env = {"COPILOT_KNOWLEDGE_DIR": str(settings.knowledge_dir)}
    if settings.database_url:
        env["COPILOT_DATABASE_URL"] = settings.database_url
    added = runner.invoke(cli_app, ["users", "add", name, "--role", role, "--email", email, "--no-key",
                                    "--data-dir", str(settings.data_dir)], env=env)
    assert added.exit_code == 0, added.output


def sign_in(client: TestClient, provider: Provider, identity: Identity, next_path: str | None = None,
            accept: str = "application/json") -> httpx.Response:
    """Follow the redirects by hand: app -> provider (real HTTP) -> app; returns the callback's answer."""
    provider.identity = identity
    login = client.get("/auth/login", params={"next": next_path} if next_path else None, follow_redirects=False)
    assert login.status_code == 302, login.text
    assert login.headers["location"].startswith(f"{provider.issuer}/authorize?")
    approved = httpx.get(login.headers["location"], follow_redirects=False)
    assert approved.status_code == 302, approved.text
    back = approved.headers["location"]
    assert back.startswith("http://testserver/auth/callback?")
    return client.get(back, follow_redirects=False, headers={"accept": accept})


def assert_refused(response: httpx.Response, client: TestClient, status: int = 403) -> None:
    assert response.status_code == status, response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 401


# The flow ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_registered_person_signs_in_and_is_named_in_what_they_do(request, database, tmp_path, tiny_pack_dir,
                                                                   provider):
    extra = {"database_url": request.getfixturevalue("postgres_url")} if database == "postgres" else {}
    settings = sso_settings(tmp_path, tiny_pack_dir, provider, **extra)
    add_user(settings, "李雷", "knowledge", "Li.Lei@Example.com")  # the provider's case differs
    with TestClient(create_app(settings, warm=False)) as client:
        assert client.get("/api/me").status_code == 401

        done = sign_in(client, provider, LI_LEI, next_path="/knowledge?tab=faqs")
        assert done.status_code == 303 and done.headers["location"] == "/knowledge?tab=faqs"
        cookie = done.headers["set-cookie"].lower()
        assert cookie.startswith(f"{SESSION_COOKIE}=") and "httponly" in cookie and "samesite=lax" in cookie

        me = client.get("/api/me").json()
        assert (me["name"], me["role"], me["role_label"]) == ("李雷", "knowledge", "知识管理员")
        assert me["signed_in"] is True and me["single_sign_on"] is True
        proposed = client.post("/api/knowledge/items/faq-refund/changes", json={"change": "retire", "reason": "过期"})
        assert proposed.status_code == 201, proposed.text
        assert proposed.json()["proposed_by"] == "李雷"
        copilot = client.app.state.copilot
        assert copilot.users.get("李雷").single_sign_on
        assert [e["actor"] for e in copilot.audit.entries(event="signed_in")] == ["李雷"]

        # Linked by subject now: a changed email at the provider still finds the same person.
        assert client.post("/auth/logout").status_code == 204
        assert client.get("/api/me").status_code == 401
        renamed = Identity(LI_LEI.sub, "lilei@new-domain.example", email_verified=False)
        assert sign_in(client, provider, renamed).status_code == 303
        assert client.get("/api/me").json()["name"] == "李雷"


def test_an_unknown_person_is_refused_and_gets_no_session(settings, client, provider):
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    stranger = Identity("idp-stranger", "stranger@example.com")
    refused = sign_in(client, provider, stranger)
    assert_refused(refused, client)
    assert refused.json()["error"]["message"] == "你的企业账号还没有开通，请联系管理员"
    page = sign_in(client, provider, stranger, accept="text/html")
    assert_refused(page, client)
    assert "你的企业账号还没有开通，请联系管理员" in page.text and page.headers["content-type"].startswith("text/html")
    refusals = client.app.state.copilot.audit.entries(event="sign_in_refused")
    assert [e["payload"]["email"] for e in refusals] == ["stranger@example.com"] * 2


def test_a_disabled_persons_session_stops_working_at_once(settings, client, provider):
    add_user(settings, "韩梅梅", "csm", "han.meimei@example.com")
    han = Identity("idp-han", "han.meimei@example.com")
    assert sign_in(client, provider, han).status_code == 303
    assert client.get("/api/me").json()["name"] == "韩梅梅"
    client.app.state.copilot.users.set_active("韩梅梅", False, "admin")
    assert client.get("/api/me").status_code == 401
    assert_refused(sign_in(client, provider, han), client)  # and cannot sign in again


def test_an_unverified_email_is_not_enough(settings, client, provider):
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    unverified = Identity("idp-someone-else", LI_LEI.email, email_verified=False)
    assert_refused(sign_in(client, provider, unverified), client)
    assert not client.app.state.copilot.users.get("李雷").single_sign_on  # nothing was linked


def test_next_never_leaves_the_server(settings, client, provider):
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    done = sign_in(client, provider, LI_LEI, next_path="//evil.com/phish")
    assert done.status_code == 303 and done.headers["location"] == "/"
    for unsafe in ("//evil.com", "https://evil.com/", "/\\evil.com", "/\t/evil.com", "javascript:alert(1)", "", None):
        assert safe_next(unsafe) == "/", unsafe
    assert safe_next("/plans?account=a-1#top") == "/plans?account=a-1#top"


def test_a_callback_without_this_browsers_sign_in_is_refused(settings, client, provider, tiny_pack_dir):
    """Login CSRF: a code obtained in one browser cannot be used to sign in another."""
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    provider.identity = LI_LEI
    login = client.get("/auth/login", follow_redirects=False)
    back = httpx.get(login.headers["location"], follow_redirects=False).headers["location"]
    with TestClient(client.app) as victim:
        assert_refused(victim.get(back, follow_redirects=False), victim, status=400)


def test_without_oidc_sign_in_says_so(tmp_path, tiny_pack_dir):
    settings = build_settings(tmp_path, tiny_pack_dir)
    with TestClient(create_app(settings, warm=False)) as client:
        for path in ("/auth/login", "/auth/callback?code=x&state=y"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404
            error = response.json()["error"]
            assert error["type"] == "sso_not_configured" and "企业账号登录" in error["message"]
        english = client.get("/auth/login", headers={"accept-language": "en"}).json()["error"]["message"]
        assert "COPILOT_OIDC_ISSUER" in english and "not configured" in english
        assert client.get("/api/me").json()["single_sign_on"] is False


def test_the_session_secret_is_generated_once_and_private(tmp_path, tiny_pack_dir):
    settings = build_settings(tmp_path, tiny_pack_dir)
    secret = session_secret(settings)
    path = settings.data_dir / "session-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(secret) >= 48
    assert session_secret(build_settings(tmp_path, tiny_pack_dir)) == secret  # every worker signs alike
    assert session_secret(build_settings(tmp_path, tiny_pack_dir, session_secret="s" * 40)) == "s" * 40


def test_cross_site_writes_cannot_ride_on_the_session(settings, client, provider):
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    sign_in(client, provider, LI_LEI)
    body = {"change": "retire", "reason": "过期"}
    forged = client.post("/api/knowledge/items/faq-refund/changes", json=body, headers={"sec-fetch-site": "cross-site"})
    assert forged.status_code == 403
    own = client.post("/api/knowledge/items/faq-refund/changes", json=body, headers={"sec-fetch-site": "same-origin"})
    assert own.status_code == 201, own.text


# In the browser ----------------------------------------------------------------------------------
@browser_test
def test_the_top_bar_signs_in_through_the_company_account(tmp_path, tiny_pack_dir, provider):
    from playwright.sync_api import expect, sync_playwright

    from copilot.api.background import ServerThread

    settings = sso_settings(tmp_path, tiny_pack_dir, provider)
    add_user(settings, "李雷", "knowledge", LI_LEI.email)
    provider.identity = LI_LEI
    with ServerThread(create_app(settings, warm=False)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="zh-CN", base_url=server.url)
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("/knowledge")
            page.wait_for_load_state("networkidle")  # the page's own requests have been answered
            login = page.locator("#sso-login")
            expect(login).to_be_visible()
            expect(login).to_have_text("企业账号登录")
            # The page's other requests are refused too (401); they must not cover the link with the key dialog.
            expect(page.locator("#key-dialog")).to_be_hidden()
            with page.expect_request(f"{provider.issuer}/authorize?*"):
                login.click()
            page.wait_for_url(f"{server.url}/knowledge")  # and back from the provider
            expect(page.locator("#me-name")).to_have_text("李雷")
            expect(page.locator("#me-role")).to_have_text("知识管理员")
            expect(login).to_be_hidden()
            assert not errors, errors
        finally:
            browser.close()
