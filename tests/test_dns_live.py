"""postform dns push / verify / refresh against a real Knot DNS server on loopback."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.message
import dns.query

import reconciler.retirement as retirement
from reconciler.render.state import ordered
from tests.states import read_policy, read_state

STATE = Path("state") / "state.json"


def push(cli, project: Path, knot, zone: str = "example.com", key: Path | None = None, *extra: str):
    """`postform dns push` to the test's Knot server, signed with its TSIG key by default;
    `extra` options (e.g. --force) after."""
    return cli(
        project,
        "dns",
        "push",
        "--server",
        knot.server,
        "--zone",
        zone,
        "--tsig-key-file",
        str(key or knot.key_file),
        *extra,
    )


def push_all(cli, project: Path, knot) -> None:
    for zone in ("example.com", "example.net"):
        result = push(cli, project, knot, zone)
        assert result.code == 0, result.err


def verify(cli, project: Path, knot, *extra: str):
    return cli(project, "dns", "verify", "--nameserver", knot.server, *extra)


def dkim_status(project: Path, selector: str) -> str:
    resources = dict(ordered(read_state(project / STATE)))  # with the observed status
    return str(resources[f'dkim["example.com/{selector}"]']["computed"]["status"])


def test_push_then_verify_is_all_ok_and_activates_selectors(dns_project: Path, cli, knot) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    assert dkim_status(dns_project, "s1") == "NEEDS_ATTENTION"
    before = verify(cli, dns_project, knot)
    assert before.code == 2 and "MISSING" in before.out
    assert dkim_status(dns_project, "s1") == "NEEDS_ATTENTION"
    push_all(cli, dns_project, knot)
    result = verify(cli, dns_project, knot)
    assert result.code == 0, result.out + result.err
    assert "7 of 7 record(s) ok." in result.out
    assert 'dkim["example.com/s1"]: NEEDS_ATTENTION -> ACTIVE' in result.out
    assert dkim_status(dns_project, "s1") == "ACTIVE"
    policy = read_policy(dns_project / STATE)  # the relays see the move at once
    assert {k.status for k in policy.domains["example.com"].keys} == {"ACTIVE"}
    assert set(policy.signing) == {"example.com"}


def test_push_is_idempotent(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    again = push(cli, dns_project, knot)
    assert again.code == 0 and again.out.startswith("No changes: zone example.com")


def test_push_merges_an_existing_spf_record_and_withdraws_what_is_no_longer_wanted(
    dns_project: Path, cli, knot, monkeypatch
) -> None:
    knot.update(
        "example.com",
        add=[
            ("example.com", "TXT", '"v=spf1 ip4:198.51.100.1 -all"'),
            ("example.com", "TXT", '"google-site-verification=abc"'),
        ],
    )
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    assert knot.txt("example.com") == [
        "google-site-verification=abc",
        "v=spf1 ip4:198.51.100.1 include:_spf.example.net -all",
    ]
    assert verify(cli, dns_project, knot).code == 0
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text()
        .replace("      - {selector: ed, algorithm: ed25519}\n", "")
        .replace("example.com:\n", "example.com:\n    spf: false\n")
    )
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    assert knot.txt("ed._domainkey.example.com")  # retired: kept for the retention
    later = datetime.now(UTC) + timedelta(days=8)
    monkeypatch.setattr(retirement, "clock", lambda: later)
    assert cli(dns_project, "apply", "--auto-approve").code == 0  # the second phase
    push_all(cli, dns_project, knot)
    assert knot.txt("ed._domainkey.example.com") == []
    assert knot.txt("example.com") == [
        "google-site-verification=abc",
        "v=spf1 ip4:198.51.100.1 -all",
    ]


def test_tampered_dkim_is_mismatch_and_removed_is_missing(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    other = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
    knot.update(
        "example.com",
        delete=[("ed._domainkey.example.com", "TXT")],
        add=[("ed._domainkey.example.com", "TXT", f'"v=DKIM1; k=ed25519; p={other}"')],
    )
    knot.update("example.com", delete=[("s1._domainkey.example.com", "TXT")])
    result = verify(cli, dns_project, knot, "--json")
    assert result.code == 2
    by_name = {r["name"]: r for r in json.loads(result.out)["results"]}
    assert by_name["ed._domainkey.example.com"]["status"] == "mismatch"
    assert "public key differs" in by_name["ed._domainkey.example.com"]["detail"]
    assert by_name["s1._domainkey.example.com"]["status"] == "missing"
    assert by_name["example.com"]["status"] == "ok"


def test_same_key_in_other_text_form_is_ok(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    public = read_state(dns_project / STATE).resources['dkim["example.com/ed"]']["computed"][
        "public_key"
    ]
    spaced = " ".join(public[i : i + 8] for i in range(0, len(public), 8))
    knot.update(
        "example.com",
        delete=[("ed._domainkey.example.com", "TXT")],
        add=[("ed._domainkey.example.com", "TXT", f'"k=ed25519;v=DKIM1;p={spaced}"')],
    )
    assert verify(cli, dns_project, knot).code == 0


def test_spf_with_eleven_lookups_is_flagged(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    includes = " ".join(f"include:l{i}.example.net" for i in range(10))
    knot.update(
        "example.com",
        delete=[("example.com", "TXT")],
        add=[("example.com", "TXT", f'"v=spf1 {includes} " "include:_spf.example.net ~all"')],
    )
    knot.update(
        "example.net", add=[(f"l{i}.example.net", "TXT", '"v=spf1 -all"') for i in range(10)]
    )
    result = verify(cli, dns_project, knot, "--json")
    assert result.code == 2
    spf = next(r for r in json.loads(result.out)["results"] if r["purpose"] == "spf")
    assert spf["status"] == "mismatch"
    assert "needs 11 DNS lookups, more than the 10 RFC 7208 allows" in spf["detail"]


def test_spf_that_does_not_authorise_the_relay(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    knot.update(
        "example.com",
        delete=[("example.com", "TXT")],
        add=[("example.com", "TXT", '"v=spf1 ip4:198.51.100.0/24 -all"')],
    )
    result = verify(cli, dns_project, knot, "--json")
    spf = next(r for r in json.loads(result.out)["results"] if r["purpose"] == "spf")
    assert spf["status"] == "mismatch"
    assert "does not authorise the relay address(es) 192.0.2.10" in spf["detail"]


def test_refresh_and_plan_report_drift(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    assert verify(cli, dns_project, knot).code == 0
    knot.update(
        "example.com", delete=[("_dmarc.example.com", "TXT"), ("s1._domainkey.example.com", "TXT")]
    )
    refreshed = cli(dns_project, "refresh", "--nameserver", knot.server)
    assert refreshed.code == 0
    assert "Refreshed 7 record(s): 5 ok, 2 not." in refreshed.out
    assert 'dkim["example.com/s1"]: ACTIVE -> NEEDS_ATTENTION' in refreshed.out
    plan = cli(dns_project, "plan", "--detailed-exitcode")
    assert plan.code == 2  # drift needs someone to act, though apply changes nothing
    assert "Drift: DNS records changed outside postform" in plan.out
    assert '_dmarc.example.com TXT (domain["example.com"]) was verified at' in plan.out
    assert "s1._domainkey.example.com TXT" in plan.out
    data = json.loads(cli(dns_project, "plan", "--json").out)
    assert len(data["drift"]) == 2


def test_wrong_tsig_key_fails_clearly(dns_project: Path, cli, knot, tmp_path: Path) -> None:
    cli(dns_project, "apply", "--auto-approve")
    bad = tmp_path / "bad.key"
    bad.write_text(knot.key_file.read_text().replace(knot.secret, "c2VjcmV0c2VjcmV0c2VjcmV0"))
    result = push(cli, dns_project, knot, key=bad)
    assert result.code == 1
    assert "rejected the TSIG signature" in result.err or "NOTAUTH" in result.err
    assert "Traceback" not in result.err
    assert knot.secret not in result.err + result.out
    unsigned = cli(dns_project, "dns", "push", "--server", knot.server, "--zone", "example.com")
    assert unsigned.code == 1 and "REFUSED" in unsigned.err or "NOTAUTH" in unsigned.err


def test_network_failures_are_bounded_and_clear(dns_project: Path, cli, knot) -> None:
    from tests.knot import free_port

    cli(dns_project, "apply", "--auto-approve")
    silent = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = cli(dns_project, "dns", "verify", "--nameserver", silent, "--timeout", "0.5")
    assert time.monotonic() - started < 10
    assert result.code == 1
    assert "no answer from" in result.err or "failed" in result.err
    assert "Traceback" not in result.err
    refused = cli(
        dns_project, "dns", "verify", "--nameserver", knot.server, "--domain", "example.net"
    )
    assert refused.code in (0, 2)  # example.net is served: answers, not errors
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("_spf.example.net", "_spf.example.org"))
    cli(dns_project, "apply", "--auto-approve")
    outside = cli(dns_project, "dns", "verify", "--nameserver", knot.server)
    assert outside.code == 1 and "REFUSED" in outside.err


def test_truncated_udp_answers_are_retried_over_tcp(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    filler = [("s1._domainkey.example.com", "TXT", '"' + "x" * 250 + f'{i}"') for i in range(8)]
    knot.update("example.com", add=filler)
    result = verify(cli, dns_project, knot, "--json")
    s1 = next(r for r in json.loads(result.out)["results"] if r["name"].startswith("s1."))
    assert s1["status"] == "ok"  # the filler has no p=, the key record is found in 2 KB


def test_removing_the_only_active_selector_is_refused(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    verify(cli, dns_project, knot)
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "      - {selector: s1, algorithm: rsa-2048}\n"
            "      - {selector: ed, algorithm: ed25519}\n",
            "      - {selector: new, algorithm: ed25519}\n",
        )
    )
    refused = cli(dns_project, "apply", "--auto-approve")
    assert refused.code == 1
    assert "removes every ACTIVE DKIM selector of example.com" in refused.err
    allowed = cli(dns_project, "apply", "--auto-approve", "--allow-destructive")
    assert allowed.code == 0


def test_changing_the_relay_spf_domain_replaces_the_merged_include(
    dns_project: Path, cli, knot
) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("_spf.example.net", "_spf2.example.net"))
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    assert knot.txt("example.com") == ["v=spf1 include:_spf2.example.net ~all"]
    assert knot.txt("_spf.example.net") == []
    assert verify(cli, dns_project, knot).code == 0


def test_a_ttl_change_is_pushed(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("ttl: 300", "ttl: 7200"))
    cli(dns_project, "apply", "--auto-approve")
    result = push(cli, dns_project, knot)
    assert result.code == 0 and "ed._domainkey.example.com" in result.out
    answer = dns.query.tcp(
        dns.message.make_query("ed._domainkey.example.com.", "TXT"),
        "127.0.0.1",
        port=knot.port,
        timeout=5,
    )
    assert answer.answer[0].ttl == 7200
    again = push(cli, dns_project, knot)
    assert again.out.startswith("No changes")


def test_observations_never_bump_the_serial_or_make_a_saved_plan_stale(
    dns_project: Path, cli, knot
) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    assert verify(cli, dns_project, knot).code == 0  # selectors turn ACTIVE: a new policy
    policy_file = dns_project / "state" / "state.policy.json"
    published = policy_file.stat().st_ino
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "senders: [noreply@example.com]", "senders: [noreply@example.com, b@example.com]"
        )
    )
    assert cli(dns_project, "plan", "--out", "saved.json").code == 0
    serial = read_state(dns_project / STATE).serial
    for _ in range(2):  # a scheduled refresh: everything already ok
        refreshed = cli(dns_project, "refresh", "--nameserver", knot.server)
        assert refreshed.code == 0 and "7 ok, 0 not" in refreshed.out
    state = read_state(dns_project / STATE)
    assert state.serial == serial and state.revision >= 3
    assert policy_file.stat().st_ino == published  # nothing new for the relays to load
    applied = cli(dns_project, "apply", "saved.json")
    assert applied.code == 0, applied.err  # not stale
    assert read_state(dns_project / STATE).serial == serial + 1
