"""Chat channels end to end: signed callbacks from WeCom, DingTalk and Feishu are answered through
the real pipeline (tiny pack, real SQLite), replies and group posts land on local fakes of the
platforms' send APIs. The signatures are computed here from the platforms' documented schemes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from tests.conftest import build_settings
from tests.fake_platforms import start_platforms

WECOM_TOKEN = "wecom-token"
WECOM_AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")  # 43 characters, like EncodingAESKey
CORP_ID = "ww-test-corp"
DING_SECRET = "ding-app-secret"
DING_HOOK_SECRET = "SEC-ding-hook"
FEISHU_TOKEN = "feishu-verification-token"
FEISHU_KEY = "feishu-encrypt-key"

FAQ_QUESTION = "会员积分什么时候过期？"
URGENT_QUESTION = "我们是大客户，所有门店都无法收银了，紧急！"


@pytest.fixture(scope="module")
def platforms():
    recorder, server = start_platforms()
    with server:
        yield recorder, server.url


@pytest.fixture(scope="module")
def settings(tmp_path_factory, tiny_pack_dir, platforms):
    _, url = platforms
    return build_settings(
        tmp_path_factory.mktemp("channels"), tiny_pack_dir, public_base_url="https://copilot.example.com",
        wecom_token=WECOM_TOKEN, wecom_aes_key=WECOM_AES_KEY, wecom_corp_id=CORP_ID,
        wecom_webhook_url=f"{url}/cgi-bin/webhook/send?key=k1",
        dingtalk_app_secret=DING_SECRET, dingtalk_webhook_url=f"{url}/robot/send?access_token=a1",
        dingtalk_webhook_secret=DING_HOOK_SECRET,
        feishu_verification_token=FEISHU_TOKEN, feishu_encrypt_key=FEISHU_KEY, feishu_app_id="cli_test",
        feishu_app_secret="feishu-app-secret", feishu_chat_id="oc_group", feishu_api_base=url)


@pytest.fixture(scope="module")
def client(settings):
    from copilot.api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def recorder(platforms):
    recorder, _ = platforms
    recorder.clear()
    return recorder


def copilot_of(client):
    return client.app.state.copilot


# WeCom -------------------------------------------------------------------------------------------------
def wecom_sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def wecom_callback(client, text: str, msg_id: str, timestamp: int | None = None, tamper: bool = False):
    from copilot.channels.wecom import WecomCrypto

    timestamp = str(timestamp or int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    inner = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
             f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
             f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>")
    encrypted = WecomCrypto(WECOM_AES_KEY, CORP_ID).encrypt(inner)
    signature = wecom_sign(WECOM_TOKEN, timestamp, nonce, encrypted)
    if tamper:
        signature = wecom_sign("wrong-token", timestamp, nonce, encrypted)
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return client.post("/channels/wecom", params={"msg_signature": signature, "timestamp": timestamp, "nonce": nonce},
                       content=body.encode(), headers={"Content-Type": "text/xml"})


def wecom_reply_text(response) -> str:
    from copilot.channels.wecom import WecomCrypto

    outer = ET.fromstring(response.text)
    encrypted = outer.findtext("Encrypt")
    assert outer.findtext("MsgSignature") == wecom_sign(WECOM_TOKEN, outer.findtext("TimeStamp"),
                                                         outer.findtext("Nonce"), encrypted)
    inner = ET.fromstring(WecomCrypto(WECOM_AES_KEY, CORP_ID).decrypt(encrypted))
    assert inner.findtext("ToUserName") == "zhangsan" and inner.findtext("MsgType") == "text"
    return inner.findtext("Content")


def test_wecom_crypto_matches_the_official_sample():
    """The published WXBizMsgCrypt sample: its ciphertext decrypts, its signature matches."""
    from copilot.channels.wecom import WecomCrypto, signature

    encrypted = ("hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFm"
                 "OD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8d"
                 "KOIbg"
                 "U6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/"
                 "HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669W"
                 "uMyVWQLCzpu9GhglF2PE=")
    crypto = WecomCrypto("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
    assert "<Content><![CDATA[abcdteT]]></Content>" in crypto.decrypt(encrypted)
    assert signature("spamtest", "1409735669", "1320562132", encrypted) == "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    with pytest.raises(Exception):
        WecomCrypto("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "another-corp").decrypt(encrypted)


def test_wecom_url_verification_echoes_the_decrypted_echostr(client):
    from copilot.channels.wecom import WecomCrypto

    timestamp, nonce = str(int(time.time())), "n1"
    echostr = WecomCrypto(WECOM_AES_KEY, CORP_ID).encrypt("echo-1234")
    ok = client.get("/channels/wecom", params={"msg_signature": wecom_sign(WECOM_TOKEN, timestamp, nonce, echostr),
                                               "timestamp": timestamp, "nonce": nonce, "echostr": echostr})
    assert ok.status_code == 200 and ok.text == "echo-1234"
    bad = client.get("/channels/wecom", params={"msg_signature": "0" * 40, "timestamp": timestamp, "nonce": nonce,
                                                "echostr": echostr})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "unauthorized"


def test_wecom_message_gets_a_cited_answer_once(client, recorder):
    msg_id = f"wc-{uuid.uuid4().hex}"
    first = wecom_callback(client, FAQ_QUESTION, msg_id)
    assert first.status_code == 200
    text = wecom_reply_text(first)
    assert "第二年年底" in text and "来源" in text and "https://copilot.example.com/assistant?" in text
    again = wecom_callback(client, FAQ_QUESTION, msg_id)  # WeCom redelivers after 5 s without a reply
    assert again.status_code == 200 and again.text == ""
    asks = [e for e in copilot_of(client).audit.entries(event="ask", actor="wecom:zhangsan")
            if e["payload"]["question"] == FAQ_QUESTION]
    assert len(asks) == 1


def test_wecom_bad_signature_and_stale_timestamp_are_refused(client):
    before = len(copilot_of(client).audit.entries(event="ask", limit=1000))
    bad = wecom_callback(client, FAQ_QUESTION, f"wc-{uuid.uuid4().hex}", tamper=True)
    assert bad.status_code == 401 and "签名" in bad.json()["error"]["message"]
    stale = wecom_callback(client, FAQ_QUESTION, f"wc-{uuid.uuid4().hex}", timestamp=int(time.time()) - 600)
    assert stale.status_code == 403 and stale.json()["error"]["type"] == "forbidden"
    assert len(copilot_of(client).audit.entries(event="ask", limit=1000)) == before


def test_wecom_plain_text_mode_checks_the_signature_over_token_timestamp_nonce(tmp_path):
    from copilot.channels import base, wecom

    settings = build_settings(tmp_path, wecom_token=WECOM_TOKEN)  # no EncodingAESKey: plain-text mode
    timestamp, nonce = str(int(time.time())), "n2"
    body = (b"<xml><ToUserName>corp</ToUserName><FromUserName>lisi</FromUserName><MsgType>text</MsgType>"
            b"<Content>hello</Content><MsgId>42</MsgId></xml>")
    message = wecom.open_message(settings, wecom_sign(WECOM_TOKEN, timestamp, nonce), timestamp, nonce, body)
    assert wecom.parse(message).text == "hello"
    with pytest.raises(base.BadSignature):
        wecom.open_message(settings, wecom_sign("x", timestamp, nonce), timestamp, nonce, body)
    reply = wecom.reply_xml(settings, message, base.Outbound(answer="答"), nonce)
    assert "<ToUserName><![CDATA[lisi]]></ToUserName>" in reply and "<Encrypt>" not in reply


# DingTalk -----------------------------------------------------------------------------------------------
def ding_sign(secret: str, timestamp_ms: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
                            .digest()).decode()


def ding_callback(client, text: str, msg_id: str, sender: str = "staff-001", timestamp_ms: int | None = None,
                  secret: str = DING_SECRET):
    timestamp = str(timestamp_ms or int(time.time() * 1000))
    body = {"msgtype": "text", "text": {"content": f" {text}"}, "msgId": msg_id, "conversationId": "cid-group-1",
            "conversationType": "2", "senderStaffId": sender, "senderNick": "张三", "isInAtList": True,
            "createAt": int(timestamp), "chatbotUserId": "bot-1"}
    return client.post("/channels/dingtalk", json=body,
                       headers={"timestamp": timestamp, "sign": ding_sign(secret, timestamp)})


def test_dingtalk_message_gets_a_cited_answer_once(client, recorder):
    msg_id = f"msg{uuid.uuid4().hex}"
    first = ding_callback(client, FAQ_QUESTION, msg_id)
    assert first.status_code == 200
    reply = first.json()
    content = reply.get("markdown", {}).get("text") or reply["actionCard"]["text"]
    assert "第二年年底" in content and "[会员积分什么时候过期？](https://copilot.example.com/assistant?" in content
    again = ding_callback(client, FAQ_QUESTION, msg_id)
    assert again.status_code == 200 and again.json() == {}
    asks = [e for e in copilot_of(client).audit.entries(event="ask", actor="dingtalk:staff-001")
            if e["payload"]["question"] == FAQ_QUESTION]
    assert len(asks) == 1


def test_dingtalk_bad_signature_and_stale_timestamp_are_refused(client):
    before = len(copilot_of(client).audit.entries(event="ask", limit=1000))
    bad = ding_callback(client, FAQ_QUESTION, f"msg{uuid.uuid4().hex}", secret="not-the-secret")
    assert bad.status_code == 401
    unsigned = client.post("/channels/dingtalk", json={"msgtype": "text", "text": {"content": "hi"}, "msgId": "x"})
    assert unsigned.status_code == 401
    stale = ding_callback(client, FAQ_QUESTION, f"msg{uuid.uuid4().hex}",
                          timestamp_ms=int((time.time() - 400) * 1000))
    assert stale.status_code == 403
    assert len(copilot_of(client).audit.entries(event="ask", limit=1000)) == before


# Feishu -------------------------------------------------------------------------------------------------
def feishu_encrypt(text: str) -> str:
    from copilot.channels.feishu import encrypt

    return encrypt(FEISHU_KEY, text, os.urandom(16))


def feishu_callback(client, payload: dict, timestamp: int | None = None, token_ok: bool = True,
                    sign_ok: bool = True):
    body = json.dumps({"encrypt": feishu_encrypt(json.dumps(payload, ensure_ascii=False))}).encode()
    timestamp_s, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex
    key = FEISHU_KEY if sign_ok else "another-key"
    signature = hashlib.sha256((timestamp_s + nonce + key).encode() + body).hexdigest()
    return client.post("/channels/feishu", content=body, headers={
        "Content-Type": "application/json", "X-Lark-Request-Timestamp": timestamp_s,
        "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": signature})


def feishu_message(text: str, message_id: str, token: str = FEISHU_TOKEN) -> dict:
    now_ms = str(int(time.time() * 1000))
    return {"schema": "2.0",
            "header": {"event_id": uuid.uuid4().hex, "event_type": "im.message.receive_v1", "create_time": now_ms,
                       "token": token, "app_id": "cli_test", "tenant_key": "t1"},
            "event": {"sender": {"sender_id": {"open_id": "ou_lisi"}, "sender_type": "user"},
                      "message": {"message_id": message_id, "chat_id": "oc_chat", "chat_type": "group",
                                  "message_type": "text", "create_time": now_ms,
                                  "content": json.dumps({"text": f"@_user_1 {text}"}, ensure_ascii=False)}}}


def test_feishu_url_verification_answers_the_challenge(client):
    challenge = {"challenge": "ajls384kdjx98XX", "token": FEISHU_TOKEN, "type": "url_verification"}
    body = json.dumps({"encrypt": feishu_encrypt(json.dumps(challenge))})
    ok = client.post("/channels/feishu", content=body, headers={"Content-Type": "application/json"})
    assert ok.status_code == 200 and ok.json() == {"challenge": "ajls384kdjx98XX"}
    wrong = {**challenge, "token": "guess"}
    refused = client.post("/channels/feishu", content=json.dumps({"encrypt": feishu_encrypt(json.dumps(wrong))}),
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 401


def test_feishu_message_gets_a_cited_card_reply_once(client, recorder):
    message_id = f"om_{uuid.uuid4().hex}"
    first = feishu_callback(client, feishu_message(FAQ_QUESTION, message_id))
    assert first.status_code == 200 and first.json() == {}
    again = feishu_callback(client, feishu_message(FAQ_QUESTION, message_id))  # a redelivery, new event id
    assert again.status_code == 200
    replies = recorder.of("feishu-reply")
    assert len(replies) == 1
    assert replies[0].body["msg_type"] == "interactive" and replies[0].body["uuid"] == message_id[:50]
    card = json.loads(replies[0].body["content"])
    markdown = card["elements"][0]["content"]
    assert "第二年年底" in markdown and "](https://copilot.example.com/assistant?" in markdown
    assert copilot_of(client).audit.entries(event="ask", actor="feishu:ou_lisi")


def test_feishu_bad_signature_wrong_token_and_stale_are_refused(client, recorder):
    assert feishu_callback(client, feishu_message(FAQ_QUESTION, f"om_{uuid.uuid4().hex}"),
                           sign_ok=False).status_code == 401
    assert feishu_callback(client, feishu_message(FAQ_QUESTION, f"om_{uuid.uuid4().hex}", token="guess")
                           ).status_code == 401
    assert feishu_callback(client, feishu_message(FAQ_QUESTION, f"om_{uuid.uuid4().hex}"),
                           timestamp=int(time.time()) - 600).status_code == 403
    assert recorder.of("feishu-reply") == []


# Off unless configured ----------------------------------------------------------------------------------
def test_a_platform_without_its_settings_answers_404(tmp_path, tiny_pack_dir):
    from copilot.api.app import create_app

    with TestClient(create_app(build_settings(tmp_path, tiny_pack_dir), warm=False)) as bare:
        for path in ("/channels/wecom", "/channels/dingtalk", "/channels/feishu"):
            response = bare.post(path, json={})
            assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
            assert "COPILOT_" in response.json()["error"]["message"]


# Andon: proposed from the chat, posted to the groups once when confirmed ----------------------------------
def test_urgent_key_account_message_drafts_an_andon_ticket_posted_once_on_confirm(client, settings, recorder):
    from copilot.actions import ActionRunner
    from copilot.channels.executor import chat_executor
    from copilot.errors import Conflict
    from copilot.models import Decision

    copilot = copilot_of(client)
    reply = ding_callback(client, URGENT_QUESTION, f"msg{uuid.uuid4().hex}", sender="staff-urgent").json()
    content = reply.get("markdown", {}).get("text") or reply["actionCard"]["text"]
    assert "待人工确认" in content and "https://copilot.example.com/actions" in content
    tickets = [a for a in copilot.actions.list(type_="escalation_ticket")
               if a["proposed_by"] == "dingtalk:staff-urgent"]
    assert len(tickets) == 1 and tickets[0]["status"] == "proposed"  # proposed only: nothing executed, nothing posted
    assert tickets[0]["role"] == "support" and recorder.posts == []

    executor = chat_executor(settings)
    def policy(type_: str):  # rules.yaml as the lead will have it: escalation tickets go to the chat executor
        return copilot.pack.rules.action_policy(type_).model_copy(update={"executors": ["chat"]})

    runner = ActionRunner(copilot.actions, policy, {"chat": executor})
    recorder.fail_next["dingtalk"] = 1  # the DingTalk robot is down for the first try
    first = runner.confirm(tickets[0]["id"], Decision(decision="approve"), "wang.support", "support")
    assert first.status == "failed"
    assert executor.done(runner.store.get(tickets[0]["id"])) is None  # not every group has it: unknown
    retried = runner.retry(tickets[0]["id"], "wang.support", "support")
    assert retried.status == "executed"
    with pytest.raises(Conflict):
        runner.retry(tickets[0]["id"], "wang.support", "support")
    executor.run(runner.store.get(tickets[0]["id"]))  # even a direct re-run posts nothing again

    assert len(recorder.of("wecom")) == 1 and len(recorder.of("dingtalk")) == 1 and len(recorder.of("feishu-chat")) == 1
    wecom_post = recorder.of("wecom")[0].body
    assert wecom_post["msgtype"] == "markdown" and "安灯升级" in wecom_post["markdown"]["content"]
    ding = recorder.of("dingtalk")[0]
    assert ding.query["sign"] == ding_sign(DING_HOOK_SECRET, ding.query["timestamp"])
    assert "wang.support" in ding.body["actionCard"]["text"]
    feishu_post = recorder.of("feishu-chat")[0].body
    assert feishu_post["receive_id"] == "oc_group" and feishu_post["uuid"] == tickets[0]["id"]
    assert executor.done(runner.store.get(tickets[0]["id"])) is not None


def test_the_chat_executor_skips_when_no_group_is_configured(tmp_path):
    from copilot.channels.executor import chat_executor

    executor = chat_executor(build_settings(tmp_path))
    action = {"id": "a1", "type": "escalation_ticket", "summary": "安灯", "arguments": {}}
    assert executor.name == "chat" and "skipped" in executor.run(action)
    assert executor.done(action) == executor.run(action)
