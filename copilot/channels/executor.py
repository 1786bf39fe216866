"""The `chat` executor: posts a confirmed action (an andon ticket, a shared plan…) to the configured
group chats. Group webhooks take no idempotency key, so each post is recorded per action and target
(table channel_posts) and a retry skips the targets already posted to. Feishu also gets the action id
as its `uuid`, so even a post whose record was lost in a crash is not shown twice there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import sqlalchemy as sa

from copilot import db
from copilot.channels import dingtalk, feishu, wecom
from copilot.settings import Settings

LABELS = {"escalation_ticket": "安灯升级工单", "send_case_onepager": "发送案例一页纸", "share_plan": "分享客户成功计划",
          "account_task": "客户跟进任务", "save_plan": "保存客户成功计划"}
NO_GROUP = {"skipped": "no group chat configured (COPILOT_WECOM_WEBHOOK_URL, COPILOT_DINGTALK_WEBHOOK_URL "
                        "or COPILOT_FEISHU_CHAT_ID)"}
Send = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def render(action: dict[str, Any], base_url: str | None) -> tuple[str, str, str | None]:
    """(title, Markdown body, link) of a confirmed action's group message."""
    args = action.get("arguments") or {}
    title = f"已确认：{LABELS.get(str(action.get('type')), str(action.get('type')))}"
    lines = [str(action.get("summary") or "")]
    if args.get("question"):
        lines.append(f"> {str(args['question'])[:500]}")
    sla = f"{args['sla_minutes']} 分钟" if args.get("sla_minutes") else None
    facts = [("客户", args.get("account_name")), ("SLA", sla),
             ("处理队列", args.get("queue")), ("客户成功经理", args.get("csm")), ("提出", action.get("proposed_by")),
             ("确认", action.get("decided_by")), ("备注", action.get("comment")), ("操作 id", action.get("id"))]
    lines += [f"- {name}：{value}" for name, value in facts if value]
    link = f"{base_url.rstrip('/')}/actions" if base_url else None
    if link:
        lines.append(f"[在助手里查看]({link})")
    return title, "\n".join(lines), link


class ChatExecutor:
    """Post confirmed actions to every configured group: WeCom and DingTalk robots, a Feishu chat."""

    name = "chat"

    def __init__(self, settings: Settings, client: httpx.Client | None = None,
                 engine: sa.Engine | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.channel_timeout_s)
        self._engine = engine
        self.targets: dict[str, Send] = {}
        if settings.wecom_webhook_url:
            self.targets["wecom"] = self._wecom
        if settings.dingtalk_webhook_url:
            self.targets["dingtalk"] = self._dingtalk
        if settings.feishu_chat_id and settings.feishu_app_id and settings.feishu_app_secret:
            self.feishu = feishu.FeishuClient(settings, self.client)
            self.targets["feishu"] = self._feishu

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:  # resolved on first use: nothing heavy at construction
            self._engine = db.engine_for(self.settings.db_url)
        return self._engine

    def run(self, action: dict[str, Any]) -> dict[str, Any]:
        """Post to each group not yet posted to for this action; what each returned."""
        if not self.targets:
            return dict(NO_GROUP)
        posted = self._posted(action["id"])
        title, markdown, link = render(action, self.settings.public_base_url)
        results = {}
        for target, send in self.targets.items():
            if target not in posted:
                posted[target] = self._record(action["id"], target, send(title, markdown, {"id": action["id"],
                                                                                           "link": link}))
            results[target] = posted[target]
        return results

    def done(self, action: dict[str, Any]) -> dict[str, Any] | None:
        """Posted to every group (records kept), else None: a retry posts the rest."""
        if not self.targets:
            return dict(NO_GROUP)
        posted = self._posted(action["id"])
        return {t: posted[t] for t in self.targets} if all(t in posted for t in self.targets) else None

    def _posted(self, action_id: str) -> dict[str, Any]:
        table = db.channel_posts
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.target, table.c.result).where(table.c.action_id == action_id))
            return {row.target: row.result for row in rows}

    def _record(self, action_id: str, target: str, result: dict[str, Any]) -> dict[str, Any]:
        row = {"action_id": action_id, "target": target, "sent_at": datetime.now(timezone.utc), "result": result}
        with self.engine.begin() as conn:
            db.insert_ignoring_duplicates(conn, db.channel_posts, [row])
        return result

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(url, json=body, timeout=self.settings.channel_timeout_s)
        response.raise_for_status()
        return response.json()

    def _wecom(self, title: str, markdown: str, _meta: dict[str, Any]) -> dict[str, Any]:
        wecom.check_sent(self._post(self.settings.wecom_webhook_url or "", wecom.group_message(title, markdown)))
        return {"status": "sent"}

    def _dingtalk(self, title: str, markdown: str, meta: dict[str, Any]) -> dict[str, Any]:
        url = dingtalk.signed_webhook(self.settings.dingtalk_webhook_url or "", self.settings.dingtalk_webhook_secret)
        dingtalk.check_sent(self._post(url, dingtalk.group_message(title, markdown, meta.get("link"))))
        return {"status": "sent"}

    def _feishu(self, title: str, markdown: str, meta: dict[str, Any]) -> dict[str, Any]:
        buttons = [("在助手里查看", meta["link"])] if meta.get("link") else []
        data = self.feishu.send_to_chat(self.settings.feishu_chat_id or "", feishu.card(title, markdown, buttons),
                                        uuid=str(meta["id"]))
        return {"status": "sent", "message_id": (data.get("data") or {}).get("message_id")}


def chat_executor(settings: Settings) -> ChatExecutor | None:
    """The `chat` executor. Always one (it skips, like the webhook executor, when no group is
    configured), so rules.yaml may list `chat` whether or not this install has a group."""
    return ChatExecutor(settings)
