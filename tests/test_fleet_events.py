"""Issue #16 in a fleet: every relay ships its event lines to the shared table
(relay_events), so `relay trace` and `relay usage` on any relay see the whole fleet
(--local: this host's files only); events written while PostgreSQL is down ship when it
is back; rows past the retention are pruned; lookups go by the table's indexes."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from reconciler.state.pgschema import ensure_schema
from relay.events import EventLog
from relay.fleetevents import RELAY_HOST, FleetEvents, fleet_records
from relay.pgconnect import DatabaseError
from relay.store import pgevents
from relay.store.eventshipper import EventShipper, relay_host
from relay.store.pgruntime import PgTarget
from tests.conftest import require_tool
from tests.fleet import Fleet, fleet_config
from tests.haproxy import HAPROXY
from tests.knot import free_port
from tests.relayproc import RelayProcess, message, queue_id_of

TARGET = PgTarget("POSTFORM_PG_DSN", "postform", "production")


@pytest.fixture
def pg_env(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    return pg_dsn


def record(ts: datetime, event: str, qid: str, **fields: object) -> dict[str, object]:
    return {"ts": ts.isoformat(timespec="milliseconds"), "event": event, "queue_id": qid, **fields}


def ship(dsn: str, host: str, records: list[dict[str, object]], tenant: str = "production") -> None:
    rows = [pgevents.row_of(tenant, host, r) for r in records]
    with psycopg.connect(dsn, autocommit=True) as conn:
        pgevents.insert(conn, "postform", [r for r in rows if r is not None])


def test_the_table_is_read_in_time_order_and_looked_up_by_its_indexes(pg_env: str) -> None:
    with psycopg.connect(pg_env, autocommit=True) as conn:
        ensure_schema(conn, "postform")
    t0 = datetime(2026, 11, 3, 12, tzinfo=UTC)
    ship(pg_env, "mx1:/srv/a", [
        record(t0, "accepted", "q1", rcpt_tos=["One@X.test", "two@x.test"], message_id="<m1@x>"),
        record(t0 + timedelta(seconds=2), "delivered", "q1", recipient="One@X.test", host="mx"),
        record(t0 + timedelta(days=1), "accepted", "q3", rcpt_tos=["one@x.test"]),
    ])  # fmt: skip
    ship(pg_env, "mx2:/srv/b", [
        record(t0 + timedelta(seconds=1), "delivered", "q1", recipient="two@x.test", host="mx"),
        record(t0 - timedelta(days=1), "accepted", "q2", rcpt_tos=["one@x.test"]),
    ])  # fmt: skip
    ship(pg_env, "other", [record(t0, "accepted", "q9", rcpt_tos=["one@x.test"])], "staging")
    events = FleetEvents(TARGET)
    try:
        assert events.queue_ids("ONE@x.test") == ["q2", "q1", "q3"]  # not staging's q9
        assert events.queue_ids("one@x.test", (t0 - timedelta(hours=1)).isoformat()) == ["q1", "q3"]
        assert events.queue_ids("<m1@x>") == ["q1"] and events.queue_ids("q2") == ["q2"]
        assert events.queue_ids("q9") == [] and events.queue_ids("nobody@x.test") == []
        found = events.events("q1")
        assert [(e["event"], e[RELAY_HOST]) for e in found] == [
            ("accepted", "mx1:/srv/a"), ("delivered", "mx2:/srv/b"), ("delivered", "mx1:/srv/a"),
        ]  # fmt: skip
        assert found[1]["host"] == "mx"  # the record as written: its own "host" is kept
        events.conn.execute("SET enable_seqscan = off")
        for sql, args in [
            ("SELECT 1 FROM postform.relay_events WHERE recipients @> ARRAY[%s]", ("a",)),
            (
                "SELECT 1 FROM postform.relay_events WHERE tenant = %s AND message_id = %s",
                ("a", "b"),
            ),
            ("SELECT 1 FROM postform.relay_events WHERE tenant = %s AND queue_id = %s", ("a", "b")),
            ("SELECT 1 FROM postform.relay_events WHERE tenant = %s AND ts >= now()", ("a",)),
        ]:
            plan = str(events.conn.execute("EXPLAIN " + sql, args).fetchall())
            assert "Seq Scan" not in plan and "Index" in plan, plan
    finally:
        events.close()
    rows = list(fleet_records(TARGET, "2026-11-03T00:00:00", "2026-11-04T00:00:00"))
    assert [(r["event"], r["queue_id"]) for r in rows] == [
        ("accepted", "q1"), ("delivered", "q1"), ("delivered", "q1"),
    ]  # fmt: skip
    only = fleet_records(TARGET, "2026-11-01T00:00:00", events=("accepted",))
    assert [r["queue_id"] for r in only] == ["q2", "q1", "q3"]


def test_pruning_deletes_rows_past_the_retention_one_relay_at_a_time(pg_env: str) -> None:
    with psycopg.connect(pg_env, autocommit=True) as conn:
        ensure_schema(conn, "postform")
    now = datetime.now(UTC)
    ship(pg_env, "h", [record(now - timedelta(days=31), "accepted", "old"),
                       record(now - timedelta(days=29), "accepted", "kept")])  # fmt: skip
    ship(pg_env, "h", [record(now - timedelta(days=31), "accepted", "theirs")], "staging")
    with psycopg.connect(pg_env, autocommit=True) as conn, psycopg.connect(pg_env) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext('production'))",
                      (pgevents.PRUNE_LOCK,))  # fmt: skip
        assert pgevents.prune(conn, "postform", "production", 30) is None  # another prunes
        other.rollback()
        assert pgevents.prune(conn, "postform", "production", 30) == 1
        left = conn.execute("SELECT tenant, queue_id FROM postform.relay_events ORDER BY 2")
        assert left.fetchall() == [("production", "kept"), ("staging", "theirs")]


def test_the_buffer_is_bounded_skips_connection_noise_and_the_drain_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    port = free_port()  # nothing listens: the store is down
    monkeypatch.setenv("DOWN_DSN", f"host=127.0.0.1 port={port} dbname=x connect_timeout=1")
    stream = io.StringIO()
    log = EventLog(stream=stream)
    shipper = EventShipper(PgTarget("DOWN_DSN", "postform", "t"), tmp_path, log, buffered=3)
    for event in ("connect", "auth_ok", "accepted", "delivered", "completed", "bounced", "x"):
        log.emit(event, queue_id="q")
    assert [r["event"] for r in shipper.pending] == ["accepted", "delivered", "completed"]
    assert shipper.dropped == 2
    shipper._say_drops()
    started = time.monotonic()
    left = asyncio.run(shipper.drain(timeout=1.0))
    assert time.monotonic() - started < 5 and left == 3
    shipper.close()
    said = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {"event": "events_dropped", "dropped": 2, "buffered": 3}.items() <= said[-2].items()
    assert said[-1]["event"] == "events_unshipped" and said[-1]["pending"] == 3
    assert said[-1]["dropped"] == 1  # the events_dropped line itself: the buffer was full


def test_records_wait_for_the_table_and_a_refused_one_does_not_hold_back_its_batch(
    tmp_path: Path, pg_env: str
) -> None:
    import asyncio

    stream = io.StringIO()
    log = EventLog(stream=stream)
    shipper = EventShipper(TARGET, tmp_path, log)
    log.emit("accepted", queue_id="q1", message_id="<a\x00b@x>", rcpt_tos=["A@x.test"])
    assert asyncio.run(shipper.ship()) == 0  # no table yet (the control plane is older)
    assert len(shipper.pending) == 2 and "events_table_missing" in stream.getvalue()
    with psycopg.connect(pg_env, autocommit=True) as conn:
        ensure_schema(conn, "postform")
    log.emit("delivered", queue_id="q1", recipient="a@x.test", took=float("nan"))  # not JSON
    log.emit("completed", queue_id="q1")
    assert asyncio.run(shipper.ship()) == 4  # what it said meanwhile waits for the next
    assert [r["event"] for r in shipper.pending] == ["events_refused", "events_back"]
    shipper.close()
    with psycopg.connect(pg_env) as conn:
        rows = conn.execute(
            "SELECT event, message_id, recipients FROM postform.relay_events ORDER BY id"
        ).fetchall()
    assert rows[0] == ("accepted", "<a\ufffdb@x>", ["a@x.test"])
    assert [r[0] for r in rows] == ["accepted", "events_table_missing", "completed"]


def test_a_read_only_server_keeps_the_records_waiting_not_refused(
    tmp_path: Path, pg_env: str
) -> None:
    """After a failover onto a standby, writes fail as read-only transactions: the
    records must wait, as in an outage, and ship once the server takes writes again."""
    import asyncio

    with psycopg.connect(pg_env, autocommit=True) as conn:
        ensure_schema(conn, "postform")
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    stream = io.StringIO()
    log = EventLog(stream=stream)
    shipper = EventShipper(TARGET, tmp_path, log)
    shipper.runtime.retry_after = 0.0  # try again at once after the failure
    log.emit("accepted", queue_id="ro1", rcpt_tos=["a@x.test"])
    with pytest.raises(DatabaseError, match="read-only"):
        asyncio.run(shipper.ship())
    assert [r["event"] for r in shipper.pending] == ["accepted"]  # kept, not refused
    assert "events_refused" not in stream.getvalue()
    with psycopg.connect(pg_env, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session may write
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = off')
    assert asyncio.run(shipper.ship()) >= 1
    shipper.close()
    with psycopg.connect(pg_env) as conn:
        rows = conn.execute("SELECT queue_id FROM postform.relay_events").fetchall()
    assert ("ro1",) in rows


@contextlib.contextmanager
def running(fleet: Fleet) -> Iterator[Fleet]:
    fleet.start()
    try:
        yield fleet
    finally:
        assert set(fleet.stop()) <= {0}


def send(fleet: Fleet, to: str, relay: int | None = None) -> str:
    """One message through the balancer (or one relay's proxy); its queue ID."""
    client = fleet.client(relay=relay)
    try:
        assert client.mail("noreply@example.com")[0] == 250
        assert client.rcpt(to)[0] == 250
        code, reply = client.data(message(to=to))
        assert code == 250, reply
        return queue_id_of(reply)
    finally:
        client.quit()


def data_of(relay: RelayProcess) -> Path:
    return relay.spool().parent.parent


def traced(relay: RelayProcess, query: str, *extra: str) -> dict[str, list[dict[str, object]]]:
    result = relay.postform("relay", "trace", query, "--json", *extra, check=False)
    assert result.returncode in (0, 2), result.stderr
    return {m["queue_id"]: m["events"] for m in json.loads(result.stdout)["messages"]}


def eventually(cond: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_trace_and_usage_on_one_relay_cover_the_fleet_and_an_outage_loses_nothing(
    tmp_path: Path, pg_env: str, pg_cluster
) -> None:
    require_tool(HAPROXY)
    fleet = Fleet(tmp_path, 2, fleet_config())
    first, second = fleet.relays
    with psycopg.connect(pg_env, autocommit=True) as conn:  # the apply made the table
        for age, qid in ((40, "ancient"), (20, "recent")):
            conn.execute(
                "INSERT INTO postform.relay_events (tenant, ts, relay_host, event, queue_id,"
                " record) VALUES ('production', now() - make_interval(days => %s), 'gone',"
                " 'accepted', %s, '{}')",
                (age, qid),
            )
    with running(fleet):
        sent: dict[str, str] = {}  # recipient: queue ID
        for n in range(10):  # through the balancer until both relays took a message
            sent[f"f{n}@example.org"] = send(fleet, f"f{n}@example.org")
            if all(r.events("accepted") for r in fleet.relays):
                break
        assert all(r.events("accepted") for r in fleet.relays), "the balancer used one relay"
        theirs = second.events("accepted")[0]["rcpt_tos"][0]
        eventually(lambda: traced(first, theirs), "relay1's message in relay0's trace")
        ((qid, events),) = traced(first, theirs).items()
        assert qid == sent[theirs] and events[0]["event"] == "accepted"
        assert events[0][RELAY_HOST] == relay_host(data_of(second))
        assert (
            f"relay={relay_host(data_of(second))}"
            in first.postform("relay", "trace", theirs).stdout
        )
        assert traced(first, theirs, "--local") == {}  # not in this host's files
        month = str(events[0]["ts"])[:7]
        usage = json.loads(first.postform("relay", "usage", "--json", "--month", month).stdout)
        assert usage["totals"]["messages"] == len(sent) == usage["totals"]["emails"]
        local = first.postform("relay", "usage", "--json", "--month", month, "--local").stdout
        assert json.loads(local)["totals"]["messages"] == len(first.events("accepted"))
        # The dashboard's data (and `relay report`) cover the fleet too; --local this host.
        report = json.loads(first.postform("relay", "report", "--json", "--since", "1h").stdout)
        assert report["scope"] == "every relay of the fleet"
        assert report["totals"]["accepted"] == len(sent) == report["usage"]["totals"]["emails"]
        mine = first.postform("relay", "report", "--json", "--since", "1h", "--local").stdout
        assert json.loads(mine)["totals"]["accepted"] == len(first.events("accepted")) < len(sent)
        eventually(lambda: _queue_ids(pg_env) == {"recent", *sent.values()}, "the prune")
        send(fleet, "lease@example.org", relay=1)  # relay1 leases tokens (kept for 5 s)
        seen = len(second.events())
        pg_cluster.stop()
        try:
            # Accepted on the tokens it holds, or 451 once they ran out (a slow stop on a
            # busy machine): either way relay1 writes events while the database is down.
            with contextlib.suppress(AssertionError):
                send(fleet, "outage@example.org", relay=1)
            second.wait_for(lambda: second.events("events_unavailable"), what="the outage")
        finally:
            pg_cluster.start()
        second.wait_for(lambda: second.events("events_back"), timeout=30, what="events_back")
        written = {
            (e["event"], e["ts"]) for e in second.events()[seen:] if e["event"] not in SKIPPED
        }
        assert ("events_unavailable", second.events("events_unavailable")[0]["ts"]) in written
        eventually(lambda: written <= _shipped(pg_env, relay_host(data_of(second))), "shipped")


SKIPPED = ("connect", "disconnect", "auth_ok")  # what the shipper leaves out


def _shipped(dsn: str, host: str) -> set[tuple[str, str]]:
    """(event, ts as the relay wrote it) of every row `host` shipped."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT event, record->>'ts' FROM postform.relay_events WHERE relay_host = %s",
            (host,),
        ).fetchall()
    return {(str(e), str(ts)) for e, ts in rows}


def _queue_ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT DISTINCT queue_id FROM postform.relay_events WHERE event = 'accepted'"
        ).fetchall()
    return {str(r[0]) for r in rows}
