"""Where a config's relay keeps its runtime data, for the commands that read it."""

from __future__ import annotations

from pathlib import Path

from reconciler.config import Config


def relay_data_dir(cfg: Config, override: Path | None = None) -> Path:
    """--data-dir, else relay.data_dir (relative to the config file), else relay/ beside
    the state file: the same rule `postform relay serve` follows."""
    if override is not None:
        return override
    relay = cfg.relay or {}
    if relay.get("data_dir"):
        path = Path(relay["data_dir"])
        return path if path.is_absolute() else cfg.file.resolve().parent / path
    return cfg.state_path.parent / "relay"
