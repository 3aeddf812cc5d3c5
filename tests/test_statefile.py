from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.statefile import State, backup_path, read_state, write_state

LIMITS = {"type": "limits", "name": None, "attributes": {}, "computed": {}}


def test_missing_state_is_empty(tmp_path: Path) -> None:
    state = read_state(tmp_path / "state.json")
    assert (state.lineage, state.serial, state.resources) == (None, 0, {})


def test_write_sets_lineage_increments_serial_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    first = write_state(path, State(resources={"limits": LIMITS}))
    second = write_state(path, first)
    assert first.serial == 1 and second.serial == 2
    assert first.lineage == second.lineage and len(first.lineage or "") == 36
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup_path(path).stat().st_mode) == 0o600
    assert json.loads(backup_path(path).read_text())["serial"] == 1
    assert read_state(path).serial == 2
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("content", [b"", b'{"format": "postform-state", "ser', b"[1, 2]"])
def test_corrupt_or_truncated_state_is_reported_and_never_overwritten(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError) as info:
        read_state(path)
    assert str(path) in str(info.value)
    assert "will not overwrite" in str(info.value)
    assert path.read_bytes() == content


def test_corrupt_state_message_points_at_the_backup(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, write_state(path, State()))
    path.write_text("{garbage")
    with pytest.raises(StateError, match=r"previous state is in .*state\.json\.backup"):
        read_state(path)


def test_newer_state_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, State())
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="version 99"):
        read_state(path)


def test_failed_write_leaves_previous_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, State(resources={"limits": LIMITS}))
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_state(path, State(resources={"x": {"bad": object()}}))
    assert path.read_bytes() == before


def test_damaged_resource_is_reported_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, State(resources={"limits": LIMITS}))
    data = json.loads(path.read_text())
    data["resources"]["limits"] = {"type": "limits"}
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="resource limits lacks type, attributes or computed"):
        read_state(path)
