"""Outbound TLS policy and per-destination settings (issue #12): MTA-STS (RFC 8461) with
Knot serving the `_mta-sts` TXT record and the MX, a real HTTPS server on loopback
serving the policy under a test CA, real SMTP destinations with and without verifiable
certificates; and the YAML's `relay.delivery.destinations` (tls, rate, concurrency)."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from relay.contract.settings import DestinationRule, delivery_settings
from relay.queuestate import load_state
from tests.destinations import Destination
from tests.knot import free_port
from tests.relayproc import RelayProcess
from tests.test_delivery import Clock, events, start_world, submit, worker_for

STS_RECORDS = [
    ("sts.example.org", "MX", "10 mx.sts.example.org."),
    ("mx.sts.example.org", "A", "127.0.0.21"),
    ("mta-sts.sts.example.org", "A", "127.0.0.20"),
    ("_mta-sts.sts.example.org", "TXT", '"v=STSv1; id=20261129"'),
]
POLICY = "version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


class PolicyServer:
    """https://mta-sts.sts.example.org/.well-known/mta-sts.txt on 127.0.0.20."""

    def __init__(self, ca: trustme.CA, port: int) -> None:
        self.text = POLICY.format(mode="enforce", mx="mx.sts.example.org")
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                ok = self.path == "/.well-known/mta-sts.txt"
                body = owner.text.encode() if ok else b"not found"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.20", port), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("mta-sts.sts.example.org").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _tls_destination(ca: trustme.CA, port: int) -> Destination:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.sts.example.org").configure_cert(context)
    return Destination("127.0.0.21", port, tls=context).start()


@pytest.fixture
def sts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The delivery world plus sts.example.org: an MTA-STS policy served over HTTPS and
    an MX host with a certificate from the CA the relay trusts (SSL_CERT_FILE)."""
    world_gen = start_world(tmp_path)
    world = next(world_gen)
    world["knot"].update("example.org", add=STS_RECORDS)
    trusted = trustme.CA()
    trusted.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    world["https_port"] = free_port()
    world["policy"] = PolicyServer(trusted, world["https_port"])
    world["ca"] = trusted
    try:
        yield world
    finally:
        world["policy"].stop()
        dest = world.get("sts_dest")
        if dest is not None:
            dest.stop()
        next(world_gen, None)


def _worker(world: dict[str, Any], clock: Clock | None = None) -> Any:
    worker = worker_for(world, clock or Clock())
    worker.router.tls.sts.port = world["https_port"]
    return worker


def _deliver(worker: Any) -> None:
    asyncio.run(worker.run_once())


def _set_delivery(relay: RelayProcess, delivery: str) -> None:
    config = relay.folder / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "  ipv4: [192.0.2.10]\n", f"  ipv4: [192.0.2.10]\n  delivery: {delivery}\n"
        )
    )
    relay.apply()


def test_an_enforced_policy_delivers_over_verified_tls_and_is_cached(sts) -> None:
    sts["sts_dest"] = dest = _tls_destination(sts["ca"], sts["port"])
    clock = Clock()
    worker = _worker(sts, clock)
    submit(sts["relay"], "a@sts.example.org")
    _deliver(worker)
    (got,) = dest.recorder.messages
    assert got.tls is True
    (seen,) = events(sts, "mta_sts_policy")
    assert seen["mode"] == "enforce" and seen["mx"] == ["mx.sts.example.org"]
    submit(sts["relay"], "b@sts.example.org")
    _deliver(worker)
    assert dest.recorder.copies_for("b@sts.example.org") == 1
    assert sts["policy"].requests == 1  # the second message used the cached policy
    # A new policy id in DNS is noticed at the next look at the record (5 minutes).
    sts["knot"].update(
        "example.org",
        delete=[("_mta-sts.sts.example.org", "TXT")],
        add=[("_mta-sts.sts.example.org", "TXT", '"v=STSv1; id=2"')],
    )
    clock.now += 301
    submit(sts["relay"], "c@sts.example.org")
    _deliver(worker)
    assert sts["policy"].requests == 2 and dest.recorder.copies_for("c@sts.example.org") == 1


def test_enforce_refuses_an_unverifiable_certificate_and_an_unlisted_mx(sts) -> None:
    sts["sts_dest"] = dest = _tls_destination(trustme.CA(), sts["port"])  # another CA
    submit(sts["relay"], "a@sts.example.org")
    _deliver(_worker(sts))
    assert not dest.recorder.messages
    (deferred,) = events(sts, "deferred")
    assert "certificate verify failed" in deferred["reply"], deferred
    # A policy that does not list the MX host: no session is opened at all.
    sts["policy"].text = POLICY.format(mode="enforce", mx="*.elsewhere.example")
    sessions = dest.recorder.sessions
    submit(sts["relay"], "b@sts.example.org")
    _deliver(_worker(sts))
    assert dest.recorder.sessions == sessions and not dest.recorder.messages
    assert "4.7.5 no MX host of sts.example.org" in events(sts, "deferred")[-1]["reply"]


def test_testing_mode_and_a_yaml_override_deliver_where_enforce_would_not(sts) -> None:
    sts["sts_dest"] = dest = _tls_destination(trustme.CA(), sts["port"])  # untrusted cert
    sts["policy"].text = POLICY.format(mode="testing", mx="mx.sts.example.org")
    submit(sts["relay"], "a@sts.example.org")
    _deliver(_worker(sts))
    assert dest.recorder.copies_for("a@sts.example.org") == 1
    sts["policy"].text = POLICY.format(mode="enforce", mx="mx.sts.example.org")
    _set_delivery(sts["relay"], "{destinations: {sts.example.org: {tls: none}}}")
    submit(sts["relay"], "b@sts.example.org")
    _deliver(_worker(sts))
    (got,) = [m for m in dest.recorder.messages if "b@sts.example.org" in m.rcpt_tos]
    assert got.tls is False  # the YAML said none: no STARTTLS, whatever the policy says


def test_tls_verify_in_the_yaml_defers_without_a_valid_certificate(sts) -> None:
    _set_delivery(sts["relay"], "{destinations: {example.org: {tls: verify}}}")
    submit(sts["relay"], "a@example.org")  # mx1 offers no STARTTLS at all
    _deliver(_worker(sts))
    assert not sts["dests"]["mx1"].recorder.messages
    assert "STARTTLS required but not offered" in events(sts, "deferred")[-1]["reply"]


def test_a_destination_rate_spaces_messages_without_counting_attempts(sts) -> None:
    _set_delivery(sts["relay"], "{destinations: {example.org: {rate: 6}}}")  # one per 10 s
    relay, mx1 = sts["relay"], sts["dests"]["mx1"].recorder
    ids = [submit(relay, f"r{i}@example.org", sender="alerts@rsa.example") for i in range(3)]
    clock = Clock()
    worker = _worker(sts, clock)
    _deliver(worker)
    assert len(mx1.messages) == 1
    queue = relay.spool()
    waiting = [load_state(queue, q) for q in ids if (queue / f"{q}.msg").exists()]
    assert len(waiting) == 2
    for state in waiting:
        assert state is not None
        (entry,) = state.recipients.values()
        assert entry.attempts == 0 and entry.next_attempt > clock.now + 5
    clock.now += 10
    _deliver(worker)
    assert len(mx1.messages) == 2  # one more turn, not two
    clock.now += 10
    _deliver(worker)
    assert len(mx1.messages) == 3 and not events(sts, "deferred")


def test_a_destination_concurrency_override_holds_it_to_one_session(sts) -> None:
    _set_delivery(
        sts["relay"], "{per_destination: 8, destinations: {example.org: {concurrency: 1}}}"
    )
    relay, mx1 = sts["relay"], sts["dests"]["mx1"].recorder
    for i in range(6):
        submit(relay, f"c{i}@example.org", sender="alerts@rsa.example")
    _deliver(_worker(sts))
    assert len(mx1.messages) == 6 and mx1.sessions == 1


def test_destination_rules_match_the_domain_then_its_parents_dot_rule() -> None:
    settings = delivery_settings(
        {"destinations": {"Example.ORG": {"rate": 5}, ".example.org": {"tls": "verify"}}}
    )
    assert settings.rule("example.org") == DestinationRule(rate=5)
    assert settings.rule("a.b.example.org") == DestinationRule(tls="verify")
    assert settings.rule("example.net") == DestinationRule()
    assert settings.concurrency_for("example.net") == settings.per_destination


def test_relay_serve_honours_mta_sts_through_its_own_options(sts) -> None:
    """The real entry point: `postform relay serve --mta-sts-port` (the relay process
    trusts the test CA through SSL_CERT_FILE) refuses the untrusted MX under enforce and
    delivers once the YAML's destinations rule says `tls: none`."""
    sts["sts_dest"] = dest = _tls_destination(trustme.CA(), sts["port"])  # untrusted
    relay: RelayProcess = sts["relay"]
    relay.stop()
    relay.start(
        "--nameserver", sts["knot"].server,
        "--outbound-port", str(sts["port"]),
        "--mta-sts-port", str(sts["https_port"]),
        deliver=True,
    )  # fmt: skip
    submit(relay, "a@sts.example.org")
    relay.wait_for(lambda: relay.events("deferred"), timeout=20, what="a deferral")
    assert "certificate verify failed" in relay.events("deferred")[0]["reply"]
    assert relay.events("mta_sts_policy")[0]["mode"] == "enforce"
    assert not dest.recorder.messages
    _set_delivery(relay, "{destinations: {sts.example.org: {tls: none}}}")
    relay.wait_for(lambda: relay.events("policy_reloaded"), timeout=10, what="the reload")
    submit(relay, "b@sts.example.org")
    relay.wait_for(lambda: dest.recorder.copies_for("b@sts.example.org") == 1, timeout=20,
                   what="delivery without STARTTLS")  # fmt: skip
    assert dest.recorder.messages[-1].tls is False
