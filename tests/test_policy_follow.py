"""A relay follows the published policy: it refuses a document it does not understand,
says why, and keeps enforcing the last one it did."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest

from relay.contract.policy import POLICY_VERSION
from relay.contract.policycodec import decode_policy, encode_policy
from tests.relayproc import RelayProcess, message, postform_cmd


def policy_file(relay: RelayProcess) -> Path:
    return relay.folder / "state" / "state.policy.json"


def publish(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_name(".edit.tmp")
    tmp.write_bytes(encode_policy(doc))
    os.replace(tmp, path)


@pytest.fixture
def relay(tmp_path: Path):
    proc = RelayProcess(tmp_path / "relay").start()
    yield proc
    if proc.proc is not None:
        proc.stop()


def test_a_newer_policy_is_refused_and_the_last_good_one_keeps_serving(relay) -> None:
    path = policy_file(relay)
    doc = decode_policy(path.read_bytes())
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
    doc = decode_policy(policy_file(relay).read_bytes())
    damage(doc)
    publish(policy_file(relay), doc)
    result = relay.postform("relay", "serve", "--listen", "127.0.0.1:1/starttls", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert postform_cmd()  # the binary ran, not an import in this process


def test_a_damaged_reload_is_an_event_and_a_metric_and_the_next_good_one_is_taken(
    tmp_path: Path,
) -> None:
    """Issue #11, attack 8: a damaged policy section stopped the reload loop silently."""
    from tests.knot import free_port
    from tests.test_relay_workers import scrape

    relay = RelayProcess(tmp_path / "relay")
    metrics = free_port()
    relay.start("--metrics", f"127.0.0.1:{metrics}")
    try:
        path = policy_file(relay)
        good = decode_policy(path.read_bytes())
        doc = decode_policy(path.read_bytes())
        doc["serial"] += 1
        doc["domains"]["example.com"]["dkim"][0].pop("private_key")
        publish(path, doc)
        relay.wait_for(lambda: relay.events("policy_error"), what="policy_error")
        (error,) = relay.events("policy_error")
        assert "private_key" in error["error"] and error["kept_serial"] == 1
        relay.wait_for(
            lambda: "postform_policy_load_failing 1.0" in scrape(metrics), what="failing"
        )
        assert "postform_policy_load_errors_total 1.0" in scrape(metrics)
        relay.signal(signal.SIGHUP)  # a forced reload of the same damage: counted, logged once
        relay.wait_for(
            lambda: "postform_policy_load_errors_total 2.0" in scrape(metrics), what="2nd"
        )
        assert len(relay.events("policy_error")) == 1
        client = relay.smtp()  # the last good policy is in force
        assert client.sendmail("noreply@example.com", ["a@example.org"], message()) == {}
        client.quit()
        good["serial"] += 2  # the next good document is taken
        good["senders"] = [s for s in good["senders"] if s != "noreply@example.com"]
        publish(path, good)
        relay.wait_for(lambda: relay.events("policy_reloaded"), what="reload")
        relay.wait_for(
            lambda: "postform_policy_load_failing 0.0" in scrape(metrics), what="recovered"
        )
        client = relay.smtp()
        assert client.mail("noreply@example.com")[0] == 550  # the new policy is enforced
        client.quit()
    finally:
        relay.stop()


def test_the_reload_loop_outlives_an_unexpected_error(tmp_path: Path) -> None:
    """A source or listener that raises something unforeseen: logged, counted, loop goes on."""
    import asyncio

    from relay.contract.policy import RelayPolicy
    from relay.events import EventLog
    from relay.policyholder import PolicyHolder

    class Flaky:
        def __init__(self) -> None:
            self.loads = 0

        def describe(self) -> str:
            return "flaky"

        def changed(self) -> bool:
            return True

        def load(self) -> RelayPolicy:
            self.loads += 1
            if self.loads == 2:
                raise RuntimeError("disk on fire")
            return RelayPolicy(serial=self.loads, lineage="x")

    async def run(log_path: Path) -> tuple[PolicyHolder, list[str]]:
        holder = PolicyHolder(Flaky(), EventLog(io.StringIO(), log_path), interval=0.01)
        errors: list[str] = []
        holder.on_error(errors.append)

        def broken(old: RelayPolicy, new: RelayPolicy) -> None:
            raise KeyError("listener bug")

        holder.on_change(broken)
        task = asyncio.ensure_future(holder.follow())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if holder.policy.serial >= 4:
                break
        task.cancel()
        return holder, errors

    log_path = tmp_path / "events.jsonl"
    holder, errors = asyncio.run(run(log_path))
    assert holder.policy.serial >= 4 and not holder.failing
    assert errors == ["RuntimeError: disk on fire"]
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert "policy_error" in events and "policy_listener_error" in events
