"""One bad-config fixture per error: each must be reported at its FILE:LINE:COL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.errors import ConfigError

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "bad").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (?:(\S+) )?:: (.+)$")


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    rows = []
    for line in path.read_text().splitlines():
        m = EXPECT.match(line)
        if m:
            rows.append((int(m[1]), int(m[2]), m[3] or "", m[4]))
    assert rows, f"{path.name} declares no expectation"
    return rows


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_bad_config_is_reported_at_its_location(fixture: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(fixture)
    reasons = info.value.reasons
    rendered = [str(r) for r in reasons]
    for line, col, path, text in expectations(fixture):
        prefix = f"{fixture}:{line}:{col}:" + (f" {path}:" if path else "")
        assert any(r.startswith(prefix) and text in r for r in rendered), (
            f"expected {prefix} ... {text}\n got:\n" + "\n".join(rendered)
        )
    assert len(reasons) == len(expectations(fixture)), "\n".join(rendered)


def test_fixtures_cover_every_rule_named_in_the_issue() -> None:
    names = {p.stem for p in FIXTURES}
    for required in (
        "malformed_yaml",
        "duplicate_key",
        "unknown_keys",
        "wrong_types",
        "bad_addresses",
        "bad_selector",
        "duplicate_senders",
        "too_many_senders",
        "too_many_credentials",
        "unapproved_user_sender",
        "size_without_dkim",
        "size_over_60mib",
        "alias_bomb",
    ):
        assert required in names
