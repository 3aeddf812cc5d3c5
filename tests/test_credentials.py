"""Generated SMTP credentials: readable usernames, passwords no client misreads."""

from __future__ import annotations

import base64
import json
import string
from pathlib import Path

import pytest

from reconciler.credentials import new_credential, new_password


def test_passwords_never_start_with_a_dash_and_keep_256_random_bits() -> None:
    passwords = [new_password() for _ in range(5_000)]
    assert all(p[0] in string.ascii_letters + string.digits for p in passwords)
    assert len(set(passwords)) == len(passwords)
    for p in passwords[:50]:
        assert len(p) == 44
        raw = base64.urlsafe_b64decode(p[1:] + "=")
        assert len(raw) == 32  # 256 bits after the first character


def test_usernames_name_the_user_and_credential() -> None:
    username, password = new_credential("billing-app", "prod")
    assert username.startswith("billing-app.prod.") and len(username.split(".")[-1]) == 8
    assert password[0] != "-"


def test_passwords_are_in_the_credentials_file_before_the_state_is_written(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #11: a crash between the state write and the --credentials-out write lost
    the new passwords; now the file comes first."""
    from reconciler.errors import StateError
    from reconciler.manager import Manager

    def crash(self: Manager, state: object) -> object:
        raise StateError("the disk went away")

    monkeypatch.setattr(Manager, "write", crash)
    out = project / "creds.json"
    result = cli(project, "apply", "--auto-approve", "--credentials-out", str(out))
    assert result.code == 1 and "the disk went away" in result.err
    rows = json.loads(out.read_text())
    assert rows and all(r["password"] for r in rows)
    assert out.stat().st_mode & 0o777 == 0o600
