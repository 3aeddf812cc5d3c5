"""`postform show | state list | show | history | pull | push | rekey | rm | mv`,
`postform force-unlock` and `postform import`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler import stateadmin
from reconciler.cli.output import DEFAULT_CONFIG, ConfigOpt, JsonOpt, LockTimeoutOpt, err, out
from reconciler.errors import PostformError
from reconciler.manager import Manager
from reconciler.render.state import ordered, render_state_json, render_state_text, resource_block
from relay.contract.errors import ExitStatus
from relay.contract.sealing import read_passphrase

state_app = typer.Typer(
    rich_markup_mode=None, help="Inspect and administer the stored state.", no_args_is_help=True
)


def show(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> ExitStatus:
    """Show the stored state, secrets redacted."""
    manager = Manager.load(config)
    state = manager.state()
    out(render_state_json(state) if as_json else render_state_text(state))
    _passphrase_note(manager)
    return ExitStatus.OK


def _passphrase_note(manager: Manager) -> None:
    """This command needs no secret; say which ones do when the passphrase is missing."""
    missing = manager.secrets.missing()
    if missing is not None:
        err(
            f"Note: {missing} is not set. Reading the state does not need it; apply (when it "
            "makes DKIM keys or credentials), state rekey and relay serve do."
        )


@state_app.command("list")
def state_list(config: ConfigOpt = DEFAULT_CONFIG) -> ExitStatus:
    """List the addresses of every resource in the state."""
    manager = Manager.load(config)
    out("".join(f"{address}\n" for address, _ in ordered(manager.state())))
    _passphrase_note(manager)
    return ExitStatus.OK


@state_app.command("show")
def state_show(
    address: Annotated[str, typer.Argument(help='e.g. dkim["example.com/sel1"]')],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> ExitStatus:
    """Show one resource of the state, secrets redacted."""
    res = dict(ordered(Manager.load(config).state())).get(address)
    if res is None:
        raise PostformError(f"no resource {address} in the state (see `postform state list`)")
    out(resource_block(address, res) + "\n")
    return ExitStatus.OK


@state_app.command("history")
def state_history(config: ConfigOpt = DEFAULT_CONFIG) -> ExitStatus:
    """The stored versions of the state, newest first (the local backend keeps two)."""
    versions = Manager.load(config).history()
    if not versions:
        out("No state has been written yet.\n")
    for v in versions:
        out(f"serial {v.serial}.{v.revision}\t{v.updated_at}\tlineage {v.lineage}\t{v.where}\n")
    return ExitStatus.OK


@state_app.command("rekey")
def state_rekey(
    new_passphrase_env: Annotated[
        str | None,
        typer.Option("--new-passphrase-env", help="The variable holding the new passphrase."),
    ] = None,
    new_key_file: Annotated[
        Path | None, typer.Option("--new-key-file", help="A file holding the new passphrase.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Seal every secret of the state under a new passphrase (the current one opens them)."""
    if (new_passphrase_env is None) == (new_key_file is None):
        raise PostformError("give exactly one of --new-passphrase-env and --new-key-file")
    new = read_passphrase(new_passphrase_env, new_key_file)
    if new is None:
        raise PostformError(f"the environment variable {new_passphrase_env} is not set")
    manager = Manager.load(config)
    stored = stateadmin.rekey(manager, new, lock_timeout)
    out(
        f"Re-encrypted the secrets of the {manager.backend.describe()} (serial {stored.serial})"
        " and published the relay policy. Give the relays and the CI the new passphrase now "
        "(where state.encryption names it): until then they cannot open the new policy, and "
        "relays keep serving the last one they could.\n"
    )
    return ExitStatus.OK


@state_app.command("pull")
def state_pull(config: ConfigOpt = DEFAULT_CONFIG) -> ExitStatus:
    """Print the stored state document as stored (secrets stay encrypted when they are)."""
    document = stateadmin.pull(Manager.load(config))
    sys.stdout.buffer.write(document)
    sys.stdout.flush()
    return ExitStatus.OK


@state_app.command("push")
def state_push(
    file: Annotated[Path, typer.Argument(help="A state document (from `state pull`).")],
    config: ConfigOpt = DEFAULT_CONFIG,
    force: Annotated[
        bool, typer.Option("--force", help="Replace another lineage, or roll back a serial.")
    ] = False,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Store a state document in this config's backend, keeping its lineage and serial."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        raise PostformError(f"cannot read {file}: {exc.strerror}") from None
    manager = Manager.load(config)
    stored = stateadmin.push(manager, document, force, lock_timeout)
    out(
        f"Pushed serial {stored.serial} (lineage {stored.lineage}) to the "
        f"{manager.backend.describe()}, and published its relay policy.\n"
    )
    return ExitStatus.OK


@state_app.command("rm")
def state_rm(
    addresses: Annotated[
        list[str], typer.Argument(help="What to forget, e.g. 'dkim[\"example.com/s1\"]'.")
    ],
    config: ConfigOpt = DEFAULT_CONFIG,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Forget resources (a user's credentials with it): DNS and the relays' runtime data are
    not touched; the next plan creates what the config still declares."""
    manager = Manager.load(config)
    stored, gone = stateadmin.remove(manager, addresses, lock_timeout)
    for address in gone:
        out(f"Removed {address}\n")
    out(
        f"Forgot {len(gone)} resource(s) at serial {stored.serial} of the "
        f"{manager.backend.describe()}, and published the relay policy. Nothing was destroyed;"
        " DNS records pushed for them stay, and are no longer postform's.\n"
    )
    if any(a.startswith(("dkim[", "credential[")) for a in gone):
        out(
            "Their private keys and password hashes lived only in the state: they are gone "
            "with it (the state's backup keeps the previous version).\n"
        )
    return ExitStatus.OK


@state_app.command("mv")
def state_mv(
    source: Annotated[str, typer.Argument(help="e.g. 'user[\"app\"]'.")],
    destination: Annotated[str, typer.Argument(help="e.g. 'user[\"billing\"]'.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Rename a user (its credentials move with it) or a credential, keeping usernames and
    password hashes: no password changes."""
    manager = Manager.load(config)
    stored, moved = stateadmin.move(manager, source, destination, lock_timeout)
    for old, new in moved:
        out(f"Moved {old} to {new}\n")
    out(
        f"Moved {len(moved)} resource(s) at serial {stored.serial} of the "
        f"{manager.backend.describe()}, and published the relay policy. Usernames and "
        "passwords are unchanged; rename them in the config too, or the next plan "
        "destroys and creates them.\n"
    )
    return ExitStatus.OK


def force_unlock(
    lock_id: Annotated[str, typer.Argument(help="The lock ID that the lock error printed.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> ExitStatus:
    """Break the state lock held by a postform that hangs (a crashed one releases it)."""
    manager = Manager.load(config)
    running = manager.force_unlock(lock_id)
    where = manager.backend.describe()
    out(f"Released the lock {lock_id} on the {where}.\n")
    if running:
        out("Its holder is still running: make sure it no longer changes the state.\n")
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    from reconciler.cli.adopt import import_cmd

    app.command()(show)
    app.command("import")(import_cmd)
    app.add_typer(state_app, name="state")
    app.command("force-unlock")(force_unlock)
