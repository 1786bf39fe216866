"""Chat channel callbacks: WeCom, DingTalk and Feishu robots.

These routes authenticate by each platform's signature or token (copilot/channels), not by an API
key; a platform whose secret is not configured answers 404. The answer comes from the same pipeline
as /api/ask, as the configured channel role, once per platform message id."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from copilot.channels import base, dingtalk, feishu, wecom
from copilot.service import Copilot

log = logging.getLogger(__name__)
router = APIRouter(prefix="/channels", tags=["channels"])


def register(app: FastAPI) -> None:
    app.include_router(router)


def _copilot(request: Request) -> Copilot:
    return request.app.state.copilot


@router.get("/wecom", response_class=PlainTextResponse)
def wecom_verify(request: Request, msg_signature: str = Query(default="", max_length=128),
                 timestamp: str = Query(default="", max_length=32), nonce: str = Query(default="", max_length=64),
                 echostr: str = Query(default="", max_length=4096)) -> PlainTextResponse:
    """WeCom's URL check when the callback is saved: echo the decrypted echostr."""
    settings = _wecom_settings(request)
    return PlainTextResponse(wecom.verify_url(settings, msg_signature, timestamp, nonce, echostr))


@router.post("/wecom")
async def wecom_message(request: Request, msg_signature: str = Query(default="", max_length=128),
                        timestamp: str = Query(default="", max_length=32),
                        nonce: str = Query(default="", max_length=64)) -> Response:
    """A WeCom app message: verified, answered once, replied to passively (text, encrypted in safe mode)."""
    settings = _wecom_settings(request)
    message = wecom.open_message(settings, msg_signature, timestamp, nonce, await request.body())
    inbound = wecom.parse(message)
    reply = await run_in_threadpool(base.answer, _copilot(request), inbound) if inbound else None
    if reply is None:  # an event, or a redelivery already answered: WeCom wants an empty 200
        return PlainTextResponse("")
    return Response(wecom.reply_xml(settings, message, reply, nonce), media_type="application/xml")


@router.post("/dingtalk")
async def dingtalk_message(request: Request) -> JSONResponse:
    """A DingTalk robot callback (@robot in a group or a direct chat): the reply is the response body."""
    settings = _copilot(request).settings
    if not settings.dingtalk_app_secret:
        raise base.not_configured("dingtalk", "COPILOT_DINGTALK_APP_SECRET")
    dingtalk.verify(settings, request.headers.get("timestamp"), request.headers.get("sign"))
    body = await request.json()
    inbound = dingtalk.parse(body if isinstance(body, dict) else {})
    reply = await run_in_threadpool(base.answer, _copilot(request), inbound) if inbound else None
    return JSONResponse(dingtalk.reply(inbound, reply) if inbound and reply else {})


@router.post("/feishu")
async def feishu_event(request: Request, background: BackgroundTasks) -> JSONResponse:
    """A Feishu event: the URL challenge, or a message answered in its thread after the 200 (Feishu
    waits three seconds for the acknowledgement and redelivers otherwise)."""
    copilot = _copilot(request)
    settings = copilot.settings
    if not settings.feishu_verification_token or not settings.feishu_app_id or not settings.feishu_app_secret:
        raise base.not_configured("feishu", "COPILOT_FEISHU_VERIFICATION_TOKEN, COPILOT_FEISHU_APP_ID, "
                                            "COPILOT_FEISHU_APP_SECRET")
    payload = feishu.open_event(settings, dict(request.headers), await request.body())
    if payload.get("type") == "url_verification":
        return JSONResponse({"challenge": payload.get("challenge", "")})
    if inbound := feishu.parse(payload):
        background.add_task(_feishu_answer, request.app, inbound)
    return JSONResponse({})


def _feishu_answer(app: FastAPI, inbound: base.InboundMessage) -> None:
    copilot: Copilot = app.state.copilot
    try:
        reply = base.answer(copilot, inbound)
        if reply is not None:
            _feishu_client(app).reply(inbound.message_id, feishu.answer_card(reply), uuid=inbound.message_id)
    except Exception:  # after the 200 nobody else hears of it: Feishu will not redeliver
        log.exception("could not answer Feishu message %s", inbound.message_id)


def _feishu_client(app: FastAPI) -> feishu.FeishuClient:
    # One per app: it caches the tenant_access_token.
    client = getattr(app.state, "feishu_client", None)
    if client is None:
        client = app.state.feishu_client = feishu.FeishuClient(app.state.copilot.settings)
    return client


def _wecom_settings(request: Request):
    settings = _copilot(request).settings
    if not settings.wecom_token:
        raise base.not_configured("wecom", "COPILOT_WECOM_TOKEN (and COPILOT_WECOM_AES_KEY for safe mode)")
    return settings
