"""A real Postfix (Debian's package) on loopback as the remote side of a delivery: it
accepts mail for its domain, finds no such local user, and sends a real RFC 3464
bounce to the message's return path, through a relayhost (the relay's MX listener),
since Postfix asks the system's resolver, not the tests' Knot.

The instance has its own configuration, queue and log under a folder the postfix user
can enter; it never touches /etc/postfix. Needs root (Postfix's master starts as root
and drops to the postfix user)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MASTER_CF = Path("/etc/postfix/master.cf")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydomain = {domain}
mydestination = {domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Accept any local part, so the unknown user is found at delivery and bounced later.
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{relayhost_port}
smtp_tls_security_level = may
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
biff = no
"""


class Postfix:
    def __init__(self, domain: str, port: int, relayhost_port: int) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="postform-postfix-"))
        self.root.chmod(0o755)  # the postfix user enters its queue below
        self.conf = self.root / "conf"
        self.conf.mkdir()
        (self.root / "queue").mkdir()
        data = self.root / "data"
        data.mkdir()
        shutil.chown(data, "postfix")
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(root=self.root, domain=domain, relayhost_port=relayhost_port)
        )
        smtpd = f"127.0.0.1:{port} inet n - n - - smtpd"
        master = [
            smtpd if line.startswith("smtp      inet") else line
            for line in MASTER_CF.read_text().splitlines()
        ]
        assert smtpd in master, "Debian's master.cf has no smtp inet line to replace"
        (self.conf / "master.cf").write_text("\n".join(master) + "\n")
        self.port = port

    def _postfix(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.conf), command], capture_output=True, text=True, timeout=60
        )

    def start(self) -> Postfix:
        result = self._postfix("start")
        assert result.returncode == 0, (result.stderr, self.log())
        return self

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def wait_log(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not in Postfix's log within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.root, ignore_errors=True)


def can_run() -> bool:
    return os.geteuid() == 0 and Path(POSTFIX).exists() and MASTER_CF.exists()
