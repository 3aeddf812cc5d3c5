"""The policy document as a local file: one writer (the control plane's local backend)
and one reader (the relay's file policy source), so both sides agree on the format.

Compact JSON lines (policycodec.py: the document is read on every relay reload),
written atomically with mode 0600: it holds DKIM private keys and password hashes.
"""

from __future__ import annotations

from pathlib import Path

from relay.contract.policy import PolicyError, PolicyMissing, RelayPolicy
from relay.contract.policycodec import decode_policy, encode_policy
from relay.durable import atomic_write


def write_policy_file(path: Path, policy: RelayPolicy) -> None:
    payload = encode_policy(policy.to_dict())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, payload, mode=0o600)


def read_policy_file(
    path: Path, passphrase: bytes | None = None, *, keep_sealed: bool = False
) -> RelayPolicy:
    """The published policy, its secrets opened with `passphrase` (or kept sealed);
    PolicyError saying what to do when there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyMissing(f"no relay policy at {path}: run `postform apply` first") from None
    except OSError as exc:
        raise PolicyError(f"cannot read the relay policy {path}: {exc.strerror}") from None
    try:
        data = decode_policy(raw)
    except ValueError as exc:
        raise PolicyError(f"the relay policy {path} is not valid JSON: {exc}") from None
    try:
        return RelayPolicy.from_dict(data, passphrase, keep_sealed=keep_sealed)
    except PolicyError as exc:
        raise type(exc)(f"{path}: {exc}") from None
