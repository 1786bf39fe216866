"""Feishu (飞书): event subscription callbacks (im.message.receive_v1) and the messages API.

Callback: with an Encrypt Key, events arrive as {"encrypt": ...} (AES-256-CBC, key = SHA-256 of the
Encrypt Key, IV = the first 16 bytes) and signed: X-Lark-Signature = sha256_hex(X-Lark-Request-Timestamp
+ X-Lark-Request-Nonce + encrypt_key + raw body). Every event also carries the Verification Token
(header.token, or token in the url_verification challenge). Replies go through the open API
(tenant_access_token, then POST /open-apis/im/v1/messages/{id}/reply) with `uuid` for idempotency.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from copilot.channels.base import InboundMessage, Outbound, bad_signature, check_fresh, parse_timestamp, same
from copilot.settings import Settings

TITLE = "知识助手"
_MENTION = re.compile(r"@_user_\d+\s*")


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def _cipher(encrypt_key: str, iv: bytes) -> Cipher:
    return Cipher(algorithms.AES(hashlib.sha256(encrypt_key.encode()).digest()), modes.CBC(iv))


def decrypt(encrypt_key: str, encrypted: str) -> str:
    try:
        raw = base64.b64decode(encrypted)
        decryptor = _cipher(encrypt_key, raw[:16]).decryptor()
        plain = decryptor.update(raw[16:]) + decryptor.finalize()
        return plain[:-plain[-1]].decode()
    except (ValueError, IndexError, UnicodeDecodeError):
        raise bad_signature("feishu") from None


def encrypt(encrypt_key: str, text: str, iv: bytes) -> str:
    """What Feishu sends (tests and local tools use it to build encrypted events)."""
    raw = text.encode()
    pad = 16 - len(raw) % 16
    encryptor = _cipher(encrypt_key, iv).encryptor()
    return base64.b64encode(iv + encryptor.update(raw + bytes([pad]) * pad) + encryptor.finalize()).decode()


def open_event(settings: Settings, headers: dict[str, str], body: bytes, now: float | None = None) -> dict[str, Any]:
    """Verify a callback (signature, token, freshness) and return its decrypted JSON."""
    key = settings.feishu_encrypt_key
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise bad_signature("feishu") from None
    signed = headers.get("x-lark-signature")
    timestamp = headers.get("x-lark-request-timestamp")
    if key and signed:
        if not timestamp or not same(signed, signature(timestamp, headers.get("x-lark-request-nonce", ""), key, body)):
            raise bad_signature("feishu")
        check_fresh("feishu", parse_timestamp("feishu", timestamp), now)
    if key:
        if not isinstance(payload.get("encrypt"), str):
            raise bad_signature("feishu")
        payload = json.loads(decrypt(key, payload["encrypt"]))
    header = payload.get("header") or {}
    token = header.get("token") if "header" in payload else payload.get("token")
    if not same(token, settings.feishu_verification_token):
        raise bad_signature("feishu")
    if payload.get("type") == "url_verification":
        return payload  # the challenge carries no timestamp or signature, only the token checked above
    if key and not signed:
        raise bad_signature("feishu")  # with an Encrypt Key, every event is signed
    if not signed:
        check_fresh("feishu", parse_timestamp("feishu", header.get("create_time"), millis=True), now)
    return payload


def parse(payload: dict[str, Any]) -> InboundMessage | None:
    """A person's text message to the bot; None for other events, other types and bots' messages."""
    header, event = payload.get("header") or {}, payload.get("event") or {}
    message, sender = event.get("message") or {}, event.get("sender") or {}
    if header.get("event_type") != "im.message.receive_v1" or message.get("message_type") != "text":
        return None
    if sender.get("sender_type") not in (None, "user"):
        return None
    try:
        text = json.loads(message.get("content") or "{}").get("text", "")
    except ValueError:
        text = ""
    ids = sender.get("sender_id") or {}
    created = float(message.get("create_time") or header.get("create_time") or time.time() * 1000)
    return InboundMessage(platform="feishu", message_id=str(message.get("message_id") or header.get("event_id")),
                          conversation_id=str(message.get("chat_id") or ""),
                          sender=str(ids.get("open_id") or ids.get("user_id") or "unknown"),
                          text=_MENTION.sub("", text), at=datetime.fromtimestamp(created / 1000, timezone.utc))


def card(title: str, markdown: str, buttons: list[tuple[str, str]] = ()) -> dict[str, Any]:
    """An interactive card: a Markdown body and one link button per choice."""
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": markdown}]
    if buttons:
        elements.append({"tag": "action", "actions": [
            {"tag": "button", "text": {"tag": "plain_text", "content": label[:40]}, "type": "default", "url": url}
            for label, url in buttons]})
    return {"config": {"wide_screen_mode": True}, "header": {"title": {"tag": "plain_text", "content": title}},
            "elements": elements}


def answer_card(answer: Outbound) -> dict[str, Any]:
    linked = [c for c in answer.choices if c.url]
    body = answer.model_copy(update={"choices": [c for c in answer.choices if not c.url]}).markdown()
    return card(TITLE, body, [(c.title, c.url or "") for c in linked])


class FeishuClient:
    """The open API with a cached tenant_access_token (valid two hours; renewed a few minutes early)."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.base = settings.feishu_api_base.rstrip("/")
        self.app_id, self.app_secret = settings.feishu_app_id, settings.feishu_app_secret
        self.timeout_s = settings.channel_timeout_s
        self.client = client or httpx.Client(timeout=self.timeout_s)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._token[1] < time.time():
                data = self._call("POST", "/open-apis/auth/v3/tenant_access_token/internal", None,
                                  {"app_id": self.app_id, "app_secret": self.app_secret})
                self._token = (data["tenant_access_token"], time.time() + float(data.get("expire", 7200)) - 300)
            return self._token[0]

    def reply(self, message_id: str, content: dict[str, Any], uuid: str) -> dict[str, Any]:
        body = {"msg_type": "interactive", "content": json.dumps(content, ensure_ascii=False), "uuid": uuid[:50]}
        return self._call("POST", f"/open-apis/im/v1/messages/{message_id}/reply", self.token(), body)

    def send_to_chat(self, chat_id: str, content: dict[str, Any], uuid: str) -> dict[str, Any]:
        body = {"receive_id": chat_id, "msg_type": "interactive",
                "content": json.dumps(content, ensure_ascii=False), "uuid": uuid[:50]}
        return self._call("POST", "/open-apis/im/v1/messages?receive_id_type=chat_id", self.token(), body)

    def _call(self, method: str, path: str, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(method, self.base + path, json=body, headers=headers, timeout=self.timeout_s)
        response.raise_for_status()
        data = response.json()
        if data.get("code", 0) != 0:
            raise RuntimeError(f"Feishu refused {path}: {data.get('code')} {data.get('msg')}")
        return data
