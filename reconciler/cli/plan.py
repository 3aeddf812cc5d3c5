"""`postform validate | plan | apply | destroy`: parse, call the Manager, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.console import ConsoleUI
from reconciler.cli.output import DEFAULT_CONFIG, ConfigOpt, LockTimeoutOpt, err, out
from reconciler.config import load_config
from reconciler.errors import ConfigError, PostformError, Reason
from reconciler.manager import ApplyRequest, Manager
from reconciler.plan import Plan
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


def validate(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (errors and warnings).")
    ] = False,
) -> ExitStatus:
    """Check the config against the schema and the semantic rules."""
    if as_json:
        return _validate_json(config)
    cfg = load_config(config)
    for warning in cfg.warnings:
        err(str(warning))
    out(
        f"{config}: valid ({len(cfg.senders)} senders, {len(cfg.domains)} domains, "
        f"{len(cfg.users)} users).\n"
    )
    return ExitStatus.OK


def _validate_json(config: Path) -> ExitStatus:
    """`validate --json`: every error and warning located, on stdout; exit 0 or 1."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        doc = {"ok": False, "file": str(config), "errors": _located(exc.reasons), "warnings": []}
        out(json.dumps({**doc, "counts": None}, indent=2) + "\n")
        return ExitStatus.ERROR
    counts = {"senders": len(cfg.senders), "domains": len(cfg.domains), "users": len(cfg.users)}
    doc = {"ok": True, "file": str(config), "errors": [], "warnings": _located(cfg.warnings)}
    out(json.dumps({**doc, "counts": counts}, indent=2) + "\n")
    return ExitStatus.OK


def _located(reasons: list[Reason]) -> list[dict[str, object]]:
    return [
        {
            "file": r.file,
            "line": r.line,
            "column": r.column,
            "path": r.path,
            "message": r.message,
            "severity": r.severity,
        }
        for r in reasons
    ]


def plan(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print it as Markdown.")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Save the plan to FILE.")] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help="Exit 0: no changes, 1: error or apply would refuse the plan, 2: changes "
            "or DNS drift.",
        ),
    ] = False,
    replace: ReplaceOpt = None,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan to destroy everything.")] = False,
    allow_destructive: Annotated[
        bool,
        typer.Option(
            "--allow-destructive", help="Show a plan the safety check refuses as allowed."
        ),
    ] = False,
) -> ExitStatus:
    """Show what apply would change, without changing anything."""
    _check_plan_options(as_json, markdown, bool(replace), destroy, allow_destructive)
    manager = Manager.load(config)
    the_plan = manager.plan(
        replace=replace or [], destroy=destroy, allow_destructive=allow_destructive
    )
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
    return _plan_status(the_plan, detailed_exitcode)


def _check_plan_options(
    as_json: bool, markdown: bool, replace: bool, destroy: bool, allow_destructive: bool
) -> None:
    """Options that contradict each other are an error; one that does nothing, a warning."""
    if as_json and markdown:
        raise PostformError(
            "--json and --markdown cannot be used together: choose one output format "
            "(--out FILE saves the JSON plan beside either)"
        )
    if destroy and replace:
        raise PostformError(
            "--replace cannot be used with --destroy: a destroy plan replaces nothing"
        )
    if destroy and allow_destructive:
        err(
            "Warning: --allow-destructive has no effect with --destroy: a destroy plan is "
            "not checked."
        )


def _plan_status(the_plan: Plan, detailed_exitcode: bool) -> ExitStatus:
    """--detailed-exitcode: 1 when apply would refuse the plan, 2 when it has work or the
    DNS drifted (apply does not fix drift, but someone must), else 0."""
    if not detailed_exitcode:
        return ExitStatus.OK
    if the_plan.refused:
        err(
            "Error: apply would refuse this plan: it " + "; it ".join(the_plan.refusals) + ". "
            "If this is intended, plan and apply with --allow-destructive."
        )
        return ExitStatus.ERROR
    if the_plan.has_work or the_plan.drift:
        return ExitStatus.CHANGES
    return ExitStatus.OK


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
    if plan_file is not None and replace:
        raise PostformError(
            f"--replace cannot be used with a saved plan ({plan_file}): the plan already "
            "says what it replaces. Make a new one with `postform plan --replace ADDRESS "
            "--out FILE`."
        )
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
