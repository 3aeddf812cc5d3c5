"""Null-sender messages (MAIL FROM:<>, issue #14): a satellite MTA's bounce goes back
through the relay to the login's own approved addresses, and nowhere else
(relay/nullsender.py). Real relay, real smtplib sessions, a real Postfix satellite."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay import replies as R
from tests.conftest import require_tool
from tests.destinations import Destination, collect_stopped_servers
from tests.knot import KNOTD, Knot, free_port
from tests.postfixproc import POSTFIX, Postfix, can_run
from tests.relayproc import RelayProcess, default_config, message, queue_id_of
from tests.test_delivery import MX_RECORDS, Clock, run, worker_for
from tests.test_relay_dkim import dkimpy_verifies, dns_records

SATELLITE = "mx.satellite.test"  # the host name a satellite Postfix writes its DSNs from


def dsn(to: str, sender: str = f"MAILER-DAEMON@{SATELLITE}") -> bytes:
    """A bounce as Postfix writes one (the parts that matter here)."""
    return (
        f"From: {sender} (Mail Delivery System)\r\nTo: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
    ).encode()


def reply_text(template: str, **kw: object) -> bytes:
    """The text after the code, as smtplib returns it."""
    return template.format(**kw).split(" ", 1)[1].encode()


def queued(relay: RelayProcess) -> set[str]:
    return {p.name for p in relay.spool().glob("*.msg")}


def spooled_envelope(relay: RelayProcess, queue_id: str) -> dict[str, Any]:
    raw = (relay.spool() / f"{queue_id}.msg").read_bytes()
    envelope: dict[str, Any] = json.loads(raw.split(b"\n", 2)[1])
    return envelope


def accepted(relay: RelayProcess, queue_id: str) -> dict[str, Any]:
    relay.wait_for(lambda: any(e["queue_id"] == queue_id for e in relay.events("accepted")))
    (event,) = [e for e in relay.events("accepted") if e["queue_id"] == queue_id]
    return event


def bounce(relay: RelayProcess, login: str, rcpts: list[str], data: bytes) -> tuple[int, bytes]:
    """MAIL FROM:<>, every RCPT (each must pass), DATA."""
    client = relay.smtp(login=login)
    try:
        assert client.mail("") == (250, reply_text(R.S250_SENDER_OK))
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250, rcpt
        return client.data(data)
    finally:
        client.quit()


@pytest.mark.parametrize(
    "rcpt",
    ["someone@example.org", "noreply@example.com"],  # a third party; another user's sender
)
def test_a_bounce_to_an_address_the_user_may_not_send_as_is_refused_as_sender_empty(
    relay: RelayProcess, rcpt: str
) -> None:
    before = queued(relay)
    client = relay.smtp(login="billing")
    assert client.mail("") == (250, b"2.1.0 Sender OK")
    code, text = client.rcpt(rcpt)
    assert (code, text) == (
        550,
        b"5.7.1 Sender <> (a bounce) may go only to addresses user billing may send as,"
        b" not to <" + rcpt.encode() + b">",
    )
    assert text == reply_text(R.S550_NULL_SENDER_RECIPIENT, user="billing", address=rcpt)
    assert client.docmd("DATA") == (503, b"Error: need RCPT command")  # nothing to send
    client.quit()
    refused = relay.events_seen("rejected")[-1]
    assert refused["stage"] == "RCPT" and refused["recipient"] == rcpt
    assert refused["reply"] == R.S550_NULL_SENDER_RECIPIENT.format(user="billing", address=rcpt)
    assert not [line for line in relay.lines if "<<>>" in line]
    assert queued(relay) == before


def test_a_bounce_to_the_users_own_address_is_queued_and_signed_for_that_domain(
    relay: RelayProcess,
) -> None:
    code, reply = bounce(relay, "billing", ["billing@example.com"], dsn("billing@example.com"))
    assert code == 250 and reply.startswith(b"2.0.0 OK: queued as "), reply
    queue_id = queue_id_of(reply)
    envelope = spooled_envelope(relay, queue_id)
    assert envelope["mail_from"] == ""  # goes on as MAIL FROM:<>
    assert envelope["rcpt_tos"] == ["billing@example.com"]
    assert envelope["from"] == f"MAILER-DAEMON@{SATELLITE}"
    assert envelope["dkim"] == "example.com/ed"  # the key, as plan reads it
    signed = relay.spooled(queue_id).split(b"\r\n", 3)[3]  # past the Received header
    assert b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com;" in signed
    assert dkimpy_verifies(signed, dns_records(relay))
    event = accepted(relay, queue_id)
    assert event["mail_from"] == "<>" and event["dkim"] == "example.com/ed"
    assert event["user"] == "billing" and event["recipients"] == 1


def test_a_bounce_from_an_address_the_user_may_send_as_is_signed_for_the_from_domain(
    relay: RelayProcess,
) -> None:
    data = dsn("alerts@rsa.example", sender="noreply@example.com")
    code, reply = bounce(relay, "app", ["alerts@rsa.example"], data)
    assert code == 250, reply
    event = accepted(relay, queue_id_of(reply))
    assert event["dkim"] == "example.com/ed" and event["mail_from"] == "<>"


def test_own_address_plus_a_third_party_is_refused_whole(relay: RelayProcess) -> None:
    before = queued(relay)
    client = relay.smtp(login="billing")
    assert client.mail("")[0] == 250
    assert client.rcpt("billing@example.com")[0] == 250
    code, text = client.rcpt("victim@example.org")
    assert (code, text) == (
        550,
        reply_text(R.S550_NULL_SENDER_RECIPIENT, user="billing", address="victim@example.org"),
    )
    code, text = client.data(dsn("billing@example.com"))
    assert (code, text) == (
        550,
        b"5.7.1 Message refused: sender <> (a bounce) may go only to addresses user billing"
        b" may send as, and <victim@example.org> is not one",
    )
    client.quit()
    assert queued(relay) == before


@pytest.mark.parametrize(
    "header_from,template",
    [
        ("ceo@example.com", R.S550_FROM_NOT_APPROVED),  # at a domain of the policy
        ("noreply@example.com", R.S550_FROM_NOT_ALLOWED),  # another user's sender
    ],
)
def test_a_bounce_cannot_write_as_an_address_of_our_domains_it_may_not_use(
    relay: RelayProcess, header_from: str, template: str
) -> None:
    before = queued(relay)
    code, text = bounce(
        relay, "billing", ["billing@example.com"], dsn("billing@example.com", header_from)
    )
    assert (code, text) == (550, reply_text(template, address=header_from, user="billing"))
    assert queued(relay) == before


@pytest.mark.parametrize("tls", [True, False])
def test_an_unauthenticated_bounce_is_refused(relay: RelayProcess, tls: bool) -> None:
    client = relay.smtp(login=None, tls=tls)
    assert client.mail("") == (530, b"5.7.0 Authentication required")
    assert client.rcpt("billing@example.com")[0] == 530
    client.quit()


def test_a_bounce_counts_against_the_daily_limit(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", per_day=1).start()
    try:
        client = relay.smtp(login="billing")
        client.mail("")
        assert client.rcpt("someone@example.org")[0] == 550  # refused: takes nothing
        client.rset()
        assert bounce(relay, "billing", ["billing@example.com"], dsn("x"))[0] == 250
        client.mail("")
        code, text = client.rcpt("billing@example.com")
        assert (code, text) == (452, reply_text(R.S452_DAILY_LIMIT, limit=1))
        client.quit()
    finally:
        assert relay.stop() == 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """test_delivery's world, with ops@example.org (at the destinations' domain) an
    approved sender of user app."""
    require_tool(KNOTD)
    knot = Knot(tmp_path / "knot", ["example.org"]).start()
    knot.update("example.org", add=MX_RECORDS)
    port = free_port()
    dests = {"mx1": Destination("127.0.0.10", port).start()}
    plain = "  - plain@unsigned.example\n"
    config = default_config().replace(plain, plain + "  - ops@example.org\n")
    relay = RelayProcess(tmp_path / "relay", config=config).start()
    yield {"knot": knot, "dests": dests, "relay": relay, "port": port}
    relay.stop()
    dests["mx1"].stop()
    knot.stop()
    collect_stopped_servers()


def test_a_bounce_is_delivered_with_the_null_sender_not_a_verp_return_path(world) -> None:
    """From: noreply@example.com has a return path (rp.example.com), yet a bounce goes out
    with MAIL FROM:<>: a bounce of a bounce is dropped, not sent back."""
    data = dsn("ops@example.org", sender="noreply@example.com")
    code, reply = bounce(world["relay"], "app", ["ops@example.org"], data)
    assert code == 250, reply
    assert run(worker_for(world, Clock())) == 1
    (got,) = world["dests"]["mx1"].recorder.messages
    assert (got.mail_from, got.rcpt_tos) == ("<>", ["ops@example.org"])
    assert not list(world["relay"].spool().glob(f"{queue_id_of(reply)}.*"))


SATELLITE_CF = """
myhostname = {host}
relayhost = [127.0.0.1]:{port}
smtp_tls_security_level = encrypt
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = static:{username}:{password}
smtp_sasl_security_options = noanonymous
smtp_sasl_tls_security_options = noanonymous
"""


def test_a_real_postfix_satellites_bounce_goes_back_without_a_double_bounce(
    tmp_path: Path,
) -> None:
    """A satellite Postfix relays through the relay with SASL; the relay refuses the
    suppressed recipient; the satellite's DSN (MAIL FROM:<>) to the application's sender
    comes back through the relay, with the same login, and is taken."""
    require_tool(POSTFIX)
    if not can_run():
        pytest.skip("Postfix's master needs root")
    relay = RelayProcess(tmp_path / "relay").start()
    postfix = Postfix("satellite.test", free_port(), relay.port)
    cred = relay.creds["app"]
    with (postfix.conf / "main.cf").open("a") as cf:
        cf.write(SATELLITE_CF.format(host=SATELLITE, port=relay.port, **cred))
    postfix.start()
    try:
        client = smtplib.SMTP("127.0.0.1", postfix.port, local_hostname="app.test", timeout=20)
        client.sendmail(
            "noreply@example.com", ["blocked@example.org"], message(to="blocked@example.org")
        )
        client.quit()
        (event,) = relay.events_seen("accepted", timeout=60)
        assert event["mail_from"] == "<>" and event["sender"] == f"MAILER-DAEMON@{SATELLITE}"
        assert event["user"] == "app" and event["dkim"] == "example.com/ed"
        log = postfix.wait_log("to=<noreply@example.com>, relay=127.0.0.1")
        assert "status=sent" in log.split("to=<noreply@example.com>", 1)[1].splitlines()[0]
        assert log.count("status=bounced") == 1, log  # the original only: no double bounce
        refused = [e for e in relay.events("rejected") if e.get("recipient")]
        assert [e["recipient"] for e in refused] == ["blocked@example.org"]
        envelope = spooled_envelope(relay, event["queue_id"])
        assert (envelope["mail_from"], envelope["rcpt_tos"]) == ("", ["noreply@example.com"])
    finally:
        postfix.stop()
        assert relay.stop() == 0
