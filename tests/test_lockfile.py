"""The lock file: every pin hashed, the direct pins inside it, this environment installed from it."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

from qmlapp.lockfile import LOCK_FILE, lock_versions, locked_versions, mismatches
from qmlapp.services import software_versions

ROOT = Path(__file__).resolve().parent.parent


def test_parses_pins_and_keeps_those_whose_marker_holds() -> None:
    text = (
        "foo==1.0 \\\n    --hash=sha256:aa\n"
        "bar==2.0 ; python_full_version < '3.0' \\\n    --hash=sha256:bb\n"
        "Bar==3.0 ; python_full_version >= '3.0' \\\n    --hash=sha256:cc\n"
        "    # via foo\n"
    )
    assert locked_versions(text) == {"foo": "1.0", "bar": "3.0"}


def test_a_version_other_than_the_locked_one_is_reported() -> None:
    diff = mismatches({"numpy": "0.0.1", "no-such-package-here": "1.0"})
    assert diff == {"numpy": diff["numpy"], "no-such-package-here": "missing (locked 1.0)"}
    assert diff["numpy"].endswith("(locked 0.0.1)")


def test_every_pin_in_the_lock_carries_a_hash() -> None:
    blocks = re.split(r"\n(?=\S)", LOCK_FILE.read_text())
    pins = [b for b in blocks if "==" in b.split("\n")[0] and not b.startswith("#")]
    assert len(pins) > 100  # the whole transitive closure, not just the direct pins
    unhashed = [b.split()[0] for b in pins if "--hash=sha256:" not in b]
    assert unhashed == []


def test_the_direct_pins_are_in_the_lock_at_their_versions() -> None:
    locked = locked_versions(LOCK_FILE.read_text())
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in locked, name
        assert req.specifier.contains(locked[name]), (name, locked[name], str(req.specifier))


def test_runs_record_the_lock_and_this_environment_matches_it() -> None:
    """`make venv` installs from the lock with --require-hashes, so nothing may differ from it."""
    versions = software_versions()
    assert versions["requirements.lock"].startswith("sha256:")
    assert versions["lock mismatches"] == "none", lock_versions()
