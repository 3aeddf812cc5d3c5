"""A real `postform relay serve` process on free loopback ports, for tests.

The project is applied through the real CLI; TLS certificates come from a
per-run CA (trustme); the relay's JSON log lines are collected from stderr.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import trustme

from tests.knot import free_port

RELAY_CONFIG = """\
version: 1
state: {{path: state/state.json}}
relay:
  hostname: relay.test
  spf_domain: _spf.example.net
  ipv4: [192.0.2.10]
  tls: {{cert: tls/relay.crt, key: tls/relay.key}}
limits:
  messages_per_minute: {per_minute}
  recipients_per_day: {per_day}
  max_message_bytes: {max_bytes}
domains:
  example.com:
    return_path: rp.example.com
    dkim:
      - {{selector: ed, algorithm: ed25519, activation: immediate}}
  rsa.example:
    dkim:
      - {{selector: r1, algorithm: rsa-2048, activation: immediate}}
  pending.example:
    dkim:
      - {{selector: p1, algorithm: ed25519}}
senders:
  - noreply@example.com
  - billing@example.com
  - alerts@rsa.example
  - news@pending.example
  - plain@unsigned.example
users:
  app:
    credentials: [prod]
  billing:
    senders: [billing@example.com]
    credentials: [prod]
suppressions:
  - {{address: blocked@example.org, reason: complaint}}
"""


def postform_cmd() -> list[str]:
    return [str(Path(sys.executable).parent / "postform")]


class RelayProcess:
    def __init__(
        self,
        folder: Path,
        *,
        per_minute: int = 18000,
        per_day: int = 50000,
        max_bytes: int = 2097152,
        config: str | None = None,
        proxy: bool = False,
    ) -> None:
        """`proxy`: the STARTTLS listener takes the PROXY protocol (behind HAProxy)."""
        self.folder = folder
        self.proxy = proxy
        folder.mkdir(parents=True, exist_ok=True)
        text = config or RELAY_CONFIG.format(
            per_minute=per_minute, per_day=per_day, max_bytes=max_bytes
        )
        (folder / "postform.yaml").write_text(text)
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("relay.test", "localhost", "127.0.0.1")
        (folder / "tls").mkdir(exist_ok=True)
        cert.private_key_pem.write_to_path(str(folder / "tls" / "relay.key"))
        cert.cert_chain_pems[0].write_to_path(str(folder / "tls" / "relay.crt"))
        self.port = free_port()
        self.tls_port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.creds = self.apply()

    def postform(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*postform_cmd(), *args], cwd=self.folder, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"postform {' '.join(args)} failed:\n{result.stderr}")
        return result

    def apply(self) -> dict[str, dict[str, str]]:
        self.postform("apply", "--auto-approve", "--credentials-out", "creds.json")
        path = self.folder / "creds.json"
        if not path.exists():
            return {}
        rows = json.loads(path.read_text())
        return {r["user"]: r for r in rows}

    def start(
        self, *extra: str, deliver: bool = False, open_files: int | None = None
    ) -> RelayProcess:
        """Start the relay; delivery stays off unless asked for (with a loopback nameserver
        in `extra`), so no test ever looks up a real MX. `open_files` sets the process's
        open-files limit (soft and hard), as a small default machine would have it."""
        self.lines = []
        args = [
            *postform_cmd(),
            "relay",
            "serve",
            "--listen",
            f"127.0.0.1:{self.port}/starttls{'+proxy' if self.proxy else ''}",
            "--listen",
            f"127.0.0.1:{self.tls_port}/tls",
            "--grace",
            "5",
            *extra,
        ]
        if not deliver:
            args.append("--no-delivery")

        def limit_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.proc = subprocess.Popen(
            args,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit_files,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_for(
            lambda: sum('"event":"listening"' in line for line in self.lines) >= 2,
            what="relay listening",
        )
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, cond: Any, timeout: float = 15.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"relay exited ({self.proc.returncode}):\n" + "\n".join(self.lines)
                )
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(self.lines[-30:]))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if name is None or record.get("event") == name:
                out.append(record)
        return out

    def events_seen(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The `name` events once `count` of them have come through stderr (a reply can
        reach the client before the line that logs it reaches the test)."""
        self.wait_for(lambda: len(self.events(name)) >= count, timeout, what=f"{name} event")
        return self.events(name)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        self.proc = None
        return code

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    # clients

    def client_context(self, **kw: Any) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        for key, value in kw.items():
            setattr(context, key, value)
        return context

    def smtp(
        self,
        *,
        tls: bool = True,
        login: str | None = "app",
        source: str = "127.0.0.1",
        implicit: bool = False,
    ) -> smtplib.SMTP:
        if implicit:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                "127.0.0.1",
                self.tls_port,
                local_hostname="client.test",
                timeout=20,
                context=self.client_context(check_hostname=False),
                source_address=(source, 0),
            )
        else:
            client = smtplib.SMTP(
                "127.0.0.1",
                self.port,
                local_hostname="client.test",
                timeout=20,
                source_address=(source, 0),
            )
            client.ehlo()
            if tls:
                client.starttls(context=self.client_context(check_hostname=False))
                client.ehlo()
        if login and tls:
            cred = self.creds[login]
            client.login(cred["username"], cred["password"])
        return client

    def spool(self) -> Path:
        """The queue in the default data folder: beside a local state, or in .postform/
        for a PostgreSQL state."""
        for data in (self.folder / "state" / "relay", self.folder / ".postform" / "relay"):
            if data.exists():
                return data / "spool" / "queue"
        return self.folder / "state" / "relay" / "spool" / "queue"

    def spooled(self, queue_id: str) -> bytes:
        raw = (self.spool() / f"{queue_id}.msg").read_bytes()
        return raw.split(b"\n", 2)[2]


def default_config() -> str:
    """RELAY_CONFIG with OCI's default limits."""
    return RELAY_CONFIG.format(per_minute=18000, per_day=50000, max_bytes=2097152)


def with_sessions(config: str, **settings: object) -> str:
    """`config` with relay.sessions set (a relay config made from RELAY_CONFIG)."""
    body = ", ".join(f"{k}: {v}" for k, v in settings.items())
    return config.replace(
        "  ipv4: [192.0.2.10]\n", f"  ipv4: [192.0.2.10]\n  sessions: {{{body}}}\n"
    )


def message(
    sender: str = "noreply@example.com",
    to: str = "someone@example.org",
    subject: str = "Hello",
    extra: str = "",
    body: str = "Hi there.\r\n",
) -> bytes:
    return (
        f"From: Example <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def queue_id_of(reply: bytes) -> str:
    return reply.decode().rsplit(" ", 1)[-1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
