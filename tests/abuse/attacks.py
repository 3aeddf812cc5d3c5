"""The attacks, run in their own process (so the test's legitimate client is not slowed
by the attacker's threads on the test's GIL): `python -m tests.abuse.attacks NAME PORT
USER PASSWORD [N]`. Each prints one JSON line of what the attacker saw. Every loop is
bounded in count and time."""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Callable

DEADLINE_S = 60.0


def session(port: int, user: str, password: str, source: str) -> smtplib.SMTP:
    client = tls_session(port, source)
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


def login_code(client: smtplib.SMTP, user: str, password: str) -> int:
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    try:
        return int(client.docmd("AUTH", f"PLAIN {blob}")[0])
    except smtplib.SMTPServerDisconnected:
        return 421


def tls_session(port: int, source: str = "127.0.0.1") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=(source, 0))
    client.ehlo()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo()
    return client


def parallel_logins(port: int, user: str, password: str, n: int) -> dict[str, object]:
    """n sessions guess `user`'s password at once, then one tries the right password."""
    sessions = [tls_session(port) for _ in range(n)]
    codes: dict[int, int] = {}
    gate = threading.Barrier(n, timeout=DEADLINE_S)

    def one(i: int) -> None:
        gate.wait()
        codes[i] = login_code(sessions[i], user, f"wrong-{i}")

    run_threads(one, n)
    for client in sessions:
        client.close()
    client = tls_session(port)
    right = login_code(client, user, password)
    client.close()
    return {"codes": [codes.get(i, 0) for i in range(n)], "right": right}


def spray(port: int, user: str, password: str, n: int) -> dict[str, object]:
    """One wrong guess for each of n made-up usernames, a successful login with the
    attacker's own credential after every third, then one more own login at the end."""
    codes: list[int] = []
    own: list[int] = []
    for i in range(n):
        client = tls_session(port)
        codes.append(login_code(client, f"victim{i}.prod", "guess"))
        client.close()
        if i % 3 == 2:
            client = tls_session(port)
            own.append(login_code(client, user, password))
            client.close()
    client = tls_session(port)
    final = login_code(client, user, password)
    client.close()
    return {"codes": codes, "own": own, "final": final}


def run_threads(target: Callable[[int], None], n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + DEADLINE_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))


ATTACKS: dict[str, Callable[[int, str, str, int], dict[str, object]]] = {
    "blank-lines": blank_lines,
    "parallel-logins": parallel_logins,
    "spray": spray,
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
