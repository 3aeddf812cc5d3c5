"""Semantic checks that JSON Schema cannot express.

Each check returns reasons; none raises. They run even when the schema found
problems, so they guard every access against data of the wrong shape.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from reconciler import names
from reconciler.errors import Reason
from reconciler.yamlload import Document
from relay.contract.hostport import Listener
from relay.contract.policy import HARD_SIZE_LIMIT, UNSIGNED_SIZE_LIMIT, limit_defaults
from relay.contract.suppression import REASONS

Check = Callable[[Document], Iterator[Reason]]
_DMARC_SIZE = re.compile(r"[0-9]+[kKmMgGtT]?")


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def limits_of(data: Any) -> dict[str, int]:
    """Declared limits over the defaults, ignoring values of the wrong type."""
    declared = _dict(_dict(data).get("limits"))
    out = limit_defaults()
    out.update(
        {
            k: v
            for k, v in declared.items()
            if k in out and isinstance(v, int) and not isinstance(v, bool)
        }
    )
    return out


def address_entries(data: Any, key: str) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
    """(index, address, path to the address node) for each well-formed item of a list
    whose items are an address or a mapping with `address` (senders, suppressions)."""
    for i, item in enumerate(_list(_dict(data).get(key))):
        if isinstance(item, str):
            yield i, item, (key, i)
        elif isinstance(item, dict) and isinstance(item.get("address"), str):
            yield i, item["address"], (key, i, "address")


SenderRow = tuple[int, str, tuple[Any, ...], tuple[str, str] | None]


def senders_of(doc: Document) -> list[SenderRow]:
    """Each sender with its (local, domain) split, computed once per document."""
    rows = doc.memo.get("senders")
    if rows is None:
        rows = [
            (i, a, p, names.split_address(a)) for i, a, p in address_entries(doc.data, "senders")
        ]
        doc.memo["senders"] = rows
    return rows


def check_relay(doc: Document) -> Iterator[Reason]:
    relay = _dict(_dict(doc.data).get("relay"))
    for key, underscore in (("hostname", False), ("spf_domain", True)):
        value = relay.get(key)
        if isinstance(value, str) and not names.is_domain(value, underscore):
            yield doc.reason(("relay", key), f"{value!r} is not a valid domain name")
    for i, listener in enumerate(_list(relay.get("listen"))):
        if isinstance(listener, str) and not _is_listener(listener):
            yield doc.reason(
                ("relay", "listen", i),
                f"{listener!r} is not HOST:PORT, "
                "HOST:PORT/starttls or HOST:PORT/tls (IPv6 as [::1]:587)",
            )
    for key, version in (("ipv4", 4), ("ipv6", 6)):
        for i, value in enumerate(_list(relay.get(key))):
            if not isinstance(value, str):
                continue
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                net = None
            if net is None or net.version != version:
                yield doc.reason(
                    ("relay", key, i), f"{value!r} is not an IPv{version} address or network"
                )


def _is_listener(text: str) -> bool:
    try:
        Listener.parse(text)
    except ValueError:
        return False
    return True


def check_limits(doc: Document) -> Iterator[Reason]:
    size = limits_of(doc.data)["max_message_bytes"]
    path = ("limits", "max_message_bytes")
    if size > HARD_SIZE_LIMIT:
        yield doc.reason(path, f"{size} is above 60 MiB ({HARD_SIZE_LIMIT}), the largest allowed")
        return
    if size <= UNSIGNED_SIZE_LIMIT:
        return
    domains = _dict(_dict(doc.data).get("domains"))
    sending = {parts[1] for *_, parts in senders_of(doc) if parts}
    has_spf_domain = isinstance(_dict(_dict(doc.data).get("relay")).get("spf_domain"), str)
    weak = sorted(d for d in sending if not (has_spf_domain and _signed_with_spf(domains, d)))
    if weak:
        yield doc.reason(
            path,
            f"{size} is above 2 MiB, which needs SPF and DKIM on every "
            f"sending domain; without them: {', '.join(weak)}",
        )


def _signed_with_spf(domains: dict[Any, Any], domain: str) -> bool:
    for name, body in domains.items():
        if isinstance(name, str) and name.lower() == domain:
            body = _dict(body)
            return body.get("spf", True) is True and bool(_list(body.get("dkim")))
    return False


def check_domains(doc: Document) -> Iterator[Reason]:
    seen: dict[str, str] = {}
    for name, body in _dict(_dict(doc.data).get("domains")).items():
        path = ("domains", name)
        if not isinstance(name, str) or not names.is_domain(name):
            yield doc.reason(path, f"{name!r} is not a valid domain name", at_key=True)
            continue
        if name.lower() in seen:
            yield doc.reason(
                path,
                f"domain {name!r} is declared twice (also as {seen[name.lower()]!r})",
                at_key=True,
            )
        seen[name.lower()] = name
        yield from _check_dkim(doc, path, _dict(body))
        yield from _check_dmarc(doc, (*path, "dmarc"), _dict(_dict(body).get("dmarc")))


def _check_dkim(doc: Document, path: tuple[Any, ...], body: dict[Any, Any]) -> Iterator[Reason]:
    selectors: set[str] = set()
    for i, item in enumerate(_list(body.get("dkim"))):
        selector = _dict(item).get("selector")
        if not isinstance(selector, str):
            continue
        where = (*path, "dkim", i, "selector")
        if not names.is_selector(selector):
            yield doc.reason(
                where,
                f"{selector!r} is not a valid DNS label (letters, digits and '-', not "
                "starting or ending with '-'; dots separate labels; at most 63 characters)",
            )
        elif selector.lower() in selectors:
            yield doc.reason(where, f"selector {selector!r} is declared twice in this domain")
        selectors.add(selector.lower())


def _check_dmarc(doc: Document, path: tuple[Any, ...], dmarc: dict[Any, Any]) -> Iterator[Reason]:
    for key in ("rua", "ruf"):
        for i, uri in enumerate(_list(dmarc.get(key))):
            if not isinstance(uri, str):
                continue
            scheme, _, rest = uri.partition(":")
            target = rest if scheme.lower() == "mailto" else None
            if target is not None and "!" in target:
                target, _, size = target.partition("!")
                if not _DMARC_SIZE.fullmatch(size):
                    target = None  # RFC 7489 6.2: a size limit is digits and a unit letter
            if target is None or names.split_address(target.split("!")[0]) is None:
                yield doc.reason(
                    (*path, key, i), f"{uri!r} is not a mailto: URI with a valid address"
                )


def check_senders(doc: Document) -> Iterator[Reason]:
    limit = limits_of(doc.data)["max_approved_senders"]
    first: dict[str, int] = {}
    count = 0
    for i, address, path, parts in senders_of(doc):
        key = None if parts is None else f"{parts[0]}@{parts[1]}"
        if key is None:
            yield doc.reason(path, f"{address!r} is not a valid email address")
            continue
        if key in first:
            yield doc.reason(
                path,
                f"duplicate sender {address!r} (same as senders[{first[key]}]; "
                "domains compare case-insensitively)",
            )
            continue
        first[key] = i
        count += 1
        if count == limit + 1:
            yield doc.reason(
                path,
                f"more approved senders than limits.max_approved_senders "
                f"({limit}): this is number {count}",
            )


def check_users(doc: Document) -> Iterator[Reason]:
    data = _dict(doc.data)
    approved = {f"{p[0]}@{p[1]}" for *_, p in senders_of(doc) if p}
    limit = limits_of(data)["credentials_per_user"]
    for name, body in _dict(data.get("users")).items():
        path = ("users", name)
        if not isinstance(name, str) or not names.NAME.fullmatch(name):
            yield doc.reason(
                path,
                f"{name!r} is not a valid user name (letters, digits, '.', '_', '-'; at most 63)",
                at_key=True,
            )
        body = _dict(body)
        for i, address in enumerate(_list(body.get("senders"))):
            if isinstance(address, str) and names.normalize_address(address) not in approved:
                yield doc.reason(
                    (*path, "senders", i),
                    f"{address!r} is not an approved sender (add it to senders:)",
                )
        creds = _list(body.get("credentials"))
        seen: set[Any] = set()
        for i, cred in enumerate(creds):
            if isinstance(cred, str) and not names.NAME.fullmatch(cred):
                yield doc.reason(
                    (*path, "credentials", i),
                    f"{cred!r} is not a valid credential "
                    "name (letters, digits, '.', '_', '-'; at most 63)",
                )
            elif isinstance(cred, str) and cred in seen:
                yield doc.reason((*path, "credentials", i), f"credential {cred!r} is listed twice")
            seen.add(cred)
        if len(creds) > limit:
            yield doc.reason(
                (*path, "credentials", limit),
                f"user has {len(creds)} credentials; limits.credentials_per_user allows {limit}",
            )


def check_suppressions(doc: Document) -> Iterator[Reason]:
    for i, item in enumerate(_list(_dict(doc.data).get("suppressions"))):
        reason = _dict(item).get("reason")
        if isinstance(reason, str) and reason.upper() not in REASONS:
            yield doc.reason(
                ("suppressions", i, "reason"),
                f"{reason!r} is not one of: {', '.join(REASONS)} (any case)",
            )
    first: dict[str, int] = {}
    for i, address, path in address_entries(doc.data, "suppressions"):
        key = names.normalize_address(address)
        if key is None:
            yield doc.reason(path, f"{address!r} is not a valid email address")
        elif key in first:
            yield doc.reason(
                path, f"{address!r} is already suppressed at suppressions[{first[key]}]"
            )
        else:
            first[key] = i


def warn_unsigned(doc: Document) -> Iterator[Reason]:
    domains = _dict(_dict(doc.data).get("domains"))
    signed = {
        n.lower() for n, b in domains.items() if isinstance(n, str) and _list(_dict(b).get("dkim"))
    }
    unsigned: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    for _, address, path, parts in senders_of(doc):
        if parts and parts[1] not in signed:
            unsigned.setdefault(parts[1], []).append((address, path))
    for domain, rows in unsigned.items():
        address, path = rows[0]
        more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        yield doc.reason(
            path,
            f"domain {domain} has no DKIM selector: mail from {address}{more} "
            "will be sent unsigned",
            severity="warning",
        )


def check_dns_inputs(doc: Document) -> Iterator[Reason]:
    """Return paths must be domains served by the relay; SPF needs the relay's SPF domain."""
    relay = _dict(_dict(doc.data).get("relay"))
    spf_needed = []
    for name, body in _dict(_dict(doc.data).get("domains")).items():
        body = _dict(body)
        if body.get("spf", True) is True:
            spf_needed.append(name)
        rp = body.get("return_path")
        if not isinstance(rp, str):
            continue
        path = ("domains", name, "return_path")
        if not names.is_domain(rp):
            yield doc.reason(path, f"{rp!r} is not a valid domain name")
        elif not isinstance(relay.get("hostname"), str):
            yield doc.reason(path, "a return path needs relay.hostname: its MX points there")
        elif isinstance(name, str) and not rp.lower().endswith("." + name.lower()):
            yield doc.reason(
                path,
                f"{rp} is not under {name}: SPF on the return path will "
                "not align with the From domain for DMARC",
                severity="warning",
            )
    if spf_needed and not isinstance(relay.get("spf_domain"), str):
        more = f" and {len(spf_needed) - 1} more" if len(spf_needed) > 1 else ""
        yield doc.reason(
            ("domains", spf_needed[0]),
            f"no SPF record is produced for "
            f"{spf_needed[0]}{more} until relay.spf_domain is set (or set spf: "
            "false)",
            at_key=True,
            severity="warning",
        )


CHECKS: tuple[Check, ...] = (
    check_relay,
    check_limits,
    check_domains,
    check_senders,
    check_users,
    check_suppressions,
    check_dns_inputs,
    warn_unsigned,
)


def rule_reasons(doc: Document) -> list[Reason]:
    return [reason for check in CHECKS for reason in check(doc)]
