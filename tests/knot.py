"""A real authoritative DNS server (Knot DNS) on a free loopback port, for tests.

It serves the given zones from a temporary folder and takes RFC 2136 updates
signed with a TSIG key, which it also writes as a BIND key file (the format
tsig-keygen produces) for `postform dns push --tsig-key-file`.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KEY_NAME = "postform-test"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


class Knot:
    def __init__(self, folder: Path, zones: list[str]) -> None:
        self.folder = folder
        self.zones = zones
        self.port = free_port()
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.key_file = folder / "tsig.key"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Knot:
        (self.folder / "zones").mkdir(parents=True)
        (self.folder / "db").mkdir()
        for zone in self.zones:
            (self.folder / "zones" / f"{zone}.zone").write_text(
                f"$ORIGIN {zone}.\n$TTL 300\n"
                f"@ SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300\n"
                f"@ NS ns1.{zone}.\nns1 A 127.0.0.1\n"
            )
        self.key_file.write_text(
            f'key "{KEY_NAME}" {{\n\talgorithm hmac-sha256;\n\tsecret "{self.secret}";\n}};\n'
        )
        os.chmod(self.key_file, 0o600)
        conf = self.folder / "knot.conf"
        conf.write_text(self._config())
        with (self.folder / "knot.log").open("wb") as log:
            self.proc = subprocess.Popen([KNOTD, "-c", str(conf)], stdout=log, stderr=log)
        self._wait_ready()
        return self

    def _config(self) -> str:
        zones = "".join(f"  - domain: {z}\n    acl: update\n" for z in self.zones)
        return (
            f'server:\n  rundir: "{self.folder}"\n  listen: 127.0.0.1@{self.port}\n'
            "  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
            f'database:\n  storage: "{self.folder}/db"\n'
            f"key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {self.secret}\n"
            f"acl:\n  - id: update\n    key: {KEY_NAME}\n    action: update\n"
            f'template:\n  - id: default\n    storage: "{self.folder}/zones"\n'
            "    zonefile-sync: -1\n    journal-content: changes\n"
            f"zone:\n{zones}"
            "log:\n  - target: stderr\n    any: info\n"
        )

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(f"{self.zones[0]}.", "SOA")
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("knotd exited:\n" + (self.folder / "knot.log").read_text())
            try:
                answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.3)
                if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                    return
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.05)
        raise RuntimeError("knotd did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def update(
        self,
        zone: str,
        *,
        delete: list[tuple[str, str]] = (),
        add: list[tuple[str, str, str]] = (),
        ttl: int = 300,
    ) -> None:
        """Change the zone behind postform's back (delete NAME TYPE; add NAME TYPE RDATA)."""
        keyring = dns.tsigkeyring.from_text({KEY_NAME: ("hmac-sha256", self.secret)})
        msg = dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm="hmac-sha256")
        for name, rtype in delete:
            msg.delete(name + ".", rtype)
        for name, rtype, rdata in add:
            msg.add(name + ".", ttl, rtype, rdata)
        response = dns.query.tcp(msg, "127.0.0.1", port=self.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def txt(self, name: str) -> list[str]:
        query = dns.message.make_query(name + ".", "TXT")
        answer = dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=5)
        return sorted(b"".join(r.strings).decode() for rrset in answer.answer for r in rrset)
