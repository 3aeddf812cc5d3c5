"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, initdb into a
temporary folder, run as a non-root user (`postgres` when the tests run as root), on a
free loopback port, with its socket in that folder. Nothing listens beyond 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.knot import free_port

PG_ROOT = Path("/usr/lib/postgresql")


def pg_bin() -> Path | None:
    """The newest installed server's bin folder, or None."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


class PgCluster:
    def __init__(self, durable: bool = False) -> None:
        """`durable` keeps PostgreSQL's fsync on (benchmarks); tests turn it off."""
        self.durable = durable
        found = pg_bin()
        if found is None:
            raise RuntimeError("PostgreSQL's server is not installed (apt-get install postgresql)")
        self.bin = found
        self.root = Path(tempfile.mkdtemp(prefix="postform-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:  # initdb refuses root: the cluster runs as `postgres`
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=check
        )

    def start(self) -> PgCluster:
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                "--auth=trust", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c fsync={'on' if self.durable else 'off'} -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} connect_timeout=5"

    def sql(self, statement: str, dbname: str = "postgres") -> str:
        result = subprocess.run(
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.dsn(dbname), "-c", statement],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return result.stdout

    def run_file(self, path: Path, dbname: str, **variables: str) -> str:
        """psql -f FILE as the superuser, with -v NAME=VALUE variables."""
        args = [f"--set={k}={v}" for k, v in variables.items()]
        result = subprocess.run(
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(dbname), *args, "-f", str(path)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return result.stdout

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def dump(self, dbname: str) -> str:
        """pg_dump of a database, as an operator's backup would hold it."""
        result = subprocess.run(
            ["pg_dump", "-d", self.dsn(dbname)], capture_output=True, text=True, timeout=120,
            check=True,
        )  # fmt: skip
        return result.stdout
