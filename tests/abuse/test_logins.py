"""Login throttle bypass (issue #11, attack 7): 100 parallel AUTH attempts from one
address checked 99 wrong passwords and accepted the right one, and a successful login
on the attacker's own credential reset the count (168 guesses a minute, never blocked).
Now checks in flight count against the limit before they finish, an address has at most
8 at once, a success resets only its own username, and an address that fails 50 times
over all usernames is blocked whole. A legitimate client from another address is served
throughout, and events never carry an unknown username as typed."""

from __future__ import annotations

import json
import smtplib
import threading
from pathlib import Path

from tests.abuse.harness import LegitClient, attack
from tests.relayproc import RelayProcess, default_config, with_sessions

CONFIG = with_sessions(
    default_config(),
    per_client=200,
)


def test_parallel_guesses_cannot_outrun_the_count(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        with LegitClient(relay) as legit:
            seen = attack(relay, "parallel-logins", n=100)
        legit.check()
        codes = seen["codes"]
        assert codes.count(535) <= 5, codes  # checked: at most 5 of the 100
        assert seen["right"] == 421  # then even the right password is refused: blocked
        assert set(codes) <= {535, 454, 421}, codes
        assert len(relay.events("auth_fail")) <= 5
        relay.wait_for(
            lambda: relay.events("auth_blocked") or relay.events("auth_busy"), what="the block"
        )
    finally:
        relay.stop()


def test_a_spray_over_usernames_blocks_the_address_and_own_logins_reset_nothing(
    tmp_path: Path,
) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        with LegitClient(relay) as legit:
            seen = attack(relay, "spray", n=60)
        legit.check()
        codes = seen["codes"]
        assert codes[:49] == [535] * 49  # the 50th failure blocks the address, all names
        assert set(codes[49:]) == {421}, codes[49:]
        assert seen["own"][:16] == [235] * 16  # before the block its own logins worked
        assert seen["final"] == 421  # and they reset nothing: now it is blocked too
        events = [json.loads(line) for line in relay.lines if '"auth_' in line]
        names = {e.get("username") for e in events if e["event"] == "auth_fail"}
        assert names and all(n.startswith("unknown:") for n in names), names
        assert not any("victim" in line for line in relay.lines)  # never as typed
    finally:
        relay.stop()


def test_an_application_opening_twenty_sessions_at_once_logs_in_on_all(tmp_path: Path) -> None:
    """The bound on checks in flight makes logins wait, never fail, when they are right."""
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        sessions = [relay.smtp(login=None) for _ in range(20)]
        cred = relay.creds["app"]
        gate = threading.Barrier(20, timeout=30)
        codes: list[int] = []

        def one(client: smtplib.SMTP) -> None:
            gate.wait()
            codes.append(client.login(cred["username"], cred["password"])[0])

        threads = [threading.Thread(target=one, args=(c,)) for c in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert codes == [235] * 20
        for client in sessions:
            client.quit()
        assert not relay.events("auth_fail") and not relay.events("auth_busy")
    finally:
        relay.stop()
