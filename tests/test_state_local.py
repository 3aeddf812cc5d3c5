from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.errors import StaleStateError, StateError
from reconciler.state.local import LocalBackend, backup_path, policy_path
from reconciler.state.model import State

LIMITS = {"type": "limits", "name": None, "attributes": {}, "computed": {}}


def read_state(path: Path) -> State:
    return LocalBackend(path).read()


def write_state(path: Path, state: State) -> State:
    return LocalBackend(path).write(state)


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
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(backup_path(path).stat().st_mode) == 0o600
    assert json.loads(backup_path(path).read_text())["serial"] == 1
    assert read_state(path).serial == 2
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_write_based_on_a_stale_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, State(resources={"limits": LIMITS}))
    one, two = LocalBackend(path), LocalBackend(path)
    seen_by_one, seen_by_two = one.read(), two.read()
    one.write(replace(seen_by_one, dns={"first": True}))
    with pytest.raises(StaleStateError, match="serial 2.*based on serial 1"):
        two.write(replace(seen_by_two, dns={"second": True}))
    assert read_state(path).dns == {"first": True}
    assert read_state(path).serial == 2


def test_a_new_state_cannot_overwrite_one_written_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    late = LocalBackend(path)
    empty = late.read()
    write_state(path, State(resources={"limits": LIMITS}))
    with pytest.raises(StaleStateError):
        late.write(replace(empty, resources={}))


def test_a_state_of_another_lineage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, State())
    with pytest.raises(StaleStateError):
        write_state(path, replace(first, lineage="another-lineage"))


def test_history_lists_the_state_and_its_backup(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    backend = LocalBackend(path)
    assert backend.history() == []
    backend.write(backend.write(backend.read()))
    versions = backend.history()
    assert [v.serial for v in versions] == [2, 1]
    assert versions[1].where == str(backup_path(path))


def test_a_legacy_policy_in_the_state_is_dropped_on_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, State(resources={"limits": LIMITS}))
    data = json.loads(path.read_text())
    data["policy"] = {"domains": {"x": {"dkim": [{"private_key": "PRIVATE"}]}}}
    path.write_text(json.dumps(data))
    state = read_state(path)
    assert state.resources == first.resources
    write_state(path, state)
    assert "policy" not in json.loads(path.read_text())
    assert policy_path(path) == tmp_path / "state.policy.json"


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
    first = write_state(path, State(resources={"limits": LIMITS}))
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_state(path, replace(first, resources={"x": {"bad": object()}}))
    assert path.read_bytes() == before


def test_damaged_resource_is_reported_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, State(resources={"limits": LIMITS}))
    data = json.loads(path.read_text())
    data["resources"]["limits"] = {"type": "limits"}
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="resource limits lacks type, attributes or computed"):
        read_state(path)
