"""Null-sender messages (MAIL FROM:<>, RFC 5321 4.5.5): the bounces a satellite MTA
sends back through the relay, and nothing else.

A satellite Postfix that submitted a message through the relay bounces the recipients the
relay refused (a suppressed one, say): it writes a DSN with MAIL FROM:<> to the
application's envelope sender and submits it with the same login. Refused, the DSN would
become a double bounce; taken to anyone, `<>` would let a login send bounce-shaped mail
to third parties (backscatter). So, for an authenticated login (without one aiosmtpd
refuses MAIL with 530, as for any sender):

- MAIL FROM:<> passes and counts against the rate like any message; each RCPT must be an
  approved sender the login's user may send as (S550_NULL_SENDER_RECIPIENT, and it still
  counts against the daily limit), and a transaction in which one was refused is refused
  whole at DATA (S550_NULL_SENDER_REFUSED): nothing is queued.
- The From: header. An address the user may send as is taken as usual and signed for its
  domain. A DSN's From: is the satellite's own (MAILER-DAEMON@<its host name>): one outside
  every domain the policy names (approved senders', declared, return paths) is taken, as
  the message goes only back to the user's own addresses, and signed for its first
  recipient's domain (the user's approved address) when that has an ACTIVE key, never for
  the From: domain. An unapproved address at a domain the policy names keeps the usual
  550: `<>` does not let a login write as an address of those domains it may not use.
  (A satellite named below such a domain, mx.example.com, is outside it; its DSN signed
  d=example.com passes DMARC's relaxed alignment, and reaches only the user's own.)
- The message is delivered with MAIL FROM:<>, never with a VERP return path: a bounce is
  not bounced (delivery.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay import replies as R
from relay.contract.addresses import domain_of, normalize
from relay.contract.policy import RelayPolicy

if TYPE_CHECKING:
    from aiosmtpd.smtp import Envelope

NULL = "<>"  # how aiosmtpd hands over the null reverse-path; the spool stores ""


def is_null(address: str | None) -> bool:
    """Whether an envelope sender (as aiosmtpd gives it, or as spooled) is the null one."""
    return address == NULL or address == ""


def spooled(address: str) -> str:
    """The envelope sender as the spool keeps it (what goes between MAIL FROM's brackets)."""
    return "" if is_null(address) else address


def recipient_reply(policy: RelayPolicy, user: str, envelope: Envelope, address: str) -> str | None:
    """At RCPT of a null-sender transaction: None when `user` may send as `address`, else
    the 550, remembered so that DATA refuses the whole message."""
    target = normalize(address)
    if target in policy.senders and policy.allowed(user, target):
        return None
    envelope.postform_null_refused = address  # type: ignore[attr-defined]
    return R.S550_NULL_SENDER_RECIPIENT.format(user=user, address=address)


def data_reply(
    policy: RelayPolicy, user: str, envelope: Envelope, sender: str, usual: str | None
) -> str | None:
    """At DATA, given the From: address `sender` and what the usual From: check replied
    (`usual`): None to take the message, else the 550. Only `usual` for a message with
    an envelope sender."""
    if not is_null(envelope.mail_from):
        return usual
    refused: str | None = getattr(envelope, "postform_null_refused", None)
    if refused is not None:
        return R.S550_NULL_SENDER_REFUSED.format(user=user, address=refused)
    if usual is None or domain_of(sender) in policy.label_domains:
        return usual
    return None  # a foreign From: (the satellite's MAILER-DAEMON) back to the user's own


def signing_domain(policy: RelayPolicy, user: str, envelope: Envelope, sender: str) -> str | None:
    """The domain a null-sender message is signed for: its From: domain when `user` may
    send as `sender`, else its first recipient's domain with an ACTIVE key (or the first
    recipient's, which then has none: unsigned); never a foreign From: domain. None (the
    From: domain, as always) for a message with an envelope sender."""
    if not is_null(envelope.mail_from) or (
        sender in policy.senders and policy.allowed(user, sender)
    ):
        return None
    domains = [domain_of(rcpt) for rcpt in envelope.rcpt_tos]
    return next((d for d in domains if d in policy.signing), domains[0] if domains else "")
