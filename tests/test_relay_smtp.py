"""The relay's reply codes, through real SMTP sessions (smtplib) on loopback."""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
import threading
import warnings

import pytest

from relay import replies as R
from tests.relayproc import RelayProcess, message, queue_id_of


def send(client: smtplib.SMTP, sender: str, rcpts: list[str], data: bytes) -> tuple[int, bytes]:
    code, reply = client.mail(sender)
    assert code == 250, reply
    for rcpt in rcpts:
        client.rcpt(rcpt)
    return client.data(data)


def reply_text(template: str, **kw: object) -> bytes:
    """The text after the code, as smtplib returns it."""
    return template.format(**kw).split(" ", 1)[1].encode()


def test_auth_only_after_tls(relay: RelayProcess) -> None:
    client = relay.smtp(tls=False, login=None)
    assert "auth" not in client.esmtp_features
    code, text = client.docmd("AUTH", "PLAIN AGFwcABwYXNz")
    assert (code, text[:5]) == (538, b"5.7.1")
    assert text.startswith(b"5.7.11")
    code, _ = client.docmd("MAIL", "FROM:<noreply@example.com>")
    assert code == 530
    client.starttls(context=relay.client_context(check_hostname=False))
    client.ehlo()
    assert client.esmtp_features["auth"].strip() == "PLAIN"
    client.quit()


def test_mail_before_auth_after_tls(relay: RelayProcess) -> None:
    client = relay.smtp(login=None)
    code, text = client.docmd("MAIL", "FROM:<noreply@example.com>")
    assert (code, text) == (530, b"5.7.0 Authentication required")
    client.quit()


def test_only_plain_is_offered(relay: RelayProcess) -> None:
    client = relay.smtp(login=None)
    code, text = client.docmd("AUTH", "LOGIN")
    assert (code, text) == (504, b"5.5.4 Unrecognized authentication type")
    code, text = client.docmd("AUTH", "CRAM-MD5")
    assert code == 504
    client.quit()


def test_wrong_password_and_unknown_user(relay: RelayProcess) -> None:
    client = relay.smtp(login=None)
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        client.login(relay.creds["app"]["username"], "wrong")
    assert info.value.smtp_code == 535 and info.value.smtp_error == reply_text(
        R.S535_BAD_CREDENTIALS
    )
    client.quit()
    other = relay.smtp(login=None, source="127.0.0.3")
    with pytest.raises(smtplib.SMTPAuthenticationError):
        other.login("nobody", "x")
    other.quit()


def test_tls_below_1_2_fails_the_handshake(relay: RelayProcess) -> None:
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 on purpose
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError):
        pytest.skip("this OpenSSL cannot speak TLS 1.1 at all")
    if not _client_can_speak(old):
        pytest.skip("this OpenSSL refuses TLS 1.1 even against a permissive server")
    with (
        socket.create_connection(("127.0.0.1", relay.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        old.wrap_socket(raw)
    modern = relay.client_context(check_hostname=False, maximum_version=ssl.TLSVersion.TLSv1_2)
    with (
        socket.create_connection(("127.0.0.1", relay.tls_port), timeout=10) as raw,
        modern.wrap_socket(raw) as tls,
    ):
        assert tls.version() == "TLSv1.2"


def _client_can_speak(context: ssl.SSLContext) -> bool:
    """Whether `context` completes a TLS 1.1 handshake with a server that allows it."""
    import trustme

    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    except (ssl.SSLError, ValueError):
        return False
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            context.wrap_socket(raw).close()
        return True
    except (ssl.SSLError, OSError):
        return False
    finally:
        thread.join(5)
        listener.close()


def test_accepted_message_is_queued_signed_and_completed(relay: RelayProcess) -> None:
    client = relay.smtp()
    code, reply = send(client, "noreply@example.com", ["someone@example.org"], message())
    client.quit()
    assert code == 250 and reply.startswith(b"2.0.0 OK: queued as ")
    spooled = relay.spooled(queue_id_of(reply))
    head = spooled.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"Received: from client.test ([127.0.0.1])")
    assert b"\r\nDKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com" in head
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    assert spooled.endswith(b"Hi there.\r\n")


def test_existing_date_and_message_id_are_kept(relay: RelayProcess) -> None:
    extra = "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <fixed@example.com>\r\n"
    client = relay.smtp()
    _, reply = send(client, "noreply@example.com", ["a@example.org"], message(extra=extra))
    client.quit()
    head = relay.spooled(queue_id_of(reply)).split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\r\nDate: ") == 1 and head.count(b"Message-ID: ") == 1
    assert b"Message-ID: <fixed@example.com>" in head


def test_unapproved_envelope_sender(relay: RelayProcess) -> None:
    client = relay.smtp()
    code, text = client.mail("stranger@example.com")
    assert (code, text) == (
        550,
        reply_text(R.S550_SENDER_NOT_APPROVED, address="stranger@example.com"),
    )
    client.quit()


def test_user_restricted_to_its_senders(relay: RelayProcess) -> None:
    client = relay.smtp(login="billing")
    code, text = client.mail("noreply@example.com")
    assert (code, text) == (
        550,
        reply_text(R.S550_SENDER_NOT_ALLOWED, address="noreply@example.com", user="billing"),
    )
    code, _ = client.mail("billing@example.com")
    assert code == 250
    client.rcpt("x@example.org")
    code, text = client.data(message(sender="noreply@example.com"))
    assert (code, text) == (
        550,
        reply_text(R.S550_FROM_NOT_ALLOWED, address="noreply@example.com", user="billing"),
    )
    client.quit()


def test_header_from_must_be_approved(relay: RelayProcess) -> None:
    client = relay.smtp()
    code, text = send(
        client, "noreply@example.com", ["x@example.org"], message(sender="ceo@example.com")
    )
    assert (code, text) == (550, reply_text(R.S550_FROM_NOT_APPROVED, address="ceo@example.com"))
    client.quit()


@pytest.mark.parametrize(
    "head",
    [
        "To: x@example.org\r\nSubject: no from\r\n",
        "From: noreply@example.com\r\nFrom: billing@example.com\r\nTo: x@example.org\r\n",
        "From: noreply@example.com, billing@example.com\r\nTo: x@example.org\r\n",
    ],
)
def test_missing_or_repeated_from_is_refused(relay: RelayProcess, head: str) -> None:
    client = relay.smtp()
    code, text = send(
        client, "noreply@example.com", ["x@example.org"], (head + "\r\nbody\r\n").encode()
    )
    assert code == 550 and text.startswith(b"5.6.0 A message needs exactly one From:")
    client.quit()


def test_return_path_address_is_a_valid_envelope_sender(relay: RelayProcess) -> None:
    client = relay.smtp()
    code, _ = send(client, "bounces+123@rp.example.com", ["x@example.org"], message())
    assert code == 250
    code, text = client.mail("bounces@rp.other.example")
    assert code == 550
    client.quit()


def test_suppressed_recipient_refused_others_still_go(relay: RelayProcess) -> None:
    client = relay.smtp()
    client.mail("noreply@example.com")
    code, text = client.rcpt("blocked@example.org")
    assert (code, text) == (
        550,
        reply_text(R.S550_SUPPRESSED, address="blocked@example.org", reason="COMPLAINT"),
    )
    assert client.rcpt("fine@example.org")[0] == 250
    code, reply = client.data(message())
    assert code == 250
    client.quit()
    spooled = (relay.spool() / f"{queue_id_of(reply)}.msg").read_bytes()
    assert b'"rcpt_tos":["fine@example.org"]' in spooled


def test_size_is_advertised_and_enforced(relay: RelayProcess) -> None:
    client = relay.smtp()
    assert client.esmtp_features["size"] == "2097152"
    code, text = client.docmd("MAIL", "FROM:<noreply@example.com> SIZE=3000000")
    assert (code, text) == (552, reply_text(R.S552_TOO_BIG, limit=2097152))
    client.rset()
    big = message(body="x" * 998 + "\r\n") * 1
    big = big + (b"y" * 998 + b"\r\n") * 2200
    code, text = send(client, "noreply@example.com", ["x@example.org"], big)
    assert (code, text) == (552, reply_text(R.S552_TOO_BIG, limit=2097152))
    client.quit()


@pytest.mark.parametrize(
    "body,kind", [(b"line one\nline two\r\n", "LF"), (b"line one\rline two\r\n", "CR")]
)
def test_bare_line_endings_are_refused(relay: RelayProcess, body: bytes, kind: str) -> None:
    client = relay.smtp()
    client.mail("noreply@example.com")
    client.rcpt("x@example.org")
    code, _ = client.docmd("DATA")
    assert code == 354
    client.send(message().split(b"\r\n\r\n")[0] + b"\r\n\r\n" + body + b".\r\n")
    code, text = client.getreply()
    assert (code, text) == (550, reply_text(R.S550_BARE_LINE_ENDING, kind=kind))
    client.quit()


def test_implicit_tls_listener(relay: RelayProcess) -> None:
    client = relay.smtp(implicit=True)
    code, _ = send(client, "noreply@example.com", ["x@example.org"], message())
    assert code == 250
    client.quit()


def login_code(relay: RelayProcess, source: str, username: str, password: str) -> int:
    client = relay.smtp(login=None, source=source)
    try:
        client.login(username, password)
        return 235
    except smtplib.SMTPAuthenticationError as exc:
        return exc.smtp_code
    except smtplib.SMTPServerDisconnected:
        return 421
    finally:
        with contextlib.suppress(OSError):
            client.close()


def test_repeated_failures_are_slowed_then_refused_for_that_username(relay: RelayProcess) -> None:
    source, app = "127.0.0.2", relay.creds["app"]
    codes = [login_code(relay, source, app["username"], "guess") for _ in range(5)]
    assert codes[:4] == [535, 535, 535, 535] and codes[4] == 421
    # blocked for that username from that address, even with its right password ...
    assert login_code(relay, source, app["username"], app["password"]) == 421
    # ... while another credential from the same address (a NAT, a balancer) still works,
    billing = relay.creds["billing"]
    assert login_code(relay, source, billing["username"], billing["password"]) == 235
    # and so does the same credential from another address.
    assert login_code(relay, "127.0.0.1", app["username"], app["password"]) == 235
    blocked = relay.events("auth_blocked")[-1]
    assert blocked["peer"] == source and blocked["username"] == app["username"]


def test_log_has_one_json_line_per_event_and_no_secrets(relay: RelayProcess) -> None:
    client = relay.smtp()
    send(client, "noreply@example.com", ["x@example.org"], message())
    client.quit()
    relay.wait_for(lambda: relay.events("disconnect"), what="disconnect event")
    kinds = {e["event"] for e in relay.events()}
    assert {
        "listening",
        "connect",
        "auth_ok",
        "accepted",
        "rejected",
        "disconnect",
        "auth_fail",
    } <= kinds
    accepted = relay.events("accepted")[-1]
    assert len(accepted["queue_id"]) == 24 and accepted["dkim"] == "example.com/ed"
    text = "\n".join(relay.lines)
    for cred in relay.creds.values():
        assert cred["password"] not in text
    assert "PRIVATE KEY" not in text and "scrypt$" not in text


def test_helo_cannot_inject_header_fields(relay: RelayProcess) -> None:
    client = relay.smtp(tls=False, login=None)
    client.starttls(context=relay.client_context(check_hostname=False))
    client.send(b"EHLO evil\rFrom: CEO <ceo@bank.example>\rX-Injected: 1\r\n")
    assert client.getreply()[0] == 250
    cred = relay.creds["app"]
    token = base64.b64encode(f"\0{cred['username']}\0{cred['password']}".encode()).decode()
    assert client.docmd("AUTH", f"PLAIN {token}")[0] == 235
    assert client.docmd("MAIL", "FROM:<noreply@example.com>")[0] == 250  # no new EHLO
    assert client.docmd("RCPT", "TO:<x@example.org>")[0] == 250
    code, reply = client.data(message())
    client.quit()
    assert code == 250
    head = relay.spooled(queue_id_of(reply)).split(b"\r\n\r\n", 1)[0]
    first, rest = head.split(b"\r\n", 1)
    assert first.startswith(b"Received: from evil?From:?CEO??ceo?bank.example??X-Injected:?1 ")
    assert b"\r" not in first and b"ceo@bank.example" not in rest
    assert rest.count(b"\r\nFrom: ") + rest.startswith(b"From: ") == 1


@pytest.mark.parametrize(
    "rcpt", [b'"john smith"@example.org', "caf\u00e9@example.org".encode(), b"a\rb@example.org"]
)
def test_recipients_that_cannot_be_delivered_unchanged_are_refused(
    relay: RelayProcess, rcpt: bytes
) -> None:
    client = relay.smtp()
    client.mail("noreply@example.com")
    client.send(b"RCPT TO:<" + rcpt + b">\r\n")
    code, text = client.getreply()
    assert code in (553, 501), text  # never aiosmtpd's undocumented 500
    if code == 553:
        assert text.startswith((b"5.1.3 Address <", b"5.1.3 Addresses must be plain ASCII"))
    client.quit()
