"""The relay as a process: limits that survive restarts, policy reloads, SIGHUP, SIGTERM,
DNS-gated signing, and swaks as a real client."""

from __future__ import annotations

import shutil
import signal
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from relay import replies as R
from tests.conftest import require_tool
from tests.relayproc import RelayProcess, message, port_open, queue_id_of


def reply_text(template: str, **kw: object) -> bytes:
    return template.format(**kw).split(" ", 1)[1].encode()


@pytest.fixture
def fresh(tmp_path: Path):
    procs: list[RelayProcess] = []

    def make(**kw: int) -> RelayProcess:
        proc = RelayProcess(tmp_path / f"relay{len(procs)}", **kw).start()
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        if proc.proc is not None:
            proc.stop()


def test_rate_limit_is_a_temporary_failure(fresh) -> None:
    relay = fresh(per_minute=6)  # two users: each may take half (limits.user_share)
    client = relay.smtp()
    for _ in range(5):  # abandoned transactions give their message back
        assert client.mail("noreply@example.com")[0] == 250
        client.rset()
    for i in range(3):
        assert client.sendmail("noreply@example.com", [f"r{i}@example.org"], message()) == {}
    code, text = client.mail("noreply@example.com")
    assert (code, text) == (451, reply_text(R.S451_USER_RATE_LIMITED, user="app", limit=3))
    client.quit()
    other = relay.smtp(login="billing")  # the other application still has its share
    assert (
        other.sendmail("billing@example.com", ["b@example.org"], message("billing@example.com"))
        == {}
    )
    other.quit()


def test_daily_recipient_limit_survives_a_restart(fresh) -> None:
    relay = fresh(per_day=4)
    client = relay.smtp()
    client.mail("noreply@example.com")
    for i in range(3):
        assert client.rcpt(f"r{i}@example.org")[0] == 250
    assert client.data(message())[0] == 250
    client.mail("noreply@example.com")
    assert client.rcpt("r3@example.org")[0] == 250
    code, text = client.rcpt("r4@example.org")
    assert (code, text) == (452, reply_text(R.S452_DAILY_LIMIT, limit=4))
    assert client.data(message())[0] == 250
    client.quit()
    assert relay.stop() == 0
    relay.start()
    client = relay.smtp()
    client.mail("noreply@example.com")
    code, _ = client.rcpt("r5@example.org")
    assert code == 452
    client.quit()


def test_new_policy_is_picked_up_within_two_seconds_without_dropping_sessions(fresh) -> None:
    relay = fresh()
    client = relay.smtp()
    assert client.mail("late@example.com")[0] == 550
    client.rset()
    config = relay.folder / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "  - noreply@example.com\n", "  - noreply@example.com\n  - late@example.com\n"
        )
    )
    relay.apply()
    started = time.monotonic()
    relay.wait_for(lambda: relay.events("policy_reloaded"), timeout=5, what="reload")
    assert time.monotonic() - started < 2.0
    assert relay.events("policy_reloaded")[-1]["serial"] == 2
    assert client.mail("late@example.com")[0] == 250  # the same, still open session
    client.rcpt("x@example.org")
    assert client.data(message(sender="late@example.com"))[0] == 250
    client.quit()


def test_sighup_forces_a_reload(fresh) -> None:
    relay = fresh()
    relay.signal(signal.SIGHUP)
    relay.wait_for(lambda: relay.events("policy_reloaded"), what="forced reload")
    assert relay.events("policy_reloaded")[-1]["forced"] is True


def test_sigterm_finishes_the_transaction_in_progress_and_exits_zero(fresh) -> None:
    relay = fresh()
    busy = relay.smtp()
    idle = relay.smtp()
    busy.mail("noreply@example.com")
    busy.rcpt("x@example.org")
    relay.signal(signal.SIGTERM)
    relay.wait_for(lambda: not port_open(relay.port), what="listener closed")
    code, reply = busy.data(message())
    assert code == 250
    assert (relay.spool() / f"{queue_id_of(reply)}.msg").exists()
    with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):
        idle.mail("noreply@example.com")
        idle.rcpt("x@example.org")
    assert relay.stop() == 0
    busy.close()
    idle.close()


def test_newest_active_selector_signs_and_dns_gated_ones_wait(fresh) -> None:
    relay = fresh()
    config = relay.folder / "postform.yaml"
    text = config.read_text()
    config.write_text(
        text.replace(
            "      - {selector: ed, algorithm: ed25519, activation: immediate}\n",
            "      - {selector: ed, algorithm: ed25519, activation: immediate}\n"
            "      - {selector: gated, algorithm: ed25519}\n",
        )
    )
    relay.apply()
    relay.wait_for(lambda: relay.events("policy_reloaded"), what="reload")
    assert b"s=ed;" in _signature(relay)
    config.write_text(
        config.read_text().replace(
            "{selector: gated, algorithm: ed25519}",
            "{selector: gated, algorithm: ed25519, activation: immediate}",
        )
    )
    relay.apply()
    relay.wait_for(lambda: len(relay.events("policy_reloaded")) == 2, what="second reload")
    assert b"s=gated;" in _signature(relay)


def _signature(relay: RelayProcess) -> bytes:
    client = relay.smtp()
    client.mail("noreply@example.com")
    client.rcpt("x@example.org")
    code, reply = client.data(message())
    client.quit()
    assert code == 250
    spooled = relay.spooled(queue_id_of(reply))
    return b"".join(spooled.split(b"DKIM-Signature:", 1)[1].split(b"\r\nDate:")[0].split())


def swaks(
    relay: RelayProcess, *args: str, port: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run swaks against the relay (the STARTTLS port unless `port`), as user "app"."""
    require_tool("swaks")
    cred = relay.creds["app"]
    return subprocess.run(
        [
            shutil.which("swaks") or "swaks",
            "--server",
            "127.0.0.1",
            "--port",
            str(port or relay.port),
            "--helo",
            "swaks.test",
            f"--auth-user={cred['username']}",
            # apply never makes a password starting with "-": swaks 20201014 reads one as an
            # option even in this --opt=value form (tests/test_credentials.py checks it).
            f"--auth-password={cred['password']}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_swaks_sends_with_starttls_and_auth_plain(relay: RelayProcess) -> None:
    result = swaks(
        relay,
        "--tls",
        "--auth",
        "PLAIN",
        "--from",
        "noreply@example.com",
        "--to",
        "reader@example.org",
        "--header",
        "From: noreply@example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<~  250 2.0.0 OK: queued as " in result.stdout
    assert "<~  235 2.7.0 Authentication successful" in result.stdout


def test_swaks_sees_the_reply_codes(relay: RelayProcess) -> None:
    no_tls = swaks(
        relay, "--auth", "PLAIN", "--from", "noreply@example.com", "--to", "reader@example.org"
    )
    assert no_tls.returncode != 0  # AUTH is not offered before STARTTLS
    assert "Host did not advertise authentication" in no_tls.stderr
    login = swaks(
        relay,
        "--tls",
        "--auth",
        "LOGIN",
        "--from",
        "noreply@example.com",
        "--to",
        "reader@example.org",
    )
    assert login.returncode != 0
    unapproved = swaks(
        relay, "--tls", "--auth", "PLAIN", "--from", "ceo@example.com", "--to", "reader@example.org"
    )
    assert "550 5.7.1 Sender <ceo@example.com> is not an approved sender" in unapproved.stdout
    suppressed = swaks(
        relay,
        "--tls",
        "--auth",
        "PLAIN",
        "--from",
        "noreply@example.com",
        "--to",
        "blocked@example.org",
    )
    assert (
        "550 5.1.1 Recipient <blocked@example.org> is on the suppression list" in suppressed.stdout
    )
    implicit = swaks(
        relay,
        "--tls-on-connect",
        "--auth",
        "PLAIN",
        "--from",
        "noreply@example.com",
        "--to",
        "reader@example.org",
        "--header",
        "From: noreply@example.com",
        port=relay.tls_port,
    )
    assert implicit.returncode == 0 and "250 2.0.0 OK: queued as" in implicit.stdout
