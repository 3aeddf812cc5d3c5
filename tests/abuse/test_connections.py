"""Connections (issue #11, attack 2): with a small open-files limit, ~1,000 idle
connections from one address stopped every other client, with Errno 24 tracebacks
on stderr. Now: a cap per address, a rate per address, a total below the descriptor
limit with room kept for new clients, 421 4.7.0 past a cap, a minimum DATA rate, and
every error a JSON event."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path

from tests.abuse.harness import RSS_LIMIT_MB, LegitClient, RssSampler
from tests.relayproc import RelayProcess, default_config, message, with_sessions

BASE = default_config()


def greeting(port: int, source: str) -> tuple[socket.socket, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    line = b""
    with contextlib.suppress(OSError):
        while not line.endswith(b"\n"):
            chunk = sock.recv(512)
            if not chunk:
                break
            line += chunk
    return sock, line.decode(errors="replace").strip()


def non_json_lines(relay: RelayProcess) -> list[str]:
    bad = []
    for line in relay.lines:
        try:
            json.loads(line)
        except ValueError:
            bad.append(line)
    return bad


def test_idle_connections_cannot_take_the_relay_from_other_clients(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay").start(open_files=256)  # room for 192
    held: list[socket.socket] = []
    try:
        with RssSampler(relay) as rss, LegitClient(relay, every=0.1) as legit:
            replies: dict[str, list[str]] = {}
            for _ in range(1000):  # one address, idle connections
                sock, line = greeting(relay.port, "127.0.0.66")
                held.append(sock) if line.startswith("220") else sock.close()
                replies.setdefault(line[:3], []).append(line)
            assert len(replies["220"]) == 50  # per_client
            assert "Too many connections from 127.0.0.66" in replies["421"][0]
            for a in range(6):  # a small botnet: six addresses at their cap
                for _ in range(60):
                    sock, line = greeting(relay.port, f"127.0.1.{a}")
                    held.append(sock) if line.startswith("220") else sock.close()
            time.sleep(1)
        legit.check()  # a new address still gets in: room is kept for new clients
        assert rss.peak_mb < RSS_LIMIT_MB
        refused = relay.events("connection_refused")
        assert refused and {e["peer"] for e in refused} >= {"127.0.0.66"}
        assert non_json_lines(relay) == []  # no Errno 24 traceback, only events
    finally:
        for sock in held:
            sock.close()
        relay.stop()


def test_a_client_connecting_too_often_is_refused_for_a_while(tmp_path: Path) -> None:
    config = with_sessions(BASE, per_client_rate=20)
    relay = RelayProcess(tmp_path / "relay", config=config).start()
    try:
        codes = []
        for _ in range(30):
            sock, line = greeting(relay.port, "127.0.0.67")
            codes.append(line[:3])
            sock.close()
        assert codes == ["220"] * 20 + ["421"] * 10
        sock, line = greeting(relay.port, "127.0.0.68")  # another address is not affected
        sock.close()
        assert line.startswith("220")
    finally:
        relay.stop()


def test_data_trickled_below_the_minimum_rate_is_cut_off(tmp_path: Path) -> None:
    config = with_sessions(BASE, min_data_rate=2000, data_grace=1)
    relay = RelayProcess(tmp_path / "relay", config=config).start()
    try:
        client = relay.smtp()
        client.mail("noreply@example.com")
        client.rcpt("slow@example.org")
        client.putcmd("data")
        assert client.getreply()[0] == 354
        started = time.monotonic()
        assert client.sock is not None
        client.sock.settimeout(10)
        client.send(b"Subject: slow\r\n")  # then nothing (60 bytes a minute, today)
        reply = client.sock.recv(200)
        assert 1 <= time.monotonic() - started < 4
        assert reply.startswith(b"421 4.4.2"), reply
        client.close()
        relay.wait_for(lambda: relay.events("data_too_slow"), what="data_too_slow")
        ok = relay.smtp()  # and the relay goes on
        assert ok.sendmail("noreply@example.com", ["x@example.org"], message()) == {}
        ok.quit()
    finally:
        relay.stop()
