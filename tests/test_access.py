"""Access: no login on localhost, a login on any other address, and `serve` never starts open to the network."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, wait_for

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
    for page in ["app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py"))]:
        at = bound_to_network(page).run()
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
