"""Executors run an approved action. Each is idempotent: running it again for the same action
overwrites or re-sends the same thing, so a retry after a crash never duplicates the artefact."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import time
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol

import httpx

from copilot.errors import ConfigError
from copilot.files import write_bytes_atomically
from copilot.settings import Settings


class Executor(Protocol):
    """Runs approved actions. It may also have `done(action) -> dict | None`: its own record of
    having run the action (what `run` would return), or None when it has none or cannot know, as
    a webhook cannot. Reconciliation after a crash settles an action as executed only on such
    records; see `executed_record`."""

    name: str

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        """Carry out the action; return what was done; raise on failure."""
        ...


def executed_record(executor: Executor, action: dict[str, Any]) -> dict[str, Any] | None:
    """The executor's record of having run `action`; None without `done` (unknown, so re-run)."""
    done = getattr(executor, "done", None)
    return done(action) if callable(done) else None


class OutboxExecutor:
    """Write the action's artefact into the outbox folder: `<id>.md` or `<id>.json`."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        path, content = self._artefact(action)
        write_atomically(path, content)
        return {"path": str(path), "bytes": len(content.encode("utf-8"))}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Written: the file is there with exactly the content `run` writes (writes are atomic,
        so a file that is there is whole)."""
        path, content = self._artefact(action)
        expected = content.encode("utf-8")
        try:
            written = path.read_bytes()
        except OSError:
            return None
        return {"path": str(path), "bytes": len(expected)} if written == expected else None

    def _artefact(self, action: dict[str, Any]) -> tuple[Path, str]:
        markdown = (action.get("arguments") or {}).get("markdown")
        if markdown:
            return self.folder / f"{action['id']}.md", str(markdown)
        return self.folder / f"{action['id']}.json", json.dumps(envelope(action), ensure_ascii=False, indent=2,
                                                                 default=str)


NO_WEBHOOK = {"skipped": "no webhook configured (COPILOT_WEBHOOK_URL)"}
# The webhook payload: documented in the README ("Webhook payload"); bump on an incompatible change.
WEBHOOK_VERSION = 1
WEBHOOK_EVENT = "action.approved"
TIMESTAMP_HEADER = "X-Copilot-Timestamp"
SIGNATURE_HEADER = "X-Copilot-Signature"


class WebhookExecutor:
    """POST the action as JSON; the action id travels as Idempotency-Key so receivers can dedupe.

    With a secret, the exact bytes sent are signed: `X-Copilot-Signature: sha256=<hex>` is
    HMAC-SHA256(secret, f"{timestamp}.{body}") with the Unix time in `X-Copilot-Timestamp`;
    receivers check it with `verify_webhook`."""

    name = "webhook"

    def __init__(self, url: str | None, timeout_s: float = 10.0, client: httpx.Client | None = None,
                 secret: str | None = None, clock: Any = time.time) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.client = client
        self.secret = secret
        self.clock = clock

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        if not self.url:
            return dict(NO_WEBHOOK)
        body = webhook_body(action)
        headers = {"Idempotency-Key": str(action["id"]), "Content-Type": "application/json"}
        if self.secret:
            timestamp = str(int(self.clock()))
            headers |= {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign_webhook(self.secret, timestamp, body)}
        post = self.client.post if self.client is not None else httpx.post
        response = post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        return {"url": self.url, "status_code": response.status_code, "signed": bool(self.secret)}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Nothing is kept of a POST that may or may not have arrived: unknown, unless none is sent.
        A retry sends it again with the same Idempotency-Key, for the receiver to drop a duplicate."""
        return None if self.url else dict(NO_WEBHOOK)


def webhook_body(action: dict[str, Any]) -> bytes:
    """The raw bytes POSTed (and signed): {"event", "version", then the envelope's fields}."""
    payload = {"event": WEBHOOK_EVENT, "version": WEBHOOK_VERSION, **envelope(action)}
    return json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_webhook(secret: str, timestamp: str | None, body: bytes, signature: str | None,
                   tolerance_s: float = 300, now: float | None = None) -> bool:
    """For receivers: True when `signature` (the X-Copilot-Signature header) signs these exact body
    bytes at `timestamp` (X-Copilot-Timestamp) with `secret`, and the timestamp is within
    `tolerance_s` of now (a replayed old request fails). Compares in constant time."""
    if not secret or not timestamp or not signature:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, timestamp, body), signature.strip())


NO_SMTP = {"skipped": "no SMTP server configured (COPILOT_SMTP_HOST)"}
# Plain addr-spec only: no display names, no comments, no spaces (parseaddr is lenient on its own).
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class NoRecipientAddress(ValueError):
    """The action names nobody with an email address: recorded on the action, retryable."""


class EmailExecutor:
    """Send the action's Markdown by SMTP: text/plain with an HTML alternative. The Message-ID is
    derived from the action id, so a retry re-sends the same message, which mail systems can
    recognise as a duplicate; whether a sent message arrived cannot be checked, so `done` knows
    nothing (reconciliation leaves it failed, retryable), unless no SMTP server is set (skipped)."""

    name = "email"

    def __init__(self, host: str | None, port: int = 587, user: str | None = None, password: str | None = None,
                 starttls: bool = True, ssl_: bool = False, sender: str | None = None,
                 default_to: str | None = None, timeout_s: float = 20.0) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls, self.ssl, self.timeout_s = starttls, ssl_, timeout_s
        self.sender = sender or (user if user and EMAIL_RE.match(user) else None) or "copilot@localhost"
        self.default_to = default_to

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        if (skipped := self._skipped(action)) is not None:
            return skipped
        message = self.message(action)
        if self.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            if self.starttls and not self.ssl:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return {"to": message["To"], "message_id": message["Message-ID"], "subject": message["Subject"]}

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self._skipped(action)
        except NoRecipientAddress:
            return None

    def _skipped(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """What `run` returns without sending: no SMTP server, or nobody to send to; else None."""
        if not self.host:
            return dict(NO_SMTP)
        if self.recipient(action) is None:
            return {"skipped": "the action names no recipient and COPILOT_EMAIL_DEFAULT_TO is not set"}
        return None

    def message(self, action: dict[str, Any]) -> EmailMessage:
        """The email for `action` (raises NoRecipientAddress when it has nobody to go to)."""
        arguments = action.get("arguments") or {}
        markdown = str(arguments.get("markdown") or "")
        if not markdown:
            markdown = "```json\n" + json.dumps(envelope(action), ensure_ascii=False, indent=2, default=str) + "\n```\n"
        message = EmailMessage()
        message["Subject"] = _subject(action, markdown)
        message["From"] = self.sender
        to = self.recipient(action)
        if to is None:
            raise NoRecipientAddress("The action names no recipient; set COPILOT_EMAIL_DEFAULT_TO")
        message["To"] = to
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.sender.rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<copilot-action-{action['id']}@{domain}>"
        message["X-Copilot-Action"] = str(action["id"])
        message.set_content(markdown)
        message.add_alternative(_html(markdown), subtype="html")
        return message

    def recipient(self, action: dict[str, Any]) -> str | None:
        """The address to send to: an explicit one in the arguments (email, recipient_email, the
        contact's email, or a recipient that is itself an address); for an action that names no
        recipient (a task card), the default address, or None without one (skipped). A named
        recipient without an address fails (NoRecipientAddress), never falls back to the default:
        that would deliver a customer's document to someone else."""
        arguments = action.get("arguments") or {}
        contact = arguments.get("contact") if isinstance(arguments.get("contact"), dict) else {}
        named = str(arguments.get("recipient") or "").strip()
        for candidate in (arguments.get("email"), arguments.get("recipient_email"), contact.get("email"), named):
            if candidate and "@" in str(candidate):
                return valid_address(str(candidate))
        if not named:
            return valid_address(self.default_to) if self.default_to else None
        raise NoRecipientAddress(
            f"No email address for recipient {named!r}: add their email (the account's contact card, or the "
            f"address as the recipient), then retry. 收件人「{named}」没有邮箱地址：请补上邮箱后重试。")


def valid_address(text: str) -> str:
    """A single plain address (name@domain.tld), or ValueError saying what is wrong."""
    name, address = parseaddr(text.strip())
    if not address or not EMAIL_RE.match(address) or len(address) > 254 or any(c in text for c in "\r\n,;"):
        raise NoRecipientAddress(f"{text!r} is not a valid email address; fix it and retry. 邮箱地址无效：{text}")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise NoRecipientAddress(f"{text!r} is not a valid email address ({exc}); fix it and retry.") from exc
    return address


def _subject(action: dict[str, Any], markdown: str) -> str:
    """The Markdown's first heading, else the action's summary."""
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            if title:
                return title[:200]
    return str(action.get("summary") or action.get("type") or "Copilot")[:200]


def _html(markdown: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return ('<!doctype html><html><head><meta charset="utf-8"></head>'
            '<body style="font-family: sans-serif; line-height: 1.5; max-width: 720px">' + body + "</body></html>\n")


def envelope(action: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "type", "summary", "arguments", "proposed_by", "role", "decided_by", "comment", "created_at")
    return {key: action.get(key) for key in keys}


def write_atomically(path: Path, content: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    write_bytes_atomically(path, content.encode("utf-8"))


def build_executors(settings: Settings) -> dict[str, Executor]:
    """The executors rules.yaml `actions` may name; each one is a line here."""
    from copilot.channels.executor import chat_executor  # the channels import this module

    executors: list[Executor] = [
        OutboxExecutor(settings.outbox),
        WebhookExecutor(settings.webhook_url, secret=settings.webhook_secret),
        EmailExecutor(settings.smtp_host, settings.smtp_port, settings.smtp_user, settings.smtp_password,
                      starttls=settings.smtp_starttls, ssl_=settings.smtp_ssl, sender=settings.email_from,
                      default_to=settings.email_default_to, timeout_s=settings.smtp_timeout_s),
        chat_executor(settings),
    ]
    return {executor.name: executor for executor in executors}


def require(executors: dict[str, Executor], names: list[str]) -> list[Executor]:
    unknown = [n for n in names if n not in executors]
    if unknown:
        raise ConfigError(f"Unknown executor(s) {unknown} in rules.yaml actions; known: {sorted(executors)}")
    return [executors[n] for n in names]
