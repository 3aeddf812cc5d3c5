"""A hand-edited state with a wrong resource type or counter is refused with one clear
line naming the file and what is wrong: never a traceback, never written over."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.state.local import LocalBackend
from reconciler.state.postgres import PostgresBackend
from reconciler.state.settings import StateSettings
from reconciler.state.statefile import decode_state, peek_header
from tests.conftest import Result

STATE = Path("state") / "state.json"
Damage = Callable[[dict[str, Any]], None]


def damaged(project: Path, cli: Callable[..., Result], damage: Damage) -> tuple[Path, bytes]:
    """Apply the project, then edit its state file by hand with `damage`."""
    assert cli(project, "apply", "--auto-approve").code == 0
    path = project / STATE
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    return path.resolve(), path.read_bytes()


def refused(project: Path, cli: Callable[..., Result], *args: str) -> str:
    result = cli(project, *args)
    assert result.code == 1, result.out
    assert "Traceback" not in result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: state "), result.err
    return lines[0]


def set_type(value: object) -> Damage:
    return lambda data: data["resources"]["limits"].__setitem__("type", value)


def set_serial(value: object) -> Damage:
    return lambda data: data.__setitem__("serial", value)


@pytest.mark.parametrize(
    "command",
    [["show"], ["state", "list"], ["show", "--json"], ["plan"], ["apply", "--auto-approve"]],
)
def test_unknown_resource_type_is_an_error_not_a_traceback_and_nothing_is_written(
    project: Path, cli: Callable[..., Result], command: list[str]
) -> None:
    path, before = damaged(project, cli, set_type("bogus"))
    line = refused(project, cli, *command)
    assert f'state {path}: resource "limits" has unknown type "bogus"' in line
    assert (project / STATE).read_bytes() == before


def test_missing_type_names_the_resource(project: Path, cli: Callable[..., Result]) -> None:
    path, before = damaged(project, cli, lambda data: data["resources"]["limits"].pop("type"))
    for command in (["show"], ["state", "list"], ["plan"]):
        line = refused(project, cli, *command)
        assert f'state {path}: resource "limits" has no type' in line
    assert (project / STATE).read_bytes() == before


def test_missing_name_is_an_error_not_a_traceback(
    project: Path, cli: Callable[..., Result]
) -> None:
    path, _ = damaged(project, cli, lambda data: data["resources"]["limits"].pop("name"))
    for command in (["show"], ["apply", "--auto-approve"]):
        assert f'state {path}: resource "limits" has no valid name' in refused(
            project, cli, *command
        )


@pytest.mark.parametrize(
    ("serial", "shown"), [(True, "true"), (-5, "-5"), ("3", '"3"'), (1.5, "1.5")]
)
def test_a_serial_that_is_not_a_whole_number_is_refused(
    project: Path, cli: Callable[..., Result], serial: object, shown: str
) -> None:
    path, before = damaged(project, cli, set_serial(serial))
    for command in (["show"], ["state", "list"], ["apply", "--auto-approve"]):
        line = refused(project, cli, *command)
        assert f"state {path}: serial must be a whole number >= 0, not {shown}" in line
    assert (project / STATE).read_bytes() == before


def test_revision_and_lineage_are_checked_too(project: Path, cli: Callable[..., Result]) -> None:
    path, _ = damaged(project, cli, lambda data: data.__setitem__("revision", False))
    assert "revision must be a whole number >= 0, not false" in refused(project, cli, "plan")
    path.write_text(path.read_text().replace('"revision": false', '"revision": 0'))
    lineage = json.loads(path.read_text())
    lineage["lineage"] = 7
    path.write_text(json.dumps(lineage))
    assert f"state {path}: lineage must be a string, not 7" in refused(project, cli, "plan")


def test_a_bad_serial_is_no_header_for_history_or_a_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    backend = LocalBackend(path)
    backend.write(backend.read())
    data = json.loads(path.read_text())
    data["serial"] = True
    raw = json.dumps(data).encode()
    assert peek_header(raw) is None
    with pytest.raises(StateError, match="serial must be a whole number >= 0, not true"):
        decode_state(raw, path, "")


def test_the_postgres_backend_decodes_through_the_same_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Postgres reads its stored document with decode_state: one set of checks."""
    data = {"format": "postform-state", "version": 1, "serial": -5, "lineage": "x", "resources": {}}
    row = (json.dumps(data).encode(),)
    settings = StateSettings("postgres", Path("unused"), Path("unused"), name="prod")
    backend = PostgresBackend(settings)
    monkeypatch.setattr(backend, "_guard", lambda work: row)
    with pytest.raises(StateError, match="state postgres:prod: serial must be a whole number"):
        backend.read()
