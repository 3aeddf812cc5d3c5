"""The root of the `postform` command line.

Command groups load on demand (pip's `commands_dict` idea): `postform validate`
imports neither the relay (aiosmtpd, aiosmtplib, prometheus_client) nor DNS
tooling. Commands return an ExitStatus; every expected failure (a UserError, from
either plane) becomes a message and exit 1 here, in one place, and so does a usage
error: CI never reads a typo in a flag as exit 2 ("changes present").

Help is the same everywhere: `-h` or `--help`, and each value named by what it is
(`--lock-timeout SECONDS`, `--out FILE`), not by its Python type: every command is
given metavars here as it loads, relay commands included. `--install-completion` and
`--show-completion` are typer's shell completion.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperGroup
from typer.main import get_command

from reconciler.cli.output import err
from reconciler.errors import ConfigError
from relay.contract.errors import ExitStatus, UserError

# name -> (module, attribute): a Typer app (a group) or a function (one command).
LAZY: dict[str, tuple[str, str]] = {
    "fmt": ("reconciler.cli.fmt", "fmt"),
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
            return tidy(super().get_command(ctx, cmd_name))
        module, attribute = self.lazy[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if isinstance(target, typer.Typer):
            return tidy(get_command(target))
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(cmd_name)(target)
        return tidy(get_command(single))


# What help calls a value, by parameter name; any other is its name in capitals.
METAVARS = {
    "config": "FILE",
    "out_file": "FILE",
    "credentials_out": "FILE",
    "tsig_key_file": "FILE",
    "new_key_file": "FILE",
    "replace": "ADDRESS",
    "lock_timeout": "SECONDS",
    "timeout": "SECONDS",
    "grace": "SECONDS",
    "nameserver": "HOST[:PORT]",
    "server": "HOST[:PORT]",
    "metrics": "HOST:PORT",
    "listen": "HOST:PORT[/MODE]",
    "data_dir": "DIR",
    "workers": "N",
    "outbound_port": "PORT",
    "mta_sts_port": "PORT",
    "new_passphrase_env": "NAME",
    "private_key_file": "FILE",
    "fmt": "FORMAT",
    "format": "FORMAT",
    "since": "WHEN",
    "note": "TEXT",
}


def tidy(command: Any) -> Any:
    """Name every value of `command` (and its subcommands) for help: a metavar instead
    of typer's `<list[str]>` or `<float range>`, and no type after an argument's name;
    and leave shell completion to the root."""
    if command is None or getattr(command, "postform_tidy", False):
        return command
    # completion is the root's (`postform --install-completion`), not each group's
    command.params = [p for p in command.params if p.name not in _COMPLETION]
    for param in command.params:
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = METAVARS.get(param.name, str(param.name).upper())
        if param.param_type_name == "argument":
            param.display_type_rich = _no_type
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    command.postform_tidy = True
    return command


_COMPLETION = ("install_completion", "show_completion")


def _no_type(ctx: Any = None) -> None:
    return None


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        from reconciler import __version__

        try:
            version = metadata.version("postform")
        except metadata.PackageNotFoundError:  # run from a checkout without installing
            version = __version__
        sys.stdout.write(f"postform {version}\n")
        raise typer.Exit()


app = typer.Typer(
    cls=LazyGroup,
    rich_markup_mode=None,
    help="Declarative reconciler for a self-hosted transactional email relay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Declarative reconciler for a self-hosted transactional email relay."""


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
