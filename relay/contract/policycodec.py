"""The policy document's bytes, as the file and the database hold them.

A relay decodes the document on a thread while its event loop serves sessions, and a
thread holds the interpreter for the whole of one C call: one json.loads of 3.6 MB (the
document at 100,000 senders) stalled every session for 20-30 ms. So the document is
written as lines: the head (everything but the senders, with `sender_lines`), then the
approved senders in lines of SENDERS_PER_LINE, each decoded by its own short call.
A document of one line (what postform wrote before) still reads.
"""

from __future__ import annotations

import json
from typing import Any

SENDERS_PER_LINE = 5_000


def encode_policy(document: dict[str, Any]) -> bytes:
    senders = list(document.get("senders", []))
    head = {k: v for k, v in document.items() if k != "senders"}
    chunks = [senders[i : i + SENDERS_PER_LINE] for i in range(0, len(senders), SENDERS_PER_LINE)]
    head["sender_lines"] = len(chunks)
    lines = [head, *chunks]
    return b"".join(
        json.dumps(line, separators=(",", ":"), allow_nan=False).encode() + b"\n" for line in lines
    )


def decode_policy(raw: bytes) -> dict[str, Any]:
    """The document; ValueError when the bytes are not one."""
    lines = raw.split(b"\n")
    head = json.loads(lines[0])
    if not isinstance(head, dict):
        raise ValueError("the policy document is not a JSON object")
    count = head.pop("sender_lines", None)
    rest = [line for line in lines[1:] if line.strip()]
    if count is None:
        if rest:
            raise ValueError("extra data after the policy document")
        return head
    if not isinstance(count, int) or count != len(rest):
        raise ValueError(f"the policy document says {count} sender lines and has {len(rest)}")
    senders: list[Any] = []
    for line in rest:
        chunk = json.loads(line)
        if not isinstance(chunk, list):
            raise ValueError("a sender line of the policy document is not a list")
        senders.extend(chunk)
    head["senders"] = senders
    return head
