"""Questions about the company's own customers, asked in chat ("麦香坊现在怎么样？", "哪些客户续费风险高？"):
answered from the same account data, health and risk as the accounts API and the CSM page, never
from the best-practice knowledge (which knows nothing about this company's customers).

Only two shapes are taken here, both recognised by plain cue words so that a practice question
("客户续费率低怎么办") still goes to the knowledge:
- one account: the question names an account and asks how it is doing;
- the book: no account named, and it asks which customers are at risk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from copilot.accounts.models import Account, Activity
from copilot.models import AskResponse, Classification, Intent, Role
from copilot.normalize import normalize

# Every chat question passes `recognise`; the insight and journey rules are imported only to
# answer one that is about an account (Step 6: start-up).
if TYPE_CHECKING:
    from copilot.accounts.book import AccountSummary, Book
    from copilot.accounts.health import MilestoneCounts
    from copilot.accounts.insight import AccountInsight
    from copilot.accounts.resolve import AccountResolver
    from copilot.compose import Prompts
    from copilot.knowledge.pack import Pack

# How an account is doing: its state, health, risk, usage, or what to do next with it.
_HOW_IS_IT = re.compile(
    r"怎么样|咋样|如何了|情况|近况|状况|现状|健康|风险|续费|续约|流失|活跃|用得|使用|下一步|该做什么|怎么跟进|跟进什么"
    r"|(?<![a-z])(how is|how's|doing|status|health|risk|renewal|churn|next step|next best)(?![a-z])")
# Which customers: a list over the book, the asking word next to the customers it asks about
# (not "丢了十几家客户……还应该往哪几层去挖", a practice question).
_WHICH_CUSTOMERS = re.compile(
    r"(哪些|哪几[个家位]?|哪个|哪家|多少[个家]|列出|列一下|名单|排名|排一下|最危险)[^，。？！,.?!]{0,6}(客户|账户)"
    r"|(客户|账户)[^，。？！,.?!]{0,12}(哪些|哪几|哪个|哪家|谁|名单|排名)"
    r"|(?<![a-z])(which|list|show|top)(?![a-z])[^,.?!]{0,30}(?<![a-z])(accounts?|customers?|clients?)(?![a-z])")
# ... that are at risk (the level asked for, when it says so).
_AT_RISK = re.compile(r"风险|流失|预警|危险|不活跃|快丢|要丢|(?<![a-z])(risk|risky|churn|at-risk)(?![a-z])")
BOOK_SIZE = 10


@dataclass(frozen=True)
class AccountQuestion:
    shape: Literal["account", "book"]
    account: Account | None = None


def recognise(question: str, resolver: AccountResolver) -> AccountQuestion | None:
    """The account question this is, or None for everything the knowledge should answer."""
    text = normalize(question).lower()
    account = resolver.find(question)
    if account is not None:
        return AccountQuestion("account", account) if _HOW_IS_IT.search(text) else None
    if _WHICH_CUSTOMERS.search(text) and _AT_RISK.search(text):
        return AccountQuestion("book")
    return None


def answer_account(prompts: Prompts, book: Book, account: Account, activity: list[Activity], pack: Pack,
                   today: date, audiences: list[str] | None,
                   milestones: MilestoneCounts | None) -> tuple[str, AccountInsight]:
    from copilot.accounts.insight import account_insight
    from copilot.accounts.journey import STATE_LABELS

    insight = account_insight(account, activity, book.transitions, pack, today, audiences, milestones)
    text = prompts.render("account.md.j2", account=account, insight=insight,
                          state=STATE_LABELS.get(insight.journey_state, insight.journey_state))
    return text, insight


def answer_book(prompts: Prompts, book: Book) -> tuple[str, list[AccountSummary]]:
    """The riskiest open accounts (a past renewal kept for backtests is nothing to act on)."""
    open_book = [e for e in book.by_risk if e.outcome is None]
    high = [e for e in open_book if e.risk_level == "高"]
    shown = (high or [e for e in open_book if e.risk_level == "中"])[:BOOK_SIZE]
    text = prompts.render("account_book.md.j2", rows=shown, high=len(high), total=len(open_book))
    return text, shown


def respond(question: str, role: Role, resolver: AccountResolver, book: Callable[[], Book],
            milestones: Callable[[str], MilestoneCounts | None] | None, prompts: Prompts, pack: Pack,
            audiences: list[str] | None, today: date | None = None) -> AskResponse | None:
    """The chat answer to a question about the company's own customers, or None for the knowledge.
    `book` is the same cached book the accounts API and the 我的客户 page read, so all three agree."""
    asked = recognise(question, resolver)
    if asked is None:
        return None
    today = today or date.today()
    if asked.account is not None:
        tracked = milestones(asked.account.id) if milestones else None
        activity = resolver.store.activity(asked.account.id)
        text, _ = answer_account(prompts, book(), asked.account, activity, pack, today, audiences, tracked)
        explanation = "来自导入的客户数据：健康度、续费风险和旅程阶段按 rules.yaml 的 insight 规则计算，建议来自打法库。"
    else:
        text, _ = answer_book(prompts, book())
        explanation = "来自导入的客户数据，按续费风险从高到低排列。"
    intent = Intent(role=role, task="account_insight")
    return AskResponse(answer=text, explanation=explanation, grounded=True, citations=[], intent=intent,
                       confidence=1.0, classification=Classification())
