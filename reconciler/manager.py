"""The control plane's operations, as octoDNS's Manager: a loaded config and its state
backend, and what plan, apply and destroy do with them. The command line only parses
arguments, calls these, and prints (through an ApplyUI for apply's dialogue).

Every state write goes through `write`, which also publishes the relay policy built
from the written resources: the relays never see a state without its policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.apply import IssuedCredential, apply_plan
from reconciler.collector import collector_paused
from reconciler.config import Config, load_config
from reconciler.credentialsout import write_credentials_out
from reconciler.dns.outputs import write_outputs
from reconciler.dns.records import records_for
from reconciler.errors import (
    ApplyAborted,
    ApplyFailedError,
    PlanFileError,
    PostformError,
    StateError,
)
from reconciler.plan import Action, Plan
from reconciler.planfacts import plan_facts
from reconciler.planner import check_not_stale, make_plan
from reconciler.policy import DKIM_STATUS, policy_for
from reconciler.policydrift import policy_difference
from reconciler.relaysite import relay_site
from reconciler.render.jsonplan import plan_from_json, render_json
from reconciler.safety import assess, raise_if_refused
from reconciler.secrets import StateSecrets
from reconciler.state.backend import StateBackend
from reconciler.state.model import State, StateVersion
from reconciler.state.open import open_backend
from relay.durable import atomic_write
from relay.site import RelaySite


@dataclass(frozen=True)
class ApplyRequest:
    plan_file: Path | None = None  # apply exactly this saved plan
    replace: tuple[str, ...] = ()
    destroy: bool = False
    auto_approve: bool = False
    allow_destructive: bool = False
    credentials_out: Path | None = None
    lock_timeout: float = 0.0


class ApplyUI(Protocol):
    """How apply talks to the person (or pipeline) running it."""

    def show_plan(self, plan: Plan) -> None: ...
    def confirm(self) -> bool: ...
    def progress(self, line: str) -> None: ...
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def passwords(self, issued: list[IssuedCredential], written_to: Path | None) -> None: ...


class Manager:
    def __init__(self, config: Config, backend: StateBackend | None = None) -> None:
        self.config = config
        self.backend = backend or open_backend(config)
        self.secrets = StateSecrets(config.state.encryption)

    @classmethod
    def load(cls, path: Path) -> Manager:
        with collector_paused():
            return cls(load_config(path))

    def state(self) -> State:
        with collector_paused():
            return self.backend.read()

    def site(self) -> RelaySite:
        """Where this config's relays find their policy and keep their data."""
        return relay_site(self.config, self.secrets.passphrase())

    def write(self, state: State) -> State:
        """Store changed resources (serial + 1), their secrets sealed when encryption is
        on, and publish their relay policy."""
        sealed = self.secrets.seal(state)
        return self.backend.write(sealed, policy_for, forget_history=_turned_on(state, sealed))

    def observe(self, state: State) -> State:
        """Store changed observations (revision + 1, the serial stays); the relay policy is
        republished only when what it holds changed (a DKIM status moved)."""
        sealed = self.secrets.seal(state)
        stored = self.backend.observe(sealed, forget_history=_turned_on(state, sealed))
        after = policy_for(stored)
        if policy_difference(self.backend.published(), after.to_dict()) is not None:
            self.backend.publish(after)
        return stored

    def read(self) -> State:
        """The stored state, refusing one that was lost: a backend that held a state before
        and holds none now would otherwise plan every key and password anew."""
        with collector_paused():
            state = self.backend.read()
        if not state.exists and self.backend.has_history():
            raise StateError(
                f"the {self.backend.describe()} holds no state, but it held one before "
                f"(see `postform state history`): refusing to plan everything anew, which "
                f"would make new DKIM keys and passwords for all. {self._recovery()}"
            )
        return state

    def _recovery(self) -> str:
        if self.config.state.backend == "local":
            return (
                f"Restore {self.config.state_path} from its .backup, or remove the .backup to "
                "start a new state on purpose."
            )
        return (
            "Restore it with `postform state push FILE` (a copy from `state pull`), or use "
            "another state.name to start a new state on purpose."
        )

    def plan(
        self, replace: Collection[str] = (), destroy: bool = False, allow_destructive: bool = False
    ) -> Plan:
        state = self.read()
        the_plan = make_plan(
            self.config, state, replace=replace, destroy=destroy, **self._facts(state)
        )
        if the_plan.empty and not destroy:
            the_plan = dataclasses.replace(the_plan, policy=self._policy_problem(state))
        return self._passphrase_note(_assessed(the_plan, state, allow_destructive))

    def _policy_problem(self, state: State) -> str | None:
        """How the published relay policy differs from what the state says (a no-change
        apply publishes it again), or None when it is as it should be."""
        if not state.exists:
            return None
        return policy_difference(self.backend.published(), policy_for(state).to_dict())

    def _passphrase_note(self, the_plan: Plan) -> Plan:
        """Say it at plan time when apply will need the passphrase and it is not set."""
        missing = self.secrets.missing()
        making = [
            c
            for c in the_plan.changes
            if c.type in ("dkim", "credential") and c.action in (Action.CREATE, Action.REPLACE)
        ]
        if missing is None or not making:
            return the_plan
        note = (
            f"The state's secrets are encrypted and {missing} is not set here: apply needs it "
            f"to encrypt the {len(making)} DKIM key(s) and credential(s) this plan makes "
            "(plan, show and state list do not)."
        )
        return dataclasses.replace(the_plan, notes=(*the_plan.notes, note))

    def _facts(self, state: State) -> dict[str, Any]:
        relay = state.resources.get("relay", {}).get("attributes", {})
        data_dir = self.site().data_dir(relay.get("data_dir"))
        retention = self.config.dkim_retention_days
        return plan_facts(state, self.backend.describe(), data_dir, retention)

    def save_plan(self, plan: Plan, path: Path) -> None:
        try:
            atomic_write(path, render_json(plan).encode())
        except OSError as exc:
            raise PostformError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None

    def apply(self, request: ApplyRequest, ui: ApplyUI) -> State:
        """Plan (or read the saved plan), show it, check it is safe, confirm, apply, issue
        passwords, write the DNS outputs; all under the state lock."""
        operation = "destroy" if request.destroy else "apply"
        with self.backend.lock(operation, request.lock_timeout):
            state = self.read()
            the_plan = _assessed(self._plan_for(request, state), state, request.allow_destructive)
            ui.show_plan(the_plan)
            if the_plan.empty:
                self._ensure_published(state, ui)
                self._write_dns(state, ui)  # keeps the folder current (e.g. after a TTL change)
                return state
            self._check(request, the_plan)
            if not (request.auto_approve or request.plan_file) and not ui.confirm():
                raise ApplyAborted("Apply cancelled: nothing was changed.")
            kept: list[Path | None] = [None]

            def keep(issued: list[IssuedCredential]) -> None:  # before the state is written
                kept[0] = write_credentials_out(issued, request.credentials_out, ui.warn)

            try:
                new_state, issued = apply_plan(the_plan, state, self.write, ui.progress, keep)
            except ApplyFailedError as exc:
                if exc.issued:
                    ui.passwords(exc.issued, kept[0])
                raise
            ui.info(
                f"\nApply complete! Resources: {the_plan.add} added, {the_plan.change} changed, "
                f"{the_plan.remove} destroyed.\n"
            )
            if issued:
                ui.passwords(issued, kept[0])
            self._write_dns(new_state, ui)
            return new_state

    def _plan_for(self, request: ApplyRequest, state: State) -> Plan:
        if request.plan_file is None:
            return make_plan(
                self.config,
                state,
                replace=request.replace,
                destroy=request.destroy,
                **self._facts(state),
            )
        try:
            text = request.plan_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlanFileError(
                f"cannot read plan file {request.plan_file}: {exc.strerror}"
            ) from None
        saved = plan_from_json(text, str(request.plan_file))
        check_not_stale(saved, state, str(request.plan_file))
        return saved

    def _check(self, request: ApplyRequest, the_plan: Plan) -> None:
        raise_if_refused(the_plan)
        out = request.credentials_out
        if out is not None and not out.parent.is_dir():
            raise PostformError(
                f"--credentials-out {out}: the folder {out.parent} does not exist; nothing "
                "was applied"
            )

    def _ensure_published(self, state: State, ui: ApplyUI) -> None:
        """A no-change apply republishes a relay policy that is missing or does not match
        the state (an interrupted apply, a damaged file, an older postform's state)."""
        if not state.exists:
            return
        sealed = self.secrets.seal(state)
        if sealed is not state:  # encryption was just turned on: seal what is stored
            state = self.observe(state)
            ui.info(f"\nEncrypted the secrets of the {self.backend.describe()}.\n")
        if self._policy_problem(state) is not None:
            self.backend.publish(policy_for(state))
            ui.info(
                f"\nPublished the relay policy at serial {state.serial} to "
                f"{self.backend.policy_location()} (it was missing or out of date).\n"
            )

    def _write_dns(self, state: State, ui: ApplyUI) -> None:
        """Refresh the DNS output folder; a failure here is a warning (the state is applied)."""
        folder = self.config.dns_dir
        records = records_for(state.resources.values(), self.config.dns_ttl)
        try:
            write_outputs(folder, records)
        except OSError as exc:
            ui.warn(
                f"Warning: could not write the DNS records to {folder}: {exc.strerror or exc}; "
                "`postform dns records` prints them."
            )
            return
        if records:
            ui.info(
                f"\nDNS records to publish are in {folder} (BIND zone fragments, records.json, "
                "octodns/). Publish them, then run `postform dns verify`.\n"
            )

    def force_unlock(self, lock_id: str) -> bool:
        return self.backend.force_unlock(lock_id)

    def history(self) -> list[StateVersion]:
        return self.backend.history()


def _assessed(the_plan: Plan, state: State, allow_destructive: bool) -> Plan:
    """The safety check's verdict on the plan: `plan` shows it, `apply` enforces it."""
    return assess(
        the_plan,
        state.resources,
        state.dns.get(DKIM_STATUS, {}),
        allow_destructive=allow_destructive,
    )


def _turned_on(before: State, after: State) -> bool:
    """Sealing was just turned on: the stored versions before hold secrets in the clear."""
    return before.sealing is None and after.sealing is not None
