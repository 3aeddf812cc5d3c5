"""One webhook request: a POST with http.client (no redirects followed: a 3xx is a
failure like any other non-2xx), on a daemon thread of its own so that an endpoint that
hangs holds neither the event loop nor the relay's shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

MAX_REPLY = 64 * 1024  # of the endpoint's answer, read and thrown away
T = TypeVar("T")


@functools.cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()  # the system's CAs, the host name checked


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to `url`; the answer's status (raises OSError when there is none).
    `timeout` bounds each socket operation, and the whole request gets `timeout` + 5 s:
    an endpoint that trickles its answer a byte at a time has its connection shut then,
    so this thread and its socket end too."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = threading.Timer(timeout + 5.0, _shut, (conn,))
    deadline.daemon = True
    deadline.start()
    try:
        conn.request("POST", target, body=body, headers=headers)
        reply = conn.getresponse()
        reply.read(MAX_REPLY)
        return int(reply.status)
    finally:
        deadline.cancel()
        conn.close()


def _shut(conn: http.client.HTTPConnection) -> None:
    """End a request past its deadline: the blocked read returns at once."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def endpoint(url: str) -> str:
    """The URL without its path and query (which may hold a token), for the log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def in_thread(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` on a new daemon thread; a future of the running loop for its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled: nobody waits any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="webhook-post", daemon=True).start()
    return future
