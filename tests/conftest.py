"""Shared fixtures: a throw-away database per test, fast worker settings, CLI/worker launchers.

Everything is real: SQLite files under ``tmp_path`` (copies of one file migrated per session), the real
kinds, real subprocesses.

With ``QMLAPP_TEST_POSTGRES_URL`` set (``scripts/with-postgres.sh`` / ``make test-pg`` set it to a
throwaway server) every test gets a fresh PostgreSQL database instead, and only the tests that touch a
database are collected (those using ``db_url``, directly or through ``storage``/``settings``/``cli``/
``processes``/``app``, and those marked ``@pytest.mark.db``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CliResult, Processes, postgres_admin_url, postgres_database, run_cli, sqlite_url

from db import Storage
from qmlapp.config import Settings

POSTGRES_ADMIN_URL = postgres_admin_url()

# QMLAPP_TEST_CPU=avx2|sse|basic runs the suite on the SIMD kernels another x86-64 CPU would get: qsimcirq's
# kernel choice is overridden and oneDNN (TensorFlow's CPU kernels) is capped at the matching instruction
# set. Golden float32 values must hold under every setting; `make test-portable` runs the golden tests so.
_EMULATED_CPU = os.environ.get("QMLAPP_TEST_CPU", "")
if _EMULATED_CPU:
    import sys
    import types

    os.environ["ONEDNN_MAX_CPU_ISA"] = {"avx512": "ALL", "avx2": "AVX2", "sse": "SSE41", "basic": "SSE41"}[
        _EMULATED_CPU]
    # qsimcirq loads one kernel module on import, chosen by qsim_decide (two cannot share a process), so
    # its decision is answered before qsimcirq is imported: this kernel, no GPU.
    _decide = types.ModuleType("qsimcirq.qsim_decide")
    _level = {"avx512": 0, "avx2": 1, "sse": 2, "basic": 3}[_EMULATED_CPU]
    _decide.detect_instructions = lambda: _level  # type: ignore[attr-defined]
    _decide.detect_gpu = lambda: 1  # type: ignore[attr-defined]
    _decide.detect_custatevec = lambda: 0  # type: ignore[attr-defined]
    sys.modules["qsimcirq.qsim_decide"] = _decide


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: touches a database without the db_url fixture (kept by `make test-pg`)")


def pytest_report_header(config: pytest.Config) -> str:
    where = "PostgreSQL at " + POSTGRES_ADMIN_URL if POSTGRES_ADMIN_URL else "SQLite files under tmp_path"
    cpu = f"; emulating {_EMULATED_CPU} SIMD kernels" if _EMULATED_CPU else ""
    return f"qmlapp test databases: {where}{cpu}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL keep only the tests that touch a database; the rest already ran on SQLite."""
    if not POSTGRES_ADMIN_URL:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        names = getattr(item, "fixturenames", ())
        uses_db = "db_url" in names or "empty_db_url" in names or item.get_closest_marker("db") is not None
        (keep if uses_db else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once per session; each test's database starts as a copy of it."""
    path = tmp_path_factory.mktemp("template") / "qmlapp.db"
    Storage(sqlite_url(path)).close()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database for this test with the schema and no data: a copy of the migrated SQLite template (a fresh
    migration per test costs more than the test), or a fresh database on the PostgreSQL server, where the
    tests migrate it as the app does."""
    if POSTGRES_ADMIN_URL:
        with postgres_database(POSTGRES_ADMIN_URL) as url:
            yield url
    else:
        path = tmp_path / "qmlapp.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        yield sqlite_url(path)


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """A database without even the schema (for tests of the first migration): a new SQLite file, or a fresh
    database on the PostgreSQL server."""
    if POSTGRES_ADMIN_URL:
        with postgres_database(POSTGRES_ADMIN_URL) as url:
            yield url
    else:
        yield sqlite_url(tmp_path / "qmlapp.db")


@pytest.fixture
def storage(db_url: str) -> Iterator[Storage]:
    st = Storage(db_url)
    yield st
    st.close()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, heartbeat_s=0.2, stale_after_s=3.0, poll_s=0.1, embedded_worker=False)


@pytest.fixture
def cli(db_url: str) -> Callable[..., CliResult]:
    """``cli("runs", "--json")`` runs ``python -m qmlapp`` in a subprocess on this test's database."""

    def _run(*args: str, **kwargs: Any) -> CliResult:
        return run_cli(db_url, *args, **kwargs)

    return _run


@pytest.fixture
def processes(db_url: str, tmp_path: Path) -> Iterator[Processes]:
    """Launcher for long-lived ``python -m qmlapp`` subprocesses, all killed at teardown."""
    procs = Processes(db_url, tmp_path)
    try:
        yield procs
    finally:
        procs.cleanup()


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real multipage app (``app.py``) under Streamlit's AppTest, on this test's database."""
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("QMLAPP_DATABASE_URL", db_url)
    monkeypatch.chdir(root)
    return AppTest.from_file(str(root / "app.py"), default_timeout=90)
