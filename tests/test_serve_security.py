"""`qmlapp serve` as a real server: only its own Host/Origin get in, no secrets in child processes, no
outbound lookups, no orphans after `kill -9`, and a busy port fails before a worker starts."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import FAST_ENV, free_port, wait_for
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from db import Storage

ROOT = Path(__file__).resolve().parents[1]
ATTACKER = "rebind.attacker.example"


def _serve(tmp_path: Path, db_url: str, port: int, *args: str, env: dict[str, str] | None = None,
           log_name: str = "serve.log") -> tuple[subprocess.Popen[bytes], Path]:
    base = {k: v for k, v in os.environ.items() if k not in ("QMLAPP_PASSWORD", "QMLAPP_ALLOWED_HOSTS")}
    full = {**base, **FAST_ENV, "QMLAPP_DATABASE_URL": db_url, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1", **(env or {})}
    log = tmp_path / log_name
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "qmlapp", "serve", "--port", str(port), *args], cwd=tmp_path,
                                env=full, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _get(port: int, path: str, host: str, origin: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": host, **({"Origin": origin} if origin else {})}
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            return _get(port, "/_stcore/health", f"127.0.0.1:{port}") == 200
        except OSError:
            return False
    wait_for(healthy, 90, "the app to answer /_stcore/health", interval=0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _ws_status(port: int, host: str, origin: str | None) -> int:
    """Open /_stcore/stream as a browser would (real websocket handshake); the HTTP status it got."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with connect(f"ws://{host}/_stcore/stream", sock=sock, origin=Origin(origin) if origin is not None else None,
                     subprotocols=[Subprotocol("streamlit")], open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code
    finally:
        sock.close()


@pytest.fixture(params=["localhost", "network"])
def served(request: pytest.FixtureRequest, tmp_path: Path, db_url: str) -> Iterator[tuple[int, str]]:
    """The app bound to 127.0.0.1 (no login), or to 0.0.0.0 with a password and a proxy's name allowed."""
    port = free_port()
    if request.param == "localhost":
        proc, log = _serve(tmp_path, db_url, port, "--no-worker")
    else:
        proc, log = _serve(tmp_path, db_url, port, "--no-worker", "--address", "0.0.0.0",
                           env={"QMLAPP_PASSWORD": "pw", "QMLAPP_ALLOWED_HOSTS": "qml.example.org"})
    try:
        _wait_healthy(proc, port, log)
        yield port, request.param
    finally:
        _stop(proc)


def test_only_the_apps_own_host_and_origin_get_in(served: tuple[int, str]) -> None:
    port, mode = served
    own = f"127.0.0.1:{port}"
    assert _ws_status(port, own, f"http://{own}") == 101
    assert _ws_status(port, f"localhost:{port}", f"http://localhost:{port}") == 101
    assert _ws_status(port, f"{ATTACKER}:{port}", None) == 403  # DNS rebinding: the browser sends its Host
    assert _ws_status(port, f"{ATTACKER}:{port}", f"http://{ATTACKER}:{port}") == 403
    assert _ws_status(port, own, f"http://{ATTACKER}:{port}") == 403  # a page of another site
    assert _ws_status(port, own, f"http://127.0.0.1:{free_port()}") == 403  # a page of another local port
    assert _ws_status(port, own, "null") == 403
    assert _get(port, "/", own) == 200
    assert _get(port, "/", f"{ATTACKER}:{port}") == 403
    assert _get(port, "/_stcore/health", f"{ATTACKER}:{port}") == 403
    assert _get(port, "/", own, origin=f"http://{ATTACKER}") == 403
    if mode == "network":  # names of this server for a reverse proxy, and its IP addresses
        assert _ws_status(port, "qml.example.org", "https://qml.example.org") == 101
        assert _get(port, "/", "qml.example.org") == 200
        assert _get(port, "/", f"192.0.2.10:{port}") == 200


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


@pytest.mark.slow  # starts and stops a whole serve process tree
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_keeps_secrets_in_and_leaves_nothing_behind(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    proc, log = _serve(tmp_path, db_url, port, "--address", "0.0.0.0")  # no password set: one is generated
    storage = Storage(db_url)
    try:
        _wait_healthy(proc, port, log)
        text = wait_for(lambda: "password for this session: " in log.read_text() and log.read_text(), 30,
                        "the generated password")
        password = text.split("password for this session: ")[1].split()[0].encode()
        kids = wait_for(lambda: len(_children(proc.pid)) == 2 and _children(proc.pid), 30, "app and worker")
        wait_for(lambda: len(storage.list_workers()) == 1, 60, "the embedded worker to register")
        # Neither the app nor the worker holds the generated password in its environment.
        for pid in kids:
            env = _environ(pid)
            assert password not in env and b"QMLAPP_PASSWORD=" not in env, pid
            for var in env.split(b"\0"):  # the app was told where the password was: read and deleted
                if var.startswith(b"QMLAPP_PASSWORD_FILE="):
                    assert not Path(os.fsdecode(var.split(b"=", 1)[1])).exists()
        for leftover in Path(tempfile.gettempdir()).glob("qmlapp-pw-*"):  # the launcher deleted its file
            assert password not in leftover.read_bytes()
        # Bound to 0.0.0.0, Streamlit would ask an external service for this machine's IP; it must not.
        startup = log.read_text()
        assert "External URL" not in startup and "Did not auto detect external IP" not in startup, startup

        # A second serve on the same port fails at once, names the port, and starts no worker.
        second = subprocess.run([sys.executable, "-m", "qmlapp", "serve", "--port", str(port), "--address", "0.0.0.0"],
                                cwd=tmp_path, env={**os.environ, **FAST_ENV, "QMLAPP_DATABASE_URL": db_url,
                                                   "QMLAPP_PASSWORD": "x", "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert str(port) in second.stderr, second.stderr
        time.sleep(1.0)
        assert len(storage.list_workers()) == 1

        # kill -9 of serve: its app and worker follow within seconds (no orphaned server on the port).
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not any(_alive(pid) for pid in kids), 10, "serve's children to exit after kill -9",
                 interval=0.2)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))  # the port is free again
    finally:
        storage.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)


def test_launcher_patches_out_the_external_ip_lookup() -> None:
    """In-process view of the same guarantee: after install(), Streamlit's lookup makes no request."""
    code = ("import socket\n"
            "def refuse(*a, **k): raise AssertionError('outbound connection attempted')\n"
            "socket.create_connection = refuse\n"
            "from qmlapp.ui.launch import install\n"
            "install()\n"
            "from streamlit import net_util\n"
            "from streamlit.web.server import server_util\n"
            "assert net_util.get_external_ip() is None\n"
            "assert not server_util.is_url_from_allowed_origins('http://elsewhere.example')\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
