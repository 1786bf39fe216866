"""Accounts and their monthly activity in the database (SQLite or Postgres), and finding an
account by the name people use for it in a question."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from copilot import db
from copilot.accounts.models import Account, Activity
from copilot.normalize import normalize

# 麦香坊（示例） is asked about as 麦香坊: a bracketed note is not part of the name people type.
_BRACKETED = re.compile(r"[(（\[【].*?[)）\]】]")
_NOT_WORD = re.compile(r"[\W_]+")
MIN_NAME_CHARS = 2  # a one-character alias would match inside almost any sentence

Changes = tuple[list[str], list[str], list[str]]  # added, updated, unchanged (ids)


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

    # Accounts -----------------------------------------------------------------------------------
    def upsert_accounts(self, accounts: list[Account]) -> Changes:
        """Insert new accounts, replace changed ones; an account missing from the list is kept."""
        added, updated, unchanged = [], [], []
        now = datetime.now(UTC)
        table = db.accounts
        with self.engine.begin() as conn:
            ids = [a.id for a in accounts]
            stored = dict(conn.execute(sa.select(table.c.id, table.c.data).where(table.c.id.in_(ids))).all())
            for account in accounts:
                data = account.model_dump(mode="json")
                if account.id not in stored:
                    conn.execute(sa.insert(table).values(id=account.id, name=account.name, data=data, updated_at=now))
                    added.append(account.id)
                elif stored[account.id] != data:
                    conn.execute(sa.update(table).where(table.c.id == account.id)
                                 .values(name=account.name, data=data, updated_at=now))
                    updated.append(account.id)
                else:
                    unchanged.append(account.id)
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
        with self.engine.begin() as conn:
            accounts = {r.account_id for r in rows}
            stored = {(a, m): d for a, m, d in conn.execute(
                sa.select(table.c.account_id, table.c.month, table.c.data).where(table.c.account_id.in_(accounts)))}
            for row in rows:
                key, data = (row.account_id, row.month), row.model_dump(mode="json")
                label = f"{row.account_id}:{row.month}"
                if key not in stored:
                    conn.execute(sa.insert(table).values(account_id=row.account_id, month=row.month, data=data))
                    added.append(label)
                elif stored[key] != data:
                    conn.execute(sa.update(table).where(table.c.account_id == row.account_id,
                                                        table.c.month == row.month).values(data=data))
                    updated.append(label)
                else:
                    unchanged.append(label)
                stored[key] = data  # a second row for the same month in one batch replaces the first
        return added, updated, unchanged

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
        with self.engine.connect() as conn:
            for data in conn.execute(sa.select(table.c.data).order_by(table.c.account_id, table.c.month)).scalars():
                row = Activity.model_validate(data)
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
