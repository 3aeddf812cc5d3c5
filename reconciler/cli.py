"""The `postform` command line. Errors map to exit codes here, in one place."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.apply import IssuedCredential, apply_plan
from reconciler.cli_dns import dns_app, refresh
from reconciler.cli_ops import suppressions_app
from reconciler.cli_relay import relay_app
from reconciler.cliutil import (
    ConfigOpt,
    LockTimeoutOpt,
    deliberate_two,
    err,
    exit_two,
    out,
    reported,
)
from reconciler.config import DEFAULT_CONFIG, Config, load_config
from reconciler.dns.outputs import write_outputs
from reconciler.dns.records import records_for
from reconciler.errors import ApplyAborted, ApplyFailedError, PostformError
from reconciler.lock import force_unlock, state_lock
from reconciler.plan import Plan
from reconciler.planner import check_not_stale, make_plan
from reconciler.render.jsonplan import plan_from_json, render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.state import (
    ordered,
    render_state_json,
    render_state_text,
    resource_block,
)
from reconciler.render.text import render_text
from reconciler.safety import raise_if_unsafe
from reconciler.statefile import State, atomic_write, read_state, write_state

app = typer.Typer(
    rich_markup_mode=None,
    help="Declarative reconciler for a self-hosted transactional email relay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
state_app = typer.Typer(
    rich_markup_mode=None, help="Inspect the stored state.", no_args_is_help=True
)
app.add_typer(state_app, name="state")
app.add_typer(dns_app, name="dns")
app.add_typer(relay_app, name="relay")
app.add_typer(suppressions_app, name="suppressions")
app.command()(refresh)

AutoApproveOpt = Annotated[
    bool, typer.Option("--auto-approve", help="Apply without asking for 'yes'.")
]


def _load(config: Path) -> Config:
    return load_config(config)


@app.command()
@reported
def validate(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """Check the config against the schema and the semantic rules."""
    cfg = _load(config)
    for warning in cfg.warnings:
        err(str(warning))
    out(
        f"{config}: valid ({len(cfg.senders)} senders, {len(cfg.domains)} domains, "
        f"{len(cfg.users)} users).\n"
    )


@app.command()
@reported
def plan(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print it as Markdown.")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Save the plan to FILE.")] = None,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0: no changes, 1: error, 2: changes.")
    ] = False,
    replace: Annotated[
        list[str] | None, typer.Option("--replace", help="Replace ADDRESS even if unchanged.")
    ] = None,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan to destroy everything.")] = False,
) -> None:
    """Show what apply would change, without changing anything."""
    cfg = _load(config)
    the_plan = make_plan(cfg, read_state(cfg.state_path), replace=replace or [], destroy=destroy)
    if out_file is not None:
        try:
            atomic_write(out_file, render_json(the_plan).encode())
        except OSError as exc:
            raise PostformError(
                f"cannot write the plan to {out_file}: {exc.strerror or exc}"
            ) from None
    if as_json:
        out(render_json(the_plan))
    elif markdown:
        out(render_markdown(the_plan))
    else:
        out(render_text(the_plan))
        if out_file is not None:
            out(f"\nSaved the plan to {out_file}. To apply exactly it: postform apply {out_file}\n")
    if detailed_exitcode and not the_plan.empty:
        raise exit_two()


@app.command()
@reported
def apply(
    plan_file: Annotated[
        Path | None, typer.Argument(help="A plan saved with `plan --out`.", show_default=False)
    ] = None,
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    auto_approve: AutoApproveOpt = False,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="Apply a plan the safety check refuses.")
    ] = False,
    credentials_out: Annotated[
        Path | None,
        typer.Option("--credentials-out", help="Write new SMTP passwords to FILE (JSON, 0600)."),
    ] = None,
    replace: Annotated[
        list[str] | None, typer.Option("--replace", help="Replace ADDRESS even if unchanged.")
    ] = None,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> None:
    """Make the stored state match the config (or apply a saved plan)."""
    cfg = _load(config)
    with state_lock(cfg.state_path, "apply", lock_timeout):
        state = read_state(cfg.state_path)
        if plan_file is not None:
            the_plan = _read_plan(plan_file)
            check_not_stale(the_plan, state, str(plan_file))
        else:
            the_plan = make_plan(cfg, state, replace=replace or [])
        _run_apply(
            cfg,
            state,
            the_plan,
            auto_approve or plan_file is not None,
            allow_destructive,
            credentials_out,
        )


@app.command()
@reported
def destroy(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    auto_approve: AutoApproveOpt = False,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> None:
    """Destroy every resource in the state (keys and credentials are gone for good)."""
    cfg = _load(config)
    with state_lock(cfg.state_path, "destroy", lock_timeout):
        state = read_state(cfg.state_path)
        the_plan = make_plan(cfg, state, destroy=True)
        _run_apply(cfg, state, the_plan, auto_approve, True, None)


def _read_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PostformError(f"cannot read plan file {path}: {exc.strerror}") from None
    return plan_from_json(text, str(path))


def _run_apply(
    cfg: Config,
    state: State,
    the_plan: Plan,
    approved: bool,
    allow_destructive: bool,
    credentials_out: Path | None,
) -> None:
    out(render_text(the_plan))
    if the_plan.empty:
        _write_dns(cfg, state)  # keep the output folder current (e.g. after a TTL change)
        return
    if not allow_destructive:
        raise_if_unsafe(the_plan, state.resources)
    if credentials_out is not None and not credentials_out.parent.is_dir():
        raise PostformError(
            f"--credentials-out {credentials_out}: the folder "
            f"{credentials_out.parent} does not exist; nothing was applied"
        )
    if not approved:
        _confirm()
    try:
        new_state, issued = apply_plan(
            the_plan,
            state,
            lambda s: write_state(cfg.state_path, s),
            lambda line: out(line + "\n"),
        )
    except ApplyFailedError as exc:
        _issue_credentials(exc.issued, credentials_out)
        raise
    out(
        f"\nApply complete! Resources: {the_plan.add} added, {the_plan.change} changed, "
        f"{the_plan.remove} destroyed.\n"
    )
    _issue_credentials(issued, credentials_out)  # first: the passwords exist only now
    _write_dns(cfg, new_state)


def _write_dns(cfg: Config, state: State) -> None:
    """Refresh the DNS output folder; a failure here is a warning (the state is applied)."""
    records = records_for(state.resources.values(), cfg.dns_ttl)
    try:
        write_outputs(cfg.dns_dir, records)
    except OSError as exc:
        err(
            f"Warning: could not write the DNS records to {cfg.dns_dir}: {exc.strerror or exc}; "
            "`postform dns records` prints them."
        )
        return
    if records:
        out(
            f"\nDNS records to publish are in {cfg.dns_dir} (BIND zone fragments, records.json, "
            "octodns/). Publish them, then run `postform dns verify`.\n"
        )


def _confirm() -> None:
    out(
        "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n"
        "  Enter a value: "
    )
    answer = sys.stdin.readline().strip() if sys.stdin is not None else ""
    if answer != "yes":
        raise ApplyAborted("Apply cancelled: nothing was changed.")


def _issue_credentials(issued: list[IssuedCredential], path: Path | None) -> None:
    if not issued:
        return
    rows = [
        {
            "address": c.address,
            "user": c.user,
            "credential": c.name,
            "username": c.username,
            "password": c.password,
        }
        for c in issued
    ]
    if path is not None:
        try:
            atomic_write(path, (json.dumps(rows, indent=2) + "\n").encode(), mode=0o600)
        except OSError as exc:
            err(
                f"Warning: could not write {path}: {exc.strerror or exc}; the new passwords "
                "are printed below instead, since they cannot be recovered later."
            )
            path = None
    if path is not None:
        out(
            f"\nWrote {len(rows)} new SMTP credential(s) to {path} (mode 0600). The passwords "
            "are not shown and cannot be recovered: only their hashes are kept.\n"
        )
        return
    out("\nNew SMTP credentials. Store the passwords now: they are shown only this once.\n")
    for c in issued:
        out(f"\n  {c.address}\n    username: {c.username}\n    password: {c.password}\n")


@app.command()
@reported
def show(
    config: ConfigOpt = Path(DEFAULT_CONFIG),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the stored state, secrets redacted."""
    state = read_state(_load(config).state_path)
    out(render_state_json(state) if as_json else render_state_text(state))


@state_app.command("list")
@reported
def state_list(config: ConfigOpt = Path(DEFAULT_CONFIG)) -> None:
    """List the addresses of every resource in the state."""
    state = read_state(_load(config).state_path)
    out("".join(f"{address}\n" for address, _ in ordered(state)))


@state_app.command("show")
@reported
def state_show(
    address: Annotated[str, typer.Argument(help='e.g. dkim["example.com/sel1"]')],
    config: ConfigOpt = Path(DEFAULT_CONFIG),
) -> None:
    """Show one resource of the state, secrets redacted."""
    state = read_state(_load(config).state_path)
    res = state.resources.get(address)
    if res is None:
        raise PostformError(f"no resource {address} in the state (see `postform state list`)")
    out(resource_block(address, res) + "\n")


@app.command("force-unlock")
@reported
def force_unlock_cmd(
    lock_id: Annotated[str, typer.Argument(help="The lock ID that the lock error printed.")],
    config: ConfigOpt = Path(DEFAULT_CONFIG),
) -> None:
    """Release a lock left behind by a postform that crashed."""
    cfg = _load(config)
    force_unlock(cfg.state_path, lock_id)
    out(f"Released the lock {lock_id} on {cfg.state_path}.\n")


def main(argv: list[str] | None = None) -> int:
    """Run the app on `argv` (default: sys.argv) and return its exit code."""
    try:
        app(args=argv, prog_name="postform")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        deliberate = deliberate_two()
        return 1 if code == 2 and not deliberate else code
    deliberate_two()
    return 0


def run() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
