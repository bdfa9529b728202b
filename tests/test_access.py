"""Access: no login on localhost, a login on any other address, and `serve` never starts open to the network."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, goto, wait_for

from qmlapp.access import is_local, policy, read_secrets

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.1.1", True),
    ("0.0.0.0", False), ("192.168.1.20", False), ("", False), (None, False), ("::", False),
])
def test_only_loopback_counts_as_local(address: str | None, local: bool) -> None:
    assert is_local(address) is local


def test_policy_reads_password_from_secrets_before_the_environment() -> None:
    pol = policy("0.0.0.0", {"qmlapp": {"password": "from-secrets"}}, {"QMLAPP_PASSWORD": "from-env"})
    assert pol.required and pol.password == "from-secrets" and not pol.oidc
    assert policy("0.0.0.0", {}, {"QMLAPP_PASSWORD": "e"}).password == "e"
    assert not policy("0.0.0.0", {}, {}).configured
    oidc = policy("0.0.0.0", {"auth": {"client_id": "x"}, "qmlapp": {"allowed_emails": ["A@x.org"]}}, {})
    assert oidc.oidc and oidc.configured and oidc.allowed_emails == frozenset({"a@x.org"})
    assert not policy("127.0.0.1", {}, {}).required


def test_bad_secrets_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[qmlapp\npassword=")
    with pytest.raises(SystemExit, match=r"secrets\.toml: cannot read"):
        read_secrets(tmp_path)


@pytest.fixture
def bound_to_network(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real app under AppTest, as if started with --address 0.0.0.0 and QMLAPP_PASSWORD=s3cret."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    old = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    monkeypatch.setenv("QMLAPP_DATABASE_URL", db_url)
    monkeypatch.setenv("QMLAPP_PASSWORD", "s3cret")
    monkeypatch.chdir(ROOT)
    try:
        yield lambda page="app.py": AppTest.from_file(str(ROOT / page), default_timeout=60)
    finally:
        config.set_option("server.address", old)


def test_every_page_asks_for_the_password_when_bound_to_the_network(bound_to_network: Any) -> None:
    from qmlapp.registry import KINDS

    for page in ["home", *KINDS, "runs", "sweeps", "compare"]:
        at = goto(bound_to_network(), page).run()
        assert not at.exception, page
        assert [t.label for t in at.text_input] == ["Password"], page
        assert not at.get("dataframe") and not at.get("plotly_chart"), page


def test_wrong_password_is_refused_and_the_right_one_opens_the_app(bound_to_network: Any) -> None:
    at = bound_to_network().run()
    at.text_input[0].input("guess")
    at.button[0].click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert [t.label for t in at.text_input] == ["Password"]
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    assert not at.text_input or at.text_input[0].label != "Password"
    assert any("QML Explorer" in t.value for t in at.title)
    assert any(b.label == "Log out" for b in at.sidebar.button)


def test_localhost_needs_no_login(app: Any) -> None:
    at = app.run()
    assert not at.exception
    assert "Password" not in [t.label for t in at.text_input]


def test_serve_on_a_network_address_generates_and_prints_a_password(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "QMLAPP_PASSWORD"}
    env.update(QMLAPP_DATABASE_URL=db_url, HOME=str(tmp_path))  # no ~/.streamlit/secrets.toml
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "qmlapp", "serve", "--no-worker", "--address", "0.0.0.0",
                                 "--port", str(port)], cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        text = wait_for(lambda: "password for this session: " in log.read_text() and log.read_text(), 60,
                        "serve to print a generated password", interval=0.2)
        password = text.split("password for this session: ")[1].split()[0]
        assert len(password) >= 12
        assert "login required" in wait_for(lambda: "login required" in log.read_text() and log.read_text(), 30,
                                            "the startup line", interval=0.2)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


# --- who may address the server (pure policy; the served check is in test_serve_security.py) ----------


def test_host_policy_knows_its_own_names_only() -> None:
    from qmlapp.access import HostPolicy

    local = HostPolicy.build("127.0.0.1")
    assert local.host_allowed("127.0.0.1:8612") and local.host_allowed("localhost:8612")
    assert local.host_allowed("[::1]:8612")
    assert not local.host_allowed("rebind.attacker.example:8612") and not local.host_allowed(None)
    assert not local.host_allowed("10.1.2.3:8612")  # bound to loopback: no other address reaches it
    assert local.origin_allowed(None, "127.0.0.1:8612")
    assert local.origin_allowed("http://127.0.0.1:8612", "127.0.0.1:8612")
    assert not local.origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8612")  # another local port
    assert not local.origin_allowed("http://rebind.attacker.example:8612", "127.0.0.1:8612")
    assert not local.origin_allowed("null", "127.0.0.1:8612")
    net = HostPolicy.build("0.0.0.0", "qml.example.org, proxy.internal:8443")
    assert net.host_allowed("localhost:8501") and net.host_allowed("192.168.1.20:8501")
    assert net.host_allowed("qml.example.org") and net.host_allowed("proxy.internal:8443")
    assert not net.host_allowed("proxy.internal:80") and not net.host_allowed("evil.example:8501")
    assert net.origin_allowed("https://qml.example.org", "127.0.0.1:8501")  # a proxy that rewrites Host
    assert not net.origin_allowed("http://localhost:3000", "localhost:8501")


def test_redact_url_hides_the_password() -> None:
    from db import redact_url

    shown = redact_url("postgresql+psycopg://qml:s3cret-pw@db.example.org:5432/qmlapp")
    assert "s3cret-pw" not in shown and "qml@db.example.org" not in shown and "db.example.org" in shown
    assert redact_url("sqlite:///data/qmlapp.db") == "sqlite:///data/qmlapp.db"


# --- login attempts ---------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_login_limiter_locks_a_client_then_everyone_and_forgets_after_the_lockout() -> None:
    from qmlapp.access import LoginLimiter

    clock = _Clock()
    lim = LoginLimiter(per_client=3, overall=5, window_s=60, lockout_s=120, clock=clock)
    assert [lim.begin("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.begin("a") == pytest.approx(120)  # locked, and the refused attempt is not even counted
    assert lim.begin("b") == 0.0
    lim.succeeded("b")  # a success forgives that client's count
    assert lim.begin("b") == 0.0 and lim.begin("c") == 0.0  # 5 failures in all: everyone locked
    assert lim.begin("d") > 0
    clock.t += 121
    assert lim.begin("a") == 0.0 and lim.begin("d") == 0.0


def test_parallel_login_attempts_share_one_limit() -> None:
    """Many sessions guessing at once: only ``per_client`` attempts go ahead, however they interleave."""
    import threading

    from qmlapp.access import LoginLimiter

    lim = LoginLimiter(per_client=10, overall=1000)
    allowed: list[float] = []
    threads = [threading.Thread(target=lambda: allowed.append(lim.begin("203.0.113.9"))) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w == 0.0 for w in allowed) == 10


def test_the_login_form_locks_out_after_repeated_failures(bound_to_network: Any, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    import qmlapp.ui.auth as auth
    from qmlapp.access import LoginLimiter

    monkeypatch.setattr(auth, "LOGIN_LIMITER", LoginLimiter(per_client=3, overall=100, lockout_s=300))
    monkeypatch.setattr(auth.time, "sleep", lambda _s: None)  # the per-failure pause only slows the test
    at = bound_to_network().run()
    with caplog.at_level("WARNING", logger="qmlapp.access"):
        for _ in range(3):
            at.text_input[0].input("guess")
            at.button[0].click().run()
            assert any("wrong password" in e.value for e in at.error)
    assert sum("failed login from" in r.getMessage() for r in caplog.records) == 3
    at.text_input[0].input("s3cret")  # even the right password waits out the lockout
    at.button[0].click().run()
    assert any("Too many failed logins" in e.value for e in at.error)
    assert not any(b.label == "Log out" for b in at.sidebar.button)


# --- logging out -------------------------------------------------------------------------------------


def test_logging_out_revokes_the_session_server_side(bound_to_network: Any) -> None:
    from qmlapp.access import SESSIONS
    from qmlapp.ui.auth import _TOKEN_KEY

    at = bound_to_network().run()
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    token = at.session_state[_TOKEN_KEY]
    assert any(b.label == "Log out" for b in at.sidebar.button)
    next(b for b in at.sidebar.button if b.label == "Log out").click().run()
    assert any("You logged out" in i.value for i in at.info)
    assert not at.text_input and not at.get("dataframe")
    # The old token is dead for every session, and this session id stays refused on later reruns.
    assert token not in SESSIONS._tokens
    at.session_state[_TOKEN_KEY] = token  # a replayed token does not bring it back
    at.run()
    assert any("You logged out" in i.value for i in at.info) and not at.get("dataframe")


# --- run names are text, never Markdown --------------------------------------------------------------

EVIL_NAME = "![x](http://example.invalid/a.png) **bold** <img src=x>"


def test_run_names_render_as_literal_text(app: Any, storage: Any) -> None:
    from markdown_it import MarkdownIt

    run = storage.create_run("qnn", {"dataset": "banknote"}, name=EVIL_NAME)
    goto(app, "runs").run()
    app.selectbox(key="runs_select").set_value(run.id).run()
    assert not app.exception
    assert not app.get("imgs") and not app.get("image")
    md = MarkdownIt("commonmark", {"html": True})  # the browser's renderer, at its most permissive
    bodies = [e.value for e in [*app.get("markdown"), *app.get("alert")]
              if "example" in str(e.value)]
    assert bodies, "the run's name is shown somewhere"
    for body in bodies:
        html = md.render(body)
        assert "<img" not in html and "<strong>" not in html, html
        assert "![x](http://example.invalid/a.png) **bold** &lt;img src=x&gt;" in html


# --- CSV downloads -----------------------------------------------------------------------------------


def test_csv_exports_neutralise_spreadsheet_formulas(storage: Any) -> None:
    import csv
    import io

    import pandas as pd

    from qmlapp import services

    run = storage.create_run("qnn", {"dataset": "banknote"}, name="r")
    formula = '=HYPERLINK("http://example.invalid","x")'
    storage.add_metrics(run.id, [(0, formula, 0.5), (1, "@SUM(A1)", -0.25), (2, "loss", 1.0)])
    rows = list(csv.reader(io.StringIO(services.export_run(storage, run.id, "csv"))))
    names = [r[2] for r in rows[1:]]
    assert "'" + formula in names and "'@SUM(A1)" in names and "loss" in names
    assert "-0.25" in [r[3] for r in rows[1:]]  # a negative number is data, not a formula
    frame = pd.DataFrame({"name": ["+cmd|' /C calc'!A0", "\tx", "-2", "plain"], "v": [1, 2, 3, 4]})
    cells = [r[0] for r in csv.reader(io.StringIO(services.frame_to_csv(frame, index=False)))]
    assert cells == ["name", "'+cmd|' /C calc'!A0", "'\tx", "-2", "plain"]


def test_dask_tasks_get_the_database_url_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from qmlapp.distributed import _worker_side_url, without_password

    url = "postgresql+psycopg://qml:s3cret-pw@db.example.org:5432/qmlapp"
    sent = without_password(url)
    assert "s3cret-pw" not in sent and sent == "postgresql+psycopg://qml@db.example.org:5432/qmlapp"
    monkeypatch.setenv("QMLAPP_DATABASE_URL", url)  # the Dask worker's own setting supplies the password
    assert _worker_side_url(sent) == url
    monkeypatch.setenv("QMLAPP_DATABASE_URL", "postgresql+psycopg://qml:pw@other.example.org/qmlapp")
    assert _worker_side_url(sent) == sent  # another database: what was sent (password from ~/.pgpass)
