"""Browser tests: a real `python -m qmlapp serve` (app + embedded worker) on a temporary SQLite database,
driven by Playwright through Debian's chromium. Screenshots of failing tests go to e2e/screenshots/."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pluggy import Result

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "e2e" / "screenshots"
CHROMIUM = os.environ.get("QMLAPP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NETWORK_PASSWORD = "e2e-password"


@contextlib.contextmanager
def _serve(workdir: Path, *extra: str, env_extra: dict[str, str] | None = None) -> Iterator[str]:
    """A real `python -m qmlapp serve` on a fresh SQLite database; yields its URL once healthy."""
    port = _free_port()
    db = workdir / "app.db"
    env = {**os.environ, "QMLAPP_DATABASE_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    with open(workdir / "serve.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "qmlapp", "serve", "--port", str(port), *extra], cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the app did not start; see {workdir / 'serve.log'}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    # Whatever the pages showed, the server side must not have raised either (app and worker log here).
    text = (workdir / "serve.log").read_text(errors="replace")
    assert "Traceback (most recent call last)" not in text, text[text.index("Traceback"):][:3000]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on localhost with its embedded worker: no login."""
    with _serve(tmp_path_factory.mktemp("e2e")) as url:
        yield url


@pytest.fixture(scope="session")
def network_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app bound to every interface, as in the Docker image: a password is required."""
    with _serve(tmp_path_factory.mktemp("e2e_net"), "--address", "0.0.0.0", "--no-worker",
                env_extra={"QMLAPP_PASSWORD": NETWORK_PASSWORD}) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    pg = browser.new_page(viewport={"width": 1500, "height": 3000})
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SHOTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    pg.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
