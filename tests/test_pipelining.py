"""Outbound PIPELINING (RFC 2920, issue #12): with a destination that offers it, MAIL,
every RCPT and DATA leave in one write; without it, one command per round trip. A TCP
proxy on loopback between the relay's worker and a real SMTP server (aiosmtpd) records
what the worker wrote in each read; the Postfix bounce test covers a real MTA."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.smtpclient import encode_body
from tests.destinations import Destination
from tests.relayproc import message
from tests.test_delivery import Clock, start_world, worker_for

PIPE_RECORDS = [
    ("pipe.example.org", "MX", "10 mxp.example.org."),
    ("mxp.example.org", "A", "127.0.0.22"),
]


class Proxy:
    """Forwards 127.0.0.22:port to the destination at 127.0.0.23:port, keeping each
    chunk the client sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.chunks: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.sessions: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.22", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        if self.sessions:  # the worker has sent QUIT: each side closes
            await asyncio.wait(self.sessions, timeout=5)
        await self.server.wait_closed()

    async def _session(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.23", self.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
            while chunk := await src.read(65536):
                if keep:
                    self.chunks.append(chunk)
                dst.write(chunk)
                await dst.drain()
            dst.close()

        both = asyncio.gather(
            pump(client_r, server_w, True), pump(server_r, client_w, False), return_exceptions=True
        )
        self.sessions.append(both)
        await both
        for writer in (client_w, server_w):
            writer.close()
            await writer.wait_closed()


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[dict[str, Any]]:
    world_gen = start_world(tmp_path)
    world = next(world_gen)
    world["knot"].update("example.org", add=PIPE_RECORDS)
    world["pipe_dest"] = Destination("127.0.0.23", world["port"]).start()
    try:
        yield world
    finally:
        world["pipe_dest"].stop()
        next(world_gen, None)


def _submit_three(world: dict[str, Any], body: str = "Hi there.\r\n") -> None:
    client = world["relay"].smtp()
    client.mail("alerts@rsa.example")  # no return path: one transaction for all three
    for name in ("a", "b", "c"):
        assert client.rcpt(f"{name}@pipe.example.org")[0] == 250
    assert client.data(message("alerts@rsa.example", body=body))[0] == 250
    client.quit()


def _deliver_through_proxy(world: dict[str, Any]) -> list[bytes]:
    worker = worker_for(world, Clock())
    proxy = Proxy(world["port"])

    async def scenario() -> None:
        await proxy.start()
        try:
            assert await worker.run_once() == 1
        finally:
            await proxy.stop()

    asyncio.run(scenario())
    return proxy.chunks


def test_mail_every_rcpt_and_data_go_in_one_write_when_pipelining_is_offered(pipe) -> None:
    pipe["pipe_dest"].recorder.pipelining = True
    _submit_three(pipe)
    chunks = _deliver_through_proxy(pipe)
    (got,) = pipe["pipe_dest"].recorder.messages
    assert sorted(got.rcpt_tos) == [
        "a@pipe.example.org",
        "b@pipe.example.org",
        "c@pipe.example.org",
    ]
    (group,) = [c for c in chunks if b"MAIL FROM:" in c]
    assert group.count(b"RCPT TO:") == 3 and group.endswith(b"DATA\r\n"), group


def test_without_pipelining_each_command_waits_for_its_reply(pipe) -> None:
    _submit_three(pipe)
    chunks = _deliver_through_proxy(pipe)
    assert len(pipe["pipe_dest"].recorder.messages) == 1
    (mail,) = [c for c in chunks if b"MAIL FROM:" in c]
    assert b"RCPT" not in mail
    assert sum(c.count(b"RCPT TO:") for c in chunks) == 3


def test_lines_starting_with_a_dot_and_bare_line_feeds_arrive_as_sent(pipe) -> None:
    pipe["pipe_dest"].recorder.pipelining = True
    _submit_three(pipe, body=".hidden\r\n..two\r\n.\r\nend\r\n")
    _deliver_through_proxy(pipe)
    (got,) = pipe["pipe_dest"].recorder.messages
    assert got.data.endswith(b"\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n"), got.data[-60:]
    assert encode_body(b"a\n.b\rc") == b"a\r\n..b\r\nc\r\n.\r\n"


def test_a_kept_session_needs_rset_only_after_a_transaction_without_a_body(pipe) -> None:
    recorder = pipe["pipe_dest"].recorder
    recorder.pipelining = True
    recorder.hard.add("gone@pipe.example.org")
    worker = worker_for(pipe, Clock())
    proxy = Proxy(pipe["port"])

    async def one_pass(rcpt: str) -> None:
        client = pipe["relay"].smtp()
        client.sendmail("alerts@rsa.example", [rcpt], message("alerts@rsa.example"))
        client.quit()
        await worker.run_once(wait=False)
        await asyncio.gather(*list(worker._tasks))

    async def scenario() -> None:
        await proxy.start()
        try:
            await one_pass("a@pipe.example.org")
            await one_pass("b@pipe.example.org")  # right after a body: no RSET
            assert b"RSET" not in b"".join(proxy.chunks)
            await one_pass("gone@pipe.example.org")  # refused at RCPT: no body sent
            await one_pass("c@pipe.example.org")
            await worker.sessions.sweep(everything=True)
        finally:
            await proxy.stop()

    asyncio.run(scenario())
    sent = b"".join(proxy.chunks)
    assert sent.count(b"RSET\r\n") == 1
    assert sent.index(b"RSET\r\n") < sent.index(b"RCPT TO:<c@pipe.example.org>")
    assert recorder.sessions == 1 and recorder.copies_for("c@pipe.example.org") == 1
