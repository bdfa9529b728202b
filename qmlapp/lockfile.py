"""The hashed lock file (requirements.lock) and how the running interpreter matches it.

Runs record the lock's digest plus any installed package whose version differs from the lock, so a
stored run names every package version it ran with: the lock's, except where listed.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import re
from importlib import metadata
from pathlib import Path

LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?\s*$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(text: str) -> dict[str, str]:
    """name -> version for the pins of ``text`` whose environment marker holds for this interpreter."""
    from packaging.markers import Marker

    out: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate():
            continue
        out[_normalise(name)] = version
    return out


def mismatches(locked: dict[str, str]) -> dict[str, str]:
    """Locked packages installed at another version, or not installed: name -> 'installed (locked X)'."""
    out: dict[str, str] = {}
    for name, version in sorted(locked.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            out[name] = f"{installed} (locked {version})"
    return out


@functools.cache
def lock_versions() -> dict[str, str]:
    """What a run stores about the lock: its digest, how many pins apply here, and any mismatch."""
    try:
        text = LOCK_FILE.read_text(encoding="utf-8")
    except OSError:
        return {"requirements.lock": "not found: installed versions are not locked"}
    locked = locked_versions(text)
    diff = mismatches(locked)
    return {
        "requirements.lock": "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
                             + f" ({len(locked)} pins for Python {platform.python_version()})",
        "lock mismatches": "; ".join(f"{k} {v}" for k, v in diff.items()) or "none",
    }
