"""DNS health for the dashboard (issue #16): the last `dns verify` per domain, summarised
into the relay policy (relays never read the state)."""

from __future__ import annotations

from dataclasses import replace

from reconciler.dns.health import dns_health
from relay.contract.policy import RelayPolicy
from relay.contract.policydoc import from_document, to_document

VERIFICATION = {
    "example.com/TXT/spf": {"status": "ok", "owner": 'domain["example.com"]',
                            "checked_at": "2026-11-28T10:00:00+00:00"},
    "a._domainkey.example.com/TXT/dkim": {"status": "ok", "owner": 'dkim["example.com/a"]',
                                          "checked_at": "2026-11-29T09:00:00+00:00"},
    "b._domainkey.example.com/TXT/dkim": {"status": "missing", "owner": 'dkim["example.com/b"]',
                                          "checked_at": "2026-11-29T09:00:00+00:00"},
    "c._domainkey.example.com/TXT/dkim": {"status": "foreign", "owner": 'dkim["example.com/c"]'},
    "_dmarc.example.org/TXT/dmarc": {"status": "mismatch", "owner": 'domain["example.org"]',
                                     "checked_at": "2026-11-27T08:00:00+00:00"},
    "rp.example.org/MX/return-path-mx": {"status": "missing", "owner": 'domain["example.org"]'},
    "_spf.example.net/TXT/relay-spf": {"status": "ok", "owner": "relay"},
}  # fmt: skip


def test_the_worst_result_of_each_kind_counts_and_the_newest_day() -> None:
    assert dns_health(VERIFICATION) == {
        "example.com": {"spf": "ok", "dkim": "missing", "checked_on": "2026-11-29"},
        "example.org": {"dmarc": "mismatch", "checked_on": "2026-11-27"},
    }


def test_the_policy_document_carries_it() -> None:
    policy = replace(RelayPolicy(serial=3, lineage="x"), dns_health=dns_health(VERIFICATION))
    back = from_document(to_document(policy))
    assert back.dns_health == policy.dns_health
    assert from_document({**to_document(policy), "dns_health": {}}).dns_health == {}
