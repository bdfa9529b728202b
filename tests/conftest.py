"""Shared fixtures: a throw-away SQLite database per test, fast worker settings, CLI/worker launchers.

Everything is real: SQLite files under ``tmp_path``, the real ``qnn`` kind, real subprocesses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CliResult, Processes, run_cli, sqlite_url

from db import Storage
from qmlapp.config import Settings


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "qmlapp.db")


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
