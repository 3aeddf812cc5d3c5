"""What JSON Schema cannot say about relay.webhooks: names unique and of the form the
metrics use, a URL a relay can POST to (with no password in it: the state keeps it in
clear), and an environment variable's name for the secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from reconciler.errors import Reason
from reconciler.rules import as_dict, as_list
from reconciler.yamlload import Document

NAME = re.compile(r"[a-z0-9_-]+")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_webhooks(doc: Document) -> Iterator[Reason]:
    first: dict[str, int] = {}
    for i, hook in enumerate(as_list(as_dict(as_dict(doc.data).get("relay")).get("webhooks"))):
        hook = as_dict(hook)
        name, url, variable = hook.get("name"), hook.get("url"), hook.get("secret_env")
        at = ("relay", "webhooks", i)
        if isinstance(name, str):
            if not NAME.fullmatch(name):
                yield doc.reason(
                    (*at, "name"),
                    f"{name!r} is not a valid webhook name (lower-case letters, digits, _ and -)",
                )
            elif name in first:
                yield doc.reason(
                    (*at, "name"),
                    f"duplicate webhook name {name!r} (same as "
                    f"{doc.mention(('relay', 'webhooks', first[name]))})",
                )
            else:
                first[name] = i
        if isinstance(url, str):
            problem = url_problem(url)
            if problem:
                yield doc.reason((*at, "url"), problem)
        if isinstance(variable, str) and not VARIABLE.fullmatch(variable):
            yield doc.reason(
                (*at, "secret_env"),
                f"{variable!r} is not an environment variable name (letters, digits and _): "
                "secret_env names the variable that holds the secret, never the secret",
            )


def url_problem(url: str) -> str | None:
    """Why a relay cannot (or must not) POST to `url`; None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return (
            "a password never goes in the config (anyone who can read the repository could "
            "use it): remove the user:password@ part; the signature authenticates the relay"
        )
    if any(c.isspace() for c in url):
        return f"{url!r} holds white space"
    return None
