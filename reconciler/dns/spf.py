"""Enough of RFC 7208 to answer: does this SPF record authorise the relay, and
how many DNS lookups does it cost?

Lookups are counted statically over the whole include/redirect tree (the
worst case a receiver may meet), and more than 10 is flagged (RFC 7208 4.6.4).
Authorisation evaluates the record for each relay address (section 4.6).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

LOOKUP_LIMIT = 10
VOID_LIMIT = 2  # RFC 7208 4.6.4: lookups that find no records
_COUNTED = ("include", "a", "mx", "ptr", "exists", "redirect")
Query = Callable[[str, str], list[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def spf_records(texts: list[str]) -> list[str]:
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass
class SpfCheck:
    lookups: int = 0
    problems: list[str] = field(default_factory=list)
    includes: set[str] = field(default_factory=set)
    voids: list[str] = field(default_factory=list)  # terms whose lookup found nothing


def _terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, name, argument) for each term after v=spf1."""
    out = []
    for term in record.split()[1:]:
        qualifier = term[0] if term[0] in "+-~?" else "+"
        body = term[1:] if term[0] in "+-~?" else term
        if "=" in body and ":" not in body.split("=", 1)[0]:
            name, _, arg = body.partition("=")
        else:
            name, _, arg = body.partition(":")
            if "/" in name:
                name, arg = name.split("/", 1)[0], "/" + name.split("/", 1)[1]
        out.append((qualifier, name.lower(), arg))
    return out


def count_lookups(
    domain: str, query: Query, check: SpfCheck, seen: frozenset[str] = frozenset()
) -> None:
    """Add every DNS-querying term reachable from `domain`'s record to check.lookups.

    Stops descending past the 10-lookup limit (the result is already a permerror), so a
    branching include tree cannot make this run for long."""
    if domain in seen:
        check.problems.append(f"SPF include loop at {domain}")
        return
    texts = query(domain, "TXT")
    records = spf_records(texts)
    if len(records) != 1:
        if len(records) > 1:
            check.problems.append(f"{domain} has {len(records)} SPF records (permerror)")
        elif seen:
            check.problems.append(f"include:{domain} has no SPF record (permerror at receivers)")
            if not texts:
                check.voids.append(f"include:{domain}")
        return
    count_terms(domain, records[0], query, check, seen | {domain})


def count_terms(
    domain: str, record: str, query: Query, check: SpfCheck, seen: frozenset[str]
) -> None:
    """count_lookups for the record `record` published at `domain`; also notes each
    a/mx/exists term whose lookup finds nothing (a void lookup, of which receivers allow
    two). Macros are not expanded: such terms are counted, not looked up."""
    for _, name, arg in _terms(record):
        if name in _COUNTED:
            check.lookups += 1
        if check.lookups > LOOKUP_LIMIT:
            continue  # already a permerror: no need to walk further
        if name in ("include", "redirect") and arg:
            check.includes.add(arg.lower())
            count_lookups(arg.lower(), query, check, seen)
        elif name in ("a", "mx", "exists") and "%" not in arg and len(check.voids) <= VOID_LIMIT:
            target = arg.lower() if name == "exists" else _target(arg, domain)[0]
            if _void(name, target, query):
                check.voids.append(f"{name}:{target}")


def _void(mechanism: str, target: str, query: Query) -> bool:
    if mechanism == "mx":
        return not query(target, "MX")
    return not query(target, "A") and (mechanism == "exists" or not query(target, "AAAA"))


def merge_include(existing: str, include: str) -> str:
    """Insert `include` before the record's `all` (or redirect), else at the end."""
    terms = existing.split()
    for i, term in enumerate(terms):
        if term.lstrip("+-~?").lower() == "all" or term.lower().startswith("redirect="):
            return " ".join([*terms[:i], include, *terms[i:]])
    return " ".join([*terms, include])


def lookups_of(domain: str, record: str, query: Query) -> int:
    """The DNS lookups `record`, published at `domain`, costs a receiver."""
    check = SpfCheck()
    count_terms(domain, record, query, check, frozenset({domain}))
    return check.lookups


def evaluate(domain: str, ip: Address, query: Query, depth: int = 0) -> str:
    """The SPF result for `ip` sending as `domain`: pass, fail, softfail, neutral, none,
    permerror."""
    if depth > LOOKUP_LIMIT:
        return "permerror"
    records = spf_records(query(domain, "TXT"))
    if not records:
        return "none"
    if len(records) > 1:
        return "permerror"
    redirect = None
    for qualifier, name, arg in _terms(records[0]):
        if name == "redirect":
            redirect = arg
            continue
        if name == "include":
            inner = evaluate(arg.lower(), ip, query, depth + 1)
            if inner in ("permerror", "none"):
                return "permerror"  # RFC 7208 5.2: an include that errs makes the record err
            matched = inner == "pass"
        else:
            matched = _matches(name, arg, domain, ip, query)
        if matched:
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    if redirect:
        result = evaluate(redirect.lower(), ip, query, depth + 1)
        return "permerror" if result == "none" else result
    return "neutral"


def _matches(name: str, arg: str, domain: str, ip: Address, query: Query) -> bool:
    if name == "all":
        return True
    if name in ("ip4", "ip6"):
        try:
            return ip in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    if name == "a":
        target, cidr = _target(arg, domain)
        return any(_in(ip, a, cidr) for t in ("A", "AAAA") for a in query(target, t))
    if name == "mx":
        target, cidr = _target(arg, domain)
        hosts = [mx.split()[-1].rstrip(".") for mx in query(target, "MX")]
        return any(_in(ip, a, cidr) for h in hosts[:10] for t in ("A", "AAAA") for a in query(h, t))
    return False  # ptr and exists (with macros) are not evaluated: they do not match


def _target(arg: str, domain: str) -> tuple[str, str]:
    target, _, cidr = arg.partition("/")
    return (target or domain).lower(), cidr


def _in(ip: Address, address: str, cidr: str) -> bool:
    try:
        net = ipaddress.ip_network(f"{address}/{cidr}" if cidr else address, strict=False)
    except ValueError:
        return False
    return ip.version == net.version and ip in net
