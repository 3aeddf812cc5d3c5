"""The SPF evaluator's logic over a table of records (the live tests use Knot)."""

from __future__ import annotations

import ipaddress

from reconciler.dns.spf import SpfCheck, count_lookups, evaluate, merge_include

ZONE = {
    ("example.com", "TXT"): ["v=spf1 a mx include:_spf.relay.example -all", "other text"],
    ("example.com", "A"): ["198.51.100.7"],
    ("example.com", "MX"): ["10 mx1.example.com."],
    ("mx1.example.com", "A"): ["198.51.100.25"],
    ("_spf.relay.example", "TXT"): ["v=spf1 ip4:192.0.2.0/28 ip6:2001:db8::/48 ~all"],
    ("redirected.example", "TXT"): ["v=spf1 redirect=_spf.relay.example"],
    ("two.example", "TXT"): ["v=spf1 -all", "v=spf1 +all"],
    ("loop.example", "TXT"): ["v=spf1 include:loop.example -all"],
}


def query(name: str, rtype: str) -> list[str]:
    return ZONE.get((name, rtype), [])


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_mechanisms_match_in_order() -> None:
    assert evaluate("example.com", ip("198.51.100.7"), query) == "pass"  # a
    assert evaluate("example.com", ip("198.51.100.25"), query) == "pass"  # mx
    assert evaluate("example.com", ip("192.0.2.5"), query) == "pass"  # include -> ip4
    assert evaluate("example.com", ip("2001:db8::1"), query) == "pass"  # include -> ip6
    assert evaluate("example.com", ip("203.0.113.1"), query) == "fail"  # -all


def test_redirect_none_and_permerror() -> None:
    assert evaluate("redirected.example", ip("192.0.2.1"), query) == "pass"
    assert evaluate("redirected.example", ip("203.0.113.1"), query) == "softfail"
    assert evaluate("nothing.example", ip("192.0.2.1"), query) == "none"
    assert evaluate("two.example", ip("192.0.2.1"), query) == "permerror"
    assert evaluate("loop.example", ip("192.0.2.1"), query) == "permerror"


def test_lookup_count_walks_the_include_tree() -> None:
    check = SpfCheck()
    count_lookups("example.com", query, check)
    assert check.lookups == 3  # a, mx, include
    assert check.includes == {"_spf.relay.example"}
    loop = SpfCheck()
    count_lookups("loop.example", query, loop)
    assert loop.problems == ["SPF include loop at loop.example"]


def test_merge_include_goes_before_all_or_redirect() -> None:
    inc = "include:_spf.example.net"
    assert merge_include("v=spf1 mx -all", inc) == f"v=spf1 mx {inc} -all"
    assert merge_include("v=spf1 redirect=x.example", inc) == f"v=spf1 {inc} redirect=x.example"
    assert merge_include("v=spf1 mx", inc) == f"v=spf1 mx {inc}"


def test_include_without_a_record_is_a_problem_and_wide_trees_stop_early() -> None:
    zone = {("a.example", "TXT"): ["v=spf1 include:missing.example -all"]}
    check = SpfCheck()
    count_lookups("a.example", lambda n, t: zone.get((n, t), []), check)
    assert check.problems == ["include:missing.example has no SPF record (permerror at receivers)"]
    wide: dict[tuple[str, str], list[str]] = {}
    for level in range(30):  # 2^30 paths if walked naively
        wide[(f"l{level}.example", "TXT")] = [
            f"v=spf1 include:l{level + 1}.example include:l{level + 1}.example -all"
        ]
    calls = []

    def query(name: str, rtype: str) -> list[str]:
        calls.append(name)
        return wide.get((name, rtype), [])

    deep = SpfCheck()
    count_lookups("l0.example", query, deep)
    assert deep.lookups > 10 and len(calls) < 100
