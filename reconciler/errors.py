"""The exceptions postform raises for expected failures.

The CLI maps each class to an exit code and a message in one place (``cli.py``);
none of them should reach a user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class PostformError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = 1


class ConfigError(PostformError):
    """The config file is invalid; carries every reason at once."""

    def __init__(self, reasons: list[Reason]) -> None:
        self.reasons = reasons
        super().__init__("\n".join(str(r) for r in reasons))


class StateError(PostformError):
    """The state file cannot be read or written safely."""


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

    def __init__(self, message: str, issued: list) -> None:  # noqa: ANN001 - avoids a cycle
        super().__init__(message)
        self.issued = issued
