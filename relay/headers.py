"""The header block of a message as the relay reads it: split from the body, cut into
fields. One parser for the policy checks (message.py) and DKIM signing (dkimsign.py).

Works on CRLF bytes as aiosmtpd hands them over (dot-unstuffed).
"""

from __future__ import annotations

CRLF = b"\r\n"
Field = tuple[str, bytes]  # (lower-case name, the raw field: folded lines joined by CRLF)


def split(message: bytes) -> tuple[bytes, bytes]:
    """(header block, each field ending in CRLF; body). No body gives b''."""
    if message.startswith(CRLF):
        return b"", message[2:]
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return (message if message.endswith(CRLF) else message + CRLF), b""
    return message[: end + 2], message[end + 4 :]


def parse_fields(head: bytes) -> list[Field]:
    """Each field in order. A line starting with SP or HTAB continues the field above;
    a line without a colon is not a field and is skipped."""
    fields: list[Field] = []
    lines = head.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + CRLF + line)
            continue
        raw_name, colon, _ = line.partition(b":")
        if colon:
            fields.append((raw_name.rstrip(b" \t").decode("ascii", "replace").lower(), line))
    return fields


def unfolded(raw: bytes) -> str:
    """A field's value with its folding removed and outer whitespace stripped."""
    value = raw.partition(b":")[2]
    return b" ".join(part.strip() for part in value.split(CRLF)).decode("utf-8", "replace")


def field_values(head: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) per field, in order."""
    return [(name, unfolded(raw)) for name, raw in parse_fields(head)]
