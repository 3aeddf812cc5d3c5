"""Records and their output formats, checked by the tools that consume them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from reconciler.dns.formats import render_bind, txt_strings
from reconciler.dns.nsupdate import render_nsupdate
from reconciler.dns.records import Record, dmarc_value, records_for, relay_spf
from tests.conftest import require_tool
from tests.states import read_state

STATE = Path("state") / "state.json"


def test_txt_strings_split_at_255_bytes() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    chunks = txt_strings(value)
    assert [len(c) for c in chunks] == [255, 255, 108]
    assert "".join(chunks) == value


def test_record_values() -> None:
    assert relay_spf({"ipv4": ["192.0.2.10"], "ipv6": ["2001:db8::/64"]}) == (
        "v=spf1 ip4:192.0.2.10 ip6:2001:db8::/64 ~all"
    )
    assert relay_spf({"hostname": "smtp.example.net"}) == "v=spf1 a:smtp.example.net ~all"
    assert dmarc_value(
        {"policy": "reject", "pct": 50, "rua": ["mailto:a@x.example", "mailto:b@x.example"]}
    ) == ("v=DMARC1; p=reject; pct=50; rua=mailto:a@x.example,mailto:b@x.example")


def test_apply_writes_every_output_and_records_cover_each_purpose(dns_project: Path, cli) -> None:
    result = cli(dns_project, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert "DNS records to publish are in" in result.out
    out = dns_project / "dns-out"
    assert sorted(p.name for p in out.iterdir()) == [
        "example.com.zone",
        "example.net.zone",
        "octodns",
        "records.json",
    ]
    data = json.loads((out / "records.json").read_text())
    purposes = {(r["name"], r["purpose"]) for r in data["records"]}
    assert purposes == {
        ("example.com", "spf"),
        ("_spf.example.net", "relay-spf"),
        ("s1._domainkey.example.com", "dkim"),
        ("ed._domainkey.example.com", "dkim"),
        ("_dmarc.example.com", "dmarc"),
        ("rp.example.com", "return-path-mx"),
        ("rp.example.com", "return-path-spf"),
    }
    rsa = next(r for r in data["records"] if r["name"].startswith("s1."))
    assert len(rsa["strings"]) == 2 and all(len(s) <= 255 for s in rsa["strings"])
    mx = next(r for r in data["records"] if r["type"] == "MX")
    assert mx["value"] == "10 smtp.example.net."


def test_zone_fragments_pass_named_checkzone(dns_project: Path, cli, tmp_path: Path) -> None:
    require_tool("named-checkzone")
    cli(dns_project, "apply", "--auto-approve")
    for zone in ("example.com", "example.net"):
        fragment = (dns_project / "dns-out" / f"{zone}.zone").read_text()
        wrapped = tmp_path / f"{zone}.db"
        wrapped.write_text(
            f"$ORIGIN {zone}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 "
            f"300\n@ NS ns1\nns1 A 192.0.2.53\n{fragment}"
        )
        check = subprocess.run(
            ["named-checkzone", zone, str(wrapped)], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "OK" in check.stdout


def test_octodns_yaml_provider_loads_the_files_unchanged(dns_project: Path, cli) -> None:
    from octodns.provider.yaml import YamlProvider
    from octodns.zone import Zone

    cli(dns_project, "apply", "--auto-approve")
    provider = YamlProvider(
        "postform", str(dns_project / "dns-out" / "octodns"), escaped_semicolons=True
    )
    zone = Zone("example.com.", [])
    provider.populate(zone)
    records = {(r.name, r._type): r for r in zone.records}
    assert set(records) == {
        ("", "TXT"),
        ("_dmarc", "TXT"),
        ("s1._domainkey", "TXT"),
        ("ed._domainkey", "TXT"),
        ("rp", "MX"),
        ("rp", "TXT"),
    }
    state = read_state(dns_project / STATE)
    public = state.resources['dkim["example.com/s1"]']["computed"]["public_key"]
    dkim = records[("s1._domainkey", "TXT")].values[0]
    assert dkim.replace("\\;", ";") == f"v=DKIM1; k=rsa; p={public}"
    assert records[("rp", "MX")].values[0].exchange == "smtp.example.net."


def test_dns_records_command_formats(dns_project: Path, cli) -> None:
    cli(dns_project, "apply", "--auto-approve")
    bind = cli(dns_project, "dns", "records")
    assert (
        bind.code == 0 and "example.com." in bind.out and "IN MX 10 smtp.example.net." in bind.out
    )
    only = cli(dns_project, "dns", "records", "--domain", "example.net", "--format", "json")
    assert [r["name"] for r in json.loads(only.out)["records"]] == ["_spf.example.net"]
    nsupdate = cli(dns_project, "dns", "records", "--format", "nsupdate").out
    assert "update delete s1._domainkey.example.com. TXT" in nsupdate and "send" in nsupdate
    assert "update delete example.com. TXT" not in nsupdate  # SPF is merged, never wiped
    octo = cli(dns_project, "dns", "records", "--format", "octodns").out
    assert "v=DKIM1\\; k=ed25519\\; p=" in octo
    bad = cli(dns_project, "dns", "records", "--format", "tinydns")
    assert bad.code == 1 and "expected one of bind, json, octodns, nsupdate" in bad.err


def test_plan_shows_records_to_publish_and_activation(dns_project: Path, cli) -> None:
    plan = cli(dns_project, "plan").out
    assert "DNS records to publish after apply" in plan
    assert '+ s1._domainkey.example.com TXT "v=DKIM1; k=rsa; p=(known after apply)"' in plan
    assert '+ rp.example.com MX "10 smtp.example.net."' in plan
    assert 'dkim["example.com/s1"] will be NEEDS_ATTENTION until its DNS record' in plan
    cli(dns_project, "apply", "--auto-approve")
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text()
        .replace(
            "{selector: ed, algorithm: ed25519}",
            "{selector: ed, algorithm: ed25519, activation: immediate}",
        )
        .replace("policy: quarantine", "policy: reject")
    )
    again = cli(dns_project, "plan").out
    assert (
        '~ _dmarc.example.com TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com" -> '
        '"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"' in again
    )
    cli(dns_project, "apply", "--auto-approve")
    state = read_state(dns_project / STATE)
    assert state.resources['dkim["example.com/ed"]']["computed"]["status"] == "ACTIVE"
    assert state.resources['dkim["example.com/s1"]']["computed"]["status"] == "NEEDS_ATTENTION"


def test_records_for_marks_unknown_keys() -> None:
    res = [
        {
            "type": "dkim",
            "name": "a.example/s",
            "attributes": {"domain": "a.example", "selector": "s", "algorithm": "ed25519"},
            "computed": {},
        }
    ]
    (record,) = records_for(res, 300)
    assert not record.known and record.zone == "a.example"
    assert isinstance(record, Record)
    assert render_bind([]) == "" and render_nsupdate([]) == ""


def test_apply_leaves_files_it_did_not_write(dns_project: Path, cli) -> None:
    out = dns_project / "dns-out"
    out.mkdir()
    (out / "corp.internal.zone").write_text("; hand-written\n")
    cli(dns_project, "apply", "--auto-approve")
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("_spf.example.net", "_spf.example.com"))
    cli(dns_project, "apply", "--auto-approve")
    assert (out / "corp.internal.zone").read_text() == "; hand-written\n"
    assert not (out / "example.net.zone").exists()  # written by the first apply, now unused


def test_server_arguments_are_checked(dns_project: Path, cli) -> None:
    cli(dns_project, "apply", "--auto-approve")
    bad_port = cli(dns_project, "dns", "verify", "--nameserver", "127.0.0.1:abc")
    assert bad_port.code == 1 and "is not HOST[:PORT]" in bad_port.err
    assert "Traceback" not in bad_port.err


def test_verify_before_any_apply_is_an_error_and_creates_no_state(dns_project: Path, cli) -> None:
    result = cli(dns_project, "dns", "verify", "--nameserver", "127.0.0.1:9")
    assert result.code == 1 and "nothing has been applied" in result.err
    assert not (dns_project / "state" / "state.json").exists()


def test_apply_rewrites_only_the_output_files_whose_content_changed(dns_project: Path, cli) -> None:
    """Issue #13: a change that touches one zone's records rewrites that zone's files and
    records.json; the others keep their inode (not even rewritten with the same bytes)."""
    out = dns_project / "dns-out"
    cli(dns_project, "apply", "--auto-approve")
    inodes = {p: p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    config = dns_project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "senders: [noreply@example.com]", "senders: [noreply@example.com, billing@example.com]"
        )
    )
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    assert {p: p.stat().st_ino for p in inodes} == inodes  # no DNS record changed: nothing written
    config.write_text(config.read_text().replace("policy: quarantine", "policy: reject"))
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    changed = {p.relative_to(out).as_posix() for p in inodes if p.stat().st_ino != inodes[p]}
    assert changed == {"records.json", "example.com.zone", "octodns/example.com.yaml"}
    assert "p=reject" in (out / "example.com.zone").read_text()
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in inodes)
    # A file edited by hand after an apply is written again by the next one, even when no
    # record changed (it is newer than records.json, which apply writes last).
    zone = out / "example.net.zone"
    written = zone.read_text()
    zone.write_text("; edited\n")
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    assert zone.read_text() == written
