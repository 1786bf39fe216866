"""WeCom (企业微信): the app's message callback (safe mode with EncodingAESKey, or plain text) and
the group robot webhook.

Callback: `msg_signature` = sha1 of the sorted [token, timestamp, nonce, Encrypt] (plain mode: of
[token, timestamp, nonce]). Safe mode encrypts with AES-256-CBC, key = base64(EncodingAESKey + "="),
IV = key[:16], PKCS#7 padding to 32 bytes, plaintext = 16 random bytes + 4-byte length + XML + corp id.
The answer goes back as the passive reply (text) in the HTTP response, encrypted the same way.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from copilot.channels.base import InboundMessage, Outbound, bad_signature, check_fresh, parse_timestamp, same
from copilot.errors import InvalidInput
from copilot.settings import Settings

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


def signature(token: str, timestamp: str, nonce: str, encrypt: str = "") -> str:
    parts = [token, timestamp, nonce] + ([encrypt] if encrypt else [])
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


class WecomCrypto:
    """WeCom's message encryption (WXBizMsgCrypt) with the `cryptography` package."""

    def __init__(self, aes_key: str, receive_id: str | None = None) -> None:
        self.key = base64.b64decode(aes_key + "=")
        if len(self.key) != 32:
            raise InvalidInput("COPILOT_WECOM_AES_KEY must be the 43-character EncodingAESKey",
                               zh="COPILOT_WECOM_AES_KEY 应是 43 位的 EncodingAESKey")
        self.receive_id = receive_id

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypted: str) -> str:
        try:
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
            plain = plain[:-plain[-1]] if 0 < plain[-1] <= BLOCK else plain
            length = struct.unpack(">I", plain[16:20])[0]
            content, receive_id = plain[20:20 + length], plain[20 + length:].decode()
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            raise bad_signature("wecom") from None
        if self.receive_id and receive_id != self.receive_id:
            raise bad_signature("wecom")
        return content.decode()

    def encrypt(self, text: str, receive_id: str | None = None) -> str:
        raw = text.encode()
        plain = os.urandom(16) + struct.pack(">I", len(raw)) + raw + (receive_id or self.receive_id or "").encode()
        pad = BLOCK - len(plain) % BLOCK
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()


def crypto(settings: Settings) -> WecomCrypto | None:
    return WecomCrypto(settings.wecom_aes_key, settings.wecom_corp_id) if settings.wecom_aes_key else None


def verify_url(settings: Settings, msg_signature: str, timestamp: str, nonce: str, echostr: str,
               now: float | None = None) -> str:
    """The URL check WeCom makes when the callback is saved: echo the (decrypted) echostr."""
    check_fresh("wecom", parse_timestamp("wecom", timestamp), now)
    box = crypto(settings)
    expected = signature(settings.wecom_token or "", timestamp, nonce, echostr if box else "")
    if not same(msg_signature, expected):
        raise bad_signature("wecom")
    return box.decrypt(echostr) if box else echostr


def _xml(body: bytes) -> ET.Element:
    # No DTDs: an entity declaration (billion laughs) never reaches the parser.
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise InvalidInput("XML with a DTD is not accepted", zh="不接受带 DTD 的 XML")
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise InvalidInput("The WeCom callback body is not XML", zh="企业微信回调的内容不是 XML") from None


def open_message(settings: Settings, msg_signature: str, timestamp: str, nonce: str, body: bytes,
                 now: float | None = None) -> ET.Element:
    """Verify the callback and return the message XML (decrypted in safe mode)."""
    check_fresh("wecom", parse_timestamp("wecom", timestamp), now)
    outer = _xml(body)
    box = crypto(settings)
    encrypt = outer.findtext("Encrypt") or ""
    if box and not encrypt:
        raise bad_signature("wecom")
    if not same(msg_signature, signature(settings.wecom_token or "", timestamp, nonce, encrypt if box else "")):
        raise bad_signature("wecom")
    return _xml(box.decrypt(encrypt).encode()) if box else outer


def parse(message: ET.Element) -> InboundMessage | None:
    """A text message to the app; None for events and other message types."""
    if (message.findtext("MsgType") or "") != "text":
        return None
    sender = message.findtext("FromUserName") or ""
    created = float(message.findtext("CreateTime") or time.time())
    message_id = message.findtext("MsgId") or f"{sender}:{message.findtext('CreateTime')}"
    return InboundMessage(platform="wecom", message_id=message_id, conversation_id=message.findtext("ChatId") or sender,
                          sender=sender, text=message.findtext("Content") or "",
                          at=datetime.fromtimestamp(created, timezone.utc))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def reply_xml(settings: Settings, message: ET.Element, reply: Outbound, nonce: str,
              timestamp: str | None = None) -> str:
    """The passive text reply, encrypted and signed in safe mode."""
    timestamp = timestamp or str(int(time.time()))
    inner = (f"<xml><ToUserName>{_cdata(message.findtext('FromUserName') or '')}</ToUserName>"
             f"<FromUserName>{_cdata(message.findtext('ToUserName') or '')}</FromUserName>"
             f"<CreateTime>{timestamp}</CreateTime><MsgType>{_cdata('text')}</MsgType>"
             f"<Content>{_cdata(reply.plain())}</Content></xml>")
    box = crypto(settings)
    if box is None:
        return inner
    encrypted = box.encrypt(inner, message.findtext("ToUserName") or None)
    signed = signature(settings.wecom_token or "", timestamp, nonce, encrypted)
    return (f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt><MsgSignature>{_cdata(signed)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>")


def group_message(title: str, markdown: str) -> dict:
    """A group robot Markdown message (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...)."""
    content = f"**{title}**\n{markdown}".encode()[:4096].decode(errors="ignore")  # the limit is in bytes
    return {"msgtype": "markdown", "markdown": {"content": content}}


def check_sent(payload: dict) -> dict:
    """WeCom answers 200 with {"errcode": 0} on success and a non-zero errcode otherwise."""
    if payload.get("errcode", 0) != 0:
        raise RuntimeError(f"WeCom refused the message: {payload.get('errcode')} {payload.get('errmsg')}")
    return payload
