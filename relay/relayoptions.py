"""How one relay process runs: its data folder, TLS files, listeners, worker slot,
delivery, metrics and shared store (what `postform relay serve` resolves from the
command line and the applied policy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relay.store.pgruntime import PgTarget


@dataclass(frozen=True)
class RelayOptions:
    data_dir: Path
    tls_files: tuple[Path, Path] | None = None
    listen: tuple[str, ...] = ()  # overrides the policy's relay.listen when given
    worker: tuple[int, int] = (0, 1)  # (index, count) of worker processes
    deliver: bool = True
    nameserver: str | None = None
    outbound_port: int = 25
    mta_sts_port: int = 443
    metrics_address: str | None = None
    metrics_dir: Path | None = None  # multiprocess metrics, with several workers
    dashboard: bool = True  # served at / on the metrics address, or on its own address
    dashboard_address: str | None = None
    dashboard_token: str | None = field(default=None, repr=False)  # bearer token
    pg: PgTarget | None = None  # the state's database, for a shared store
    grace: float = 30.0
    reload_interval: float = 0.5
