from __future__ import annotations

import pytest

from reconciler.diff import diff
from reconciler.errors import UnsafePlanError
from reconciler.resources import Resource
from reconciler.safety import raise_if_unsafe, unsafe_reasons


def sender(i: int, domain: str = "example.com") -> Resource:
    return Resource("sender", f"u{i}@{domain}", {"domain": domain})


def stored(rs: list[Resource]) -> dict[str, dict[str, object]]:
    return {
        r.address: {
            "type": r.type,
            "name": r.name,
            "attributes": dict(r.attributes),
            "computed": {},
        }
        for r in rs
    }


def test_destroying_more_than_30_percent_of_ten_or_more_is_refused() -> None:
    old = [sender(i) for i in range(30)]
    keep = {r.address: r for r in old[:20]}
    plan = diff(keep, stored(old))
    with pytest.raises(UnsafePlanError) as info:
        raise_if_unsafe(plan, stored(old))
    assert "destroys or replaces 10 of 30 sender resources (33 % > 30%)" in str(info.value)
    assert "--allow-destructive" in str(info.value)


def test_at_threshold_or_with_few_resources_is_allowed() -> None:
    old = [sender(i) for i in range(10)]
    assert unsafe_reasons(diff({r.address: r for r in old[:7]}, stored(old)), stored(old)) == []
    few = old[:9]
    assert unsafe_reasons(diff({}, stored(few)), stored(few)) == []


def test_destroying_a_signing_domain_while_its_senders_remain_is_refused() -> None:
    domain = Resource("domain", "example.com", {"spf": True})
    dkim = Resource(
        "dkim",
        "example.com/s1",
        {"domain": "example.com", "selector": "s1", "algorithm": "ed25519"},
    )
    s = sender(1)
    old = stored([domain, dkim, s])
    reasons = unsafe_reasons(diff({s.address: s}, old), old)
    assert reasons == [
        "destroys domain example.com and its DKIM keys while 1 approved sender(s) "
        "at it remain: their mail would go out unsigned"
    ]
    assert unsafe_reasons(diff({}, old), old) == []
