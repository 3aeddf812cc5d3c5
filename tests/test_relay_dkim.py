"""Relay-signed mail verifies with dkimpy and with Perl's Mail::DKIM, using the public
key from the state exactly as the DNS record would publish it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dkim
import pytest

from reconciler.dns.records import dkim_value, records_for
from reconciler.keys import generate_dkim_key
from relay.dkimsign import DkimSigner
from tests.conftest import require_tool
from tests.relayproc import RelayProcess, message, queue_id_of
from tests.states import read_state

VERIFIER = Path(__file__).parent / "dkim_verify.pl"


def dns_records(relay: RelayProcess) -> dict[str, str]:
    state = read_state(relay.folder / "state" / "state.json")
    return {r.name: r.value for r in records_for(state.resources.values(), 300)}


def submit(relay: RelayProcess, sender: str, **kw: str) -> bytes:
    client = relay.smtp()
    client.mail(sender)
    client.rcpt("reader@example.org")
    code, reply = client.data(message(sender=sender, **kw))
    client.quit()
    assert code == 250, reply
    spooled = relay.spooled(queue_id_of(reply))
    return spooled.split(b"\r\n", 3)[3]  # drop the Received header (added after signing)


def dkimpy_verifies(signed: bytes, records: dict[str, str]) -> bool:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name.decode().rstrip("."), "").encode()

    return dkim.verify(signed, dnsfunc=dnsfunc)


def perl_verifies(signed: bytes, name: str, value: str, tmp_path: Path) -> tuple[bool, str]:
    require_tool("perl")
    check = subprocess.run(["perl", "-MMail::DKIM", "-e", "1"], capture_output=True)
    if check.returncode != 0:
        require_tool("/usr/share/perl5/Mail/DKIM.pm")
    path = tmp_path / "signed.eml"
    path.write_bytes(signed)
    result = subprocess.run(
        ["perl", str(VERIFIER), str(path), name, value], capture_output=True, text=True, timeout=60
    )
    return result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "sender,selector,algorithm",
    [
        ("noreply@example.com", "ed._domainkey.example.com", "ed25519-sha256"),
        ("alerts@rsa.example", "r1._domainkey.rsa.example", "rsa-sha256"),
    ],
)
def test_signature_verifies_with_two_independent_verifiers(
    relay: RelayProcess, tmp_path: Path, sender: str, selector: str, algorithm: str
) -> None:
    signed = submit(
        relay,
        sender,
        extra="Cc: c@example.org\r\nReply-To: r@example.com\r\n",
        body="Caf\u00e9 \t trailing  \r\n\r\n\r\n",
    )
    assert f"a={algorithm}".encode() in signed[:200]
    records = dns_records(relay)
    tampered = signed.replace(b"Subject: Hello", b"Subject: Hellp")
    assert dkimpy_verifies(signed, records)
    assert not dkimpy_verifies(tampered, records)
    ok, detail = perl_verifies(signed, selector, records[selector], tmp_path)
    if "unsupported algorithm ed25519" in detail:
        pytest.skip(f"dkimpy verified it; {detail.strip().splitlines()[-1]} predates ed25519")
    assert ok, detail
    ok, _ = perl_verifies(tampered, selector, records[selector], tmp_path)
    assert not ok


def test_signed_headers_cover_what_receivers_check(relay: RelayProcess) -> None:
    signed = submit(
        relay, "noreply@example.com", extra="Cc: c@example.org\r\nReply-To: r@example.com\r\n"
    )
    header = signed.split(b"\r\nDate:", 1)[0].decode()
    tags = "".join(header.split())
    h = tags.split("h=", 1)[1].split(";", 1)[0].split(":")
    for name in (
        "from",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "reply-to",
    ):
        assert name in h, (name, h)
    assert "c=relaxed/relaxed" in tags


def test_domain_without_active_selector_sends_unsigned_and_says_so(relay: RelayProcess) -> None:
    for sender, why in (
        ("news@pending.example", "pending.example"),
        ("plain@unsigned.example", "unsigned.example"),
    ):
        signed = submit(relay, sender)
        assert b"DKIM-Signature" not in signed
        relay.wait_for(lambda s=sender: any(e.get("sender") == s for e in relay.events("accepted")))
        event = [e for e in relay.events("accepted") if e["sender"] == sender][-1]
        assert event["dkim"] is None
        assert event["unsigned"] == f"no ACTIVE DKIM selector for {why}"


def test_the_perl_verifier_gives_real_verdicts(tmp_path: Path) -> None:
    """Mail::DKIM runs and judges: it passes what the relay's signer signs and fails a
    tampered copy, so a skipped or broken verifier cannot pass the tests above."""
    private, public = generate_dkim_key("rsa-2048")
    signed = DkimSigner("example.com", "t1", "rsa-2048", private).sign(message()) + message()
    name, value = "t1._domainkey.example.com", dkim_value("rsa-2048", public)
    ok, detail = perl_verifies(signed, name, value, tmp_path)
    assert ok and "pass" in detail, detail
    ok, detail = perl_verifies(signed.replace(b"Hi there", b"Hi thera"), name, value, tmp_path)
    assert not ok and "fail" in detail, detail
