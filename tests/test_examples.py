"""The examples are what operators copy: every config validates, the fleet's HAProxy
configuration passes HAProxy's own check, and its systemd unit passes systemd's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import postform_binary, require_tool, run_binary
from tests.haproxy import HAPROXY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("name", ["quickstart", "gitops", "fleet"])
def test_every_example_config_validates(name: str) -> None:
    result = run_binary(EXAMPLES / name, "validate")
    assert result.code == 0, result.err
    assert "valid (" in result.out


def test_the_fleet_example_is_a_fleet() -> None:
    text = (EXAMPLES / "fleet" / "postform.yaml").read_text()
    for line in ("store: {backend: postgres}", "/starttls+proxy", "proxy_from:", "relay_role:"):
        assert line in text


def test_the_fleet_haproxy_config_passes_haproxys_check() -> None:
    require_tool(HAPROXY)
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(EXAMPLES / "fleet" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "send-proxy-v2" in (EXAMPLES / "fleet" / "haproxy.cfg").read_text()


def test_the_relay_unit_passes_systemds_check(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (EXAMPLES / "fleet" / "postform-relay.service").read_text()
    installed = tmp_path / "postform-relay.service"
    installed.write_text(unit.replace("/opt/postform/.venv/bin/postform", postform_binary()))
    checked = subprocess.run(
        [analyze, "verify", str(installed)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in checked.stderr.splitlines() if installed.name in line]
    assert checked.returncode == 0 and complaints == [], checked.stderr
    for option in ("ProtectSystem=strict", "NoNewPrivileges=yes", "ReadWritePaths=", "User="):
        assert option in unit
