"""What every chat channel shares: the inbound message, the outbound reply, request freshness and
answering each platform message once, through the same pipeline as /api/ask."""

from __future__ import annotations

import hmac
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import sqlalchemy as sa
from pydantic import Field

from copilot import db, pipeline
from copilot.errors import CopilotError, Forbidden, NotFound
from copilot.modeling import Model
from copilot.models import MAX_QUESTION_CHARS, AskResponse, Evidence

if TYPE_CHECKING:
    from copilot.service import Copilot
    from copilot.settings import Settings

log = logging.getLogger(__name__)

Platform = Literal["wecom", "dingtalk", "feishu"]
# A signed request older (or newer) than this is refused: a captured callback cannot be replayed later.
MAX_SKEW_S = 300
PLATFORM_ZH = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}


class InboundMessage(Model):
    """One chat message addressed to the copilot, whatever the platform."""

    platform: Platform
    message_id: str = Field(max_length=255)
    conversation_id: str = ""
    sender: str
    text: str
    at: datetime


class Link(Model):
    title: str
    url: str | None = None


class Outbound(Model):
    """The reply to post in the thread: the answer, its citations as links, choices to pick from."""

    answer: str
    citations: list[Link] = Field(default_factory=list)
    choices: list[Link] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list, description="Proposed actions awaiting a person's confirm")
    actions_url: str | None = None

    def markdown(self) -> str:
        """The reply as chat Markdown (DingTalk, Feishu, WeCom group robots)."""
        parts = [self.answer.strip()]
        if self.citations:
            parts.append("**来源**\n" + "\n".join(f"{i}. {_md_link(c)}" for i, c in enumerate(self.citations, 1)))
        if self.choices:
            parts.append("**你可能想问**\n" + "\n".join(f"- {_md_link(c)}" for c in self.choices))
        if self.actions:
            where = f"（[去确认]({self.actions_url})）" if self.actions_url else ""
            parts.append("**待人工确认**" + where + "\n" + "\n".join(f"- {a}" for a in self.actions))
        return "\n\n".join(parts)

    def plain(self) -> str:
        """The reply as plain text with bare links (WeCom passive replies take no Markdown)."""
        parts = [self.answer.strip()]
        if self.citations:
            parts.append("来源：\n" + "\n".join(f"{i}. {_text_link(c)}" for i, c in enumerate(self.citations, 1)))
        if self.choices:
            parts.append("你可能想问：\n" + "\n".join(f"- {_text_link(c)}" for c in self.choices))
        if self.actions:
            where = f" {self.actions_url}" if self.actions_url else ""
            parts.append(f"待人工确认{where}：\n" + "\n".join(f"- {a}" for a in self.actions))
        return "\n\n".join(parts)


def _md_link(link: Link) -> str:
    return f"[{link.title}]({link.url})" if link.url else link.title


def _text_link(link: Link) -> str:
    return f"{link.title} {link.url}" if link.url else link.title


class BadSignature(CopilotError):
    http_status = 401
    code = "unauthorized"


class StaleRequest(Forbidden):
    pass


def bad_signature(platform: Platform) -> BadSignature:
    return BadSignature(f"The {platform} callback signature or token is missing or wrong",
                        zh=f"{PLATFORM_ZH[platform]}回调的签名或令牌缺失或不正确")


def check_fresh(platform: Platform, timestamp_s: float, now: float | None = None) -> None:
    """Refuse a request whose signed timestamp is more than MAX_SKEW_S from now."""
    if abs((now if now is not None else time.time()) - timestamp_s) > MAX_SKEW_S:
        raise StaleRequest(f"The {platform} callback timestamp is more than {MAX_SKEW_S} s old (or ahead)",
                           zh=f"{PLATFORM_ZH[platform]}回调的时间戳与当前时间相差超过 {MAX_SKEW_S} 秒，已拒绝")


def parse_timestamp(platform: Platform, value: Any, millis: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_signature(platform) from None
    return number / 1000 if millis else number


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets or signatures."""
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def not_configured(platform: Platform, settings_names: str) -> NotFound:
    return NotFound(f"The {platform} channel is off: set {settings_names}",
                    zh=f"{PLATFORM_ZH[platform]}渠道未开启：请配置 {settings_names}")


# Replies -------------------------------------------------------------------------------------------
def assistant_url(settings: Settings, question: str) -> str | None:
    if not settings.public_base_url:
        return None
    query = urlencode({"role": settings.channel_role, "q": question})
    return f"{settings.public_base_url.rstrip('/')}/assistant?{query}"


def citation_link(settings: Settings, evidence: Evidence) -> Link:
    """The source itself when it is a web page, else the copilot's assistant page asking about it."""
    if evidence.source.startswith(("https://", "http://")):
        return Link(title=evidence.title, url=evidence.source)
    return Link(title=evidence.title, url=assistant_url(settings, evidence.title))


def outbound(settings: Settings, response: AskResponse) -> Outbound:
    base = settings.public_base_url.rstrip("/") if settings.public_base_url else None
    return Outbound(answer=response.answer,
                    citations=[citation_link(settings, e) for e in response.citations],
                    choices=[Link(title=c, url=assistant_url(settings, c)) for c in response.choices],
                    actions=[a.summary for a in response.actions if a.status == "proposed"],
                    actions_url=f"{base}/actions" if base else None)


# Answering once --------------------------------------------------------------------------------------
def claim(engine: sa.Engine, platform: Platform, message_id: str) -> bool:
    """Record the message as received; False when it already was (a duplicate delivery or a retry),
    across workers: the primary key decides who is first."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = db.channel_messages
    row = {"platform": platform, "message_id": message_id, "received_at": datetime.now(timezone.utc),
           "answered": False}
    with engine.begin() as conn:
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[conn.dialect.name](table)
        return conn.execute(insert.values(**row).on_conflict_do_nothing()).rowcount == 1


def _settle(engine: sa.Engine, message: InboundMessage, answered: bool) -> None:
    table = db.channel_messages
    where = (table.c.platform == message.platform, table.c.message_id == message.message_id)
    with engine.begin() as conn:
        if answered:
            conn.execute(sa.update(table).where(*where).values(answered=True))
        else:  # failed before answering: let the platform's retry try again
            conn.execute(sa.delete(table).where(*where))


EMPTY_QUESTION = "请直接在消息里写下你的问题，例如「会员积分什么时候过期？」"


def actor_of(message: InboundMessage) -> str:
    return f"{message.platform}:{message.sender}"[:64]


def answer(copilot: Copilot, message: InboundMessage) -> Outbound | None:
    """Answer a message as the configured channel role; None when it was already answered."""
    if not claim(copilot.engine, message.platform, message.message_id):
        log.info("%s message %s delivered again: already answered", message.platform, message.message_id)
        return None
    settings = copilot.settings
    question = message.text.strip()[:MAX_QUESTION_CHARS]
    try:
        if not question:
            reply = Outbound(answer=EMPTY_QUESTION)
        else:
            response = pipeline.answer(copilot.deps, question, settings.channel_role, None, [],
                                       actor_of(message), list(settings.channel_audiences))
            reply = outbound(settings, response)
    except CopilotError as exc:  # the person's input was refused: say why, in the chat
        reply = Outbound(answer=exc.message_for("zh"))
    except Exception:
        _settle(copilot.engine, message, answered=False)
        raise
    _settle(copilot.engine, message, answered=True)
    return reply
