"""Who may use the app: the pure policy (no Streamlit), shared by ``serve`` and the pages' login gate.

See ``qmlapp/ui/auth.py`` for the gate itself and the README's *Access* section.
"""

from __future__ import annotations

import hmac
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    password = str(section.get("password") or env.get("QMLAPP_PASSWORD") or "") or None
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
