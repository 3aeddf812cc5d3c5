"""Shared helpers: write configs, run the real CLI in-process or as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli import main

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "postform.yaml"

BASE_CONFIG = """\
version: 1
state: {path: state/state.json}
relay: {hostname: smtp.example.net, spf_domain: _spf.example.net, ipv4: [192.0.2.10]}
domains:
  example.com:
    dkim: [{selector: s1, algorithm: ed25519}]
    dmarc: {policy: none, rua: ["mailto:dmarc@example.com"]}
senders:
  - noreply@example.com
  - billing@example.com
users:
  app:
    senders: [billing@example.com]
    credentials: [prod]
suppressions:
  - {address: blocked@example.org, reason: manual}
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding BASE_CONFIG as postform.yaml."""
    (tmp_path / "postform.yaml").write_text(BASE_CONFIG)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `postform ARGS` in-process from a folder; returns exit code and output."""

    def run(folder: Path, *args: str, stdin: str = "") -> Result:
        monkeypatch.chdir(folder)
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def require_tool(path: str) -> None:
    """Skip when a system tool is missing, except in CI (CI=true), where it must be there."""
    if shutil.which(path) or Path(path).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is not installed: .ci/run must install it")
    pytest.skip(f"{path} is not installed (scripts/system-packages installs it)")


def stored(resource, **computed: object) -> dict[str, object]:
    """A resource as the state file holds it."""
    return {
        "type": resource.type,
        "name": resource.name,
        "attributes": dict(resource.attributes),
        "computed": dict(computed),
    }


def postform_binary() -> str:
    found = Path(sys.executable).parent / "postform"
    return str(found) if found.exists() else (shutil.which("postform") or "postform")


def run_binary(folder: Path, *args: str, stdin: str = "", timeout: float = 120) -> Result:
    """Run the installed `postform` console script, as a user would."""
    proc = subprocess.run(
        [postform_binary(), *args],
        cwd=folder,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


DNS_CONFIG = """\
version: 1
state: {path: state/state.json}
dns: {output_dir: dns-out, ttl: 300}
relay: {hostname: smtp.example.net, spf_domain: _spf.example.net, ipv4: [192.0.2.10]}
domains:
  example.com:
    return_path: rp.example.com
    dkim:
      - {selector: s1, algorithm: rsa-2048}
      - {selector: ed, algorithm: ed25519}
    dmarc: {policy: quarantine, rua: ["mailto:dmarc@example.com"]}
senders: [noreply@example.com]
"""


@pytest.fixture
def dns_project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "postform.yaml").write_text(DNS_CONFIG)
    return folder


@pytest.fixture
def knot(tmp_path: Path):
    """Knot DNS serving example.com and example.net on a free loopback port."""
    from tests.knot import KNOTD, Knot

    require_tool(KNOTD)
    server = Knot(tmp_path / "knot", ["example.com", "example.net"]).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory):
    """One relay for a module's tests: default limits, STARTTLS and implicit-TLS ports."""
    from tests.relayproc import RelayProcess

    proc = RelayProcess(tmp_path_factory.mktemp("relay")).start()
    yield proc
    assert proc.stop() == 0


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the whole run, started on first use."""
    from tests.pgcluster import PgCluster, pg_bin

    if pg_bin() is None:
        require_tool("/usr/lib/postgresql/15/bin/initdb")
    cluster = PgCluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_dsn(pg_cluster, request) -> str:
    """A fresh database in the cluster for this test; its libpq connection string."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    return pg_cluster.create_database(name)
