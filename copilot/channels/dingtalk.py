"""DingTalk (钉钉): the robot's outgoing callback (someone @-mentions the robot) and the group robot
webhook.

Callback: headers `timestamp` (ms) and `sign` = base64(HMAC-SHA256(AppSecret, timestamp + "\\n" +
AppSecret)); the reply is the HTTP response body (markdown, or an actionCard when there are choices).
Webhook: POST to the robot URL with `&timestamp=...&sign=...` signed the same way with the robot's
加签 secret; DingTalk answers {"errcode": 0}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote_plus

from copilot.channels.base import InboundMessage, Outbound, bad_signature, check_fresh, parse_timestamp, same
from copilot.settings import Settings

TITLE = "知识助手"


def sign(secret: str, timestamp_ms: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(settings: Settings, timestamp_ms: str | None, signed: str | None, now: float | None = None) -> None:
    """Refuse a callback that DingTalk did not sign with the robot's AppSecret, or a stale one."""
    if not timestamp_ms or not signed:
        raise bad_signature("dingtalk")
    check_fresh("dingtalk", parse_timestamp("dingtalk", timestamp_ms, millis=True), now)
    if not same(signed, sign(settings.dingtalk_app_secret or "", timestamp_ms)):
        raise bad_signature("dingtalk")


def parse(body: dict[str, Any]) -> InboundMessage | None:
    """A text message @-ing the robot; None for other message types."""
    if body.get("msgtype", "text") != "text" or not body.get("msgId"):
        return None
    created = body.get("createAt") or time.time() * 1000
    return InboundMessage(platform="dingtalk", message_id=str(body["msgId"]),
                          conversation_id=str(body.get("conversationId") or ""),
                          sender=str(body.get("senderStaffId") or body.get("senderId") or "unknown"),
                          text=str((body.get("text") or {}).get("content") or ""),
                          at=datetime.fromtimestamp(float(created) / 1000, timezone.utc))


def reply(message: InboundMessage, answer: Outbound) -> dict[str, Any]:
    """An actionCard with one button per choice when the choices have links, else Markdown; @ the asker."""
    text = answer.markdown()
    buttons = [{"title": c.title[:30], "actionURL": c.url} for c in answer.choices if c.url]
    if buttons:
        return {"msgtype": "actionCard",
                "actionCard": {"title": TITLE, "text": text, "btnOrientation": "0", "btns": buttons}}
    return {"msgtype": "markdown", "markdown": {"title": TITLE, "text": text},
            "at": {"atUserIds": [message.sender]}}


def group_message(title: str, markdown: str, link: str | None = None) -> dict[str, Any]:
    if link:
        return {"msgtype": "actionCard",
                "actionCard": {"title": title, "text": f"### {title}\n{markdown}", "singleTitle": "查看详情",
                               "singleURL": link}}
    return {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n{markdown}"}}


def signed_webhook(url: str, secret: str | None, now: float | None = None) -> str:
    """The webhook URL with timestamp and sign when the robot has a 加签 secret."""
    if not secret:
        return url
    timestamp = str(int((now if now is not None else time.time()) * 1000))
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp}&sign={quote_plus(sign(secret, timestamp))}"


def check_sent(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("errcode", 0) != 0:
        raise RuntimeError(f"DingTalk refused the message: {payload.get('errcode')} {payload.get('errmsg')}")
    return payload
