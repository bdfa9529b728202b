"""Who may use the app: the pure policy (no Streamlit), shared by ``serve`` and the pages' login gate.

See ``qmlapp/ui/auth.py`` for the gate itself and the README's *Access* section.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

LOCAL_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})


def is_local(address: str | None) -> bool:
    """True when the server only listens on loopback. Unset means all interfaces, so not local."""
    if not address:
        return False
    return address in LOCAL_ADDRESSES or address.startswith("127.")


@dataclass(frozen=True)
class AccessPolicy:
    required: bool
    password: str | None = None
    oidc: bool = False
    allowed_emails: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        return self.oidc or bool(self.password)


def policy(address: str | None, secrets: Mapping[str, Any], env: Mapping[str, str]) -> AccessPolicy:
    """What the app demands of a visitor, from the bind address, the secrets file and the environment."""
    section = secrets.get("qmlapp", {}) or {}
    password = str(section.get("password") or env.get("QMLAPP_PASSWORD") or _generated_password or "") or None
    emails = frozenset(str(e).lower() for e in section.get("allowed_emails", ()) or ())
    return AccessPolicy(required=not is_local(address), password=password, oidc="auth" in secrets,
                        allowed_emails=emails)


def check_password(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def secrets_files(cwd: Path) -> list[Path]:
    """Where Streamlit looks for secrets, in its order (the later file wins on clashes)."""
    return [Path.home() / ".streamlit" / "secrets.toml", cwd / ".streamlit" / "secrets.toml"]


def read_secrets(cwd: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in secrets_files(cwd):
        if path.is_file():
            try:
                merged.update(tomllib.loads(path.read_text()))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SystemExit(f"{path}: cannot read the secrets file: {exc}") from None
    return merged


def generate_password() -> str:
    return secrets.token_urlsafe(12)


# --- the generated password, handed to the Streamlit process only ------------------------------------

PASSWORD_FILE_ENV = "QMLAPP_PASSWORD_FILE"
_generated_password: str | None = None


def set_generated_password(password: str | None) -> None:
    """Kept in this process's memory, not its environment, so that no child process inherits it."""
    global _generated_password
    _generated_password = password or None


def generated_password() -> str | None:
    return _generated_password


def write_password_file(password: str) -> Path:
    """A 0600 file that the launcher reads and deletes at start-up (the password never enters an env)."""
    fd, name = tempfile.mkstemp(prefix="qmlapp-pw-")  # mkstemp creates it 0600
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return Path(name)


def take_password_file(env: dict[str, str] | Any) -> str | None:
    """Read and delete the file named by ``QMLAPP_PASSWORD_FILE`` (removing the variable too)."""
    name = env.pop(PASSWORD_FILE_ENV, None)
    if not name:
        return None
    path = Path(name)
    try:
        return path.read_text().strip() or None
    finally:
        path.unlink(missing_ok=True)


# --- which Host and Origin headers belong to this app -------------------------------------------------

WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
ALLOWED_HOSTS_ENV = "QMLAPP_ALLOWED_HOSTS"


def _split_host(netloc: str) -> tuple[str, int | None]:
    """``name:port`` / ``[::1]:port`` / ``name`` -> (lower-case name without brackets, port or None)."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            return netloc, None
        name, rest = netloc[1:end], netloc[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
    elif netloc.count(":") == 1:
        name, port = netloc.split(":")
    else:  # a bare name, or a bare IPv6 address
        name, port = netloc, ""
    if port:
        return (name, int(port)) if port.isdigit() else ("", None)
    return name, None


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The names under which this server may be addressed (DNS-rebinding and cross-site protection).

    A foreign *name* in ``Host`` is what DNS rebinding needs, so names are checked; the Host port is
    not (a published container port may differ from the bound one). A browser's ``Origin`` must be
    exactly the page's own origin (same name and port as ``Host``) or a configured name: a page
    served by another local port is another site.
    """

    builtin: frozenset[str]  # the bound address, and loopback names when bound to loopback or wildcard
    configured: frozenset[str]  # QMLAPP_ALLOWED_HOSTS entries without a port: any port
    configured_ports: frozenset[tuple[str, int]]  # ... and ``name:port`` entries
    any_ip: bool  # bound beyond loopback: an IP literal Host is this machine as the browser reached it

    @classmethod
    def build(cls, address: str | None, configured: str | None = None) -> HostPolicy:
        address = (address or "").strip().lower().strip("[]")
        builtin: set[str] = set()
        if address in WILDCARD_ADDRESSES or is_local(address):
            builtin |= {"localhost", "127.0.0.1", "::1"}
        if address not in WILDCARD_ADDRESSES:
            builtin.add(address)
        names: set[str] = set()
        name_ports: set[tuple[str, int]] = set()
        for entry in (configured or "").split(","):
            name, port = _split_host(entry)
            if name and port is None:
                names.add(name)
            elif name and port is not None:
                name_ports.add((name, port))
        return cls(frozenset(builtin), frozenset(names), frozenset(name_ports), any_ip=not is_local(address))

    def _configured(self, name: str, port: int | None) -> bool:
        return name in self.configured or (port is not None and (name, port) in self.configured_ports)

    def host_allowed(self, host: str | None) -> bool:
        if not host:
            return False  # HTTP/1.1 requires Host; browsers always send it
        name, port = _split_host(host)
        if not name:
            return False
        return name in self.builtin or self._configured(name, port) or (self.any_ip and _is_ip_literal(name))

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (a non-browser client, a same-origin GET) is fine; ``null`` or another site is not."""
        if origin is None:
            return True
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if host and parts.netloc.lower() == host.strip().lower():
            return self.host_allowed(host)
        return self._configured(*_split_host(parts.netloc))  # e.g. a reverse proxy that rewrites Host


# --- login attempts, limited across every session of the process ------------------------------------


class LoginLimiter:
    """Failed logins per client and in total over a sliding window; too many locks out for a while.

    An attempt is counted as a failure when it *starts* (:meth:`begin`) and forgiven on success, so
    that many parallel attempts cannot all pass the check before the first failure is recorded.
    """

    def __init__(self, per_client: int = 10, overall: int = 50, window_s: float = 600.0,
                 lockout_s: float = 300.0, clock: Any = None) -> None:
        self.per_client, self.overall, self.window_s, self.lockout_s = per_client, overall, window_s, lockout_s
        self._clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}  # client -> time; "" is everyone

    def _prune(self, now: float) -> None:
        for client in list(self._failures):
            kept = [t for t in self._failures[client] if now - t < self.window_s]
            if kept:
                self._failures[client] = kept
            else:
                del self._failures[client]
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return max(self._locked_until.get(client, now), self._locked_until.get("", now)) - now

    def begin(self, client: str) -> float:
        """Start an attempt: 0 when it may go ahead (counted as a failure until :meth:`succeeded`),
        else the seconds left of a lockout."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            wait = max(self._locked_until.get(client, now), self._locked_until.get("", now)) - now
            if wait > 0:
                return wait
            mine = self._failures.setdefault(client, [])
            mine.append(now)
            if len(mine) >= self.per_client:
                self._locked_until[client] = now + self.lockout_s
            if sum(len(v) for v in self._failures.values()) >= self.overall:
                self._locked_until[""] = now + self.lockout_s
            return 0.0

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
            self._locked_until.pop(client, None)

    def failures(self, client: str) -> int:
        with self._lock:
            return len(self._failures.get(client, ()))


# --- sessions that logged out ---------------------------------------------------------------------


class SessionRegistry:
    """Process-wide login tokens: a session is logged in while its token is here; logging out revokes
    the token and the session id, so a fragment rerun or a reconnect of that session gets nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # token -> session id
        self._revoked_sessions: set[str] = set()

    def issue(self, session_id: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = session_id
        return token

    def valid(self, token: str | None, session_id: str) -> bool:
        with self._lock:
            return bool(token) and self._tokens.get(str(token)) == session_id \
                and session_id not in self._revoked_sessions

    def revoke(self, token: str | None, session_id: str) -> None:
        with self._lock:
            if token:
                self._tokens.pop(str(token), None)
            if session_id:
                self._revoked_sessions.add(session_id)

    def is_revoked(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._revoked_sessions


LOGIN_LIMITER = LoginLimiter()
SESSIONS = SessionRegistry()
