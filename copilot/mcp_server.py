"""The copilot as an MCP server (official `mcp` SDK): the same service functions the HTTP routes call,
exposed as tools for an agent (Claude Desktop, Cursor, Dify…), under the caller's own identity.

Who is calling is decided at the edge, never by a tool argument: over streamable HTTP the mounted
endpoint (`copilot.api.mcp`) resolves the `Authorization: Bearer` key exactly as the HTTP API does
and puts the principal into the request's ASGI scope; over stdio (`copilot mcp --key`) the principal
is fixed when the server starts. Tools that change the world only *propose*: a person confirms in
the copilot's actions inbox (web UI, or `copilot actions confirm`), never through MCP.
"""
# No `from __future__ import annotations`: the SDK reads the tools' signatures to find `Context`.

import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from copilot import __version__, pipeline
from copilot.api.deps import Principal
from copilot.conversation import HistoryEntry
from copilot.errors import CopilotError, InvalidInput, NotFound
from copilot.modeling import Model
from copilot.models import MAX_QUESTION_CHARS, Customer, Kind, ProposedActionOut, Role, SearchFilters, SearchResult
from copilot.service import Copilot
from copilot.workflows import cases, plans

# Where the HTTP endpoint leaves the resolved caller for the tools (the SDK hands tools the request).
PRINCIPAL_SCOPE_KEY = "copilot.principal"
FRONTLINE: tuple[str, ...] = get_args(Role)
CONFIRM_NOTE = ("已提议，尚未执行：需要有权限的人在 Copilot 的「待确认操作」页面（/actions）或命令行 "
                "`copilot actions confirm ID --approve` 中确认后才会执行。MCP 不能确认操作。")
CONFIRM_SENTENCE = "本工具只提议、不执行：确认必须由人在 Copilot 网页的待确认操作页（/actions）或命令行中完成。"
INSTRUCTIONS = (
    "SaaS 市场、销售、客户成功、客服团队的最佳实践 Copilot。先用 ask 或 search_knowledge 回答问题，回答时引用返回的"
    "出处（title/source/id）；找同行案例用 find_peer_cases，写客户成功计划用 draft_success_plan，看自家客户健康度与"
    "续费风险用 account_status。需要对外发送或保存的事用 propose_action 提议，再把返回的 inbox 链接给用户，"
    "由有权限的人在 Copilot 里确认；不要声称已经发送或保存。")

PROPOSE_DOC = """提议一个会对外产生影响的操作，存为「待确认」，返回操作 id 和确认链接 /actions#<id>。
kind=send_case_onepager：把案例 case_id 做成一页纸发给 recipient（或客户 account 的联系人；prospect 为对方画像）；
kind=save_plan / share_plan：按 customer / account 起草客户成功计划并提议保存 / 分享给 recipient；
kind=account_task：把客户 account 的某个下一步行动 playbook_id（见 account_status）派成任务，note 写给确认人。"""
PENDING_DOC = "列出待确认的操作：调用者提议的，以及调用者有权确认的（管理员：全部），最新的在前。"


def _described(text: str) -> str:
    return f"{text}\n{CONFIRM_SENTENCE}"


ShortStr = Annotated[str, Field(max_length=255)]


# Outputs ------------------------------------------------------------------------------------------
class Citation(Model):
    id: str
    title: str
    source: str
    kind: Kind


class ActionRef(Model):
    id: str
    type: str
    status: str
    summary: str
    proposed_by: str
    inbox: str = Field(description="Where a person confirms or rejects it, e.g. /actions#<id>")


class AskOut(Model):
    answer: str
    grounded: bool = Field(description="False: the knowledge does not cover it well; say so rather than guess")
    confidence: float
    citations: list[Citation]
    actions: list[ActionRef] = Field(description="Actions the answer proposed; pending until a person confirms")
    choices: list[str] = Field(default_factory=list, description="Suggested clarifying questions")
    note: str = ""


class PlanOut(Model):
    markdown: str
    milestones: list[plans.Milestone]
    first_value: plans.FirstValue
    account_id: str | None = None
    note: str = "草稿：保存或分享给客户请用 propose_action（save_plan / share_plan），由人确认后执行。"


class AccountStatus(Model):
    id: str
    name: str
    tier: str | None
    csm: str
    renews_on: date | None
    health: float | None = Field(description="0-100 (broad health); None without activity")
    renewal_risk: float = Field(description="Probability of not renewing, 0-1")
    risk_level: str
    reason: str = Field(description="Why, in one line (the strongest risk drivers)")
    drivers: list[str]
    journey: str
    next_best_actions: list[dict[str, Any]] = Field(
        description="playbook_id, title, why, first step: pass a playbook_id to propose_action(kind=account_task)")
    changes: list[str] = Field(description="What moved in the latest month, worse first")
    sample: bool = Field(description="True for the bundled demo data, not a real customer")


class ProposeOut(Model):
    action: ActionRef
    preview: str = Field(default="", description="What would be sent or saved (Markdown)")
    note: str = CONFIRM_NOTE


class PendingOut(Model):
    actions: list[ActionRef]
    note: str = CONFIRM_NOTE


# Server --------------------------------------------------------------------------------------------
PrincipalOf = Callable[[Context], Principal]


def action_ref(action: ProposedActionOut) -> ActionRef:
    return ActionRef(id=action.id, type=action.type, status=action.status, summary=action.summary,
                     proposed_by=action.proposed_by, inbox=f"/actions#{action.id}")


def principal_from(default: Principal | None) -> PrincipalOf:
    """The caller: the one the HTTP endpoint put in the request scope, else the server's own (stdio)."""

    def principal_of(ctx: Context) -> Principal:
        request = ctx.request_context.request
        scope = getattr(request, "scope", None) or {}
        principal = scope.get(PRINCIPAL_SCOPE_KEY, default)
        if principal is None:
            raise ToolError("未识别调用者：请在请求头中带上密钥 Authorization: Bearer <key>")
        return principal

    return principal_of


def build_server(copilot: Copilot, principal: Principal | None = None) -> MCPServer:
    """An MCP server whose tools act for the calling principal (`principal`: fixed, for stdio)."""
    # The SDK configures the root logger when none is (a basicConfig). Its handler would then also print the
    # DEBUG records of libraries whose loggers set their own level (bm25s): keep it to warnings, as Python's default.
    before = set(logging.getLogger().handlers)
    server = MCPServer("copilot", title="Best-practice Copilot", version=__version__, instructions=INSTRUCTIONS,
                       log_level="WARNING")
    for handler in set(logging.getLogger().handlers) - before:
        handler.setLevel(logging.WARNING)
    principal_of = principal_from(principal)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def caller(ctx: Context) -> Principal:
        copilot.refresh_if_changed()  # another worker may have imported or edited knowledge
        return principal_of(ctx)

    @server.tool(annotations=read_only)
    def ask(question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)], ctx: Context,
            role: Role | None = None, history: Annotated[list[HistoryEntry], Field(max_length=20)] = [],  # noqa: B006
            customer: Customer | None = None) -> AskOut:
        """向 Copilot 提问（销售 / 客户成功 / 客服的最佳实践、产品 FAQ、自家客户情况），返回先结论后解释的回答和引用出处。
        role：以哪个角色提问（sales / csm / support，默认为调用者自己的角色）；history：之前的对话（较早的在前）。
        回答若提议了操作（如发送一页纸），只会返回待确认的操作 id，需由人在 Copilot 中确认。"""
        who = caller(ctx)
        role = role or (who.role if who.role in FRONTLINE else "support")
        with _errors():
            who.require_role(role)
            reply = pipeline.answer(copilot.deps, question, role, customer, history, who.name, who.audiences)
        actions = [action_ref(a) for a in reply.actions]
        return AskOut(answer=reply.answer, grounded=reply.grounded, confidence=reply.confidence,
                      citations=[Citation(id=c.id, title=c.title, source=c.source, kind=c.kind)
                                 for c in reply.citations],
                      actions=actions, choices=reply.choices, note=CONFIRM_NOTE if actions else "")

    @server.tool(annotations=read_only)
    def search_knowledge(query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)], ctx: Context,
                         k: Annotated[int, Field(ge=1, le=50)] = 5, kinds: list[Kind] | None = None) -> SearchResult:
        """在知识库中检索（案例 case、FAQ、打法 playbook、文档 doc），返回最相关的段落及出处 id/source。
        只返回调用者有权看的知识（例如客服只能看到对外公开的内容）。"""
        who = caller(ctx)
        with _errors():
            return copilot.retriever.search(query, k, SearchFilters(kinds=kinds, audiences=who.audiences))

    @server.tool(annotations=read_only)
    def find_peer_cases(ctx: Context, query: Annotated[str | None, Field(max_length=MAX_QUESTION_CHARS)] = None,
                        profile: Customer | None = None, account: ShortStr | None = None,
                        k: Annotated[int, Field(ge=1, le=20)] = 5) -> cases.CaseSearchResult:
        """为潜在客户找同行成功案例：按行业、城市、规模、现状等排序，每条说明为什么匹配，并给出价值估算。
        query：对客户的自由描述；profile：已知的客户画像字段；account：自家客户的名称或编号（用其档案作为画像）。
        internal_cases 里的案例只供内部参考，不能发给客户。"""
        who = caller(ctx)
        with _errors():
            request = cases.CaseSearchRequest(query=query, profile=profile, account_id=_account_id(copilot, account),
                                              k=k)
            return cases.find_cases(copilot, request, who.audiences, copilot.account_resolver)

    @server.tool(annotations=read_only)
    def draft_success_plan(ctx: Context, customer: plans.PlanCustomer | None = None,
                           account: ShortStr | None = None) -> PlanOut:
        """起草联合客户成功计划（确定性规则，不编造）：返回 Markdown 全文和结构化里程碑。
        customer：客户名称、行业、城市、规模、购买产品、目标、关键人、签约日期等；account：自家客户名称或编号
        （用其档案填写画像，customer 中给出的字段优先）。保存或分享计划请用 propose_action。"""
        who = caller(ctx)
        with _errors():
            plan = _draft(copilot, customer, account, who)
            return PlanOut(markdown=plans.render_plan(copilot.prompts, plan), milestones=plan.milestones,
                           first_value=plan.first_value, account_id=plan.account_id)

    @server.tool(annotations=read_only)
    def account_status(account: ShortStr, ctx: Context) -> AccountStatus:
        """查看自家客户的现状：健康分、续费风险及原因、客户旅程阶段、最近一个月的变化和下一步最佳行动。
        account：客户名称（简繁体、别名均可）或编号。要把某个下一步行动派成任务，用 propose_action(kind=account_task)。"""
        who = caller(ctx)
        with _errors():
            return _account_status(copilot, _account_id(copilot, account, required=True), who)

    @server.tool(description=_described(PROPOSE_DOC), annotations=ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False))
    def propose_action(kind: Literal["send_case_onepager", "save_plan", "share_plan", "account_task"], ctx: Context,
                       case_id: ShortStr | None = None, account: ShortStr | None = None,
                       recipient: Annotated[str | None, Field(max_length=200)] = None,
                       prospect: Customer | None = None, customer: plans.PlanCustomer | None = None,
                       playbook_id: ShortStr | None = None,
                       note: Annotated[str | None, Field(max_length=1000)] = None) -> ProposeOut:
        who = caller(ctx)
        with _errors():
            return _propose(copilot, who, kind, case_id, account, recipient, prospect, customer, playbook_id, note)

    @server.tool(description=_described(PENDING_DOC), annotations=read_only)
    def my_pending_actions(ctx: Context, limit: Annotated[int, Field(ge=1, le=200)] = 50) -> PendingOut:
        who = caller(ctx)
        with _errors():
            records = copilot.action_runner.records(status="proposed", limit=limit, actor=who.name, role=who.role)
        return PendingOut(actions=[action_ref(r) for r in records])

    return server


# What the tools do (the same service calls as the HTTP routes) ----------------------------------
class _errors:
    """A CopilotError becomes a tool error with its Chinese message (the agent shows it to the person)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type, exc, _tb) -> None:
        if isinstance(exc, CopilotError):
            raise ToolError(exc.message_for("zh")) from exc


def _account_id(copilot: Copilot, text: str | None, required: bool = False) -> str | None:
    """An account id from an id, a name or an alias (either script); None when none was given."""
    text = (text or "").strip()
    if not text:
        if required:
            raise InvalidInput("Name the account", zh="请给出客户名称或编号")
        return None
    if copilot.accounts.account(text) is not None:
        return text
    if (found := copilot.account_resolver.find(text)) is not None:
        return found.id
    matches = copilot.current_book().select(q=text)
    if len(matches) == 1:
        return matches[0].id
    if matches:
        names = "、".join(m.name for m in matches[:5])
        raise InvalidInput(f"{text!r} matches several accounts: {names}",
                           zh=f"「{text}」对应多个客户：{names}，请说得更具体些或给出编号")
    raise NotFound(f"No account {text!r}", zh=f"没有找到客户「{text}」：请检查名称，或先导入客户数据")


def _draft(copilot: Copilot, customer: plans.PlanCustomer | None, account: str | None,
           who: Principal) -> plans.SuccessPlan:
    request = plans.PlanRequest(customer=customer or plans.PlanCustomer(), account_id=_account_id(copilot, account))
    return plans.draft_for_request(copilot, request, who.audiences, copilot.account_resolver)


def _account_status(copilot: Copilot, account_id: str, who: Principal) -> AccountStatus:
    from copilot.api.accounts import account_detail  # the account route's own assembly of record, insight and changes

    detail = account_detail(copilot, account_id, who.audiences)
    account, insight = detail.account, detail.insight
    risk = insight.renewal_risk
    return AccountStatus(
        id=account.id, name=account.name, tier=account.tier, csm=account.csm, renews_on=account.renews_on,
        health=insight.health.score, renewal_risk=risk.probability, risk_level=risk.level, reason=risk.summary,
        drivers=[d.reason for d in risk.drivers], journey=insight.journey_label,
        next_best_actions=[{"playbook_id": a.playbook_id, "title": a.title, "why": a.why, "step": a.step}
                           for a in insight.next_best_actions],
        changes=[c.text for c in detail.changes], sample=account.sample)


def _propose(copilot: Copilot, who: Principal, kind: str, case_id: str | None, account: str | None,
             recipient: str | None, prospect: Customer | None, customer: plans.PlanCustomer | None,
             playbook_id: str | None, note: str | None) -> ProposeOut:
    account_id = _account_id(copilot, account)
    if kind == "send_case_onepager":
        if not case_id:
            raise InvalidInput("Give case_id (from find_peer_cases)", zh="请给出 case_id（来自 find_peer_cases）")
        request = cases.OnepagerRequest(case_id=case_id, prospect=prospect, recipient=recipient, account_id=account_id)
        markdown, action = cases.propose_onepager(copilot, copilot.prompts, copilot.actions, request, who.name,
                                                  who.role, who.audiences, copilot.account_resolver)
        return ProposeOut(action=action_ref(action), preview=markdown)
    if kind in ("save_plan", "share_plan"):
        plan = _draft(copilot, customer, account, who)
        action = plans.propose_plan_action(copilot.prompts, copilot.actions, plan, kind.removesuffix("_plan"),
                                           who.name, who.role, recipient, None, copilot.account_resolver,
                                           pack=copilot.pack)
        return ProposeOut(action=action_ref(action), preview=str(action.arguments.get("markdown", "")))
    # account_task: the same steps as POST /api/accounts/{id}/actions
    from copilot.accounts.insight import ACCOUNT_TASK, account_task
    from copilot.api.accounts import account_detail

    if not account_id or not playbook_id:
        raise InvalidInput("Give account and playbook_id (from account_status)",
                           zh="请给出 account 和 playbook_id（来自 account_status 的下一步行动）")
    detail = account_detail(copilot, account_id, who.audiences)
    task = account_task(detail.account, detail.insight, playbook_id, note)
    action = copilot.actions.find_open(ACCOUNT_TASK, {"account_id": account_id, "playbook_id": playbook_id}) or \
        copilot.actions.propose(ACCOUNT_TASK, task.summary, task.arguments, who.name, who.role)
    return ProposeOut(action=action_ref(action))
