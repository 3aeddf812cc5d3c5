"""The postgres state backend against a real PostgreSQL server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.errors import StaleStateError
from reconciler.state.open import open_backend
from tests.conftest import BASE_CONFIG, postform_binary, run_binary

PG_STATE = "state: {backend: postgres, name: production, dsn_env: POSTFORM_PG_DSN, history: 50}\n"


def pg_config(folder: Path, extra_senders: tuple[str, ...] = ()) -> Path:
    text = BASE_CONFIG.replace("state: {path: state/state.json}\n", PG_STATE)
    for sender in extra_senders:
        text = text.replace("  - billing@example.com\n", f"  - billing@example.com\n  - {sender}\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "postform.yaml").write_text(text)
    return folder / "postform.yaml"


@pytest.fixture
def env(pg_dsn, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    return pg_dsn


def backend(folder: Path):
    return open_backend(load_config(folder / "postform.yaml"))


def test_plan_apply_plan_on_postgres(tmp_path: Path, env, cli) -> None:
    pg_config(tmp_path)
    first = cli(tmp_path, "plan")
    assert (
        first.code == 0
        and 'New state: nothing has been applied to the postgres state "production"' in first.out
    )
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    again = cli(tmp_path, "plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out and "New state" not in again.out
    assert not (tmp_path / ".postform" / "state.json").exists()  # nothing local
    state = backend(tmp_path).read()
    assert state.serial == 1 and 'credential["app/prod"]' in state.resources
    published = backend(tmp_path).published()
    assert (
        published is not None
        and published["serial"] == 1
        and "noreply@example.com" in published["senders"]
    )
    history = cli(tmp_path, "state", "history")
    assert history.code == 0 and "serial 1.0" in history.out


def test_a_write_based_on_a_stale_read_is_refused(tmp_path: Path, env, cli) -> None:
    pg_config(tmp_path)
    cli(tmp_path, "apply", "--auto-approve")
    one, two = backend(tmp_path), backend(tmp_path)
    seen_one, seen_two = one.read(), two.read()
    one.write(replace(seen_one, dns={"by": "one"}))
    with pytest.raises(StaleStateError, match="serial 2.*based on serial 1"):
        two.write(replace(seen_two, dns={"by": "two"}))
    assert backend(tmp_path).read().dns == {"by": "one"}


def test_a_lost_state_is_not_silently_rebuilt(tmp_path: Path, env, cli, pg_cluster) -> None:
    pg_config(tmp_path)
    cli(tmp_path, "apply", "--auto-approve")
    dbname = env.split("dbname=")[1].split()[0]
    pg_cluster.sql("DELETE FROM postform.states", dbname)
    result = cli(tmp_path, "plan")
    assert result.code == 1
    assert "holds no state, but it held one before" in result.err and "state push" in result.err


def test_a_lost_local_state_with_its_backup_is_not_silently_rebuilt(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    cli(project, "suppressions", "list")
    (project / "postform.yaml").write_text(
        (project / "postform.yaml").read_text().replace("  - noreply@example.com\n", "")
    )
    cli(project, "apply", "--auto-approve")  # a second write leaves a .backup
    (project / "state" / "state.json").unlink()
    result = cli(project, "plan")
    assert result.code == 1 and "from its .backup" in result.err


def test_local_to_postgres_and_back_keeps_lineage_and_serial(
    tmp_path: Path, env, cli, project: Path
) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    local = backend(project).read()
    pulled = tmp_path / "pulled.json"
    pulled.write_bytes(cli(project, "state", "pull").out.encode())
    pg_config(tmp_path / "pg")
    pushed = cli(tmp_path / "pg", "state", "push", str(pulled))
    assert pushed.code == 0 and f"serial {local.serial}" in pushed.out
    remote = backend(tmp_path / "pg").read()
    assert (remote.lineage, remote.serial, remote.resources) == (
        local.lineage,
        local.serial,
        local.resources,
    )
    assert cli(tmp_path / "pg", "plan", "--detailed-exitcode").code == 0
    back = tmp_path / "back.json"
    back.write_bytes(cli(tmp_path / "pg", "state", "pull").out.encode())
    (project / "state" / "state.json").unlink()
    (project / "state" / "state.json.backup").unlink(missing_ok=True)
    assert cli(project, "state", "push", str(back)).code == 0
    assert backend(project).read().lineage == local.lineage
    assert cli(project, "plan", "--detailed-exitcode").code == 0


def test_push_refuses_another_lineage_or_an_older_serial(tmp_path: Path, env, cli) -> None:
    pg_config(tmp_path)
    cli(tmp_path, "apply", "--auto-approve")
    doc = json.loads(cli(tmp_path, "state", "pull").out)
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**doc, "serial": 0}))
    refused = cli(tmp_path, "state", "push", str(older))
    assert refused.code == 1 and "older than" in refused.err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**doc, "lineage": "another"}))
    refused = cli(tmp_path, "state", "push", str(other))
    assert refused.code == 1 and "another state" in refused.err
    assert cli(tmp_path, "state", "push", str(other), "--force").code == 0
    assert backend(tmp_path).read().lineage == "another"


def start_waiting_apply(folder: Path, env_dsn: str) -> subprocess.Popen[str]:
    """An apply that holds the lock while it waits for 'yes' on its stdin."""
    proc = subprocess.Popen(
        [postform_binary(), "apply"],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "POSTFORM_PG_DSN": env_dsn},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = ""
    while "Enter a value" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.read(1)
    assert "Enter a value" in seen, seen
    return proc


def test_a_killed_apply_releases_the_lock(tmp_path: Path, env) -> None:
    pg_config(tmp_path)
    proc = start_waiting_apply(tmp_path, env)
    blocked = run_binary(tmp_path, "apply", "--auto-approve")
    assert blocked.code == 1 and "the state is locked" in blocked.err and "(pid" in blocked.err
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    after = run_binary(tmp_path, "apply", "--auto-approve", "--lock-timeout", "10")
    assert after.code == 0, after.err


def test_force_unlock_ends_the_session_of_a_hung_holder(tmp_path: Path, env) -> None:
    pg_config(tmp_path)
    proc = start_waiting_apply(tmp_path, env)
    blocked = run_binary(tmp_path, "apply", "--auto-approve")
    lock_id = blocked.err.split("lock ID ")[1].split(".")[0]
    released = run_binary(tmp_path, "force-unlock", lock_id)
    assert released.code == 0 and "still running" in released.out
    assert run_binary(tmp_path, "apply", "--auto-approve").code == 0
    _, err = proc.communicate("yes\n", timeout=30)
    assert proc.returncode == 1 and "Traceback" not in err  # its session was ended


def test_twenty_concurrent_applies_never_corrupt_or_lose_a_serial(tmp_path: Path, env) -> None:
    procs = []
    for i in range(20):
        folder = tmp_path / f"runner{i}"
        pg_config(folder, extra_senders=(f"s{i}@example.com",))
        wait = "0" if i % 2 else "30"  # half fail fast, half queue for the lock
        procs.append(
            subprocess.Popen(
                [postform_binary(), "apply", "--auto-approve", "--lock-timeout", wait],
                cwd=folder,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = {"applied": 0, "locked": 0}
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            outcomes["applied"] += 1
        else:
            assert "the state is locked" in err and "held by" in err, err
            outcomes["locked"] += 1
    assert outcomes["applied"] >= 10 and sum(outcomes.values()) == 20
    serials = sorted(v.serial for v in backend(tmp_path / "runner0").history())
    assert serials == list(range(1, outcomes["applied"] + 1))  # no gap, no duplicate
    final = backend(tmp_path / "runner0").read()
    assert final.serial == outcomes["applied"]
    print(f"concurrent applies: {outcomes}")


def test_a_password_in_the_yaml_is_a_located_error(tmp_path: Path, cli) -> None:
    (tmp_path / "postform.yaml").write_text(
        "version: 1\nstate:\n  backend: postgres\n  name: prod\n  password: hunter2\n"
    )
    result = cli(tmp_path, "validate")
    assert result.code == 1
    assert "postform.yaml:5:3: state.password: a password never goes in the config" in result.err


def test_a_missing_dsn_variable_or_a_dead_server_is_a_clear_bounded_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    pg_config(tmp_path)
    monkeypatch.delenv("POSTFORM_PG_DSN", raising=False)
    missing = cli(tmp_path, "plan")
    assert missing.code == 1 and "POSTFORM_PG_DSN" in missing.err and "not set" in missing.err
    monkeypatch.setenv("POSTFORM_PG_DSN", "host=127.0.0.1 port=1 dbname=x user=x")
    started = time.monotonic()
    dead = cli(tmp_path, "plan")
    assert dead.code == 1 and "cannot connect to the database in $POSTFORM_PG_DSN" in dead.err
    assert time.monotonic() - started < 15 and "Traceback" not in dead.err
    assert sys.executable  # the in-process CLI ran


def test_the_connection_can_come_from_libpq_variables_alone(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    parts = dict(item.split("=", 1) for item in pg_dsn.split())
    for key, variable in (("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE")):
        monkeypatch.setenv(variable, parts[key])
    monkeypatch.setenv("PGUSER", parts["user"])
    monkeypatch.delenv("POSTFORM_PG_DSN", raising=False)
    config = pg_config(tmp_path)
    config.write_text(config.read_text().replace(", dsn_env: POSTFORM_PG_DSN", ""))
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    again = cli(tmp_path, "plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out
