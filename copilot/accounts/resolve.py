"""Which of the company's accounts a question is about: the longest name or alias it mentions, in
either script, English names case-insensitively ("沃尔玛那边…", "WALMART china 的门店…").

The lookup is a dict from name key (`store.name_keys`) to account, rebuilt only when the accounts
table changes. A text is scanned once per distinct key length at each position: with 10k accounts
that is a few dozen dict probes per character, ~0.1 ms for a question (a 2,000-character one:
~10 ms), so an Aho-Corasick automaton (pyahocorasick, a C extension) would save nothing noticeable
and add a dependency to build on every platform. Building the lookup is the cost that counts: ~3 s
for a 10k-account book the first time (folding names with `normalize`), then only changed accounts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa

from copilot import db
from copilot.accounts.models import Account
from copilot.accounts.store import AccountStore, name_keys
from copilot.errors import NotFound
from copilot.models import Customer
from copilot.normalize import normalize

# A CJK name this short easily sits inside an ordinary word (美的 in 完美的, 小米 in 小米粥), so it
# must not cut a word of the segmenter in two; a longer one is rarely there by accident.
SHORT_CJK_NAME = 3
# How often the accounts table is asked whether an import changed it (the question costs ~2 ms at
# 10k accounts; another worker's import shows up within this many seconds).
CHECK_S = 0.5


@dataclass(frozen=True)
class Mention:
    account: Account
    words: str  # the name as the (normalised) text writes it


class AccountResolver:
    """Finds accounts by id or by the names a text mentions; shared by every request of a process."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._checked = -CHECK_S
        self._table: tuple[dict[str, Account], list[int]] = ({}, [])  # key -> account, key lengths longest first
        self._keys: dict[str, tuple[tuple[str, ...], set[str]]] = {}  # id -> (names, their keys)

    def get(self, account_id: str) -> Account:
        account = self.store.account(account_id)
        if account is None:
            raise NotFound(f"No account {account_id!r}: see GET /api/accounts", zh=f"没有编号为 {account_id} 的客户")
        return account

    def find(self, text: str) -> Account | None:
        mention = self.mention(text)
        return mention.account if mention else None

    def mention(self, text: str) -> Mention | None:
        """The longest account name or alias in `text` (the earliest of equally long ones)."""
        index, lengths = self._lookup()
        if not index or not text:
            return None
        plain = normalize(text)
        key, at = _folded(plain)
        best: tuple[int, int] | None = None  # (start, length) in key
        for start in range(len(key)):
            for length in lengths:
                if best and length <= best[1]:
                    break
                end = start + length
                if end <= len(key) and key[start:end] in index and _standalone(plain, at[start], at[end - 1] + 1):
                    best = (start, length)
                    break
        if best is None:
            return None
        start, length = best
        return Mention(index[key[start:start + length]], plain[at[start]:at[start + length - 1] + 1])

    def _lookup(self) -> tuple[dict[str, Account], list[int]]:
        now = time.monotonic()
        if now - self._checked >= CHECK_S:
            self._checked = now
            version = self._data_version()
            if version != self._version:
                with self._lock:
                    if version != self._version:
                        self._table = self._build()
                        self._version = version
        return self._table

    def _build(self) -> tuple[dict[str, Account], list[int]]:
        """As `store.name_index`, but an account whose names did not change keeps its keys: folding
        a name costs ~0.3 ms (mostly ftfy), seconds for a 10k-account book on every import."""
        index: dict[str, Account] = {}
        shared: set[str] = set()
        known, self._keys = self._keys, {}
        for account in self.store.accounts():
            names = (account.name, *account.aliases)
            keys = known[account.id][1] if known.get(account.id, ((), set()))[0] == names else name_keys(account)
            self._keys[account.id] = names, keys
            for key in keys:
                if key in index and index[key].id != account.id:
                    shared.add(key)  # two accounts answer to it: naming neither is safer than guessing
                index[key] = account
        index = {k: a for k, a in index.items() if k not in shared}
        return index, sorted({len(k) for k in index}, reverse=True)

    def _data_version(self) -> tuple:
        # Accounts are only added or replaced (never deleted), and every write stamps updated_at.
        table = db.accounts
        with self.store.engine.connect() as conn:
            return tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(table.c.updated_at))).one())


def _folded(text: str) -> tuple[str, list[int]]:
    """The text as `store.name_key` folds it (case, spaces, punctuation), with each character's
    position in `text`, so a match can be checked against its neighbours."""
    chars, at = [], []
    for i, char in enumerate(text):
        for c in char.casefold():
            if c.isalnum():
                chars.append(c)
                at.append(i)
    return "".join(chars), at


def _standalone(text: str, start: int, end: int) -> bool:
    """Not the inside of a longer word: "Ace" not in "Facebook", "美的" not in "完美的方案"."""
    if _latin(text[start]) and start > 0 and _latin(text[start - 1]):
        return False
    if _latin(text[end - 1]) and end < len(text) and _latin(text[end]):
        return False
    if end - start > SHORT_CJK_NAME or not _cjk(text[start:end]):
        return True
    cuts = _word_edges(text)
    return start in cuts and end in cuts


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _cjk(words: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in words)


@lru_cache(maxsize=256)
def _word_edges(text: str) -> frozenset[int]:
    """Where the segmenter's dictionary (with the knowledge's domain words) lets a word start or end.
    Without HMM: guessing unknown words glues a name to its neighbour (帮麦|香坊), while a dictionary
    word that spans a name's edge (完美|的) really is another word."""
    from copilot.lexical import _jieba  # the retrieval tokenizer's jieba, already loaded for /api/ask

    edges = {0, len(text)}
    for _, start, end in _jieba().tokenize(text, hmm=False):
        edges.update((start, end))
    return frozenset(edges)


# What an account contributes to a workflow -----------------------------------------------------
def as_customer(account: Account, given: Customer | None = None) -> Customer:
    """The account record as a customer profile; whatever the caller stated explicitly wins, a place
    or a size as a whole (a city given with the account's province would contradict itself)."""
    placed = given is not None and bool(given.city or given.province)
    sized = given is not None and (given.annual_fee is not None or given.tier is not None)
    known = Customer(name=account.name, industry=account.industry or None, products=account.products,
                     city=None if placed else account.city or None,
                     province=None if placed else account.province or None,
                     # The fee decides the tier by the bands in rules.yaml (they may have moved since import).
                     annual_fee=None if sized else account.annual_fee,
                     tier=None if sized or account.annual_fee is not None else account.tier)
    if given is None:
        return known
    stated = given.model_dump(include=set(Customer.model_fields))  # a subclass's extra fields are not a profile
    return known.model_copy(update={k: v for k, v in stated.items() if v not in (None, "", [])})


def contact_card(account: Account, name: str | None = None) -> dict[str, str] | None:
    """The named contact of the account (by default the first listed, the primary one), with only
    the details the CRM has; None when the account lists nobody by that name."""
    contact = next((c for c in account.contacts if name is None or c.name == name), None)
    return {k: v for k, v in contact.model_dump().items() if v} if contact else None
