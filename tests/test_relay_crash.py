"""SIGKILL the relay under concurrent load: every message that got 250 is in the spool
after a restart; no message that got an error reply is."""

from __future__ import annotations

import contextlib
import signal
import smtplib
import threading
import time
from pathlib import Path

from relay.spool import read_spool_file
from tests.relayproc import RelayProcess, message, queue_id_of

SESSIONS = 8
PER_SESSION = 400  # bounded: the kill comes long before
RUN_LIMIT_S = 20.0


def test_sigkill_under_load_loses_no_acknowledged_message(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay").start()
    acked: dict[str, str] = {}  # token -> queue id
    refused: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + RUN_LIMIT_S

    def worker(n: int) -> None:
        try:
            client = relay.smtp()
        except (smtplib.SMTPException, OSError):
            return
        for i in range(PER_SESSION):
            if stop.is_set() or time.monotonic() > deadline:
                break
            token = f"t{n}-{i}"
            bad = i % 7 == 3  # an unapproved From: refused with 550 at the end of DATA
            data = message(
                sender="ceo@example.com" if bad else "noreply@example.com", subject=token
            )
            try:
                client.mail("noreply@example.com")
                client.rcpt("reader@example.org")
                code, reply = client.data(data)
            except (smtplib.SMTPException, OSError):
                break
            with lock:
                if code == 250:
                    acked[token] = queue_id_of(reply)
                else:
                    refused.add(token)
        with contextlib.suppress(OSError):
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(SESSIONS)]
    for t in threads:
        t.start()
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    relay.signal(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(30)
    assert relay.stop() == -signal.SIGKILL
    assert len(acked) >= 150 and refused

    spooled = {p.stem: read_spool_file(p) for p in relay.spool().glob("*.msg")}
    for token, queue_id in acked.items():
        assert queue_id in spooled, f"acknowledged {queue_id} ({token}) is not in the spool"
        assert f"Subject: {token}\r\n".encode() in spooled[queue_id].message
    subjects = {
        m.message.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in spooled.values()
    }
    assert not subjects & refused, "a refused message was spooled"
    assert len(spooled) <= len(acked) + SESSIONS  # at most one in flight per session

    relay.start()  # restart: the spool is intact and unacknowledged temp files are gone
    assert not list((relay.spool().parent / "tmp").iterdir())
    assert {p.stem for p in relay.spool().glob("*.msg")} == set(spooled)
    assert relay.stop() == 0
