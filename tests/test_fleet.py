"""Two relays on one PostgreSQL state and shared store, behind a real HAProxy that passes
the client's address by the PROXY protocol: the limits hold for the fleet, a suppression
learned by one relay is refused by the other within 2 s, failed logins are counted and
blocked over the fleet per username, and a PostgreSQL outage under load loses no
accepted message and ends without a restart."""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require_tool
from tests.destinations import Destination
from tests.fleet import Fleet, fleet_config
from tests.haproxy import BACKEND, HAPROXY
from tests.knot import free_port
from tests.relayproc import RelayProcess, message, queue_id_of

Outcome = tuple[str, int, str]  # (stage, code, reply or queue id)


@pytest.fixture
def pg_env(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    require_tool(HAPROXY)
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    return pg_dsn


@contextlib.contextmanager
def running(fleet: Fleet, *extra: str, deliver: bool = False) -> Iterator[Fleet]:
    fleet.start(*extra, deliver=deliver)
    try:
        yield fleet
    finally:
        assert set(fleet.stop()) <= {0}


def send(client: smtplib.SMTP, to: str, source: str = "client") -> Outcome:
    """One message to one recipient; where it stopped and the reply there."""
    code, reply = client.mail("noreply@example.com")
    if code != 250:
        client.rset()
        return ("MAIL", code, reply.decode())
    code, reply = client.rcpt(to)
    if code != 250:
        client.rset()
        return ("RCPT", code, reply.decode())
    code, reply = client.data(message(to=to, subject=source))
    return ("DATA", code, queue_id_of(reply) if code == 250 else reply.decode())


def used_today(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(used), 0) FROM postform.relay_daily WHERE tenant = 'production'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def hammer(fleet: Fleet, threads: int, each: int, *, seconds: float = 60) -> list[Outcome]:
    """`threads` clients through the balancer, `each` messages apiece, a new connection
    every 5 messages (so both relays serve every client)."""
    results: list[Outcome] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop(n: int) -> None:
        client: smtplib.SMTP | None = None
        for i in range(each):
            if time.monotonic() > deadline:
                break
            if i % 5 == 0:
                if client is not None:
                    client.quit()
                client = fleet.client(source=f"127.0.0.{20 + n}")
            assert client is not None
            outcome = send(client, f"r{n}-{i}@example.org", f"t{n}")
            with lock:
                results.append(outcome)
        if client is not None:
            client.quit()

    workers = [threading.Thread(target=client_loop, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    return results


def test_the_daily_recipient_limit_holds_for_the_fleet(tmp_path: Path, pg_env: str) -> None:
    limit = 60  # leases of one recipient: the fleet admits exactly the limit
    fleet = Fleet(tmp_path, 2, fleet_config(per_day=limit))
    with running(fleet):
        results = hammer(fleet, threads=4, each=25)
        accepted = [r for r in results if r[:2] == ("DATA", 250)]
        refused = [r for r in results if r[0] == "RCPT"]
        assert len(results) == 100
        assert len(accepted) == limit  # with a store per relay it would be 100
        assert {code for _, code, _ in refused} == {452}
        assert all("Daily recipient limit" in text for _, _, text in refused)
        per_relay = [len(r.events("accepted")) for r in fleet.relays]
        assert sum(per_relay) == limit and min(per_relay) > 0  # both relays took a share
        peers = {e["peer"] for r in fleet.relays for e in r.events("accepted")}
        assert peers == {"127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23"}
        for relay in fleet.relays:  # the Received: header names the client, not HAProxy
            event = relay.events("accepted")[0]
            head = relay.spooled(event["queue_id"]).split(b"\r\n\r\n", 1)[0]
            assert f"([{event['peer']}])".encode() in head
    assert used_today(pg_env) == limit  # nothing leased and unused is kept by a stopped relay


def test_the_rate_limit_holds_for_the_fleet(tmp_path: Path, pg_env: str) -> None:
    per_minute = 30  # one user sends: its share (limits.user_share) is turned off here
    config = fleet_config(per_minute=per_minute).replace(
        "  max_message_bytes", "  user_share: 100\n  max_message_bytes"
    )
    fleet = Fleet(tmp_path, 2, config)
    with running(fleet):
        started = time.monotonic()
        results = hammer(fleet, threads=4, each=20)
        elapsed = time.monotonic() - started
        admitted = [r for r in results if r[0] != "MAIL"]
        limited = [r for r in results if r[0] == "MAIL"]
        refill = elapsed * per_minute / 60
        assert per_minute <= len(admitted) <= per_minute + refill + 1, (len(admitted), elapsed)
        assert {code for _, code, _ in limited} == {451}
        assert all("Rate limit exceeded" in text for _, _, text in limited)
        assert min(len(r.events("accepted")) for r in fleet.relays) > 0


def test_a_suppression_learned_by_one_relay_is_refused_by_the_other_within_2s(
    tmp_path: Path, pg_env: str
) -> None:
    port = free_port()
    mx = Destination("127.0.0.31", port).start()
    mx.recorder.hard.add("gone@example.org")
    smarthost = f"  smarthost: {{host: 127.0.0.31, port: {port}, tls: none}}\n"
    fleet = Fleet(tmp_path, 2, fleet_config(relay_extra=smarthost))
    try:
        with running(fleet):
            first, second = fleet.relays
            fleet.restart(0, deliver=True)  # only the first delivers: the second learns nothing
            client = fleet.client(relay=0)
            assert send(client, "gone@example.org")[:2] == ("DATA", 250)
            client.quit()
            first.wait_for(lambda: first.events("suppressed"), what="the bounce")
            learned = datetime.fromisoformat(str(first.events("suppressed")[0]["ts"]))
            other = fleet.client(relay=1)
            while (outcome := send(other, "gone@example.org"))[0] != "RCPT":
                assert (datetime.now(learned.tzinfo) - learned).total_seconds() < 5, outcome
            refused_after = (datetime.now(learned.tzinfo) - learned).total_seconds()
            assert refused_after < 2.0
            assert outcome[1] == 550 and "suppression list (HARDBOUNCE)" in outcome[2]
            # from the command line, on any host: every relay follows the one list
            first.postform("suppressions", "add", "manual@example.org", "--note", "asked")
            shown = second.postform("suppressions", "list").stdout
            assert "gone@example.org\tHARDBOUNCE" in shown and "manual@example.org\tMANUAL" in shown
            deadline = time.monotonic() + 2
            while send(other, "manual@example.org")[0] != "RCPT":
                assert time.monotonic() < deadline, "manual suppression not followed in 2 s"
            second.postform("suppressions", "remove", "gone@example.org", "--reason", "fixed")
            client = fleet.client(relay=0)
            deadline = time.monotonic() + 2
            while send(client, "gone@example.org")[0] == "RCPT":
                assert time.monotonic() < deadline, "release not followed in 2 s"
            client.quit()
            other.quit()
    finally:
        mx.stop()


def auth_code(fleet: Fleet, relay: int | None, source: str, username: str, password: str) -> int:
    client = fleet.client(relay=relay, source=source, login=None)
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


def test_failed_logins_are_counted_over_the_fleet_for_one_username(
    tmp_path: Path, pg_env: str
) -> None:
    fleet = Fleet(tmp_path, 2, fleet_config())
    with running(fleet):
        billing, app = fleet.relays[0].creds["billing"], fleet.relays[0].creds["app"]
        guesser = "127.0.0.7"
        codes = [
            auth_code(fleet, n % 2, guesser, billing["username"], "wrong") for n in range(5)
        ]  # spread over both relays: neither saw more than three
        assert codes == [535, 535, 535, 535, 421]  # the fifth over the fleet blocks
        for relay in (0, 1):  # blocked for that username from that address, on both relays
            assert auth_code(fleet, relay, guesser, billing["username"], billing["password"]) == 421
            assert auth_code(fleet, relay, guesser, app["username"], app["password"]) == 235
            assert (
                auth_code(fleet, relay, "127.0.0.8", billing["username"], billing["password"])
                == 235
            )
        failures = [e for r in fleet.relays for e in r.events("auth_fail")]
        assert failures and {e["peer"] for e in failures} == {guesser}
        assert all(r.events("auth_fail") for r in fleet.relays)


def test_postgres_stopping_under_load_loses_no_accepted_message_and_recovers(
    tmp_path: Path, pg_env: str, pg_cluster
) -> None:
    # leases of 20 recipients and 100 messages: an outage is ridden out on what is held,
    # then answered 451 4.3.0
    fleet = Fleet(tmp_path, 2, fleet_config(per_minute=60000, per_day=2000))
    results: list[Outcome] = []
    stop = threading.Event()
    with running(fleet):
        pids = [r.proc.pid for r in fleet.relays if r.proc is not None]

        def load(n: int) -> None:
            client: smtplib.SMTP | None = None
            deadline = time.monotonic() + 90
            for i in range(600):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                try:
                    if client is None or i % 5 == 0:
                        if client is not None:
                            client.quit()
                        client = fleet.client(source=f"127.0.0.{40 + n}")
                    results.append(send(client, f"o{n}-{i}@example.org"))
                except (smtplib.SMTPException, OSError) as exc:
                    results.append(("CONNECTION", 0, repr(exc)))
                    if client is not None:
                        client.close()
                    client = None
                time.sleep(0.01)
            if client is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
                client.close()

        threads = [threading.Thread(target=load, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 30
            while sum(r[:2] == ("DATA", 250) for r in results) < 30:
                assert time.monotonic() < deadline, results[-5:]
                time.sleep(0.05)
            pg_cluster.stop()
            try:
                deadline = time.monotonic() + 30
                while not any(r[1] == 451 for r in results):
                    assert time.monotonic() < deadline, "no 451 once the leases ran out"
                    time.sleep(0.05)
                time.sleep(2)
            finally:
                pg_cluster.start()
            during = len(results)
            deadline = time.monotonic() + 30
            while not any(r[:2] == ("DATA", 250) for r in results[during:]):
                assert time.monotonic() < deadline, "no message accepted after PostgreSQL came back"
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert [r.proc.pid for r in fleet.relays if r.proc is not None] == pids  # no restart
        for relay in fleet.relays:
            relay.wait_for(lambda r=relay: r.events("store_back"), what="store_back")  # type: ignore[misc]
            assert relay.events("store_unavailable")
    unexpected = [r for r in results if r[:2] != ("DATA", 250) and r[1] != 451]
    assert unexpected == []
    temporary = [r for r in results if r[1] == 451]
    assert all("cannot account" in text for _, _, text in temporary)
    accepted = [qid for stage, code, qid in results if (stage, code) == ("DATA", 250)]
    spooled = {p.stem for r in fleet.relays for p in r.spool().glob("*.msg")}
    assert set(accepted) <= spooled and len(set(accepted)) == len(accepted)
    assert used_today(pg_env) == len(accepted)  # every recipient accounted for, once


def test_a_retired_hosts_queue_is_delivered_from_another_host(tmp_path: Path, pg_env: str) -> None:
    port = free_port()
    mx = Destination("127.0.0.32", port)  # not up yet: the first relay's queue waits
    smarthost = f"  smarthost: {{host: 127.0.0.32, port: {port}, tls: none}}\n"
    fleet = Fleet(tmp_path, 2, fleet_config(relay_extra=smarthost))
    try:
        with running(fleet):
            first, second = fleet.relays
            client = fleet.client(relay=0)
            queued = [send(client, f"q{i}@example.org") for i in range(3)]
            client.quit()
            assert [stage for stage, _, _ in queued] == ["DATA"] * 3
            assert first.stop() == 0  # the retired host: out of the balancer, stopped
            moved = second.folder / "retired-relay0"
            shutil.copytree(first.spool().parent.parent, moved)  # its data folder, as is
            mx.start()
            result = second.postform("relay", "deliver", "--until-empty", "--data-dir", str(moved))
            assert result.returncode == 0
        assert sorted(r for m in mx.recorder.messages for r in m.rcpt_tos) == [
            "q0@example.org", "q1@example.org", "q2@example.org",
        ]  # fmt: skip
        assert not list((moved / "spool" / "queue").glob("*"))
        delivered = (moved / "events.jsonl").read_text().count('"event":"delivered"')
        assert delivered == 3
    finally:
        mx.stop()


def test_health_checks_pass_through_the_proxy_protocol_and_a_drained_relay_gets_no_sessions(
    tmp_path: Path, pg_env: str
) -> None:
    fleet = Fleet(tmp_path, 2, fleet_config())
    with running(fleet):
        first, second = fleet.relays
        balancer = fleet.balancer
        assert balancer is not None
        # examples/fleet/haproxy.cfg's SMTP check, itself sent with a PROXY header
        assert balancer.states() == {"relay1": "UP", "relay2": "UP"}
        balancer.command(f"set server {BACKEND}/relay1 state drain")  # retiring relay1
        assert balancer.states()["relay1"] == "DRAIN"
        for n in range(6):
            client = fleet.client(source="127.0.0.50")
            assert send(client, f"d{n}@example.org")[:2] == ("DATA", 250)
            client.quit()

        def sessions(relay: RelayProcess) -> int:
            return sum(e["peer"] == "127.0.0.50" for e in relay.events("auth_ok"))

        assert (sessions(first), sessions(second)) == (0, 6)
        assert first.stop() == 0  # drained, then stopped: its checks fail, nobody notices
        client = fleet.client(source="127.0.0.50")
        assert send(client, "after@example.org")[:2] == ("DATA", 250)
        client.quit()
