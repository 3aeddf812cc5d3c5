"""The root of the `postform` command line.

Command groups load on demand (pip's `commands_dict` idea): `postform validate`
imports neither the relay (aiosmtpd, aiosmtplib, prometheus_client) nor DNS
tooling. Commands return an ExitStatus; every expected failure (a UserError, from
either plane) becomes a message and exit 1 here, in one place, and so does a usage
error: CI never reads a typo in a flag as exit 2 ("changes present").
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup
from typer.main import get_command

from reconciler.cli.output import err
from reconciler.errors import ConfigError
from relay.contract.errors import ExitStatus, UserError

# name -> (module, attribute): a Typer app (a group) or a function (one command).
LAZY: dict[str, tuple[str, str]] = {
    "refresh": ("reconciler.cli.dns", "refresh"),
    "dns": ("reconciler.cli.dns", "dns_app"),
    "relay": ("relay.cli.app", "relay_app"),
    "suppressions": ("relay.cli.app", "suppressions_app"),
}


class LazyGroup(TyperGroup):
    lazy: ClassVar[dict[str, tuple[str, str]]] = LAZY

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            return get_command(target)
        single = typer.Typer(rich_markup_mode=None)
        single.command(cmd_name)(target)
        return get_command(single)


app = typer.Typer(
    cls=LazyGroup,
    rich_markup_mode=None,
    help="Declarative reconciler for a self-hosted transactional email relay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from reconciler.cli import plan, state

    plan.register(app)
    state.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run `postform` on `argv` (default: sys.argv) and return its exit status."""
    from reconciler.cli.site import resolve_site

    try:
        result = app(args=argv, prog_name="postform", standalone_mode=False, obj=resolve_site)
    except ConfigError as exc:
        for reason in exc.reasons:
            err(str(reason))
        err(f"{len(exc.reasons)} error(s) in the config; nothing was changed.")
        return ExitStatus.ERROR
    except UserError as exc:
        err(f"Error: {exc}")
        return int(exc.exit_code)
    except typer.TyperException as exc:  # a usage error: unknown option, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err(f"Error: {exc}")
        return ExitStatus.ERROR
    except (KeyboardInterrupt, typer.Abort):
        err("Interrupted.")
        return ExitStatus.INTERRUPTED
    return int(result) if isinstance(result, int) else ExitStatus.OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
