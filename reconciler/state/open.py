"""Pick the state backend a config names (`state.backend`)."""

from __future__ import annotations

from reconciler.config import Config
from reconciler.errors import PostformError
from reconciler.state.backend import StateBackend
from reconciler.state.local import LocalBackend


def open_backend(config: Config) -> StateBackend:
    if config.state_backend == "local":
        return LocalBackend(config.state_path)
    raise PostformError(f"state backend {config.state_backend!r} is not supported")
