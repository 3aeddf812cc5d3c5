"""SMTP credentials as apply makes them: a readable username and a random password.

Only the password's hash is kept (relay/contract/passwords.py is the format)."""

from __future__ import annotations

import secrets
import string

# A password's first character is a letter or digit: a leading "-" would be read as an
# option by tools such as swaks (token_urlsafe starts with one about 1.5 % of the time).
_FIRST = string.ascii_letters + string.digits


def new_password() -> str:
    """44 characters: an alphanumeric one, then 256 random bits as URL-safe base64."""
    return secrets.choice(_FIRST) + secrets.token_urlsafe(32)


def new_credential(user: str, name: str) -> tuple[str, str]:
    """(username, password): a readable, unique username and a 256-bit password."""
    username = f"{user}.{name}.{secrets.token_hex(4)}"
    return username, new_password()
