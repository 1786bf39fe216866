"""Accounts and their monthly activity in the database (SQLite or Postgres), and finding an
account by the name people use for it in a question."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.accounts.models import Account, Activity
from copilot.normalize import normalize

# 麦香坊（示例） is asked about as 麦香坊: a bracketed note is not part of the name people type.
_BRACKETED = re.compile(r"[(（\[【].*?[)）\]】]")
_NOT_WORD = re.compile(r"[\W_]+")
MIN_NAME_CHARS = 2  # a one-character alias would match inside almost any sentence

T = TypeVar("T")
Changes = tuple[list[str], list[str], list[str]]  # added, updated, unchanged (ids)
VERSION_KEY = "accounts_version"
# Rows per statement batch: bounds the ids in one IN (...) and lets a progress bar move.
BATCH = 2000


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def name_key(text: str) -> str:
    """A name as compared: simplified script, case, spaces and punctuation folded."""
    return _NOT_WORD.sub("", normalize(text).casefold())


def name_keys(account: Account) -> set[str]:
    """Every key an account answers to: its name and aliases, with and without bracketed notes."""
    keys = set()
    for name in (account.name, *account.aliases):
        for variant in (name, _BRACKETED.sub("", normalize(name))):
            if len(key := name_key(variant)) >= MIN_NAME_CHARS:
                keys.add(key)
    return keys


class AccountStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Called with the number of rows each write handled: a progress bar's hook (the benchmark's).
        self.on_rows: Callable[[int], None] | None = None

    # Version ------------------------------------------------------------------------------------
    def version(self) -> str:
        """A token that changes whenever an account or a month of activity does, in any process:
        what lets every worker keep computed insight until the data changes."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(db.state.c.value).where(db.state.c.key == VERSION_KEY)).scalar() or ""

    def _bump(self, conn: sa.Connection) -> None:
        # A fresh random token, not a counter: two imports at once cannot end on the same value
        # a reader already cached, and there is no read-modify-write to race on.
        token = uuid.uuid4().hex
        if conn.execute(sa.update(db.state).where(db.state.c.key == VERSION_KEY).values(value=token)).rowcount == 0:
            conn.execute(sa.insert(db.state).values(key=VERSION_KEY, value=token))

    # Accounts -----------------------------------------------------------------------------------
    def upsert_accounts(self, accounts: list[Account]) -> Changes:
        """Insert new accounts, replace changed ones; an account missing from the list is kept."""
        added, updated, unchanged = [], [], []
        now = datetime.now(UTC)
        table = db.accounts
        with self.engine.begin() as conn:  # one transaction: an import lands whole or not at all
            for batch in _batches(accounts):
                inserts, updates = [], []
                ids = [a.id for a in batch]
                stored = dict(conn.execute(sa.select(table.c.id, table.c.data).where(table.c.id.in_(ids))).all())
                for account in batch:
                    data = account.model_dump(mode="json")
                    if account.id not in stored:
                        inserts.append({"id": account.id, "name": account.name, "data": data, "updated_at": now})
                        added.append(account.id)
                    elif stored[account.id] != data:
                        updates.append({"key": account.id, "name": account.name, "data": data, "updated_at": now})
                        updated.append(account.id)
                    else:
                        unchanged.append(account.id)
                    stored[account.id] = data  # the same account twice in one batch: the last one wins
                self._write(conn, table, inserts, updates, sa.update(table).where(table.c.id == sa.bindparam("key")))
                self._advance(len(batch))
        return added, updated, unchanged

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(db.accounts.c.data).order_by(db.accounts.c.name, db.accounts.c.id)).scalars()
            return [Account.model_validate(data) for data in rows]

    def account(self, account_id: str) -> Account | None:
        with self.engine.connect() as conn:
            data = conn.execute(sa.select(db.accounts.c.data).where(db.accounts.c.id == account_id)).scalar()
        return Account.model_validate(data) if data is not None else None

    # Activity -----------------------------------------------------------------------------------
    def upsert_activity(self, rows: list[Activity]) -> Changes:
        """Insert or replace each (account, month); other months are kept. Ids are "account:month"."""
        added, updated, unchanged = [], [], []
        table = db.account_activity
        where = sa.and_(table.c.account_id == sa.bindparam("key_account"), table.c.month == sa.bindparam("key_month"))
        with self.engine.begin() as conn:  # one transaction: an import lands whole or not at all
            for batch in _batches(rows):
                inserts: dict[tuple[str, str], dict] = {}
                updates: dict[tuple[str, str], dict] = {}
                accounts = {r.account_id for r in batch}
                stored = {(a, m): d for a, m, d in conn.execute(
                    sa.select(table.c.account_id, table.c.month, table.c.data).where(table.c.account_id.in_(accounts)))}
                for row in batch:
                    key, data = (row.account_id, row.month), row.model_dump(mode="json")
                    label = f"{row.account_id}:{row.month}"
                    if key in inserts:  # a second row for the same month in one batch replaces the first
                        inserts[key]["data"] = data
                    elif key not in stored:
                        inserts[key] = {"account_id": row.account_id, "month": row.month, "data": data}
                        added.append(label)
                    elif stored[key] != data:
                        updates[key] = {"key_account": row.account_id, "key_month": row.month, "data": data}
                        updated.append(label)
                    else:
                        unchanged.append(label)
                    stored[key] = data
                self._write(conn, table, list(inserts.values()), list(updates.values()), sa.update(table).where(where))
                self._advance(len(batch))
        return added, updated, unchanged

    def _write(self, conn: sa.Connection, table: sa.Table, inserts: list[dict], updates: list[dict],
               update: sa.Update) -> None:
        # One executemany per kind of write: row-by-row statements made a 100,000-row import 5x slower.
        if inserts:
            conn.execute(sa.insert(table), inserts)
        if updates:
            conn.execute(update, updates)  # keys named like columns become the SET values
        if inserts or updates:
            self._bump(conn)

    def _advance(self, count: int) -> None:
        if self.on_rows:
            self.on_rows(count)

    def activity(self, account_id: str) -> list[Activity]:
        """One account's months, oldest first."""
        table = db.account_activity
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.data).where(table.c.account_id == account_id)
                                .order_by(table.c.month)).scalars()
            return [Activity.model_validate(data) for data in rows]

    def all_activity(self) -> dict[str, list[Activity]]:
        """Every account's months, oldest first, keyed by account id."""
        table = db.account_activity
        found: dict[str, list[Activity]] = defaultdict(list)
        # Read as text and parsed by pydantic in one step: half the time of the driver's JSON decoding
        # followed by validation, which matters when the whole book is read (100,000+ rows).
        query = sa.select(sa.cast(table.c.data, sa.Text)).order_by(table.c.account_id, table.c.month)
        with self.engine.connect() as conn:
            for text in conn.execute(query).scalars():
                row = Activity.model_validate_json(text)
                found[row.account_id].append(row)
        return dict(found)

    # Finding by name ----------------------------------------------------------------------------
    def name_index(self) -> dict[str, Account]:
        """Name key -> account, for every name and alias (a key two accounts share is left out)."""
        index: dict[str, Account] = {}
        shared: set[str] = set()
        for account in self.accounts():
            for key in name_keys(account):
                if key in index and index[key].id != account.id:
                    shared.add(key)
                index[key] = account
        return {k: a for k, a in index.items() if k not in shared}

    def find_by_name(self, text: str) -> Account | None:
        """The account a text names: an exact name or alias in either script, else the longest
        name or alias the text contains ("麦香坊续费风险高不高" -> 麦香坊（示例）)."""
        index = self.name_index()
        key = name_key(text)
        if key in index:
            return index[key]
        inside = [k for k in index if k in key]
        return index[max(inside, key=len)] if inside else None
