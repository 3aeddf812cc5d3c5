"""The relay commands read only the config's `state:` section (issue #13): a relay host's
postform.yaml may declare 100,000 senders the relay never needs from the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.site import resolve_site
from reconciler.config import load_config
from reconciler.relaysite import relay_site
from reconciler.statesection import state_section

HEAD = "version: 1\nrelay: {hostname: r.example, spf_domain: _spf.example, ipv4: [192.0.2.1]}\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postform.yaml"
    path.write_text(text)
    return path


def test_the_state_section_is_read_wherever_it_is_and_matches_the_full_load(
    tmp_path: Path,
) -> None:
    senders = "".join(f"  - s{i}@example.com\n" for i in range(2000))
    text = (
        f"{HEAD}domains: {{example.com: {{}}}}\nsenders:\n{senders}"
        "state:\n  path: elsewhere/state.json  # after the senders\n"
    )
    path = _write(tmp_path, text)
    assert state_section(path) == {"path": "elsewhere/state.json", "backend": "local"}
    light, full = resolve_site(path), relay_site(load_config(path), None)
    assert light.default_data_dir == full.default_data_dir == tmp_path / "elsewhere" / "relay"
    assert light.base == full.base and light.pg == full.pg is None


def test_no_state_section_means_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{HEAD}domains: {{}}\n")
    assert state_section(path) in ({}, {"backend": "local"})
    assert resolve_site(path).default_data_dir == tmp_path / ".postform" / "relay"


def test_anything_unusual_falls_back_to_the_full_load(tmp_path: Path) -> None:
    """None sends the caller to the whole config, which names file:line:column."""
    cases = {
        "an unknown key": "state:\n  pth: x.json\n",
        "an alias into the rest": "x: &p {path: a.json}\nstate: *p\n",
        "broken YAML before it": "domains: [\nstate: {path: a.json}\n",
        "a list at the top": "- state\n",
        "a wrong type": "state: {history: many}\n",
    }
    for what, text in cases.items():
        assert state_section(_write(tmp_path, text)) is None, what
    assert state_section(tmp_path / "missing.yaml") is None


def test_the_reader_works_with_pyyamls_pure_python_loader_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyYAML built without libyaml has no CSafeLoader: the same events come from its own."""
    import yaml

    import reconciler.statesection as statesection

    monkeypatch.setattr(statesection, "_LOADER", yaml.SafeLoader)
    path = _write(tmp_path, f"{HEAD}senders: [a@example.com]\nstate: {{path: s/state.json}}\n")
    assert state_section(path) == {"path": "s/state.json", "backend": "local"}
    assert state_section(_write(tmp_path, "state:\n  pth: x.json\n")) is None
