"""Semantic checks that JSON Schema cannot express.

Each check returns reasons; none raises. They run even when the schema found
problems, so they guard every access against data of the wrong shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from reconciler import names
from reconciler.errors import Reason
from reconciler.sendertable import sender_table
from reconciler.yamlload import Document
from relay.contract.hostport import Listener
from relay.contract.settings import HARD_SIZE_LIMIT, UNSIGNED_SIZE_LIMIT, limit_defaults
from relay.contract.suppression import REASONS

Check = Callable[[Document], Iterator[Reason]]


def as_dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def limits_of(data: Any) -> dict[str, int]:
    """Declared limits over the defaults, ignoring values of the wrong type."""
    declared = as_dict(as_dict(data).get("limits"))
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
    for i, item in enumerate(as_list(as_dict(data).get(key))):
        if isinstance(item, str):
            yield i, item, (key, i)
        elif isinstance(item, dict) and isinstance(item.get("address"), str):
            yield i, item["address"], (key, i, "address")


_POSTGRES_ONLY = ("name", "dsn_env", "schema", "history", "relay_role")


def check_state(doc: Document) -> Iterator[Reason]:
    """Each backend's own keys, and no password anywhere in the file."""
    state = as_dict(as_dict(doc.data).get("state"))
    for key, why in (
        ("password", "PGPASSWORD or ~/.pgpass"),
        ("dsn", "a connection string in the environment variable `dsn_env` names"),
    ):
        if key in state:
            yield doc.reason(
                ("state", key),
                f"a password never goes in the config (anyone who can read the repository "
                f"could use it): remove `{key}` and use {why}",
                at_key=True,
            )
    if state.get("backend") == "postgres":
        if "path" in state:
            yield doc.reason(
                ("state", "path"),
                "`path` is for the local backend: a postgres state is found by its `name`",
                at_key=True,
            )
        if not isinstance(state.get("name"), str):
            yield doc.reason(
                ("state",),
                "the postgres backend needs a `name` for the state (several "
                "states may share one database)",
                at_key=True,
            )
        return
    for key in _POSTGRES_ONLY:
        if key in state:
            yield doc.reason(("state", key), f"`{key}` is for the postgres backend", at_key=True)


def check_relay(doc: Document) -> Iterator[Reason]:
    relay = as_dict(as_dict(doc.data).get("relay"))
    for key, underscore in (("hostname", False), ("spf_domain", True)):
        value = relay.get(key)
        if isinstance(value, str) and not names.is_domain(value, underscore):
            yield doc.reason(("relay", key), f"{value!r} is not a valid domain name")
    proxied = False
    for i, listener in enumerate(as_list(relay.get("listen"))):
        if not isinstance(listener, str):
            continue
        try:
            proxied |= Listener.parse(listener).proxy
        except ValueError as exc:
            yield doc.reason(("relay", "listen", i), str(exc))
    yield from _check_proxies(doc, relay, proxied)
    store = as_dict(relay.get("store")).get("backend")
    state = as_dict(as_dict(doc.data).get("state")).get("backend", "local")
    if store == "postgres" and state != "postgres":
        yield doc.reason(
            ("relay", "store", "backend"),
            "a postgres store lives in the state's database: it needs state.backend: postgres",
        )
    for key, version in (("ipv4", 4), ("ipv6", 6)):
        for i, value in enumerate(as_list(relay.get(key))):
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


def _check_proxies(doc: Document, relay: dict[Any, Any], proxied: bool) -> Iterator[Reason]:
    """A +proxy listener trusts PROXY headers only from relay.proxy_from."""
    trusted = as_list(relay.get("proxy_from"))
    for i, value in enumerate(trusted):
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            yield doc.reason(
                ("relay", "proxy_from", i), f"{value!r} is not an IP address or network"
            )
    if proxied and not trusted:
        yield doc.reason(
            ("relay", "listen"),
            "a +proxy listener needs relay.proxy_from: the load balancers' addresses (a PROXY "
            "header from anywhere else would let a client pick the address it is seen as)",
        )


def check_limits(doc: Document) -> Iterator[Reason]:
    size = limits_of(doc.data)["max_message_bytes"]
    path = ("limits", "max_message_bytes")
    if size > HARD_SIZE_LIMIT:
        yield doc.reason(path, f"{size} is above 60 MiB ({HARD_SIZE_LIMIT}), the largest allowed")
        return
    if size <= UNSIGNED_SIZE_LIMIT:
        return
    domains = as_dict(as_dict(doc.data).get("domains"))
    sending = set(sender_table(doc).domains) - {""}
    has_spf_domain = isinstance(as_dict(as_dict(doc.data).get("relay")).get("spf_domain"), str)
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
            body = as_dict(body)
            return body.get("spf", True) is True and bool(as_list(body.get("dkim")))
    return False


def check_senders(doc: Document) -> Iterator[Reason]:
    limit = limits_of(doc.data)["max_approved_senders"]
    table = sender_table(doc)
    if table.clean and len(table.keys) <= limit:
        return
    count = 0
    for row, key in enumerate(table.keys):
        path = table.path(row)
        if key is None:
            yield doc.reason(path, f"{table.written[row]!r} is not a valid email address")
            continue
        if table.first[key] != row:
            yield doc.reason(
                path,
                f"duplicate sender {table.written[row]!r} (same as "
                f"{doc.mention(('senders', table.index[table.first[key]]))}; "
                "domains compare case-insensitively)",
            )
            continue
        count += 1
        if count == limit + 1:
            yield doc.reason(
                path,
                f"more approved senders than limits.max_approved_senders "
                f"({limit}): this is number {count}",
            )


def check_users(doc: Document) -> Iterator[Reason]:
    data = as_dict(doc.data)
    approved = sender_table(doc).first
    limit = limits_of(data)["credentials_per_user"]
    for name, body in as_dict(data.get("users")).items():
        path = ("users", name)
        if not isinstance(name, str) or not names.NAME.fullmatch(name):
            yield doc.reason(
                path,
                f"{name!r} is not a valid user name (letters, digits, '.', '_', '-'; at most 63)",
                at_key=True,
            )
        body = as_dict(body)
        for i, address in enumerate(as_list(body.get("senders"))):
            key = names.normalize_address(address) if isinstance(address, str) else ""
            if key is None or (key and key not in approved):
                yield doc.reason(
                    (*path, "senders", i),
                    f"{address!r} is not an approved sender (add it to senders:)",
                )
        creds = as_list(body.get("credentials"))
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
    for i, item in enumerate(as_list(as_dict(doc.data).get("suppressions"))):
        reason = as_dict(item).get("reason")
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
                path,
                f"{address!r} is already suppressed at {doc.mention(('suppressions', first[key]))}",
            )
        else:
            first[key] = i
