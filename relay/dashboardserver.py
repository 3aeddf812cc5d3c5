"""The relay's read-only web endpoint: the dashboard (`/`, `/dashboard`), its data
(`/dashboard.json`) and, when it shares the metrics address, Prometheus' `/metrics`.

Loopback by default. Bound anywhere else it needs a bearer token, taken from an
environment variable (never from the command line, where `ps` shows it): a request
without `Authorization: Bearer <token>` gets 401. `/metrics` stays open as it was, so
an existing Prometheus scrape keeps working, and a metrics address beyond loopback
gets the dashboard only when a token is set; or serve the dashboard on its own
address to keep the two apart. Only GET and HEAD; the page has no form and no script.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from relay.contract.errors import UserError
from relay.contract.hostport import split_hostport
from relay.dashboardhtml import render

TOKEN_ENV = "POSTFORM_DASHBOARD_TOKEN"
# The page is made here and inlines everything: forbid anything fetched from elsewhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(address: str, token: str | None) -> None:
    """Refuse to serve the dashboard beyond loopback without a token."""
    host, _ = split_hostport(address)
    if not is_loopback(host) and not token:
        raise UserError(
            f"the dashboard at {address} is not on loopback: set {TOKEN_ENV} to a bearer "
            "token (clients send 'Authorization: Bearer <token>'), or bind it to 127.0.0.1"
        )


class WebEndpoint:
    def __init__(
        self,
        address: str,
        snapshot: Callable[[], dict[str, Any]] | None,
        registry: CollectorRegistry | None,
        token: str | None,
    ) -> None:
        check_exposure(address, token if snapshot is not None else "metrics only")
        host, port = split_hostport(address)
        host = host.strip("[]")
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self.snapshot, self.registry, self.token = snapshot, registry, token
        self.address = address
        self.serves = [n for n, on in (("metrics", registry), ("dashboard", snapshot)) if on]
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
        server = type("Server", (_Server,), {"address_family": family})
        self.server = server((host, port), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebEndpoint:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorized(self, header: str | None) -> bool:
        if not self.token:
            return True
        given = (header or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.token.encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer (or any other failure of one request) is that
        request's end: no traceback on stderr, which carries the relay's JSON events."""


class _Handler(BaseHTTPRequestHandler):
    endpoint: WebEndpoint
    server_version = "postform-relay"
    sys_version = ""
    timeout = 30  # a client that connects and says nothing does not hold a thread

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        ep = self.endpoint
        if path == "/metrics" and ep.registry is not None:
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(ep.registry))
        elif path in ("/", "/dashboard", "/dashboard.json") and ep.snapshot is not None:
            if not ep.authorized(self.headers.get("Authorization")):
                self._send(401, "text/plain", b"a bearer token is required\n", auth=True)
                return
            try:
                snap = ep.snapshot()
            except Exception as exc:  # a fleet's table out of reach: say so, no traceback
                text = f"the dashboard's data cannot be read now: {exc}\n"
                self._send(503, "text/plain; charset=utf-8", text.encode())
                return
            if path.endswith(".json"):
                self._send(200, "application/json", json.dumps(snap, indent=1).encode())
            else:
                self._send(200, "text/html; charset=utf-8", render(snap).encode())
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, code: int, kind: str, body: bytes, auth: bool = False) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        if auth:
            self.send_header("WWW-Authenticate", 'Bearer realm="postform"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the relay's JSON log is for mail; requests are not logged
