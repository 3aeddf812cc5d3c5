"""A real HAProxy (Debian's package) on loopback, in TCP mode, in front of relays: what a
fleet's load balancer does, PROXY protocol included."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.knot import free_port
from tests.relayproc import port_open

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HaProxy:
    def __init__(self, folder: Path, backends: list[int], send_proxy: str = "send-proxy-v2"):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        servers = "\n".join(
            f"  server r{i} 127.0.0.1:{port} {send_proxy} check inter 2s rise 1 fall 3"
            for i, port in enumerate(backends)
        )
        self.config = folder / "haproxy.cfg"
        self.config.write_text(
            "global\n  maxconn 2000\n"
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n"
            "  timeout server 120s\n"
            f"frontend smtp\n  bind 127.0.0.1:{self.port}\n  default_backend relays\n"
            f"backend relays\n  balance roundrobin\n{servers}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HaProxy:
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [HAPROXY, "-f", str(self.config), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            assert time.monotonic() < deadline, "haproxy did not start"
            assert self.proc.poll() is None, "haproxy exited"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
