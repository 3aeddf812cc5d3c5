"""What a bounce message or a complaint says, read from its standard parts.

- RFC 3464 delivery status notifications (multipart/report; report-type=delivery-status):
  one entry per recipient block, from Final-Recipient / Original-Recipient, Action and
  Status. A failed action with a 5.x.x status is a hard bounce; a failed 4.x.x or a
  delayed action is a soft one; delivered, relayed and expanded say nothing.
- RFC 5965 ARF feedback reports (report-type=feedback-report): a complaint about the
  recipient named by Original-Rcpt-To, else the To: of the enclosed message.
- Anything else goes to flufl.bounce, which knows the non-standard formats of many MTAs
  (permanent and temporary failures by address).
A message none of these understands has no entries: the caller keeps it for inspection.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from dataclasses import dataclass, field
from email.message import Message
from typing import Literal

Kind = Literal["hard", "soft", "complaint"]


@dataclass(frozen=True)
class Entry:
    kind: Kind
    candidates: tuple[str, ...]  # the recipient as the report names it, most exact first
    status: str = ""
    detail: str = ""


@dataclass
class Report:
    format: str  # dsn | arf | other | none
    entries: list[Entry] = field(default_factory=list)
    feedback_type: str = ""


def parse_report(data: bytes) -> Report:
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    report_type = str(msg.get_param("report-type", "", header="content-type")).lower()
    if msg.get_content_type() == "multipart/report" and report_type == "delivery-status":
        return Report("dsn", _dsn_entries(msg))
    if msg.get_content_type() == "multipart/report" and report_type == "feedback-report":
        return _arf(msg)
    return Report("other", _heuristic_entries(msg))


def _address(value: str | None) -> str | None:
    """`rfc822; a@b` (RFC 3464 address-type; address), or a plain address."""
    if not value:
        return None
    text = str(value).split(";", 1)[-1].strip().strip("<>").strip()
    return text if "@" in text else None


def _dsn_entries(msg: Message) -> list[Entry]:
    entries: list[Entry] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first holds the per-message fields
            entry = _dsn_entry(block) if isinstance(block, Message) else None
            if entry is not None:
                entries.append(entry)
    return entries


def _dsn_entry(block: Message) -> Entry | None:
    action = str(block.get("Action", "")).strip().lower()
    status = str(block.get("Status", "")).strip().split(" ", 1)[0]
    names = [_address(block.get("Original-Recipient")), _address(block.get("Final-Recipient"))]
    candidates = tuple(dict.fromkeys(n for n in names if n))
    if not candidates:
        return None
    detail = " ".join(str(block.get("Diagnostic-Code", "")).split())[:300]
    if action == "failed":
        kind: Kind = "hard" if status.startswith("5") else "soft"
    elif action == "delayed":
        kind = "soft"
    else:
        return None  # delivered, relayed, expanded: nothing to learn
    return Entry(kind, candidates, status, detail)


def _arf(msg: Message) -> Report:
    feedback = next(
        (p for p in msg.walk() if p.get_content_type() == "message/feedback-report"), None
    )
    fields: Message | None = None
    if feedback is not None:
        payload = feedback.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            fields = payload[0]
    names: list[str] = []
    if fields is not None:
        names += [a for a in (_address(v) for v in fields.get_all("Original-Rcpt-To", [])) if a]
    enclosed = _enclosed_headers(msg)
    if enclosed is not None:
        names += [a for _, a in email.utils.getaddresses(enclosed.get_all("To", [])) if a]
    kind = str(fields.get("Feedback-Type", "abuse")).strip().lower() if fields else "abuse"
    candidates = tuple(dict.fromkeys(names))
    entries = [Entry("complaint", candidates, "", kind)] if candidates else []
    return Report("arf", entries, kind)


def _enclosed_headers(msg: Message) -> Message | None:
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return email.message_from_bytes(raw, policy=email.policy.compat32)
    return None


def _heuristic_entries(msg: Message) -> list[Entry]:
    from flufl.bounce import all_failures  # only for the non-standard formats

    permanent, temporary = all_failures(msg)
    entries = [Entry("hard", (_text(a),), "5.0.0", "non-standard bounce") for a in permanent]
    entries += [Entry("soft", (_text(a),), "4.0.0", "non-standard bounce") for a in temporary]
    return [e for e in entries if "@" in e.candidates[0]]


def _text(address: bytes | str) -> str:
    return address.decode("utf-8", "replace") if isinstance(address, bytes) else address
