"""The web UI: server-rendered pages, static assets shipped in the package, and the navigation map.

Pages only carry pick lists and labels; every answer, case, plan and action is fetched by the
browser from the same JSON API other clients use, with the caller's API key when keys are on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from copilot import __version__
from copilot.api.deps import CopilotDep, PrincipalDep
from copilot.knowledge.pack import Pack
from copilot.knowledge.schema import Journey
from copilot.modeling import Model

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

JOURNEY: list[str] = list(get_args(Journey))
ROLES = {"sales": "销售", "csm": "客户成功", "support": "客服"}
ROLE_HINTS = {"sales": "同行案例、价值测算、一页纸", "csm": "成功计划、续费与增购", "support": "FAQ 标准答案、安灯升级"}
NAV = [("assistant", "/assistant", "助手"), ("cases", "/cases", "案例"), ("plans", "/plans", "成功计划"),
       ("accounts", "/accounts", "我的客户"), ("actions", "/actions", "待确认"), ("map", "/map", "知识地图"),
       ("gaps", "/gaps", "知识缺口"), ("knowledge", "/knowledge", "知识库"), ("users", "/users", "人员")]
# Phrased so each hits the goal_words of one outcome in plan_templates.yaml.
COMMON_GOALS = ["提升会员复购", "开通线上商城", "连锁门店统一管控", "降低库存损耗", "新店顺利开业", "私域社群运营",
                "高峰点单不排队"]
TOP_TITLES = 3

page_router = APIRouter(include_in_schema=False)
api_router = APIRouter(tags=["navigation"])


def register(app: FastAPI) -> None:
    """Mount the static assets, the HTML pages and `GET /api/map`."""
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    app.include_router(page_router)
    app.include_router(api_router)


# Navigation map ------------------------------------------------------------------------------
class MapItem(Model):
    id: str
    title: str
    note: str
    question: str
    href: str


class MapGroup(Model):
    count: int
    top: list[MapItem]
    more: list[MapItem]


class MapCell(Model):
    stage: str
    role: str
    total: int
    playbooks: MapGroup
    faqs: MapGroup
    cases: MapGroup


class MapRole(Model):
    key: str
    label: str
    hint: str


class NavigationMap(Model):
    stages: list[str]
    roles: list[MapRole]
    cells: list[MapCell]


def build_map(pack: Pack, audiences: list[str] | None = None) -> NavigationMap:
    """Customer-journey stage × role, each cell with the playbooks, FAQs and cases that belong there.

    Playbooks name their roles; FAQs and cases are placed in the rows of the roles whose routing
    (rules.yaml `routing`) reads that kind and audience, so the map shows what each role's
    assistant can actually answer from.
    """
    rules = pack.rules
    cells = []
    for role in ROLES:
        route = rules.role_route(role)
        visible = [a for a in route.audiences if audiences is None or a in audiences]
        for stage in JOURNEY:
            playbooks = [_item(p.id, p.title, f"{p.title}，具体怎么做？", role, p.summary)
                         for p in pack.playbooks
                         if p.journey == stage and role in p.roles and p.audience in visible and "playbook" in route.kinds]
            faqs = [_item(f.id, f.question, f.question, role, f.category)
                    for f in pack.faqs if f.journey == stage and f.audience in visible and "faq" in route.kinds]
            cases = [_item(c.id, c.company, f"{c.company}是怎么做的？效果如何？", role, f"{c.industry}·{c.city}")
                     for c in pack.cases if c.journey == stage and c.audience in visible and "case" in route.kinds]
            cells.append(MapCell(stage=stage, role=role, total=len(playbooks) + len(faqs) + len(cases),
                                 playbooks=_group(playbooks), faqs=_group(faqs), cases=_group(cases)))
    roles = [MapRole(key=k, label=v, hint=ROLE_HINTS[k]) for k, v in ROLES.items()]
    return NavigationMap(stages=JOURNEY, roles=roles, cells=cells)


def _item(item_id: str, title: str, question: str, role: str, note: str) -> MapItem:
    return MapItem(id=item_id, title=title, note=note, question=question,
                   href="/assistant?" + urlencode({"role": role, "q": question}))


def _group(items: list[MapItem]) -> MapGroup:
    return MapGroup(count=len(items), top=items[:TOP_TITLES], more=items[TOP_TITLES:])


@api_router.get("/api/map", response_model=NavigationMap)
def navigation_map(copilot: CopilotDep, principal: PrincipalDep) -> NavigationMap:
    """The navigation map: journey stage × role, with links that ask the assistant."""
    return build_map(copilot.pack, principal.audiences)


# Pages ---------------------------------------------------------------------------------------
def _page(request: Request, name: str, active: str, **context: Any) -> HTMLResponse:
    pack = request.app.state.copilot.pack
    labels = {kind: policy.label for kind, policy in pack.rules.actions.items() if policy.label}
    return templates.TemplateResponse(request, name, {
        "nav": NAV, "active": active, "asset_version": __version__, "vendor": pack.vendor.vendor,
        "action_labels": labels, **context})


def _starters(pack: Pack) -> dict[str, list[str]]:
    """Example questions per role, taken from the pack so they follow its content. Pages are served
    without a key, so only public items may show: an internal playbook's title is internal too."""
    examples = {i.task: i.examples for i in pack.intents}

    def playbooks(role: str, n: int) -> list[str]:  # the role's own playbooks (listed first in roles)
        return [f"{p.title}，具体怎么做？" for p in pack.playbooks if p.roles[0] == role and p.audience == "public"][:n]

    cases = examples.get("find_cases", [])
    sales = (cases[1:3] + playbooks("sales", 1) + cases[3:])[:3]  # the intents' examples fill in for playbooks
    csm = (playbooks("csm", 2) + examples.get("practice_question", []))[:3]
    support = [f.question for f in pack.faqs if f.audience == "public"][:3]
    return {"sales": sales, "csm": csm, "support": support}


@page_router.get("/", response_class=HTMLResponse)
@page_router.get("/assistant", response_class=HTMLResponse)
def assistant_page(request: Request, copilot: CopilotDep, role: str = "support", q: str = "") -> HTMLResponse:
    role = role if role in ROLES else "support"
    return _page(request, "assistant.html", "assistant", role=role, roles=ROLES, role_hints=ROLE_HINTS,
                 prefill=q[:1000], starters=_starters(copilot.pack)[role])


@page_router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, copilot: CopilotDep) -> HTMLResponse:
    pack = copilot.pack
    # Pick lists follow the data: the gazetteer's places plus every city a case is in.
    provinces: dict[str, list[str]] = {}
    places = {**{c.city: c.province for c in pack.cases if c.province}, **pack.gazetteer.cities}
    for city, province in places.items():
        provinces.setdefault(province, []).append(city)
    return _page(request, "cases.html", "cases", industries=pack.industries(),
                 provinces=provinces, tiers=pack.rules.size_tiers, situations=list(pack.gazetteer.situations))


@page_router.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, copilot: CopilotDep) -> HTMLResponse:
    pack = copilot.pack
    return _page(request, "plans.html", "plans", industries=pack.industries(),
                 tiers=pack.rules.size_tiers, products=pack.vendor.products,
                 goals=COMMON_GOALS, owners=pack.plan_templates.owners)


@page_router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request) -> HTMLResponse:
    """The CSM's book by renewal risk; owners, accounts and insight come from the accounts API."""
    return _page(request, "accounts.html", "accounts")


@page_router.get("/actions", response_class=HTMLResponse)
def actions_page(request: Request) -> HTMLResponse:
    return _page(request, "actions.html", "actions")


@page_router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> HTMLResponse:
    return _page(request, "map.html", "map", stages=JOURNEY, roles=ROLES)


@page_router.get("/gaps", response_class=HTMLResponse)
def gaps_page(request: Request) -> HTMLResponse:
    return _page(request, "gaps.html", "gaps")


@page_router.get("/knowledge", response_class=HTMLResponse)
def knowledge_page(request: Request) -> HTMLResponse:
    return _page(request, "knowledge.html", "knowledge")
