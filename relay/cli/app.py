"""The relay's command groups, registered from the modules that hold them."""

from __future__ import annotations

import typer

from relay.cli.deliver import deliver
from relay.cli.events import events
from relay.cli.report import report
from relay.cli.serve import serve
from relay.cli.status import status
from relay.cli.suppressions import add_cmd, export_cmd, list_cmd, remove_cmd
from relay.cli.trace import trace
from relay.cli.usage import usage

relay_app = typer.Typer(
    rich_markup_mode=None,
    help="The SMTP relay that enforces the applied state.",
    no_args_is_help=True,
)
relay_app.command("serve")(serve)
relay_app.command("deliver")(deliver)
relay_app.command("status")(status)
relay_app.command("events")(events)
relay_app.command("usage")(usage)
relay_app.command("trace")(trace)
relay_app.command("report")(report)

suppressions_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="The runtime suppression list (learned from bounces).",
)
suppressions_app.command("list")(list_cmd)
suppressions_app.command("add")(add_cmd)
suppressions_app.command("remove")(remove_cmd)
suppressions_app.command("export")(export_cmd)
