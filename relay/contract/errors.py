"""How every postform command ends: an exit status, and the base of the failures a user
is told about in words (never a traceback). Shared by both planes' commands."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # an expected failure or a usage error: nothing was changed
    CHANGES = 2  # plan --detailed-exitcode: changes present; dns verify: records not ok
    INTERRUPTED = 130


class UserError(Exception):
    """An expected failure with a message meant for the user; the command line prints it
    and exits with `exit_code`."""

    exit_code = ExitStatus.ERROR
