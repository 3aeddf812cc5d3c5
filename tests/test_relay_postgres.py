"""Relays on other hosts follow a PostgreSQL state: every apply is enforced within 2 s,
and a relay keeps serving (from its cached policy) while PostgreSQL is down."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import run_binary
from tests.relayproc import RELAY_CONFIG, RelayProcess, message

PG_STATE = "state: {{backend: postgres, name: production, dsn_env: POSTFORM_PG_DSN}}\n"
CONFIG = RELAY_CONFIG.replace("state: {{path: state/state.json}}\n", PG_STATE).format(
    per_minute=18000, per_day=50000, max_bytes=2097152
)


@pytest.fixture
def ci(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CI runner's checkout: the same config, applying to the same database."""
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    folder = tmp_path / "ci"
    folder.mkdir()
    (folder / "postform.yaml").write_text(CONFIG)
    return folder


def apply_without(ci: Path, sender: str) -> float:
    """Apply a config without `sender`; when the apply had finished (epoch seconds)."""
    config = ci / "postform.yaml"
    config.write_text(config.read_text().replace(f"  - {sender}\n", ""))
    result = run_binary(ci, "apply", "--auto-approve")
    assert result.code == 0, result.err
    return time.time()


def reloaded_to(relay: RelayProcess, serial: int) -> bool:
    return any(e.get("serial") == serial for e in relay.events("policy_reloaded"))


def test_a_relay_with_only_backend_settings_enforces_an_apply_made_elsewhere(
    tmp_path: Path, ci: Path
) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        assert not list((tmp_path / "relay").rglob("state.json"))  # no state on the host
        client = relay.smtp()
        assert client.mail("alerts@rsa.example")[0] == 250
        client.rset()
        applied = apply_without(ci, "alerts@rsa.example")
        relay.wait_for(lambda: reloaded_to(relay, 2), timeout=5, what="reload to serial 2")
        (event,) = [e for e in relay.events("policy_reloaded") if e["serial"] == 2]
        assert datetime.fromisoformat(event["ts"]).timestamp() - applied < 2.0
        code, _ = client.mail("alerts@rsa.example")
        assert code == 550
        client.quit()
        status = json.loads(relay.postform("relay", "status", "--json").stdout)
        assert status["policy_serial"] == 2 and status["policy_age_seconds"] < 60
        assert "postgres state" in status["policy_source"]
    finally:
        assert relay.stop() == 0


def test_a_relay_restarts_from_its_cached_policy_while_postgres_is_down_and_catches_up(
    tmp_path: Path, ci: Path, pg_cluster
) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    assert relay.stop() == 0
    cache = tmp_path / "relay" / ".postform" / "production.policy.cache.json"
    assert cache.exists() and cache.stat().st_mode & 0o777 == 0o600
    pg_cluster.stop()
    try:
        relay.start()
        assert relay.events("policy_cached")  # said why, and serves
        client = relay.smtp()
        assert client.sendmail("alerts@rsa.example", ["a@example.org"], message()) == {}
        client.quit()
    finally:
        pg_cluster.start()
    apply_without(ci, "alerts@rsa.example")
    relay.wait_for(lambda: reloaded_to(relay, 2), timeout=20, what="catch up after the outage")
    assert relay.events("policy_source_back")
    client = relay.smtp()
    assert client.mail("alerts@rsa.example")[0] == 550
    client.quit()
    assert relay.stop() == 0


def test_status_names_the_policy_a_relay_enforces(tmp_path: Path, ci: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        shown = relay.postform("relay", "status").stdout
        assert "policy enforced" in shown and "serial 1.0" in shown
    finally:
        relay.stop()
    assert shutil.which("psql")


def test_a_changed_relay_store_is_reported_as_needing_a_restart(tmp_path: Path, ci: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        config = ci / "postform.yaml"
        config.write_text(
            config.read_text().replace("  ipv4:", "  store: {backend: postgres}\n  ipv4:")
        )
        assert run_binary(ci, "apply", "--auto-approve").code == 0
        relay.wait_for(lambda: relay.events("restart_needed"), what="restart_needed")
        (event,) = relay.events("restart_needed")
        assert (event["setting"], event["running"], event["applied"]) == (
            "relay.store", "embedded", "postgres",
        )  # fmt: skip
    finally:
        assert relay.stop() == 0
