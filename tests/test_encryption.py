"""state.encryption: no private key readable at rest without the passphrase, in either
backend, their history, the published policy, a relay's cache or `state pull`; relays
with the passphrase sign; every missing or wrong passphrase is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BASE_CONFIG
from tests.relayproc import RELAY_CONFIG, RelayProcess, message

ENCRYPTION = "  encryption: {passphrase_env: POSTFORM_STATE_PASSPHRASE}\n"
LOCAL = "state:\n  path: state/state.json\n" + ENCRYPTION
POSTGRES = (
    "state:\n  backend: postgres\n  name: production\n  dsn_env: POSTFORM_PG_DSN\n" + ENCRYPTION
)


def config(folder: Path, state_block: str, base: str = BASE_CONFIG) -> Path:
    text = base.replace("state: {path: state/state.json}\n", state_block)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "postform.yaml").write_text(text)
    return folder


def private_key_in(*texts: str | bytes) -> bool:
    return any(b"PRIVATE KEY" in (t if isinstance(t, bytes) else t.encode()) for t in texts)


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", "correct horse battery staple")
    return "correct horse battery staple"


def test_local_files_their_backups_the_policy_and_pull_hold_no_private_key(
    tmp_path: Path, passphrase: str, cli
) -> None:
    folder = config(tmp_path, LOCAL)
    assert cli(folder, "apply", "--auto-approve").code == 0
    yaml = folder / "postform.yaml"
    yaml.write_text(yaml.read_text().replace("  - noreply@example.com\n", ""))
    assert cli(folder, "apply", "--auto-approve").code == 0  # a backup exists now
    state_dir = folder / "state"
    files = [state_dir / n for n in ("state.json", "state.json.backup", "state.policy.json")]
    assert all(f.exists() for f in files)
    assert not private_key_in(*(f.read_bytes() for f in files))
    assert not private_key_in(cli(folder, "state", "pull").out)
    stored = json.loads((state_dir / "state.json").read_text())
    assert stored["sealing"]["kdf"] == "scrypt"


def test_apply_without_the_passphrase_changes_nothing_when_it_makes_keys(
    tmp_path: Path, passphrase: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = config(tmp_path, LOCAL)
    assert cli(folder, "apply", "--auto-approve").code == 0
    before = (folder / "state" / "state.json").read_bytes()
    monkeypatch.delenv("POSTFORM_STATE_PASSPHRASE")
    yaml = folder / "postform.yaml"
    yaml.write_text(yaml.read_text().replace("credentials: [prod]", "credentials: [prod, ci]"))
    plan = cli(folder, "plan")
    assert plan.code == 0 and "POSTFORM_STATE_PASSPHRASE is not set here" in plan.out
    refused = cli(folder, "apply", "--auto-approve")
    assert (
        refused.code == 1
        and "set the environment variable POSTFORM_STATE_PASSPHRASE" in refused.err
    )
    assert (folder / "state" / "state.json").read_bytes() == before
    shown = cli(folder, "show")
    assert shown.code == 0 and "apply (when it makes DKIM keys or credentials)" in shown.err
    yaml.write_text(
        yaml.read_text().replace("credentials: [prod, ci]", "credentials: [prod]")
        + "  - another@example.com\n"
    )
    assert cli(folder, "apply", "--auto-approve").code == 0  # no new secret: no passphrase


def test_a_wrong_passphrase_is_a_clear_error(
    tmp_path: Path, passphrase: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = config(tmp_path, LOCAL)
    assert cli(folder, "apply", "--auto-approve").code == 0
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", "not the one")
    yaml = folder / "postform.yaml"
    yaml.write_text(yaml.read_text().replace("credentials: [prod]", "credentials: [prod, ci]"))
    result = cli(folder, "apply", "--auto-approve")
    assert result.code == 1 and "the passphrase does not open" in result.err
    assert "Traceback" not in result.err


def test_a_clear_state_is_encrypted_at_its_next_write(tmp_path: Path, passphrase: str, cli) -> None:
    folder = config(tmp_path, "state: {path: state/state.json}\n")
    assert cli(folder, "apply", "--auto-approve").code == 0
    assert private_key_in((folder / "state" / "state.json").read_bytes())
    config(tmp_path, LOCAL)
    result = cli(folder, "apply", "--auto-approve")
    assert result.code == 0 and "Encrypted the secrets" in result.out
    for name in ("state.json", "state.json.backup", "state.policy.json"):
        assert not private_key_in((folder / "state" / name).read_bytes()), name


def test_rekey_seals_under_the_new_passphrase(
    tmp_path: Path, passphrase: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay.contract.sealing import Sealer, SealingError

    folder = config(tmp_path, LOCAL)
    assert cli(folder, "apply", "--auto-approve").code == 0
    monkeypatch.setenv("NEW_PASSPHRASE", "a brand new one")
    result = cli(folder, "state", "rekey", "--new-passphrase-env", "NEW_PASSPHRASE")
    assert result.code == 0, result.err
    header = json.loads((folder / "state" / "state.json").read_text())["sealing"]
    Sealer.from_header(header, b"a brand new one", "the state")
    with pytest.raises(SealingError):
        Sealer.from_header(header, passphrase.encode(), "the state")
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", "a brand new one")
    assert cli(folder, "plan", "--detailed-exitcode").code == 0


def test_postgres_dump_pull_and_the_relay_cache_hold_no_private_key(
    tmp_path: Path, passphrase: str, pg_dsn: str, pg_cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    text = RELAY_CONFIG.format(per_minute=18000, per_day=50000, max_bytes=2097152)
    relay = RelayProcess(
        tmp_path / "relay", config=text.replace("state: {path: state/state.json}\n", POSTGRES)
    )
    relay.start()
    try:
        client = relay.smtp()
        assert client.sendmail("noreply@example.com", ["a@example.org"], message()) == {}
        client.quit()
        relay.wait_for(lambda: relay.events("accepted"), what="accepted")
        signed = [e for e in relay.events("accepted") if e["sender"] == "noreply@example.com"]
        assert signed and signed[-1]["dkim"] == "example.com/ed"  # it opened the key to sign
    finally:
        assert relay.stop() == 0
    dbname = pg_dsn.split("dbname=")[1].split()[0]
    assert not private_key_in(pg_cluster.dump(dbname))
    assert not private_key_in(relay.postform("state", "pull").stdout)
    cache = relay.folder / ".postform" / "production.policy.cache.json"
    assert cache.exists() and not private_key_in(cache.read_bytes())


def test_a_relay_without_the_passphrase_says_so(
    tmp_path: Path, passphrase: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = RELAY_CONFIG.format(per_minute=18000, per_day=50000, max_bytes=2097152)
    relay = RelayProcess(
        tmp_path / "relay", config=text.replace("state: {path: state/state.json}\n", LOCAL)
    )
    monkeypatch.delenv("POSTFORM_STATE_PASSPHRASE")
    result = relay.postform("relay", "serve", "--listen", "127.0.0.1:1/starttls", check=False)
    assert result.returncode == 1 and "this relay has no passphrase" in result.stderr
    assert "Traceback" not in result.stderr
