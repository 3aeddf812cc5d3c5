"""postform's octoDNS processor, run by the real octodns-sync between YamlProviders.

The user's zone comes from their own source; the processor merges postform's records (from
records.json) into it, so octoDNS never sees two sources holding the apex TXT record.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.dns.formats import render_json
from reconciler.dns.octodnsmerge import merge_spf
from reconciler.dns.records import DKIM, RP_MX, RP_SPF, Record
from tests.test_architecture import ROOT, imported_modules, python_files

SYNC = str(Path(sys.executable).parent / "octodns-sync")
OURS = "include:_spf.example.net"

Zone = dict[str, object]

GOOGLE_SPF = "v=spf1 include:_spf.google.com ~all"
VERIFICATION = "google-site-verification=abc"


def user_zone(*apex_txt: str, **more: object) -> Zone:
    """The user's zone as their own octoDNS source holds it; by default an SPF record
    beside a verification string at the apex, as many zones have."""
    apex: list[object] = [{"type": "A", "value": "192.0.2.80"}]
    if apex_txt:
        apex.insert(0, {"ttl": 900, "type": "TXT", "values": list(apex_txt)})
    return {"": apex, "www": {"type": "A", "value": "192.0.2.80"}, **more}


USER_ZONE = user_zone(VERIFICATION, GOOGLE_SPF)
NET_ZONE: Zone = {"mx": {"type": "A", "value": "192.0.2.25"}}


def zone_file(zone: Zone) -> str:
    # octoDNS's YamlProvider insists on sorted keys (enforce_order).
    return "---\n" + yaml.safe_dump(zone, sort_keys=True)


CONFIG = """\
providers:
  config:
    class: octodns.provider.yaml.YamlProvider
    directory: ./config
    escaped_semicolons: true
  target:
    class: octodns.provider.yaml.YamlProvider
    directory: ./target
    escaped_semicolons: true
processors:
  postform:
    class: reconciler.dns.octodnsmerge.PostformProcessor
    records: {records}
zones:
"""
ZONE_CONFIG = (
    "  {zone}.:\n    sources: [config]\n    processors: [postform]\n    targets: [target]\n"
)


def octodns_setup(
    base: Path,
    records: str,
    com_zone: Zone = USER_ZONE,
    net_zone: Zone = NET_ZONE,
    **more: Zone,
) -> Path:
    """An octoDNS folder: the user's zones as the source, the same zones already in the
    target (a separate folder), postform's processor on every zone."""
    octo = base / "octo"
    zones = {"example.com": com_zone, "example.net": net_zone, **more}
    for folder in ("config", "target"):
        (octo / folder).mkdir(parents=True)
        for name, zone in zones.items():
            (octo / folder / f"{name}.yaml").write_text(zone_file(zone))
    config = CONFIG.format(records=records) + "".join(ZONE_CONFIG.format(zone=z) for z in zones)
    (octo / "octodns.yaml").write_text(config)
    return octo


def sync(octo: Path, *, doit: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [SYNC, "--config-file", "octodns.yaml", *(["--doit"] if doit else [])]
    return subprocess.run(argv, cwd=octo, capture_output=True, text=True, timeout=120)


def target(octo: Path, zone: str = "example.com") -> dict[str, object]:
    return yaml.safe_load((octo / "target" / f"{zone}.yaml").read_text())


def node(zone: dict[str, object], name: str, rtype: str) -> dict[str, object]:
    entries = zone[name]
    found = [e for e in (entries if isinstance(entries, list) else [entries]) if e["type"] == rtype]
    assert len(found) == 1, (name, rtype, entries)
    return found[0]


def values(entry: dict[str, object]) -> list[str]:
    raw = entry.get("values", [entry.get("value")])
    return [str(v).replace("\\;", ";") for v in raw]


def postform_records(project: Path) -> dict[tuple[str, str], dict[str, object]]:
    data = json.loads((project / "dns-out" / "records.json").read_text())
    return {(r["name"], r["purpose"]): r for r in data["records"]}


def records_of(project: Path) -> str:
    return str(project / "dns-out" / "records.json")


@pytest.fixture
def applied(dns_project: Path, cli) -> Path:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    return dns_project


def test_include_is_merged_into_the_existing_spf_and_postform_records_added(
    applied: Path, tmp_path: Path
) -> None:
    octo = octodns_setup(tmp_path, "../project/dns-out/records.json")  # relative to the cwd
    first = sync(octo)
    assert first.returncode == 0, first.stderr
    merged = f"['{VERIFICATION}', 'v=spf1 include:_spf.google.com {OURS} ~all']> (config)"
    assert f"<TxtRecord TXT 900, example.com., {merged}" in first.stderr  # an update
    zone = target(octo)
    apex = node(zone, "", "TXT")
    spf = [v for v in values(apex) if v.startswith("v=spf1")]
    assert spf == [f"v=spf1 include:_spf.google.com {OURS} ~all"]
    assert "google-site-verification=abc" in values(apex)
    assert apex["ttl"] == 900
    assert node(zone, "", "A")["value"] == "192.0.2.80"
    ours = postform_records(applied)
    for name, purpose in (
        ("s1._domainkey.example.com", "dkim"),
        ("ed._domainkey.example.com", "dkim"),
        ("_dmarc.example.com", "dmarc"),
        ("rp.example.com", "return-path-spf"),
    ):
        entry = node(zone, name.removesuffix(".example.com"), "TXT")
        assert values(entry) == [ours[(name, purpose)]["value"]]
        assert entry["ttl"] == 300
    assert node(zone, "rp", "MX")["value"] == {"exchange": "smtp.example.net.", "preference": 10}
    # The relay's own SPF record went into the zone it belongs to.
    relay = node(target(octo, "example.net"), "_spf", "TXT")
    assert values(relay) == ["v=spf1 ip4:192.0.2.10 ~all"]
    # The written target is what the sources plus postform describe: nothing more to do.
    again = sync(octo)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("plan:   No changes") == 2, again.stderr
    assert "No changes were planned" in again.stderr
    assert target(octo) == zone


def test_the_merged_record_authorises_the_relay_under_pyspf(
    applied: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyspf evaluates the published apex: both the old sender and the relay pass. Its
    lookups are answered from the octoDNS target files, never from the network."""
    import spf

    octo = octodns_setup(tmp_path, records_of(applied))
    assert sync(octo).returncode == 0
    answers: dict[tuple[str, str], list[str]] = {
        ("_spf.google.com", "TXT"): ["v=spf1 ip4:198.51.100.0/24 ~all"]
    }
    for zone in ("example.com", "example.net"):
        for name, entries in target(octo, zone).items():
            for entry in entries if isinstance(entries, list) else [entries]:
                fqdn = f"{name}.{zone}" if name else zone
                answers.setdefault((fqdn, entry["type"]), []).extend(values(entry))

    def lookup(name: str, qtype: str, *_: object) -> list[tuple[tuple[str, str], object]]:
        texts = answers.get((name.lower().rstrip("."), qtype), [])
        return [((name, qtype), [t.encode()]) for t in texts if qtype in ("TXT", "SPF")]

    monkeypatch.setattr(spf, "DNSLookup", lookup)
    for ip, apex, return_path in (
        ("192.0.2.10", "pass", "pass"),  # the relay
        ("198.51.100.7", "pass", "softfail"),  # the sender the user had before
        ("203.0.113.9", "softfail", "softfail"),
    ):
        assert spf.check2(i=ip, s="noreply@example.com", h="smtp.example.net")[0] == apex, ip
        assert spf.check2(i=ip, s="b@rp.example.com", h="smtp.example.net")[0] == return_path


def test_a_zone_without_an_apex_txt_gets_postform_whole_spf_record(
    applied: Path, tmp_path: Path
) -> None:
    octo = octodns_setup(tmp_path, records_of(applied), com_zone=user_zone())
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    apex = node(target(octo), "", "TXT")
    assert values(apex) == [f"v=spf1 {OURS} ~all"]
    assert apex["ttl"] == 300  # postform's TTL: the record is postform's alone


def test_an_apex_txt_without_spf_gets_postform_value_beside_it(
    applied: Path, tmp_path: Path
) -> None:
    octo = octodns_setup(tmp_path, records_of(applied), com_zone=user_zone(VERIFICATION))
    assert sync(octo).returncode == 0
    apex = node(target(octo), "", "TXT")
    assert sorted(values(apex)) == ["google-site-verification=abc", f"v=spf1 {OURS} ~all"]
    assert apex["ttl"] == 900


def test_an_include_already_there_changes_nothing(applied: Path, tmp_path: Path) -> None:
    present = user_zone(VERIFICATION, f"v=spf1 include:_spf.google.com {OURS} ~all")
    octo = octodns_setup(tmp_path, records_of(applied), com_zone=present)
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    apex = node(target(octo), "", "TXT")
    assert values(apex) == [
        "google-site-verification=abc",
        f"v=spf1 include:_spf.google.com {OURS} ~all",
    ]
    assert apex["ttl"] == 900
    # Only postform's other records are created; the apex is left as it is.
    assert "Summary: Creates=5, Updates=0, Deletes=0, Existing=3" in result.stderr
    assert "example.com., ['google-site" not in result.stderr


def test_dkim_and_dmarc_from_another_source_give_way_with_a_warning(
    applied: Path, tmp_path: Path
) -> None:
    stale = user_zone(
        VERIFICATION,
        GOOGLE_SPF,
        _dmarc={"ttl": 3600, "type": "TXT", "value": "v=DMARC1\\; p=none"},
        **{"s1._domainkey": {"type": "TXT", "value": "v=DKIM1\\; k=rsa\\; p=OLD"}},
    )
    octo = octodns_setup(tmp_path, records_of(applied), com_zone=stale)
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    zone = target(octo)
    ours = postform_records(applied)
    dmarc = node(zone, "_dmarc", "TXT")
    assert values(dmarc) == [ours[("_dmarc.example.com", "dmarc")]["value"]]
    assert dmarc["ttl"] == 300
    dkim = values(node(zone, "s1._domainkey", "TXT"))
    assert dkim == [ours[("s1._domainkey.example.com", "dkim")]["value"]]
    assert "_dmarc.example.com TXT: postform's" in result.stderr
    assert "s1._domainkey.example.com TXT: postform's" in result.stderr


def test_the_relay_spf_replaces_another_spf_value_and_keeps_the_rest(
    applied: Path, tmp_path: Path
) -> None:
    net = {**NET_ZONE, "_spf": {"ttl": 600, "type": "TXT", "values": ["note", "v=spf1 -all"]}}
    octo = octodns_setup(tmp_path, records_of(applied), net_zone=net)
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    relay = node(target(octo, "example.net"), "_spf", "TXT")
    assert values(relay) == ["note", "v=spf1 ip4:192.0.2.10 ~all"]
    assert relay["ttl"] == 600


def test_the_return_path_mx_is_added_beside_an_existing_one(applied: Path, tmp_path: Path) -> None:
    other = {"exchange": "mx.other.example.", "preference": 5}
    zone = user_zone(VERIFICATION, GOOGLE_SPF, rp={"type": "MX", "value": other})
    octo = octodns_setup(tmp_path, records_of(applied), com_zone=zone)
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    mx = node(target(octo), "rp", "MX")
    assert sorted(v["exchange"] for v in mx["values"]) == ["mx.other.example.", "smtp.example.net."]
    assert "rp.example.com MX: adding smtp.example.net." in result.stderr


def test_two_spf_values_at_a_name_stop_the_sync(applied: Path, tmp_path: Path) -> None:
    octo = octodns_setup(
        tmp_path, records_of(applied), com_zone=user_zone(GOOGLE_SPF, "v=spf1 mx -all")
    )
    before = (octo / "target" / "example.com.yaml").read_text()
    result = sync(octo)
    assert result.returncode != 0
    assert "example.com already has 2 v=spf1 values" in result.stderr
    assert (octo / "target" / "example.com.yaml").read_text() == before


def test_missing_records_json_is_a_clear_error(tmp_path: Path) -> None:
    octo = octodns_setup(tmp_path, str(tmp_path / "nowhere" / "records.json"))
    result = sync(octo, doit=False)
    assert result.returncode != 0
    assert "cannot read postform's records from" in result.stderr


def test_records_go_to_the_zone_octodns_puts_their_name_in(tmp_path: Path) -> None:
    """Zones are octoDNS's: a record under a sub-zone it manages goes there, whatever zone
    records.json names. A value not known until apply is left out, with a warning."""
    owner = 'domain["example.com"]'
    records = [
        Record(
            "example.com", "rp.mail.example.com", "MX", RP_MX, "10 smtp.example.net.", 300, owner
        ),
        Record(
            "example.com", "rp.mail.example.com", "TXT", RP_SPF, f"v=spf1 {OURS} ~all", 300, owner
        ),
        Record(
            "example.com",
            "s1._domainkey.example.com",
            "TXT",
            DKIM,
            "v=DKIM1; k=ed25519; p=(known after apply)",
            300,
            'dkim["example.com/s1"]',
        ),
    ]
    (tmp_path / "records.json").write_text(render_json(records))
    octo = octodns_setup(tmp_path, str(tmp_path / "records.json"), **{"mail.example.com": {}})
    result = sync(octo)
    assert result.returncode == 0, result.stderr
    assert set(target(octo)) == {"", "www"}  # nothing of postform's at example.com
    sub = target(octo, "mail.example.com")
    assert node(sub, "rp", "MX")["value"] == {"exchange": "smtp.example.net.", "preference": 10}
    assert values(node(sub, "rp", "TXT")) == [f"v=spf1 {OURS} ~all"]
    assert "s1._domainkey.example.com TXT: not known until apply, skipped" in result.stderr


def test_nothing_else_in_postform_imports_octodns() -> None:
    """octoDNS is an optional dependency: only the processor's own module may load it."""
    importers = sorted(
        str(path.relative_to(ROOT))
        for package in ("reconciler", "relay")
        for path in python_files(package)
        if any(
            m.split(".")[0] == "octodns" or m == "reconciler.dns.octodnsmerge"
            for m in imported_modules(path)
        )
    )
    assert importers == ["reconciler/dns/octodnsmerge.py"]


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        ("v=spf1 mx -all", f"v=spf1 mx {OURS} -all"),
        ("v=spf1 a redirect=_spf.other.example", f"v=spf1 a {OURS} redirect=_spf.other.example"),
        ("v=spf1 ip4:192.0.2.1", f"v=spf1 ip4:192.0.2.1 {OURS}"),
        ("v=spf1", f"v=spf1 {OURS}"),
        (f"v=spf1 +{OURS}   ?all", f"v=spf1 +{OURS}   ?all"),  # already there: untouched
        ("V=SPF1 Include:_SPF.example.net -all", "V=SPF1 Include:_SPF.example.net -all"),
    ],
)
def test_merge_spf_places_the_include_before_the_final_term(existing: str, merged: str) -> None:
    assert merge_spf(existing, f"v=spf1 {OURS} ~all") == merged
