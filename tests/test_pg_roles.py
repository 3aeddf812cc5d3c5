"""The database roles the README documents (examples/postgres/roles.sql): CI applies as
postform_ci; pull requests plan as postform_plan, which cannot write; a relay serves as
postform_relay, which can read the published policy and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.relayproc import RELAY_CONFIG, RelayProcess, message

ROLES = Path(__file__).resolve().parent.parent / "examples" / "postgres" / "roles.sql"
STATE = (
    "state: {{backend: postgres, name: production, dsn_env: POSTFORM_PG_DSN, "
    "relay_role: postform_relay}}\n"
)


def rcpt_code(relay: RelayProcess, address: str) -> int:
    client = relay.smtp()
    client.mail("noreply@example.com")
    code = client.rcpt(address)[0]
    client.quit()
    return code


@pytest.mark.parametrize("store", ["embedded", "postgres"])
def test_ci_and_relay_roles_can_do_their_jobs_and_no_more(
    tmp_path: Path, pg_cluster, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    dbname = pg_dsn.split("dbname=")[1].split()[0]
    pg_cluster.run_file(ROLES, dbname, db=dbname)
    ci_dsn = pg_cluster.dsn(dbname, user="postform_ci")
    relay_dsn = pg_cluster.dsn(dbname, user="postform_relay")
    monkeypatch.setenv("POSTFORM_PG_DSN", ci_dsn)
    config = RELAY_CONFIG.replace("state: {{path: state/state.json}}\n", STATE).format(
        per_minute=18000, per_day=50000, max_bytes=2097152
    )
    config = config.replace("  ipv4:", f"  store: {{backend: {store}}}\n  ipv4:")
    relay = RelayProcess(tmp_path / "relay", config=config)  # applies as postform_ci
    monkeypatch.setenv("POSTFORM_PG_DSN", relay_dsn)
    relay.start()
    try:
        client = relay.smtp()
        assert client.sendmail("noreply@example.com", ["a@example.org"], message()) == {}
        client.quit()
        # the shared store's tables are the relay role's to use (suppressions, limits)
        relay.postform("suppressions", "add", "gone@example.org")
        relay.wait_for(lambda: rcpt_code(relay, "gone@example.org") == 550, what="refused")
        assert not relay.events("store_unavailable")
    finally:
        assert relay.stop() == 0
    shipped = pg_cluster.sql(
        "SELECT count(*) FROM postform.relay_events WHERE event = 'accepted'", dbname
    ).strip()  # the fleet's event table: the relay role writes it (a lone relay does not)
    assert shipped == ("1" if store == "postgres" else "0")
    if store == "postgres":
        used = pg_cluster.sql("SELECT sum(used) FROM postform.relay_daily", dbname).strip()
        assert used == "1"  # the one accepted recipient; the unused lease came back
    for table in ("states", "state_versions", "locks"):
        denied = subprocess.run(
            ["psql", "-X", "-At", "-d", relay_dsn, "-c", f"SELECT count(*) FROM postform.{table}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert denied.returncode != 0 and "permission denied" in denied.stderr, table
    refused = relay.postform("plan", check=False)  # the relay's role cannot run the control plane
    assert refused.returncode == 1 and "permission denied" in refused.stderr
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_cluster.dsn(dbname, user="postform_plan"))
    planned = relay.postform("plan", "--detailed-exitcode", check=False)  # a pull request's job
    assert planned.returncode == 0 and "No changes." in planned.stdout, planned.stderr
    config_file = relay.folder / "postform.yaml"
    config_file.write_text(config_file.read_text().replace("  - plain@unsigned.example\n", ""))
    assert relay.postform("plan", "--detailed-exitcode", check=False).returncode == 2
    write = relay.postform("apply", "--auto-approve", check=False)
    assert write.returncode == 1 and "permission denied" in write.stderr
