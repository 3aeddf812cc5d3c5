"""The attacks, run in their own process (so the test's legitimate client is not slowed
by the attacker's threads on the test's GIL): `python -m tests.abuse.attacks NAME PORT
USER PASSWORD [N]`. Each prints one JSON line of what the attacker saw. Every loop is
bounded in count and time."""

from __future__ import annotations

import json
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Callable

DEADLINE_S = 60.0


def session(port: int, user: str, password: str, source: str) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0))
    client.ehlo()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo()
    client.login(user, password)
    return client


def blank_lines(port: int, user: str, password: str, n: int) -> dict[str, object]:
    """n sessions, each a message of 1,000,000 empty lines (2 MB, under the limit)."""
    codes: list[int] = []

    def one(i: int) -> None:
        client = session(port, user, password, f"127.0.0.{30 + i}")
        client.mail("noreply@example.com")
        client.rcpt(f"reader{i}@example.org")
        client.putcmd("data")
        client.getreply()
        client.send(b"From: noreply@example.com\r\nTo: x@example.org\r\nSubject: blank\r\n")
        for _ in range(100):
            client.send(b"\r\n" * 10_000)
        client.send(b".\r\n")
        codes.append(client.getreply()[0])
        client.quit()

    run_threads(one, n)
    return {"codes": sorted(codes)}


def run_threads(target: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + DEADLINE_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


ATTACKS: dict[str, Callable[[int, str, str, int], dict[str, object]]] = {
    "blank-lines": blank_lines,
}


def main() -> None:
    name, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    started = time.monotonic()
    seen = ATTACKS[name](port, user, password, n)
    seen["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(seen, default=str))


if __name__ == "__main__":
    main()
