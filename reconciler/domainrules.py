"""Semantic checks of the domains a config declares: DKIM selectors, DMARC report
addresses, return paths and the SPF they need, and senders whose mail would go out
unsigned. Like rules.py, each check returns reasons and never raises."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from reconciler import names
from reconciler.errors import Reason
from reconciler.retirement import DEFAULT_RETENTION_DAYS
from reconciler.rules import as_dict, as_list
from reconciler.sendertable import sender_table
from reconciler.yamlload import Document
from relay.contract.settings import DeliverySettings

_DMARC_SIZE = re.compile(r"[0-9]+[kKmMgGtT]?")


def check_domains(doc: Document) -> Iterator[Reason]:
    seen: dict[str, str] = {}
    for name, body in as_dict(as_dict(doc.data).get("domains")).items():
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
        yield from _check_dkim(doc, path, as_dict(body))
        yield from _check_dmarc(doc, (*path, "dmarc"), as_dict(as_dict(body).get("dmarc")))


def _check_dkim(doc: Document, path: tuple[Any, ...], body: dict[Any, Any]) -> Iterator[Reason]:
    selectors: set[str] = set()
    for i, item in enumerate(as_list(body.get("dkim"))):
        selector = as_dict(item).get("selector")
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
        for i, uri in enumerate(as_list(dmarc.get(key))):
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


def check_retention(doc: Document) -> Iterator[Reason]:
    """A retired DKIM selector's record must outlive every message signed with it: no
    relay keeps a message longer than relay.delivery.max_age (reconciler/retirement.py)."""
    data = as_dict(doc.data)
    days = as_dict(data.get("dns")).get("dkim_retention_days", DEFAULT_RETENTION_DAYS)
    max_age = as_dict(as_dict(as_dict(data.get("relay")).get("delivery"))).get("max_age")
    if not isinstance(max_age, int | float) or isinstance(max_age, bool):
        max_age = DeliverySettings().max_age
    if isinstance(days, int | float) and not isinstance(days, bool) and days * 86_400 < max_age:
        yield doc.reason(
            ("dns", "dkim_retention_days"),
            f"{days:g} day(s) is shorter than relay.delivery.max_age ({max_age:g} s): a "
            "message signed with a retired selector could still be queued when its record "
            "goes",
        )


def warn_unsigned(doc: Document) -> Iterator[Reason]:
    domains = as_dict(as_dict(doc.data).get("domains"))
    signed = {
        n.lower()
        for n, b in domains.items()
        if isinstance(n, str) and as_list(as_dict(b).get("dkim"))
    }
    table = sender_table(doc)
    unsigned: dict[str, list[int]] = {}
    for row, domain in enumerate(table.domains):
        if domain and domain not in signed:
            unsigned.setdefault(domain, []).append(row)
    for domain, rows in unsigned.items():
        more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
        yield doc.reason(
            table.path(rows[0]),
            f"domain {domain} has no DKIM selector: mail from {table.written[rows[0]]}{more} "
            "will be sent unsigned",
            severity="warning",
        )


def check_dns_inputs(doc: Document) -> Iterator[Reason]:
    """Return paths must be domains served by the relay; SPF needs the relay's SPF domain."""
    relay = as_dict(as_dict(doc.data).get("relay"))
    spf_needed = []
    for name, body in as_dict(as_dict(doc.data).get("domains")).items():
        body = as_dict(body)
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
