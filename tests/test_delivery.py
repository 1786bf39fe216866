"""Delivery of confirmed actions: email through a real local SMTP server (aiosmtpd) and the signed
webhook (a local HTTP receiver that keeps the raw bytes), through the real action runner."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PACK_DIR, build_settings
from copilot.api.background import free_port
from copilot.executors import (SIGNATURE_HEADER, TIMESTAMP_HEADER, WEBHOOK_VERSION, EmailExecutor, sign_webhook,
                               verify_webhook, webhook_body)
from copilot.models import Decision

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a dev dependency (pip install aiosmtpd)")

APPROVE = Decision(decision="approve", comment="发吧")
ONEPAGER = "# 案例一页纸：华东连锁\n\n- 门店 **120** 家\n- 上线 6 周见效\n"


@pytest.fixture(scope="module")
def pack():
    from copilot.knowledge.pack import load_pack

    return load_pack(PACK_DIR)


@pytest.fixture
def make(tmp_path, pack):
    from copilot.service import Copilot

    def factory(**overrides):
        copilot = Copilot(build_settings(tmp_path, PACK_DIR, **overrides))
        copilot.pack = pack
        return copilot

    return factory


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.content, policy=default_policy)})
        return "250 Message accepted for delivery"


class SmtpServer:
    """A local SMTP server on a port known before it listens (so a test can start it late)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.stop()


def smtp_settings(server: SmtpServer, **more) -> dict:
    return {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_starttls": False,
            "email_from": "copilot@vendor.example.com", **more}


def onepager(copilot, **arguments):
    args = {"case_id": "case-1", "company": "华东连锁", "recipient": "王经理",
            "contact": {"name": "王经理", "email": "wang@prospect.example.com"}, "markdown": ONEPAGER, **arguments}
    return copilot.actions.propose("send_case_onepager", "发送案例一页纸「华东连锁」给 王经理", args, "seller", "sales")


class TestEmail:
    def test_a_confirmed_onepager_arrives_by_email(self, make, smtp):
        smtp.start()
        copilot = make(**smtp_settings(smtp))
        action = onepager(copilot)
        done = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert done.status == "executed", done.error
        assert len(smtp.inbox.messages) == 1
        got = smtp.inbox.messages[0]
        assert got["rcpt_tos"] == ["wang@prospect.example.com"] and got["mail_from"] == "copilot@vendor.example.com"
        message = got["message"]
        assert message["Subject"] == "案例一页纸：华东连锁"
        assert message["Message-ID"].strip() == f"<copilot-action-{action.id}@vendor.example.com>"
        plain = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert plain.replace("\r\n", "\n").strip() == ONEPAGER.strip()  # CRLF on the wire
        assert "<h1>案例一页纸：华东连锁</h1>" in html and "<strong>120</strong>" in html
        assert done.result["email"]["message_id"] == message["Message-ID"].strip()
        assert (copilot.settings.outbox / f"{action.id}.md").exists()  # the outbox still runs first

    def test_smtp_down_fails_clearly_and_a_retry_delivers_once(self, make, smtp):
        copilot = make(**smtp_settings(smtp, smtp_timeout_s=3))  # nothing listens yet
        action = onepager(copilot)
        failed = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert "Connection" in failed.error or "refused" in failed.error.lower()

        smtp.start()
        done = copilot.action_runner.retry(action.id, "sales-user", "sales")
        assert (done.status, done.attempts, done.error) == ("executed", 2, None)
        assert len(smtp.inbox.messages) == 1
        assert smtp.inbox.messages[0]["message"]["Message-ID"].strip() == f"<copilot-action-{action.id}@vendor.example.com>"

    def test_a_named_recipient_without_an_address_fails_and_is_retryable(self, make, smtp):
        smtp.start()
        copilot = make(**smtp_settings(smtp, email_default_to="team@vendor.example.com"))
        action = onepager(copilot, contact={"name": "王经理"})
        failed = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert failed.status == "failed" and "王经理" in failed.error and "email" in failed.error
        assert smtp.inbox.messages == []  # never to the default inbox instead of the customer

    def test_an_explicit_address_is_used_and_validated(self, make, smtp):
        smtp.start()
        copilot = make(**smtp_settings(smtp))
        bad = onepager(copilot, email="not-an-address@", contact=None)
        failed = copilot.action_runner.confirm(bad.id, APPROVE, "sales-user", "sales")
        assert failed.status == "failed" and "not a valid email address" in failed.error
        injected = EmailExecutor("127.0.0.1").recipient
        with pytest.raises(ValueError):
            injected({"id": "x", "arguments": {"email": "a@example.com\r\nBcc: evil@example.com"}})
        assert injected({"id": "x", "arguments": {"recipient": "li@customer.example.cn"}}) == "li@customer.example.cn"

    def test_without_smtp_email_is_skipped_with_a_note(self, make):
        copilot = make()
        action = onepager(copilot)
        done = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert done.status == "executed" and "COPILOT_SMTP_HOST" in done.result["email"]["skipped"]

    def test_a_task_naming_nobody_goes_to_the_default_address_or_is_skipped(self, make, smtp):
        smtp.start()
        task = {"customer": "华东连锁", "title": "启动 QBR", "account_id": "a1", "playbook_id": "p1",
                "markdown": "# 客户任务：启动 QBR\n"}
        copilot = make(**smtp_settings(smtp))
        action = copilot.actions.propose("account_task", "为华东连锁安排「启动 QBR」", task, "csm-a", "csm")
        done = copilot.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")
        assert done.status == "executed" and "COPILOT_EMAIL_DEFAULT_TO" in done.result["email"]["skipped"]

        copilot = make(**smtp_settings(smtp, email_default_to="cs-team@vendor.example.com"))
        action = copilot.actions.propose("account_task", "为华东连锁安排「启动 QBR」", task, "csm-a", "csm")
        done = copilot.action_runner.confirm(action.id, APPROVE, "csm-user", "csm")
        assert done.status == "executed" and smtp.inbox.messages[-1]["rcpt_tos"] == ["cs-team@vendor.example.com"]

    def test_reconcile_cannot_know_whether_an_email_was_sent(self, smtp):
        executor = EmailExecutor("127.0.0.1", smtp.port, starttls=False)
        action = {"id": "a-1", "arguments": {"email": "x@example.com", "markdown": "# hi"}}
        assert executor.done(action) is None
        assert EmailExecutor(None).done(action) == {"skipped": "no SMTP server configured (COPILOT_SMTP_HOST)"}


class RawReceiver:
    """Keeps the raw body and headers of each POST."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = RawReceiver()
    yield running
    running.close()


SECRET = "whsec-test-3f9a1c"


class TestSignedWebhook:
    def test_the_signature_verifies_and_tampering_fails(self, make, receiver):
        copilot = make(webhook_url=receiver.url, webhook_secret=SECRET, api_keys={"sk-live-abc": "admin"},
                       smtp_password="smtp-pass-xyz")
        action = onepager(copilot)
        done = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert done.status == "executed" and done.result["webhook"]["signed"] is True
        [sent] = receiver.requests
        headers, body = sent["headers"], sent["body"]
        timestamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        assert signature.startswith("sha256=") and headers["Idempotency-Key"] == action.id
        assert verify_webhook(SECRET, timestamp, body, signature)

        payload = json.loads(body)
        assert (payload["event"], payload["version"]) == ("action.approved", WEBHOOK_VERSION)
        assert payload["id"] == action.id and payload["type"] == "send_case_onepager"
        assert payload["arguments"]["markdown"] == ONEPAGER
        for secret in (SECRET, "sk-live-abc", "smtp-pass-xyz"):  # no key material travels
            assert secret.encode() not in body and secret not in json.dumps(headers)

        tampered = body.replace("华东连锁".encode(), "华西连锁".encode())
        assert tampered != body and not verify_webhook(SECRET, timestamp, tampered, signature)
        assert not verify_webhook("another-secret", timestamp, body, signature)
        assert not verify_webhook(SECRET, str(int(timestamp) + 1), body, signature)
        assert not verify_webhook(SECRET, timestamp, body, "sha256=" + "0" * 64)
        assert not verify_webhook(SECRET, timestamp, body, None)
        assert not verify_webhook(SECRET, "soon", body, signature)

    def test_an_old_timestamp_is_refused(self):
        body = webhook_body({"id": "a-1", "type": "share_plan"})
        signature = sign_webhook(SECRET, "1700000000", body)
        assert verify_webhook(SECRET, "1700000000", body, signature, now=1700000100)
        assert not verify_webhook(SECRET, "1700000000", body, signature, now=1700000000 + 301)
        assert not verify_webhook(SECRET, "1700000000", body, signature, tolerance_s=10, now=1700000011)

    def test_without_a_secret_it_is_sent_unsigned(self, make, receiver):
        copilot = make(webhook_url=receiver.url)
        action = onepager(copilot)
        done = copilot.action_runner.confirm(action.id, APPROVE, "sales-user", "sales")
        assert done.status == "executed" and done.result["webhook"]["signed"] is False
        [sent] = receiver.requests
        assert SIGNATURE_HEADER not in sent["headers"] and json.loads(sent["body"])["version"] == WEBHOOK_VERSION
