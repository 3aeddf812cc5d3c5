"""`postform fmt [--check] [--diff]`: the config and its included files in the canonical
layout (reconciler/fmt.py)."""

from __future__ import annotations

import difflib
from typing import Annotated

import typer

from reconciler.cli.output import DEFAULT_CONFIG, ConfigOpt, err, out
from reconciler.fmt import format_config, write
from relay.contract.errors import ExitStatus


def fmt(
    config: ConfigOpt = DEFAULT_CONFIG,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; list the files that are not formatted and exit 2 if any.",
        ),
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the changes as a diff.")] = False,
) -> ExitStatus:
    """Rewrite the config and the files it includes in the canonical layout: key order,
    2-space indentation, comments kept. Prints the files it changed."""
    results = format_config(config)
    changed = [r for r in results if r.changed]
    for result in changed:
        if diff:
            out(
                "".join(
                    difflib.unified_diff(
                        result.before.splitlines(keepends=True),
                        result.after.splitlines(keepends=True),
                        f"{result.name} (as it is)",
                        f"{result.name} (formatted)",
                    )
                )
            )
        if not check:
            write(result)
        out(f"{result.name}\n")
    if check and changed:
        err(f"{len(changed)} file(s) not formatted: run `postform fmt` and commit the result.")
        return ExitStatus.CHANGES
    return ExitStatus.OK
