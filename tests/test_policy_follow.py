"""A relay follows the published policy: it refuses a document it does not understand,
says why, and keeps enforcing the last one it did."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from relay.contract.policy import POLICY_VERSION
from tests.relayproc import RelayProcess, message, postform_cmd


def policy_file(relay: RelayProcess) -> Path:
    return relay.folder / "state" / "state.policy.json"


def publish(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_name(".edit.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


@pytest.fixture
def relay(tmp_path: Path):
    proc = RelayProcess(tmp_path / "relay").start()
    yield proc
    if proc.proc is not None:
        proc.stop()


def test_a_newer_policy_is_refused_and_the_last_good_one_keeps_serving(relay) -> None:
    path = policy_file(relay)
    doc = json.loads(path.read_text())
    doc.update(version=POLICY_VERSION + 1, serial=doc["serial"] + 1, senders=[])
    publish(path, doc)
    relay.wait_for(lambda: relay.events("policy_error"), what="policy_error")
    (error,) = relay.events("policy_error")
    assert "newer than this postform reads" in error["error"] and error["kept_serial"] == 1
    client = relay.smtp()
    assert client.sendmail("noreply@example.com", ["a@example.org"], message()) == {}
    client.quit()
    assert not relay.events("policy_reloaded")
    config = relay.folder / "postform.yaml"  # the next good policy is taken
    config.write_text(config.read_text().replace("  - plain@unsigned.example\n", ""))
    relay.apply()
    relay.wait_for(lambda: relay.events("policy_reloaded"), what="reload")
    assert relay.events("policy_reloaded")[-1]["serial"] == 2


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: d.update(version=POLICY_VERSION + 1), "newer than this postform reads"),
        (
            lambda d: d["domains"]["example.com"]["dkim"][0].pop("private_key"),
            "missing field 'private_key'",
        ),
        (lambda d: d.update(users="everyone"), "users is str"),
    ],
)
def test_serve_on_an_unusable_policy_says_what_is_wrong(tmp_path: Path, damage, expected) -> None:
    relay = RelayProcess(tmp_path / "relay")
    doc = json.loads(policy_file(relay).read_text())
    damage(doc)
    publish(policy_file(relay), doc)
    result = relay.postform("relay", "serve", "--listen", "127.0.0.1:1/starttls", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert postform_cmd()  # the binary ran, not an import in this process
