"""The schema: one description (copilot/db.py) that the migrations must build exactly, applied
once however many processes start together, with timestamps that keep their offset."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import build_settings


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'copilot.db'}"


def test_the_migrations_build_exactly_the_tables_the_code_describes(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from copilot import db

    engine = db.engine_for(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_the_drift_check_notices_a_column_the_migrations_do_not_make(db_url):
    """The check above can fail: a column added to the code but to no migration is reported."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from copilot import db

    engine = db.engine_for(db_url)
    described = sa.MetaData()
    users = db.users.to_metadata(described)
    users.append_column(sa.Column("nickname", sa.String(64)))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": lambda name, type_, parent: (
            type_ != "table" or name == "users")})
        diff = compare_metadata(context, described)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "nickname")]


def test_times_come_back_with_their_offset_on_every_backend(db_url):
    """SQLite used to hand back naive datetimes: the UI then showed UTC as local time."""
    from copilot import db
    from copilot.actions import ActionStore, AuditLog

    engine = db.engine_for(db_url)
    store = ActionStore(engine, AuditLog(engine))
    proposed = store.propose("escalation_ticket", "测试", {}, "alice", "support")
    row = store.get(proposed.id)
    assert row["created_at"].utcoffset() is not None
    assert abs((row["created_at"] - datetime.now(timezone.utc)).total_seconds()) < 60
    entry = AuditLog(engine).entries(subject=proposed.id)[0]
    assert entry["at"].utcoffset() is not None


def _start_worker(url: str, pack_vectors: dict[str, bytes], barrier, results) -> None:
    """What a freshly started server process does first: migrate, then preload shipped vectors."""
    from copilot import db
    from copilot.knowledge.catalog import Catalog

    barrier.wait()
    try:
        engine = db.engine_for(url)
        Catalog(engine).store_vectors({k: np.frombuffer(v, dtype=np.float32) for k, v in pack_vectors.items()})
        Catalog(engine).set_state_value("probe", "x")
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


def test_workers_starting_together_on_a_fresh_database_do_not_race(db_url):
    """Four processes start at once on an empty database: every one comes up, the schema is at
    the newest revision, and the shipped vectors are stored once."""
    from copilot import db

    vectors = {f"key-{i}": np.full(8, i, dtype=np.float32).tobytes() for i in range(300)}
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_start_worker, args=(db_url, vectors, barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in workers]
    assert outcomes == ["ok"] * 4
    engine = db.engine_for(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == db.head_revision()
        assert conn.execute(sa.select(sa.func.count()).select_from(db.embeddings)).scalar() == 300


def test_copilot_migrate_brings_a_database_up_and_says_where_it_is(tmp_path):
    from typer.testing import CliRunner

    from copilot import db
    from copilot.cli import app

    settings = build_settings(tmp_path)
    result = CliRunner().invoke(app, ["migrate", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert db.head_revision() in result.output
    engine = sa.create_engine(f"sqlite:///{settings.data_dir / 'copilot.db'}")
    assert "users" in sa.inspect(engine).get_table_names()
