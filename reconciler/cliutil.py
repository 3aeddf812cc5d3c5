"""What every postform command shares: output, options, and the one place where
expected failures become a message and an exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import typer

from reconciler.config import DEFAULT_CONFIG
from reconciler.errors import ConfigError, PostformError

P = ParamSpec("P")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The config file.")]
DEFAULT_CONFIG_PATH = Path(DEFAULT_CONFIG)
LockTimeoutOpt = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait for the state lock.", min=0)
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each DNS answer.", min=0.1)
]
MxNameserverOpt = Annotated[
    str | None, typer.Option("--nameserver", help="DNS server for MX lookups, HOST[:PORT].")
]
MetricsOpt = Annotated[
    str | None, typer.Option("--metrics", help="Serve Prometheus metrics on HOST:PORT.")
]
NameserverOpt = Annotated[
    str | None,
    typer.Option("--nameserver", help="Query HOST[:PORT] instead of the system resolver."),
]


def reported(fn: Callable[P, None]) -> Callable[P, None]:
    """Turn expected failures into a message on stderr and an exit code: no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except ConfigError as exc:
            for reason in exc.reasons:
                err(str(reason))
            err(f"{len(exc.reasons)} error(s) in the config; nothing was changed.")
            raise typer.Exit(1) from None
        except PostformError as exc:
            err(f"Error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


# Exit code 2 means "changes present" (plan --detailed-exitcode) or "something is wrong"
# (dns verify); click also exits 2 on a usage error. main() turns the latter into 1, so CI
# never mistakes a typo in a flag for "there are changes".
_DELIBERATE_TWO: list[bool] = []


def exit_two() -> typer.Exit:
    _DELIBERATE_TWO.append(True)
    return typer.Exit(2)


def deliberate_two() -> bool:
    """Whether this run's exit code 2 came from exit_two(); clears the record."""
    found = bool(_DELIBERATE_TWO)
    _DELIBERATE_TWO.clear()
    return found
