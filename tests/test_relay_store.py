"""The embedded relay store: one case-insensitive suppression list, counters, migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from relay.store.sqlite import DB_FILE, SCHEMA_VERSION, EmbeddedStore, learned_count


def test_suppressions_are_one_entry_whatever_the_case(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    sup = store.suppressions
    assert sup.add("Bob@Example.org", "MANUAL", note="asked")
    assert not sup.add("bob@example.org", "COMPLAINT")
    assert sup.reason("BOB@EXAMPLE.ORG") == "MANUAL"
    assert [s.address for s in sup.list()] == ["Bob@Example.org"]
    removed = sup.remove("bob@example.ORG", "fixed")
    assert removed is not None and removed.address == "Bob@Example.org"
    assert sup.count() == 0 and sup.reason("Bob@Example.org") is None
    store.close()


def test_rcpt_lookups_use_the_index(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    plan = store.db.execute(
        "EXPLAIN QUERY PLAN SELECT reason FROM suppressions WHERE key = ?", ("a@b",)
    ).fetchall()
    assert "USING INDEX" in str(plan) or "PRIMARY KEY" in str(plan)
    store.close()


def test_four_soft_bounces_suppress_and_a_delivery_resets(tmp_path: Path) -> None:
    sup = EmbeddedStore(tmp_path).suppressions
    for n in (1, 2, 3):
        assert sup.soft_bounce("Soft@example.org", "451", f"q{n}") == (n, False)
    sup.delivered("soft@EXAMPLE.org")
    assert sup.soft_count("soft@example.org") == 0
    for n in (1, 2, 3):
        sup.soft_bounce("soft@example.org", "451", f"r{n}")
    assert sup.soft_bounce("SOFT@example.org", "451", "r4") == (4, True)
    assert sup.reason("soft@example.org") == "SOFTBOUNCE"


def test_a_file_of_postform_0_1_is_migrated_merging_case_duplicates(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_FILE)
    db.executescript(
        """
        CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL,
            created REAL NOT NULL, reply TEXT, queue_id TEXT, note TEXT);
        CREATE TABLE soft_bounces (address TEXT PRIMARY KEY, count INTEGER NOT NULL,
            updated REAL NOT NULL);
        CREATE TABLE suppression_audit (time REAL NOT NULL, action TEXT NOT NULL,
            address TEXT NOT NULL, reason TEXT, note TEXT);
        CREATE TABLE daily_recipients (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
        INSERT INTO suppressions VALUES ('bob@x.example', 'COMPLAINT', 2, NULL, NULL, NULL);
        INSERT INTO suppressions VALUES ('Bob@x.example', 'HARDBOUNCE', 1, '550', 'q', NULL);
        INSERT INTO soft_bounces VALUES ('Ann@x.example', 2, 5), ('ann@x.example', 1, 7);
        INSERT INTO daily_recipients VALUES ('2026-11-29', 12);
        """
    )
    db.commit()
    db.close()
    store = EmbeddedStore(tmp_path)
    assert [(s.address, s.reason) for s in store.suppressions.list()] == [
        ("Bob@x.example", "HARDBOUNCE")  # the earliest entry wins
    ]
    assert store.suppressions.soft_count("ANN@x.example") == 3
    assert store.counters.day_count("2026-11-29") == 12
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
    assert learned_count(tmp_path) == 1


def test_a_store_from_a_newer_postform_is_refused(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_FILE)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="upgrade postform"):
        EmbeddedStore(tmp_path)


def test_counters_add_across_writers(tmp_path: Path) -> None:
    one, two = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    assert one.counters.add_day("2026-11-29", 3) == 3
    assert two.counters.add_day("2026-11-29", 4) == 7
    two.counters.save_bucket("messages/0/1", 1.5, 99.0)
    assert one.counters.load_bucket("messages/0/1") == (1.5, 99.0)
    one.close()
    two.close()
