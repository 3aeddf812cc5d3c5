"""Pick the state backend a config names (`state.backend`)."""

from __future__ import annotations

from reconciler.config import Config
from reconciler.errors import PostformError
from reconciler.state.backend import StateBackend
from reconciler.state.local import LocalBackend


def open_backend(config: Config) -> StateBackend:
    settings = config.state
    if settings.backend == "local":
        return LocalBackend(settings.path)
    if settings.backend == "postgres":
        from reconciler.state.postgres import PostgresBackend

        return PostgresBackend(settings)
    raise PostformError(f"state backend {settings.backend!r} is not supported")
