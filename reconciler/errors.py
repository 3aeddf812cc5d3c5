"""The exceptions postform raises for expected failures.

They derive from the contract's UserError: the command line maps every one to a
message and an exit code in one place (reconciler/cli/app.py); none of them reaches a
user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.contract.errors import UserError


@dataclass(frozen=True)
class Reason:
    """One problem found in a config file, located at FILE:LINE:COL."""

    file: str
    line: int
    column: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        label = "" if self.severity == "error" else f"{self.severity}: "
        path = f" {self.path}:" if self.path else ""
        return f"{where}:{path} {label}{self.message}"


class PostformError(UserError):
    """Base class of the control plane's expected failures, with a message for the user."""


class ConfigError(PostformError):
    """The config file is invalid; carries every reason at once."""

    def __init__(self, reasons: list[Reason]) -> None:
        self.reasons = reasons
        super().__init__("\n".join(str(r) for r in reasons))


class StateError(PostformError):
    """The state file cannot be read or written safely."""


class StaleStateError(StateError):
    """The stored state changed since it was read: a write based on it would lose that."""


class StateLockedError(PostformError):
    """Another process holds the state lock."""


class StalePlanError(PostformError):
    """A saved plan no longer matches the state it was made against."""


class PlanFileError(PostformError):
    """A saved plan file is unreadable or not a postform plan."""


class UnsafePlanError(PostformError):
    """A plan destroys more than the safety threshold allows."""


class ApplyAborted(PostformError):
    """The user did not confirm the apply."""


class ApplyFailedError(PostformError):
    """Apply stopped part-way; `issued` holds credentials made (and saved) before it."""

    def __init__(self, message: str, issued: list[Any]) -> None:
        super().__init__(message)
        self.issued = issued  # IssuedCredential (apply.py) made before the failure
