"""Connecting to PostgreSQL, the same way for both planes.

The connection string comes from the environment variable the config names
(`state.dsn_env`), or, without one, from libpq's own variables (PGHOST, PGPORT,
PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGPASSFILE, ...): never from the YAML.
Every connection has a bounded connect timeout, and a failure is a UserError that
says what failed and where, never a traceback.
"""

from __future__ import annotations

import os
from typing import Any

from relay.contract.errors import UserError

CONNECT_TIMEOUT = 10  # seconds; a connection string may set its own connect_timeout


class DatabaseError(UserError):
    """PostgreSQL could not be reached, or refused what postform asked."""


def conninfo(dsn_env: str | None) -> str:
    if dsn_env is None:
        return ""  # libpq reads PGHOST, PGUSER, ... itself
    value = os.environ.get(dsn_env)
    if not value:
        raise DatabaseError(
            f"the config names {dsn_env} for the PostgreSQL connection string, but it is not "
            "set in the environment"
        )
    return value


def where(dsn_env: str | None) -> str:
    """Where postform connects, for messages: never the password."""
    if dsn_env:
        return f"the database in ${dsn_env}"
    host = os.environ.get("PGHOST", "localhost")
    return f"the database at {host}:{os.environ.get('PGPORT', '5432')} (PG* variables)"


def connect(
    dsn_env: str | None,
    *,
    autocommit: bool = False,
    purpose: str = "postform",
    timeout: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """A psycopg connection; DatabaseError naming the target when it cannot be made.
    `timeout` overrides the connect timeout (a relay's store never waits long); `extra`
    adds libpq parameters (keepalives, server-side timeouts)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo(dsn_env)
    params: dict[str, Any] = {"application_name": purpose, **(extra or {})}
    try:
        given = conninfo_to_dict(info)
    except psycopg.ProgrammingError:  # libpq's message may quote the password: never shown
        raise DatabaseError(
            f"the connection string for {where(dsn_env)} is not valid (libpq cannot parse it)"
        ) from None
    if "options" in given and "options" in params:  # the connection string's come first
        params["options"] = f"{given['options']} {params['options']}"
    if timeout is not None:
        params["connect_timeout"] = timeout
    elif "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        params["connect_timeout"] = CONNECT_TIMEOUT  # never wait without bound
    try:
        return psycopg.connect(info, autocommit=autocommit, **params)
    except psycopg.ProgrammingError:
        raise DatabaseError(
            f"the connection settings for {where(dsn_env)} are not valid (libpq refused them)"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {where(dsn_env)}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
