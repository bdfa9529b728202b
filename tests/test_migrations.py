"""Alembic migrations on every available database: SQLite always, PostgreSQL under ``make test-pg``.

upgrade head → downgrade base → upgrade head works, every revision round-trips with data in the
database (no row is lost by a table rebuild), and the migrated schema matches ``db.models`` exactly
(``alembic.autogenerate.compare_metadata`` finds nothing to add, drop or alter).
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

from db import SUCCEEDED, Storage
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


Snapshot = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def snapshot(conn: sa.Connection) -> Snapshot:
    """Every row of every application table present: table -> (columns, rows ordered by id)."""
    out: Snapshot = {}
    for table in sorted(TABLES & set(sa.inspect(conn).get_table_names())):
        cols = sorted(c["name"] for c in sa.inspect(conn).get_columns(table))
        rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id")).all()
        out[table] = (cols, [tuple(r) for r in rows])
    conn.commit()
    return out


def project(snap: Snapshot, table: str, cols: list[str], blank: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """The rows of ``snap[table]`` restricted to ``cols``; columns in ``blank`` read as NULL."""
    have, rows = snap[table]
    return [tuple(None if c in blank else row[have.index(c)] for c in cols) for row in rows]


def fill(url: str) -> None:
    """Runs with metrics and artifacts, a sweep with trials and journal, a worker: through the store."""
    storage = Storage(url)
    try:
        sweep = storage.create_sweep("qnn", {"space": {"lr": [0.1, 0.2]}}, name="study")
        storage.append_journal(sweep.id, [{"op": 1, "x": [1, 2]}, {"op": 2}])
        for i in range(4):
            trial = i < 2
            run = storage.create_run("qnn", {"n_qubits": 2 + i, "nested": {"a": [i, "é"]}}, seed=i, name=f"r{i}",
                                     sweep_id=sweep.id if trial else None, sweep_trial=i if trial else None)
            storage.add_metrics(run.id, [(s, "loss", 1.0 / (s + 1)) for s in range(3)] + [(0, "acc", 0.5 + i)])
            storage.save_artifact(run.id, "circuit.svg", "image/svg+xml", b"<svg/>" * (i + 1))
            storage.save_artifact(run.id, "weights.bin", "application/octet-stream", bytes(range(256)))
            if i % 2 == 0:
                assert storage.claim_run(run.id, "w1") is not None
                assert storage.finish_run(run.id, "w1", SUCCEEDED, result={"accuracy": 0.9, "i": i})
        doomed = storage.create_run("qnn", {})  # the newest, deleted: leaves a gap at the top
        storage.delete_run(doomed.id)
        storage.register_worker("w1", "host", 42)
    finally:
        storage.close()


def test_every_revision_round_trips_with_data(empty_url: str) -> None:
    """Down one revision at a time to the first and back up to head with data in every table: each
    table that exists at a revision keeps all its rows and values (a batch rebuild of ``runs`` on
    SQLite used to cascade-delete every metric and artifact)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    revisions = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions("base", "heads")][::-1]
    sweep_tables = {"sweeps", "sweep_journal"}
    fill(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            original = snapshot(conn)
            assert {t: len(rows) for t, (_, rows) in original.items()} == {
                "runs": 4, "metrics": 16, "artifacts": 8, "workers": 1, "sweeps": 1, "sweep_journal": 2}

            def check(rev: str, sweeps_dropped: bool) -> None:
                assert versions(conn) == [rev]
                now = snapshot(conn)
                for table, (cols, rows) in now.items():
                    if sweeps_dropped and table in sweep_tables:
                        assert rows == [], (rev, table)  # the tables were dropped on the way down
                        continue
                    # sweep_trial is dropped below 0002, so it comes back empty.
                    blank = frozenset({"sweep_trial"}) if sweeps_dropped else frozenset()
                    assert rows == project(original, table, cols, blank), (rev, table)
                assert {"runs", "metrics", "artifacts", "workers"} <= set(now)

            # Each step down, straight back up and down again; below the sweeps revision their tables
            # (and runs.sweep_trial) are gone, so from then on they come back empty.
            dropped = False
            for i in range(len(revisions) - 1, 0, -1):
                alembic(conn, "downgrade", revisions[i - 1])
                check(revisions[i - 1], dropped)
                dropped = dropped or not sweep_tables <= set(sa.inspect(conn).get_table_names())
                conn.commit()
                alembic(conn, "upgrade", revisions[i])
                check(revisions[i], dropped)
                alembic(conn, "downgrade", revisions[i - 1])
                check(revisions[i - 1], dropped)
            # At the first revision: one step at a time back to head.
            for rev in revisions[1:]:
                alembic(conn, "upgrade", rev)
                check(rev, dropped)
            assert schema_diff(conn) == []
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # switched back on
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()
    storage = Storage(empty_url)
    try:
        top = max(r.id for r in storage.list_runs())
        new = storage.create_run("qnn", {})
        assert new.id > top
        storage.delete_run(new.id)
        assert storage.create_run("qnn", {}).id > new.id  # not reused after the migrations either
        storage.delete_run(top)  # cascades still work: foreign keys are on
        assert len(storage.get_metrics(top)) == 0 and storage.list_artifacts(top) == []
    finally:
        storage.close()
