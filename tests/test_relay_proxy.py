"""Behind a load balancer: the PROXY protocol (v1 and v2) from a real HAProxy names the
client, and nothing else is believed on a +proxy listener."""

from __future__ import annotations

import smtplib
import socket
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.haproxy import HAPROXY, HaProxy
from tests.relayproc import RELAY_CONFIG, RelayProcess, message, queue_id_of


def proxied_config(trusted: str) -> str:
    text = RELAY_CONFIG.format(per_minute=18000, per_day=50000, max_bytes=2097152)
    return text.replace(
        "  ipv4: [192.0.2.10]\n", f"  ipv4: [192.0.2.10]\n  proxy_from: [{trusted}]\n"
    )


def through(balancer: HaProxy, relay: RelayProcess, source: str) -> smtplib.SMTP:
    client = smtplib.SMTP(
        "127.0.0.1", balancer.port, local_hostname="client.test", timeout=20,
        source_address=(source, 0),
    )  # fmt: skip
    client.ehlo()
    client.starttls(context=relay.client_context(check_hostname=False))
    client.ehlo()
    cred = relay.creds["app"]
    client.login(cred["username"], cred["password"])
    return client


@pytest.mark.parametrize("send_proxy", ["send-proxy-v2", "send-proxy"])
def test_the_real_client_address_is_what_the_relay_sees(tmp_path: Path, send_proxy: str) -> None:
    require_tool(HAPROXY)
    relay = RelayProcess(tmp_path / "relay", config=proxied_config("127.0.0.1"), proxy=True)
    relay.start()
    balancer = HaProxy(tmp_path / "haproxy", [relay.port], send_proxy).start()
    try:
        client = through(balancer, relay, "127.0.0.7")
        client.mail("noreply@example.com")
        client.rcpt("reader@example.org")
        code, reply = client.data(message())
        client.quit()
        assert code == 250
        spooled = relay.spooled(queue_id_of(reply))
        assert b"([127.0.0.7])" in spooled.split(b"\r\n\r\n", 1)[0]
        relay.wait_for(lambda: relay.events("accepted"), what="accepted")
        assert relay.events("accepted")[-1]["peer"] == "127.0.0.7"
        connects = [e for e in relay.events("connect") if e.get("peer") == "127.0.0.7"]
        assert connects and connects[0]["via"] == "127.0.0.1"
        assert relay.events("auth_ok")[-1]["peer"] == "127.0.0.7"
    finally:
        balancer.stop()
        assert relay.stop() == 0


def test_a_proxy_header_from_an_untrusted_address_is_refused(tmp_path: Path) -> None:
    require_tool(HAPROXY)
    relay = RelayProcess(tmp_path / "relay", config=proxied_config("10.9.9.9"), proxy=True)
    relay.start()
    balancer = HaProxy(tmp_path / "haproxy", [relay.port]).start(wait_up=False)
    try:
        with pytest.raises((smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected)):
            through(balancer, relay, "127.0.0.7")
        relay.wait_for(lambda: relay.events("proxy_refused"), what="proxy_refused")
        assert relay.events("proxy_refused")[-1]["peer"] == "127.0.0.1"
        assert not relay.events("auth_ok")
    finally:
        balancer.stop()
        relay.stop()


def test_a_connection_without_a_proxy_header_gets_nothing(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=proxied_config("127.0.0.1"), proxy=True)
    relay.start()
    try:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=15) as sock:
            sock.sendall(b"EHLO pretender.test\r\n")
            assert sock.recv(1024) == b""  # closed: no banner, no SMTP
    finally:
        relay.stop()
