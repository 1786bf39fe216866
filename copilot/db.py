"""SQLAlchemy adapter: one schema for SQLite (default) and Postgres (scale-out).

The schema is owned by the Alembic migrations in `copilot/migrations`; these table objects
mirror it for queries.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("title", sa.String(512), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False, index=True),
    sa.Column("subject", sa.String(255)),
    sa.Column("payload", sa.JSON, nullable=False),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("updated_at", sa.DateTime(timezone=True)),
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
    """Bring the schema to the newest migration. An up-to-date database is recognised with one
    query, without loading Alembic (a third of a second on every CLI command)."""
    try:
        with engine.connect() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if current == head_revision():
            return
    except sa.exc.DBAPIError:
        pass  # a new database: no version table yet
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
