"""Memory: a message's cost is proportional to its size whatever its line structure,
and is given back when the transaction ends (issue #11, attack 1: 2 MB of empty lines
per session grew the relay by ~86 MB each, 10 sessions to 989 MB, never given back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.abuse.harness import RSS_LIMIT_MB, LegitClient, RssSampler, attack
from tests.relayproc import RelayProcess

SESSIONS = 10


@pytest.fixture
def relay(tmp_path: Path):
    relay = RelayProcess(tmp_path / "relay").start()
    yield relay
    relay.stop()


def test_ten_sessions_of_blank_lines_stay_within_bounds(relay: RelayProcess) -> None:
    with RssSampler(relay) as rss, LegitClient(relay) as legit:
        seen = attack(relay, "blank-lines", SESSIONS)
    print(f"RSS {rss.start_mb:.0f} -> peak {rss.peak_mb:.0f} -> {rss.end_mb:.0f} MB; {seen}")
    assert seen["codes"] == [250] * SESSIONS  # accepted: within the limit, just odd
    assert seen["seconds"] < 15  # was ~18 s of event loop for ten such messages
    legit.check()
    assert rss.peak_mb < RSS_LIMIT_MB
    assert rss.peak_mb - rss.start_mb < SESSIONS * 2 * 6  # a few copies of each 2 MB
    assert rss.end_mb - rss.start_mb < 40  # given back when the transactions end
