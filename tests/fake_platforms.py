"""Local stand-ins for the chat platforms' send APIs (WeCom and DingTalk group robots, Feishu's open
API), recording every post: the network edge of the channel tests, like tests/llm_server.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from copilot.api.background import ServerThread

TENANT_TOKEN = "t-fake-tenant-token"


@dataclass
class Post:
    target: str  # wecom, dingtalk, feishu-reply, feishu-chat
    body: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Recorder:
    posts: list[Post] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)  # target -> how many next posts fail (HTTP 500)

    def of(self, target: str) -> list[Post]:
        return [p for p in self.posts if p.target == target]

    def clear(self) -> None:
        self.posts.clear()
        self.fail_next.clear()


def _app(recorder: Recorder) -> FastAPI:
    app = FastAPI()

    async def record(target: str, request: Request, ok: dict[str, Any]) -> JSONResponse:
        if recorder.fail_next.get(target):
            recorder.fail_next[target] -= 1
            return JSONResponse({"errcode": 500, "errmsg": "scripted failure"}, status_code=500)
        recorder.posts.append(Post(target, await request.json(), dict(request.query_params), dict(request.headers)))
        return JSONResponse(ok)

    @app.post("/cgi-bin/webhook/send")
    async def wecom_send(request: Request):
        return await record("wecom", request, {"errcode": 0, "errmsg": "ok"})

    @app.post("/robot/send")
    async def dingtalk_send(request: Request):
        return await record("dingtalk", request, {"errcode": 0, "errmsg": "ok"})

    @app.post("/open-apis/auth/v3/tenant_access_token/internal")
    async def tenant_token(request: Request):
        body = await request.json()
        if body.get("app_secret") != "feishu-app-secret":
            return {"code": 10014, "msg": "app secret invalid"}
        return {"code": 0, "msg": "ok", "tenant_access_token": TENANT_TOKEN, "expire": 7200}

    @app.post("/open-apis/im/v1/messages/{message_id}/reply")
    async def feishu_reply(message_id: str, request: Request):
        if request.headers.get("authorization") != f"Bearer {TENANT_TOKEN}":
            return JSONResponse({"code": 99991663, "msg": "invalid token"}, status_code=400)
        return await record("feishu-reply", request, {"code": 0, "data": {"message_id": f"om_reply_{message_id}"}})

    @app.post("/open-apis/im/v1/messages")
    async def feishu_send(request: Request):
        if request.headers.get("authorization") != f"Bearer {TENANT_TOKEN}":
            return JSONResponse({"code": 99991663, "msg": "invalid token"}, status_code=400)
        return await record("feishu-chat", request, {"code": 0, "data": {"message_id": "om_group_post"}})

    return app


def start_platforms() -> tuple[Recorder, ServerThread]:
    recorder = Recorder()
    return recorder, ServerThread(_app(recorder))
