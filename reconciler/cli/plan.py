"""`postform validate | plan | apply | destroy`: parse, call the Manager, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.console import ConsoleUI
from reconciler.cli.output import DEFAULT_CONFIG, ConfigOpt, LockTimeoutOpt, err, out
from reconciler.config import load_config
from reconciler.manager import ApplyRequest, Manager
from reconciler.render.jsonplan import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text
from relay.contract.errors import ExitStatus

AutoApproveOpt = Annotated[
    bool, typer.Option("--auto-approve", help="Apply without asking for 'yes'.")
]
ReplaceOpt = Annotated[
    list[str] | None, typer.Option("--replace", help="Replace ADDRESS even if unchanged.")
]


def validate(config: ConfigOpt = DEFAULT_CONFIG) -> ExitStatus:
    """Check the config against the schema and the semantic rules."""
    cfg = load_config(config)
    for warning in cfg.warnings:
        err(str(warning))
    out(
        f"{config}: valid ({len(cfg.senders)} senders, {len(cfg.domains)} domains, "
        f"{len(cfg.users)} users).\n"
    )
    return ExitStatus.OK


def plan(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print it as Markdown.")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Save the plan to FILE.")] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes.")
    ] = False,
    replace: ReplaceOpt = None,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan to destroy everything.")] = False,
) -> ExitStatus:
    """Show what apply would change, without changing anything."""
    manager = Manager.load(config)
    the_plan = manager.plan(replace=replace or [], destroy=destroy)
    if out_file is not None:
        manager.save_plan(the_plan, out_file)
    if as_json:
        out(render_json(the_plan))
    elif markdown:
        out(render_markdown(the_plan))
    else:
        out(render_text(the_plan))
        if out_file is not None:
            out(f"\nSaved the plan to {out_file}. To apply exactly it: postform apply {out_file}\n")
    changes = detailed_exitcode and the_plan.has_work
    return ExitStatus.CHANGES if changes else ExitStatus.OK


def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved with `plan --out`.", show_default=False)
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    auto_approve: AutoApproveOpt = False,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="Apply a plan the safety check refuses.")
    ] = False,
    credentials_out: Annotated[
        Path | None,
        typer.Option("--credentials-out", help="Write new SMTP passwords to FILE (JSON, 0600)."),
    ] = None,
    replace: ReplaceOpt = None,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Make the stored state match the config (or apply a saved plan)."""
    request = ApplyRequest(
        plan_file=plan_file,
        replace=tuple(replace or ()),
        auto_approve=auto_approve,
        allow_destructive=allow_destructive,
        credentials_out=credentials_out,
        lock_timeout=lock_timeout,
    )
    Manager.load(config).apply(request, ConsoleUI())
    return ExitStatus.OK


def destroy(
    config: ConfigOpt = DEFAULT_CONFIG,
    auto_approve: AutoApproveOpt = False,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Destroy every resource in the state (keys and credentials are gone for good)."""
    request = ApplyRequest(destroy=True, auto_approve=auto_approve, lock_timeout=lock_timeout)
    Manager.load(config).apply(request, ConsoleUI())
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    for command in (validate, plan, apply, destroy):
        app.command()(command)
