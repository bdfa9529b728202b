"""Alembic migrations on every available database: SQLite always, PostgreSQL under ``make test-pg``.

upgrade head → downgrade base → upgrade head works, and the migrated schema matches ``db.models``
exactly (``alembic.autogenerate.compare_metadata`` finds nothing to add, drop or alter).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from helpers import postgres_admin_url, postgres_database, sqlite_url

from db import Storage
from db.models import Base
from db.storage import MIGRATIONS, make_engine, migrate

pytestmark = pytest.mark.db  # kept under `make test-pg`, though it builds its own databases

TABLES = {"runs", "metrics", "artifacts", "workers", "sweeps", "sweep_journal"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each available dialect."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "migrations.db")
        return
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("QMLAPP_TEST_POSTGRES_URL is not set (run `make test-pg` for the PostgreSQL variant)")
    with postgres_database(admin) as url:
        yield url


def alembic(conn: sa.Connection, action: str, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    getattr(command, action)(cfg, target)
    conn.commit()


def head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    rev = ScriptDirectory.from_config(cfg).get_current_head()
    assert rev is not None
    return rev


def schema_diff(conn: sa.Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(ctx, Base.metadata))


def versions(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def test_upgrade_downgrade_upgrade_round_trip(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            alembic(conn, "upgrade", "head")
            assert versions(conn) == [head()]
            assert TABLES <= set(sa.inspect(conn).get_table_names())
            alembic(conn, "downgrade", "base")
            assert versions(conn) == []
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
            alembic(conn, "upgrade", "head")
            assert versions(conn) == [head()]
            assert schema_diff(conn) == []
        # The store works on the re-created schema.
        storage = Storage(empty_url)
        run = storage.create_run("qnn", {"a": 1})
        assert storage.claim_next_run("w") == storage.get_run(run.id)
        storage.close()
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        migrate(engine)
        migrate(engine)  # idempotent
        with engine.connect() as conn:
            assert versions(conn) == [head()]
            assert schema_diff(conn) == []
            # The comparison does see drift: a missing index is reported.
            conn.execute(sa.text("DROP INDEX ix_runs_status"))
            assert [d[0] for d in schema_diff(conn)] == ["add_index"]
            conn.rollback()
    finally:
        engine.dispose()


def test_each_revision_downgrades_to_its_parent(empty_url: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    revisions = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions("base", "heads")][::-1]
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            for rev in revisions:  # oldest first
                alembic(conn, "upgrade", rev)
                assert versions(conn) == [rev]
            for rev in reversed(revisions):
                alembic(conn, "downgrade", "-1")
                assert versions(conn) == ([] if rev == revisions[0] else [revisions[revisions.index(rev) - 1]])
    finally:
        engine.dispose()
