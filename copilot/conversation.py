"""Conversations: a follow-up inherits what the earlier turns established unless it says otherwise.

"那上海的呢？" after "杭州有没有做烘焙的客户案例？" asks the same thing for another city. These pure
functions spot such elliptical follow-ups, rewrite them into a standalone retrieval query (the
earlier question with its slot words swapped for the new ones, or the earlier question plus the
new words) and merge the slots of the turns field by field, the latest turn winning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import Field, StringConstraints, field_validator

from copilot.modeling import Model
from copilot.models import Slots
from copilot.normalize import normalize

Speaker = Literal["user", "assistant", "system"]
MAX_TURNS = 6  # earlier user and assistant turns considered; system messages are always kept
MAX_TURN_CHARS = 4000  # what is read of a turn: a longer one (an assistant's long answer) is cut to this
MAX_TURN_INPUT_CHARS = 20_000  # a turn longer than this is refused, not cut
_LABELS = {"user": "用户", "assistant": "助手", "system": "背景"}

# Slot fields that change together: a new city brings its own province and region.
SLOT_GROUPS: tuple[tuple[str, ...], ...] = (("city", "province", "region"), ("industry",), ("tier", "annual_fee"),
                                            ("product",), ("situation",))

# Elliptical openings and endings: 那…呢 / 如果…呢 / 还有… / what about… / and for…
_LEAD = re.compile(r"^(那如果|那要是|那么|那(?![个些种样里边时])|如果|要是|假如|万一|还有|另外|换成|换到|改成|至于|同样|"
                   r"(and what about|what about|how about|what if|and for|and in|and if|same for|also|and)\b)\s*",
                   re.I)
_TAIL = re.compile(r"(的情况|的话|的)?(呢|吗|嘛|呀|啊|怎么样|如何|行吗|可以吗|也一样吗)*$")
_ALSO = re.compile(r"也(.{0,3}不|没|一样|是|这样|那样)")  # "打印机也不行": the same problem, another device
_WH = re.compile(r"怎么|如何|为什么|为何|什么|多少|多久|多长|哪|谁|几|\b(how|what|why|which|who|when)\b", re.I)
_PUNCT = re.compile(r"[\s,.;:!?，。；：！？、…~～\"'“”‘’()（）]+")
# Words that carry no topic of their own in a short follow-up ("那小微客户呢" is just a new tier).
_FILLER = re.compile(r"客户|商家|门店|店铺|店|家|这种|这类|那种|类型|规模|情况|的|是|呢|吗|了|呀|啊|吧|嘛|也|"
                     r"\b(the|a|an|ones?|customers?|clients?|shops?|stores?|for|in|of|case|cases)\b", re.I)
# "那X呢" / "what about X": the same question about another subject ("那退款呢"); "那X的呢" is the
# same subject with another attribute ("那会员复购做得好的呢").
_SUBSTITUTE = re.compile(r"^(?!.*(如果|要是|假如|万一|还有|另外|\bif\b|\balso\b))"
                         r"((那么|那(?![个些种样里边时])|(what about|how about|and for|and in)\b)(?!.*的(呢|吗)?$)|(?!.*的呢$).*呢$)",
                         re.I)
_GENERIC = re.compile(r"具体|详细|到底|该|要|能|可以|是|做|弄|办|操作|处理|设置|意思|原因|一下|讲讲|说说")
_REQUEST = re.compile(r"帮我|请|给我|麻烦|找|起草|写|生成|推荐|介绍|列出|\b(please|find|show|draft|write)\b", re.I)
_OWN_TOPIC_CHARS = 8  # a follow-up longer than this (after fillers and slot words) brings its own topic


class Turn(Model):
    """One earlier message; a plain string in a history list is a user turn."""

    role: Speaker = "user"
    content: str = Field(max_length=MAX_TURN_INPUT_CHARS,
                         description=f"Read up to its first {MAX_TURN_CHARS} characters")

    @field_validator("content")
    @classmethod
    def _cut(cls, content: str) -> str:
        return content[:MAX_TURN_CHARS]

    @classmethod
    def of(cls, content: str, role: Speaker = "user") -> Turn:
        """A turn from text of any length (cut, never refused): for texts the caller did not type."""
        return cls(role=role, content=content[:MAX_TURN_CHARS])

    def __str__(self) -> str:  # how an LLM prompt shows the turn
        return f"{_LABELS[self.role]}：{self.content}"


# An entry of a request's history: a user question as a string, or a typed turn.
HistoryEntry = Annotated[str, StringConstraints(max_length=MAX_TURN_INPUT_CHARS)] | Turn


class Reader(Protocol):
    """What the conversation needs from intent understanding: the words that set each slot group."""

    def mentions(self, text: str) -> dict[str, str]: ...


class Resolved(Model):
    """A question read in its conversation."""

    query: str = Field(description="Standalone retrieval query: the question itself unless it is a follow-up")
    followup: bool = False
    previous: str | None = Field(default=None, description="The earlier question (standalone) it follows up on")
    context: list[str] = Field(default_factory=list, description="Earlier system and user texts that inform slots")


def turns(history: Sequence[str | Turn | dict] | None, limit: int = MAX_TURNS) -> list[Turn]:
    """The history as typed turns: every system message, then the last `limit` other turns."""
    typed = [Turn.of(h) if isinstance(h, str) else Turn.model_validate(h) for h in history or []]
    typed = [t for t in typed if t.content.strip()]
    others = [t for t in typed if t.role != "system"]
    return [t for t in typed if t.role == "system"] + (others[-limit:] if limit else [])


def resolve(question: str, history: Sequence[str | Turn | dict] | None, reader: Reader) -> Resolved:
    """The standalone query for `question`, resolving the follow-ups in the history in turn
    ("杭州…烘焙案例" → "那上海的呢" → "中型的呢" is a search for 中型 bakeries in Shanghai)."""
    earlier = turns(history)
    topic: str | None = None
    for i, turn in enumerate(earlier):
        if turn.role == "user":
            topic = _read(normalize(turn.content), topic, earlier[:i], reader).query
    resolved = _read(normalize(question), topic, earlier, reader)
    context = [normalize(t.content) for t in earlier if t.role in ("system", "user")]
    return resolved.model_copy(update={"context": context})


def is_followup(text: str, reader: Reader) -> bool:
    """Elliptical: 那…呢 / 如果…呢 / 还有… / what about… / "打印机也不行", or a short question whose
    only content is slot words or a question word ("上海的？", "中型", "为什么？"): no topic of its own."""
    mentions = _setting(reader.mentions(text))
    own = _topic_words(text, mentions)
    plain = _PUNCT.sub(" ", text).strip()
    bare = _TAIL.sub("", plain)
    elliptical = bool(_LEAD.match(plain)) and (plain != bare or _size(plain) <= 10)
    elliptical |= bool(re.search(r"(呢|怎么样)$", plain)) and not _WH.search(bare)
    elliptical |= bool(_ALSO.search(plain)) and _size(plain) <= 12
    elliptical |= bool(mentions) and not own and _size(plain) <= 12
    elliptical |= _size(plain) <= 8 and not _size(_GENERIC.sub("", _WH.sub("", own)))
    return elliptical and _size(own) <= _OWN_TOPIC_CHARS


def rewrite(text: str, previous: str, reader: Reader) -> str:
    """The follow-up as a standalone query. New slot words replace the previous question's ones
    ("那上海的呢" → "上海有没有做烘焙的客户案例"); a new subject takes the previous question's
    setting and question word ("那退款呢" after "收银台扫码支付失败怎么办" → "退款 怎么办"); anything
    else is added to the previous question ("如果达不到呢" → "续费率目标定多少合适 如果达不到")."""
    new, old = _setting(reader.mentions(text)), reader.mentions(previous)
    rest = _core(text, new)
    if rest and not new and _SUBSTITUTE.match(_PUNCT.sub(" ", text).strip()) and not _WH.search(rest) \
            and not _ALSO.search(rest):
        context = old if "product" not in reader.mentions(text) else _setting(old)
        return " ".join([rest, *context.values(), _question_word(previous)]).strip()
    query, added = previous, []
    for group, word in new.items():
        if group in old and old[group] in query:
            query = query.replace(old[group], word, 1)
        else:
            added.append(word)
    return " ".join([*added, query, rest]).strip()


def inherit(earlier: Sequence[Slots], current: Slots) -> Slots:
    """Slots of the conversation: each turn overrides the ones before it group by group (a new city
    replaces the old city, province and region together); urgency is the current message's alone."""
    merged = Slots()
    for slots in [*earlier, current]:
        update = {f: getattr(slots, f) for group in SLOT_GROUPS if any(getattr(slots, f) for f in group)
                  for f in group}
        if slots.account_tier or slots.tier:
            update["account_tier"] = slots.account_tier
        merged = merged.model_copy(update=update)
    return merged.model_copy(update={"urgency": current.urgency})


def _read(text: str, topic: str | None, earlier: list[Turn], reader: Reader) -> Resolved:
    if topic and is_followup(text, reader):
        return Resolved(query=rewrite(text, topic, reader), followup=True, previous=topic)
    return Resolved(query=_with_setting(text, earlier, reader))


def _with_setting(text: str, earlier: list[Turn], reader: Reader) -> str:
    """A question with no slot words of its own, right after the user described the customer
    ("我在跟成都一家奶茶连锁谈" → "有没有同行案例？"), is about that customer."""
    if _setting(reader.mentions(text)):
        return text
    users = [t for t in earlier if t.role == "user"]
    described = [t for t in earlier if t.role == "system"]
    if users and _is_statement(users[-1].content):
        described.append(users[-1])
    setting: dict[str, str] = {}
    for turn in described:
        setting.update(_setting(reader.mentions(normalize(turn.content))))
    return " ".join([text, *setting.values()])


def _setting(mentions: dict[str, str]) -> dict[str, str]:
    """Who the customer is (place, industry, size); a product named in a follow-up is its subject
    ("那会员呢？"), so it is not swapped into the earlier question."""
    return {group: word for group, word in mentions.items() if group != "product"}


def _question_word(question: str) -> str:
    """What the question asks: its question word and the word after it ("怎么办", "谁负责"), or nothing."""
    match = _WH.search(question)
    if not match:
        return ""
    after = question[match.end():]
    more = re.match(r"( [A-Za-z]+){0,2}" if match.group(0).isascii() else r"[^\W\d给把让在对跟和与从向]{0,2}", after)
    return match.group(0) + (more.group(0) if more else "")


def _is_statement(text: str) -> bool:
    return not re.search(r"[?？]|(吗|呢|吧)\W*$", text) and not _WH.search(text) and not _REQUEST.search(text)


def _strip_mentions(text: str, mentions: dict[str, str]) -> str:
    for word in sorted(mentions.values(), key=len, reverse=True):
        text = text.replace(word, " ")
    return text


def _core(text: str, mentions: dict[str, str]) -> str:
    """What a follow-up says besides its slot words, without 那…呢 around it ("如果达不到", "退款")."""
    core = _PUNCT.sub(" ", _strip_mentions(text, mentions)).strip()
    core = _TAIL.sub("", _LEAD.sub("", core)).strip()
    return core if _FILLER.sub("", core).strip() else ""


def _topic_words(text: str, mentions: dict[str, str]) -> str:
    """The follow-up's own content: text less slot words, openings, endings and fillers."""
    plain = _PUNCT.sub(" ", _strip_mentions(text, mentions)).strip()
    plain = _TAIL.sub("", _LEAD.sub("", plain))
    return " ".join(_FILLER.sub(" ", plain).split())


def _size(text: str) -> int:
    """Length in CJK characters plus Latin words."""
    return len(re.findall(r"[\u4e00-\u9fff]", text)) + len(re.findall(r"[A-Za-z0-9]+", text))
