"""DNS push and verify against real zones (issue #14): zone cuts, SPF at the lookup limit,
void lookups, the user's TTL, nsupdate scripts. Real Knot on loopback, real nsupdate, and
pyspf as an SPF evaluator that is not postform's own."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import dns.message
import dns.query
import dns.resolver
import pytest

from tests.conftest import DNS_CONFIG, require_tool
from tests.test_dns_live import push, push_all, verify

CHILD = """\
  mail.example.com:
    return_path: rp.mail.example.com
    dkim:
      - {selector: ed, algorithm: ed25519}
    dmarc: {policy: none}
"""
CHILD_NAMES = (
    "mail.example.com",
    "_dmarc.mail.example.com",
    "ed._domainkey.mail.example.com",
    "rp.mail.example.com",
)


def with_child(project: Path) -> None:
    """Declare mail.example.com beside example.com (five records of its own)."""
    text = DNS_CONFIG.replace("senders: [noreply@example.com]", CHILD.rstrip("\n"))
    (project / "postform.yaml").write_text(text + "senders: [noreply@example.com]\n")


@pytest.fixture
def zones(tmp_path: Path):
    """Knot serving example.com, its child zone mail.example.com, and example.net."""
    from tests.knot import KNOTD, Knot

    require_tool(KNOTD)
    server = Knot(tmp_path / "knot3", ["example.com", "mail.example.com", "example.net"]).start()
    yield server
    server.stop()


def quoted(value: str) -> str:
    """TXT data in strings of at most 200 characters (one string holds 255)."""
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, len(value), 200))


def answer(knot, name: str, rtype: str = "TXT") -> dns.message.Message:
    query = dns.message.make_query(name + ".", rtype)
    return dns.query.tcp(query, "127.0.0.1", port=knot.port, timeout=5)


def pyspf(knot, monkeypatch: pytest.MonkeyPatch, domain: str, ip: str) -> tuple[str, str]:
    """pyspf's verdict for mail from `domain` sent by `ip`, resolving at the Knot server."""
    import spf as pyspf_module

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = knot.port
    monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyspf calls resolver.query
        result, explanation = pyspf_module.check2(i=ip, s=f"a@{domain}", h="client.test")
    return str(result), str(explanation)


def test_child_zone_on_the_same_server_gets_its_own_records(dns_project: Path, cli, zones) -> None:
    with_child(dns_project)
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    parent = push(cli, dns_project, zones, "example.com")
    assert parent.code == 0, parent.err
    assert (
        "Not in zone example.com: 5 record(s) at _dmarc.mail.example.com, "
        "ed._domainkey.mail.example.com, mail.example.com, rp.mail.example.com are in zone "
        "mail.example.com (a zone of its own on this server); push them with --zone "
        "mail.example.com." in parent.out
    )
    assert all("mail.example.com" not in line for line in parent.out.splitlines() if "+" in line)
    assert zones.txt("mail.example.com") == []  # nothing landed in the child yet
    for zone in ("mail.example.com", "example.net"):
        assert push(cli, dns_project, zones, zone).code == 0
    result = verify(cli, dns_project, zones)
    assert result.code == 0, result.out
    assert "12 of 12 record(s) ok." in result.out
    for zone in ("example.com", "mail.example.com", "example.net"):
        again = push(cli, dns_project, zones, zone)
        assert again.code == 0 and f"No changes: zone {zone}" in again.out, again.out


def test_delegated_child_is_left_to_its_servers_and_the_push_converges(
    dns_project: Path, cli, knot
) -> None:
    knot.update("example.com", add=[("mail.example.com", "NS", "ns1.nowhere.invalid.")])
    with_child(dns_project)
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    first = push(cli, dns_project, knot, "example.com")
    assert first.code == 0, first.err
    assert "are in zone mail.example.com, delegated to other name servers" in first.out
    assert "Sent" in first.out
    assert not any(name in first.out.split("Sent")[0] for name in ("+ ed._domainkey.mail",))
    again = push(cli, dns_project, knot, "example.com")
    assert again.code == 0 and "No changes: zone example.com" in again.out, again.out
    referral = answer(knot, "ed._domainkey.mail.example.com")
    assert not referral.answer  # still a referral: nothing was written under the cut
    assert any(r.rdtype == dns.rdatatype.NS for r in referral.authority)


def test_push_to_a_zone_the_server_does_not_hold_is_refused(dns_project: Path, cli, knot) -> None:
    cli(dns_project, "apply", "--auto-approve")
    result = push(cli, dns_project, knot, "example.org")
    assert result.code == 1
    assert "does not hold zone example.org" in result.err
    assert "Traceback" not in result.err


def test_merging_into_an_spf_record_at_the_lookup_limit_is_refused(
    dns_project: Path, cli, knot, monkeypatch: pytest.MonkeyPatch
) -> None:
    includes = " ".join(f"include:l{i}.example.net" for i in range(10))
    user_spf = f"v=spf1 {includes} ~all"
    knot.update(
        "example.net", add=[(f"l{i}.example.net", "TXT", '"v=spf1 -all"') for i in range(10)]
    )
    knot.update("example.com", add=[("example.com", "TXT", f'"{user_spf}"')])
    assert pyspf(knot, monkeypatch, "example.com", "192.0.2.10")[0] == "softfail"  # 10: legal
    cli(dns_project, "apply", "--auto-approve")
    assert push(cli, dns_project, knot, "example.net").code == 0
    refused = push(cli, dns_project, knot, "example.com")
    assert refused.code == 1
    assert (
        "refusing to merge postform's include into the SPF record at example.com: it costs "
        "10 DNS lookup(s) now and would cost 11" in refused.err
    )
    assert knot.txt("example.com") == [user_spf]  # nothing was sent, not even the rest
    assert knot.txt("ed._domainkey.example.com") == []
    # What the merge would have published, judged by pyspf: a permerror for every message.
    merged = user_spf.replace(" ~all", " include:_spf.example.net ~all")
    knot.update("example.com", add=[("merged.example.com", "TXT", quoted(merged))])
    verdict, why = pyspf(knot, monkeypatch, "merged.example.com", "192.0.2.10")
    assert verdict == "permerror" and "Too many DNS lookups" in why
    # Once a live check has seen the record, plan and `dns records` warn before any push.
    verify(cli, dns_project, knot)
    plan = cli(dns_project, "plan")
    assert "the SPF record published at example.com would need 11 DNS lookups" in plan.out
    records = cli(dns_project, "dns", "records")
    assert records.code == 0 and "would need 11 DNS lookups" in records.err


def test_three_void_lookups_are_flagged_as_pyspf_does(
    dns_project: Path, cli, knot, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)

    def publish(voids: int) -> None:
        terms = " ".join(f"a:nx{i}.example.com" for i in range(voids))
        value = f"v=spf1 {terms} include:_spf.example.net ~all"
        knot.update("example.com", delete=[("example.com", "TXT")])
        knot.update("example.com", add=[("example.com", "TXT", f'"{value}"')])

    publish(3)
    verdict, why = pyspf(knot, monkeypatch, "example.com", "192.0.2.10")
    assert verdict == "permerror" and "Void lookup limit of 2 exceeded" in why
    result = verify(cli, dns_project, knot, "--json")
    spf = next(r for r in json.loads(result.out)["results"] if r["purpose"] == "spf")
    assert spf["status"] == "mismatch"
    assert (
        "3 void DNS lookups (a:nx0.example.com, a:nx1.example.com, a:nx2.example.com"
        in (spf["detail"])
    )
    publish(2)
    assert pyspf(knot, monkeypatch, "example.com", "192.0.2.10")[0] == "pass"
    assert verify(cli, dns_project, knot).code == 0


USERS_SPF = "v=spf1 ip4:198.51.100.1 -all"
MERGED = ["google-site-verification=abc", "v=spf1 ip4:198.51.100.1 include:_spf.example.net -all"]


def publish_users_txt(knot) -> None:
    """The user's own TXT set at the apex, before postform: an SPF record and a site
    verification string, with a TTL of their choosing (900)."""
    knot.update(
        "example.com",
        add=[
            ("example.com", "TXT", f'"{USERS_SPF}"'),
            ("example.com", "TXT", '"google-site-verification=abc"'),
        ],
        ttl=900,
    )


def test_a_merge_keeps_the_ttl_of_the_users_record_set(dns_project: Path, cli, knot) -> None:
    publish_users_txt(knot)
    cli(dns_project, "apply", "--auto-approve")
    push_all(cli, dns_project, knot)
    assert knot.txt("example.com") == MERGED
    assert answer(knot, "example.com").answer[0].ttl == 900
    assert answer(knot, "ed._domainkey.example.com").answer[0].ttl == 300  # postform's own
    assert push(cli, dns_project, knot, "example.com").out.startswith("No changes")


def nsupdate(knot, script: str) -> subprocess.CompletedProcess[str]:
    require_tool("nsupdate")
    key = f"hmac-sha256:postform-test:{knot.secret}"
    text = f"server 127.0.0.1 {knot.port}\n" + script
    return subprocess.run(
        [shutil.which("nsupdate") or "nsupdate", "-y", key],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nsupdate_script_replaces_owned_names_and_merges_the_spf_guarded(
    dns_project: Path, cli, knot
) -> None:
    publish_users_txt(knot)
    cli(dns_project, "apply", "--auto-approve")
    verify(cli, dns_project, knot)  # what the script merges into, and guards on
    script = cli(dns_project, "dns", "records", "--format", "nsupdate").out
    assert "prereq yxrrset example.com. TXT" in script
    ran = nsupdate(knot, script)
    assert ran.returncode == 0, ran.stderr
    assert knot.txt("example.com") == MERGED
    assert answer(knot, "example.com").answer[0].ttl == 900
    assert verify(cli, dns_project, knot).code == 0
    # The relay's address changes: the script replaces its SPF record, not adds a second.
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("192.0.2.10", "192.0.2.20"))
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    ran = nsupdate(knot, cli(dns_project, "dns", "records", "--format", "nsupdate").out)
    assert ran.returncode == 0, ran.stderr
    assert knot.txt("_spf.example.net") == ["v=spf1 ip4:192.0.2.20 ~all"]
    assert verify(cli, dns_project, knot).code == 0


def test_nsupdate_merge_is_refused_when_the_record_changed_since_the_check(
    dns_project: Path, cli, knot
) -> None:
    knot.update("example.com", add=[("example.com", "TXT", '"v=spf1 ip4:198.51.100.1 -all"')])
    cli(dns_project, "apply", "--auto-approve")
    verify(cli, dns_project, knot)
    script = cli(dns_project, "dns", "records", "--format", "nsupdate").out
    knot.update(
        "example.com",
        delete=[("example.com", "TXT")],
        add=[("example.com", "TXT", '"v=spf1 ip4:198.51.100.2 -all"')],
    )
    ran = nsupdate(knot, script)
    assert ran.returncode != 0 and "NXRRSET" in ran.stdout + ran.stderr
    assert knot.txt("example.com") == ["v=spf1 ip4:198.51.100.2 -all"]  # never two SPF
    assert knot.txt("_dmarc.example.com")  # the other updates still applied


def test_nsupdate_script_without_a_live_check_says_what_to_merge_by_hand(
    dns_project: Path, cli
) -> None:
    cli(dns_project, "apply", "--auto-approve")
    script = cli(dns_project, "dns", "records", "--format", "nsupdate").out
    assert "; example.com: merge by hand (it has not been checked live yet)" in script
    assert "update add example.com." not in script
    assert "update delete _spf.example.net. TXT" in script
