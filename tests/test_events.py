"""The relay's event log: one JSON line per event, rotated by size, read back in order."""

from __future__ import annotations

import io
import json
from pathlib import Path

from relay.events import EventLog, event_files


def test_lines_rotate_and_read_back_oldest_first(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = EventLog(stream=stream, path=tmp_path / "events.jsonl", max_bytes=300, keep=3)
    for i in range(20):
        log.emit("delivered", n=i)
    files = event_files(tmp_path, keep=3)
    assert [p.name for p in files] == [
        "events.jsonl.3",
        "events.jsonl.2",
        "events.jsonl.1",
        "events.jsonl",
    ]
    numbers = [json.loads(line)["n"] for p in files for line in p.read_text().splitlines()]
    assert numbers == sorted(numbers) and numbers[-1] == 19
    assert len(stream.getvalue().splitlines()) == 20
    assert all(p.stat().st_size <= 300 for p in files)
    assert (tmp_path / "events.jsonl").stat().st_mode & 0o777 == 0o600


def test_relay_events_since_filters_by_time(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    folder = project / "state" / "relay"
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text(
        '{"ts":"2020-01-01T00:00:00.000+00:00","event":"old"}\n'
        '{"ts":"2999-01-01T00:00:00.000+00:00","event":"new"}\n'
    )
    result = cli(project, "relay", "events", "--since", "1h")
    assert result.code == 0 and '"new"' in result.out and '"old"' not in result.out
    everything = cli(project, "relay", "events")
    assert '"old"' in everything.out
    bad = cli(project, "relay", "events", "--since", "yesterday")
    assert bad.code == 1 and "expected an ISO time" in bad.err
