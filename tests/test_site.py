"""One rule for the relay's data folder, the same for every command."""

from __future__ import annotations

import json
from pathlib import Path

from relay.policysource import FilePolicySource
from relay.site import RelaySite

DATA_DIR_CONFIG = """\
version: 1
state: {path: state/state.json}
relay: {hostname: smtp.example.net, data_dir: data-a}
senders: [noreply@example.com]
"""


def test_the_rule_is_override_then_applied_then_default(tmp_path: Path) -> None:
    site = RelaySite(
        lambda: FilePolicySource(tmp_path / "p.json"),
        base=tmp_path / "conf",
        default_data_dir=tmp_path / "d",
    )
    assert site.current() is None  # nothing published yet
    assert site.data_dir(None) == tmp_path / "d"
    assert site.data_dir("rel") == tmp_path / "conf" / "rel"
    assert site.data_dir("/abs/dir") == Path("/abs/dir")
    assert site.data_dir("rel", override=tmp_path / "o") == tmp_path / "o"


def test_every_command_uses_the_applied_folder_until_an_edit_is_applied(
    tmp_path: Path, cli
) -> None:
    (tmp_path / "postform.yaml").write_text(DATA_DIR_CONFIG)
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    config = tmp_path / "postform.yaml"
    config.write_text(DATA_DIR_CONFIG.replace("data-a", "data-b"))  # edited, not applied
    assert cli(tmp_path, "suppressions", "add", "x@example.org").code == 0
    assert (tmp_path / "data-a" / "relay.sqlite").exists()
    assert not (tmp_path / "data-b").exists()
    status = json.loads(cli(tmp_path, "relay", "status", "--json").out)
    assert status["suppressed"] == 1
    plan = json.loads(cli(tmp_path, "plan", "--json").out)
    assert plan["runtime"] == {"learned_suppressions": 1}
    assert [c["address"] for c in plan["resource_changes"]] == ["relay"]
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    assert json.loads(cli(tmp_path, "suppressions", "list", "--json").out) == []
    assert (tmp_path / "data-b" / "relay.sqlite").exists()
