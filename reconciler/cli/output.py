"""What every command shares: writing to stdout and stderr, and the common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CONFIG = Path("postform.yaml")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The config file.")]
LockTimeoutOpt = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait for the state lock.", min=0)
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each DNS answer.", min=0.1)
]
NameserverOpt = Annotated[
    str | None,
    typer.Option("--nameserver", help="Query HOST[:PORT] instead of the system resolver."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
