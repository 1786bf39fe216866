"""SQLAlchemy adapter: one schema for SQLite (default) and Postgres (scale-out).

The tables below are the schema's one description in Python; the Alembic migrations in
`copilot/migrations` create it step by step, and tests/test_schema.py fails when the two disagree
(Alembic's own model-to-database comparison on both backends).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator):
    """A moment in time that always comes back with its offset (UTC).

    Postgres keeps the offset (timestamptz); SQLite stores text without one and hands back naive
    datetimes, which a browser would then read as local time. Everything is written in UTC, so
    a naive value read back is UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("title", sa.String(512), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("doc_key", sa.String(1024), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("title", sa.String(512), nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tokens", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
    sa.Column("vector_texts", sa.JSON, nullable=True),
)

embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False),
    sa.Column("proposed_by", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("comment", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False, index=True),
    sa.Column("subject", sa.String(255)),
    sa.Column("payload", sa.JSON, nullable=False),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
)

knowledge_items = sa.Table(
    "knowledge_items",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(1024), nullable=False, index=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sheet_hash", sa.String(64)),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

account_activity = sa.Table(
    "account_activity",
    metadata,
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
)

account_plans = sa.Table(
    "account_plans",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(255), index=True),
    sa.Column("customer", sa.String(512), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

plan_milestones = sa.Table(
    "plan_milestones",
    metadata,
    sa.Column("plan_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(512), nullable=False),
    sa.Column("due", sa.Date, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("updated_by", sa.String(64)),
    sa.Column("updated_at", UtcDateTime()),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("audiences", sa.JSON, nullable=False),
    sa.Column("key_hash", sa.String(64), unique=True),
    sa.Column("email", sa.String(320), unique=True),
    sa.Column("oidc_subject", sa.String(255), unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("disabled_at", UtcDateTime()),
)

# Chat channels: each inbound platform message once (platforms redeliver on timeouts), and each
# action posted to a group once (group webhooks take no idempotency key).
channel_messages = sa.Table(
    "channel_messages",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
)

channel_posts = sa.Table(
    "channel_posts",
    metadata,
    sa.Column("action_id", sa.String(36), primary_key=True),
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("sent_at", UtcDateTime(), nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the API read while an ingest writes; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One migrated engine per URL per process."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine


def head_revision() -> str:
    """The newest migration's id (files are named <id>_<what>.py, ids in order)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration, once, however many processes start together.

    An up-to-date database is recognised with one query, without loading Alembic (a third of a
    second on every CLI command). Otherwise the upgrade runs under a lock that every starting
    process takes (a Postgres advisory lock; a lock file next to a SQLite database) and looks
    again inside it: the second worker finds the work done instead of racing the first."""
    if _current_revision(engine) == head_revision():
        return
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            if _current_revision(conn) != head_revision():
                _upgrade(conn)
        return
    with _file_lock(engine):
        if _current_revision(engine) != head_revision():
            with engine.begin() as conn:
                _upgrade(conn)


# Any fixed number: every copilot process asks Postgres for the same advisory lock.
MIGRATION_LOCK_KEY = 0x636F70696C6F74  # "copilot"


def _current_revision(bind: Engine | sa.Connection) -> str | None:
    def read(conn: sa.Connection) -> str | None:
        # A savepoint inside an open transaction: a missing table must not abort the caller's.
        if conn.in_transaction():
            with conn.begin_nested():
                return _version(conn)
        return _version(conn)

    try:
        if isinstance(bind, sa.Connection):
            return read(bind)
        with bind.connect() as conn:
            return read(conn)
    except sa.exc.DBAPIError:
        return None  # a new database: no version table yet


def _version(conn: sa.Connection) -> str | None:
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(conn: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _file_lock(engine: Engine):
    from contextlib import nullcontext

    from filelock import FileLock

    path = engine.url.database
    if not path or path == ":memory:":
        return nullcontext()  # one process owns an in-memory database
    return FileLock(f"{path}.migrate.lock", timeout=120)


def insert_ignoring_duplicates(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT that skips rows whose primary key is already there (another process got there
    first: e.g. two workers preloading the same shipped vectors)."""
    if rows:
        conn.execute(_dialect_insert(conn, table).on_conflict_do_nothing(), rows)


def upsert(conn: sa.Connection, table: sa.Table, values: dict[str, Any], key: str) -> None:
    """Insert or update one row by its primary key, in one statement (no update-then-insert race)."""
    changed = {k: v for k, v in values.items() if k != key}
    conn.execute(_dialect_insert(conn, table).values(**values).on_conflict_do_update(index_elements=[key], set_=changed))


def _dialect_insert(conn: sa.Connection, table: sa.Table):
    # Both supported backends spell ON CONFLICT the same way, each with its own construct.
    from sqlalchemy.dialects import postgresql, sqlite

    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[conn.dialect.name](table)
