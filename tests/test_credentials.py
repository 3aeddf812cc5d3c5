"""Generated SMTP credentials: readable usernames, passwords no client misreads."""

from __future__ import annotations

import base64
import string

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
