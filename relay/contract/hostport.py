"""HOST:PORT syntax: every option and setting that names a server or a listener.

`[2001:db8::1]:587` writes an IPv6 address with a port. Where a default port
applies, a bare IPv6 address (`2001:db8::1`) or a name alone is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass

LISTENER_MODES = ("starttls", "tls", "mx")


def split_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """(host, port) of `text`; ValueError naming the expected form when it is not one.
    Brackets are removed from an IPv6 host."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not HOST:PORT (IPv6 as [::1]:587)")
        port = rest[1:] if rest else None
    elif default_port is not None and text.count(":") != 1:
        host, port = text, None  # a name, or a bare IPv6 address
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r} is not HOST:PORT")
    if port is None:
        if default_port is None:
            raise ValueError(f"{text!r} needs a port (HOST:PORT)")
        port = str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (a port is 1-65535)")
    return host, int(port)


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Listener:
    """Where the relay listens: `HOST:PORT[/starttls|/tls|/mx][+proxy]` (STARTTLS by
    default). `mx` is the inbound listener for bounce messages and complaints: STARTTLS
    offered, no AUTH, only VERP addresses at the policy's return path domains.

    `+proxy`: every connection starts with a PROXY protocol header (v1 or v2) from a
    load balancer, which names the real client. Only on STARTTLS listeners: with
    implicit TLS the handshake would come before the header could be read.
    """

    host: str
    port: int
    mode: str  # starttls | tls | mx
    proxy: bool = False

    @classmethod
    def parse(cls, text: str) -> Listener:
        address, _, spec = text.partition("/")
        mode, plus, flag = spec.partition("+")
        if (mode and mode not in LISTENER_MODES) or (plus and flag != "proxy"):
            raise ValueError(f"listener {text!r} is not HOST:PORT[/starttls|/tls|/mx][+proxy]")
        if flag and mode == "tls":
            raise ValueError(
                f"listener {text!r}: the PROXY protocol needs a STARTTLS listener (let the "
                "load balancer pass port 465 through without it, or use 587/starttls+proxy)"
            )
        try:
            host, port = split_hostport(address)
        except ValueError:
            raise ValueError(
                f"listener {text!r} is not HOST:PORT[/starttls|/tls] (IPv6 as [::1]:587)"
            ) from None
        return cls(host, port, mode or "starttls", proxy=bool(flag))

    def __str__(self) -> str:
        suffix = "+proxy" if self.proxy else ""
        return f"{join_hostport(self.host, self.port)}/{self.mode}{suffix}"
