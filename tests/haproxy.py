"""A real HAProxy (Debian's package) on loopback, in TCP mode, in front of relays: what a
fleet's load balancer does, PROXY protocol and SMTP health checks included.

The configuration is examples/fleet/haproxy.cfg itself, with loopback addresses, a
stats socket in the test's folder and quicker health checks: what the README tells
operators to run is what the tests run."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.knot import free_port
from tests.relayproc import port_open

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fleet" / "haproxy.cfg"
BACKEND = "postform_relays"


def config_from_example(
    port: int, backends: list[int], stats: Path, send_proxy: str = "send-proxy-v2"
) -> str:
    text = EXAMPLE.read_text()
    text = text.replace("    log /dev/log local0\n", "")  # no syslog in a test
    text = re.sub(r"stats socket \S+", f"stats socket {stats}", text)
    text = text.replace("    bind :587\n", f"    bind 127.0.0.1:{port}\n")
    text = text.replace("send-proxy-v2 ", f"{send_proxy} ").replace("inter 5s", "inter 300ms")
    servers = "".join(f"    server relay{i + 1} 127.0.0.1:{p}\n" for i, p in enumerate(backends))
    text = re.sub(r"(    server relay\d+ \S+\n)+", servers, text)
    assert text.count("    server ") == len(backends) and f"127.0.0.1:{port}" in text
    return text


class HaProxy:
    def __init__(self, folder: Path, backends: list[int], send_proxy: str = "send-proxy-v2"):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.stats = folder / "admin.sock"
        self.config = folder / "haproxy.cfg"
        self.config.write_text(config_from_example(self.port, backends, self.stats, send_proxy))
        self.proc: subprocess.Popen[bytes] | None = None
        self.backends = len(backends)

    def start(self, wait_up: bool = True) -> HaProxy:
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [HAPROXY, "-f", str(self.config), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port) or not self.stats.exists():
            assert time.monotonic() < deadline, "haproxy did not start"
            assert self.proc.poll() is None, "haproxy exited"
            time.sleep(0.05)
        if wait_up:  # the relays passed their first SMTP health check
            while sorted(self.states().values()) != ["UP"] * self.backends:
                assert time.monotonic() < deadline, f"backends not up: {self.states()}"
                time.sleep(0.05)
        return self

    def command(self, line: str) -> str:
        """One command on the admin socket (what an operator runs with socat)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Each relay's state as HAProxy sees it (UP, DOWN, DRAIN, MAINT, ...)."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        out = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == BACKEND and fields.get("svname", "").startswith("relay"):
                out[fields["svname"]] = fields["status"]
        return out

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
