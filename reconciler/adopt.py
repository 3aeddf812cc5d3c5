"""`postform import dkim["DOMAIN/SELECTOR"] --private-key-file KEY`: adopt a DKIM key
another provider already publishes (as SES's bring-your-own-DKIM does).

The selector must be declared (as Terraform's import needs the resource block), the
key must be of the declared algorithm, and the address must not be in the state yet.
The resource is stored as apply would have made it, with this key: the next plan shows
no change for it, and `dns verify` activates it once it sees that key published. The
write goes through the manager under the state lock (serial + 1, the key sealed when
state encryption is on, the relay policy published)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.dns.lifecycle import foreign_seen
from reconciler.dns.verify import key_bytes, tags
from reconciler.errors import PostformError
from reconciler.keys import KeyFileError, dkim_key_from_pem
from reconciler.manager import Manager
from reconciler.resources import Resource, desired_resources
from reconciler.stateaddress import parse_address
from relay.contract.dkim import DkimStatus

MAX_KEY_FILE = 64 * 1024  # a 4096-bit RSA key in PEM is about 3.3 KB


@dataclass(frozen=True)
class Imported:
    address: str
    algorithm: str
    record_name: str  # where the key's DKIM record is published
    serial: int
    status: str
    # What the last `dns verify` saw at the selector's name: True it is this key, False
    # another one, None nothing recorded.
    matches_seen: bool | None


def declared_dkim(manager: Manager, address: str) -> Resource:
    """The declared DKIM selector `address` names; PostformError otherwise."""
    rtype, name = parse_address(address)
    if rtype != "dkim":
        raise PostformError(
            f'postform import adopts DKIM keys (dkim["DOMAIN/SELECTOR"] --private-key-file '
            f"KEY) and suppression lists (suppressions FILE), not {address}: other resources "
            "hold nothing made elsewhere (apply makes credentials' passwords)"
        )
    canonical = f'dkim["{name}"]'
    declared = desired_resources(manager.config).get(canonical)
    if declared is None:
        domain, _, selector = (name or "").partition("/")
        raise PostformError(
            f"{canonical} is not declared in {manager.config.file}: declare it first (under "
            f"domains.{domain}.dkim: {{selector: {selector or 'SELECTOR'}, algorithm: ...}}); "
            "import adopts a declared resource, as Terraform's does"
        )
    return declared


def import_dkim(manager: Manager, address: str, key_file: Path, lock_timeout: float) -> Imported:
    declared = declared_dkim(manager, address)
    attrs = declared.attributes
    private, public = dkim_key_from_pem(_read(key_file), attrs["algorithm"], str(key_file))
    _need_passphrase(manager)
    with manager.backend.lock("import", lock_timeout):
        state = manager.read()
        stored = state.resources.get(declared.address)
        if stored is not None:
            made = stored.get("computed", {})
            how = "imported" if made.get("imported") else "made"
            raise PostformError(
                f"{declared.address} is already in the {manager.backend.describe()} (a key "
                f"{how} at {made.get('created_at', '?')}). To adopt the "
                f"published key instead, forget that one first: postform state rm "
                f"'{declared.address}' (its private key is then gone for good), then import"
            )
        immediate = attrs.get("activation") == "immediate"
        status = DkimStatus.ACTIVE if immediate else DkimStatus.NEEDS_ATTENTION
        resources = dict(state.resources)
        resources[declared.address] = {
            "type": "dkim",
            "name": declared.name,
            "attributes": dict(attrs),
            "computed": {
                "private_key": private,
                "public_key": public,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "status": str(status),
                "imported": True,
            },
        }
        name = f"{attrs['selector']}._domainkey.{attrs['domain']}"
        seen = foreign_seen(state, f"{name}/TXT/dkim")  # what plan's note was about
        dns = state.dns
        if seen is not None:
            history = dict(state.dns["verification"])
            del history[f"{name}/TXT/dkim"]
            dns = {**state.dns, "verification": history}
        written = manager.write(replace(state, resources=resources, dns=dns))
    return Imported(
        declared.address,
        attrs["algorithm"],
        name,
        written.serial,
        str(status),
        _matches(seen, public),
    )


def _read(key_file: Path) -> bytes:
    try:
        with key_file.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {key_file}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{key_file} is larger than {MAX_KEY_FILE} bytes: not a key file")
    return data


def _need_passphrase(manager: Manager) -> None:
    missing = manager.secrets.missing()
    if missing is not None:
        raise PostformError(
            f"the state's secrets are encrypted and {missing} is not set: import needs it to "
            "encrypt the private key before it is stored. Nothing was changed."
        )


def _matches(seen: dict[str, Any] | None, public: str) -> bool | None:
    if seen is None:
        return None
    wanted = key_bytes(public)
    return any(key_bytes(tags(text).get("p", "")) == wanted for text in seen["found"])
