"""`postform fmt` (issue #15): canonical key order and indentation, comments kept, the
same data after as before, `--check` for CI, and the files a config includes too."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from reconciler.errors import ConfigError, PostformError
from reconciler.fmt import format_text
from reconciler.yamlload import load_text

ROOT = Path(__file__).resolve().parent.parent
GITOPS = ROOT / "examples" / "gitops"

MESSY = """\
# header: stays on top

senders:
    - b@example.com     # eol comment on an item (ruamel keeps its column)
    # a commented-out sender stays in the list
    -   description: invoices
        address: invoices@example.com
users:
    app:
        credentials: [prod]
        # who may send as the app
        senders: [b@example.com]
        description: the app
version: 1   # always 1
# the relay, before the state in this file
relay:
    listen: ["0.0.0.0:587/starttls"]
    hostname: smtp.example.net
domains:
    example.com:
        dmarc: {rua: ["mailto:d@example.com"], policy: none}
        dkim: [{algorithm: ed25519, selector: s1}]
        description: |
            # not a comment: text of a block scalar
            second line
"""

CANONICAL = """\
# header: stays on top

version: 1   # always 1
# the relay, before the state in this file
relay:
  hostname: smtp.example.net
  listen: ["0.0.0.0:587/starttls"]
domains:
  example.com:
    description: |
      # not a comment: text of a block scalar
      second line
    dkim: [{selector: s1, algorithm: ed25519}]
    dmarc: {policy: none, rua: ["mailto:d@example.com"]}
senders:
  - b@example.com       # eol comment on an item (ruamel keeps its column)
  # a commented-out sender stays in the list
  - address: invoices@example.com
    description: invoices
users:
  app:
    description: the app
    # who may send as the app
    senders: [b@example.com]
    credentials: [prod]
"""


def test_keys_go_in_canonical_order_with_their_comments_and_2_space_indentation() -> None:
    assert format_text(MESSY) == CANONICAL


def test_formatting_is_idempotent_and_keeps_the_data() -> None:
    once = format_text(MESSY)
    assert format_text(once) == once
    assert load_text(once, "f").data == load_text(MESSY, "f").data


def top_level_blocks(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """A file's header and its top-level entries, each with the comments above it."""
    lines = text.splitlines(keepends=True)
    keys = [i for i, line in enumerate(lines) if re.match(r"[a-z_]+:", line)]
    starts = []
    for n, i in enumerate(keys):
        start = i
        while n and lines[start - 1].startswith("#") or n and not lines[start - 1].strip():
            start -= 1
        starts.append(start)
    blocks = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        blocks[lines[keys[n]].split(":")[0]] = lines[start:end]
    return lines[: keys[0]], blocks


@pytest.mark.parametrize(
    "order",
    [
        ["suppressions", "domains", "limits", "relay", "state", "include", "version"],
        ["include", "version", "limits", "state", "suppressions", "relay", "domains"],
    ],
)
def test_a_shuffled_gitops_config_formats_back_to_the_example(order: list[str]) -> None:
    canonical = (GITOPS / "postform.yaml").read_text()
    header, blocks = top_level_blocks(canonical)
    assert sorted(blocks) == sorted(order) and list(blocks)[0] == "version"
    blocks["version"] = ["\n", *blocks["version"]]  # blank lines separate the sections
    first = blocks[order[0]]
    while not first[0].strip():
        first.pop(0)  # (the header ends with a blank line)
    shuffled = "".join(header + [line for key in order for line in blocks[key]])
    assert shuffled != canonical
    assert format_text(shuffled) == canonical


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "examples").glob("*/*.yaml")),
        *sorted((ROOT / "examples" / "gitops" / "teams").glob("*.yaml")),
        *sorted((ROOT / "tests" / "fixtures" / "bad").glob("*.yaml")),
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_example_and_fixture_formats_to_the_same_data_idempotently(path: Path) -> None:
    text = path.read_text()
    try:
        before = load_text(text, "f")
    except ConfigError:
        pytest.skip("not YAML at all (a fixture of a parse error)")
    if before.problems:  # duplicate keys, tags, `!!bool maybe`: what did it mean?
        with pytest.raises(ConfigError) as info:
            format_text(text, "f")
        assert info.value.reasons == before.problems
        return
    once = format_text(text)
    assert load_text(once, "f").data == before.data
    assert format_text(once) == once


def test_the_gitops_example_is_formatted() -> None:
    for path in [GITOPS / "postform.yaml", GITOPS / "staging.yaml", *GITOPS.glob("teams/*")]:
        assert format_text(path.read_text()) == path.read_text(), path


def test_compact_list_items_anchors_and_aliases_are_kept() -> None:
    text = (
        "version: 1\n"
        "relay:\n"
        "  ipv4: &addresses [192.0.2.1]\n"
        "  hostname: h.example\n"
        "  proxy_from: *addresses\n"
        "suppressions:\n"
        "  - reason: manual   # why\n"
        "    address: a@example.org\n"
    )
    out = format_text(text)
    assert out == (
        "version: 1\n"
        "relay:\n"
        "  hostname: h.example\n"
        "  ipv4: &addresses [192.0.2.1]\n"
        "  proxy_from: *addresses\n"
        "suppressions:\n"
        "  - address: a@example.org\n"
        "    reason: manual   # why\n"
    )
    assert load_text(out, "f").data == load_text(text, "f").data


def test_an_alias_that_would_come_before_its_anchor_keeps_the_order() -> None:
    text = "senders: [&a x@example.com]\nversion: 1\nusers: {app: {senders: [*a]}}\n"
    out = format_text(text)
    assert load_text(out, "f").data == load_text(text, "f").data
    assert out.index("senders:") < out.index("users:")


def test_a_file_that_is_not_yaml_is_an_error_with_its_location() -> None:
    with pytest.raises(ConfigError) as info:
        format_text("a: [1, 2\nb: 3\n", "bad.yaml")
    assert str(info.value).startswith("bad.yaml:2:")


def test_an_empty_file_stays_empty() -> None:
    assert format_text("") == ""
    assert format_text("# only a comment\n") == "# only a comment\n"


# The command.

UNFORMATTED_ROOT = "include: teams/\nversion: 1\nstate: {path: state.json}\n"


def project_with_includes(folder: Path) -> Path:
    (folder / "teams").mkdir()
    (folder / "postform.yaml").write_text(UNFORMATTED_ROOT)
    (folder / "teams" / "a.yaml").write_text(
        "users:\n    app: {credentials: [prod]}\nsenders:\n- a@example.com\n"
    )
    (folder / "teams" / "b.yaml").write_text("senders:\n  - b@example.com\n")
    return folder


def test_fmt_check_lists_the_files_and_exits_2_without_writing(tmp_path: Path, cli) -> None:
    folder = project_with_includes(tmp_path)
    before = {p: p.read_text() for p in folder.rglob("*.yaml")}
    result = cli(folder, "fmt", "--check")
    assert result.code == 2
    assert result.out.splitlines() == ["postform.yaml", "teams/a.yaml"]
    assert "2 file(s) not formatted" in result.err
    assert {p: p.read_text() for p in folder.rglob("*.yaml")} == before


def test_fmt_rewrites_every_file_of_the_config_then_check_passes(tmp_path: Path, cli) -> None:
    folder = project_with_includes(tmp_path)
    team = folder / "teams" / "a.yaml"
    team.chmod(0o640)
    result = cli(folder, "fmt")
    assert result.code == 0 and result.out.splitlines() == ["postform.yaml", "teams/a.yaml"]
    assert (folder / "postform.yaml").read_text() == (
        "version: 1\ninclude: teams/\nstate: {path: state.json}\n"
    )
    assert team.read_text() == "senders:\n  - a@example.com\nusers:\n  app: {credentials: [prod]}\n"
    assert stat.S_IMODE(team.stat().st_mode) == 0o640
    assert sorted(p.name for p in folder.rglob("*") if p.name.startswith(".")) == []
    again = cli(folder, "fmt", "--check")
    assert again.code == 0 and again.out == ""
    assert cli(folder, "validate").code == 0


def test_fmt_diff_shows_what_would_change(tmp_path: Path, cli) -> None:
    folder = project_with_includes(tmp_path)
    result = cli(folder, "fmt", "--check", "--diff")
    assert "--- postform.yaml (as it is)" in result.out
    assert "+++ postform.yaml (formatted)" in result.out
    assert "+version: 1\n include: teams/\n-version: 1\n" in result.out


def test_fmt_reports_an_include_that_finds_nothing_and_a_broken_file(tmp_path: Path, cli) -> None:
    (tmp_path / "postform.yaml").write_text("version: 1\ninclude: [gone.yaml]\n")
    result = cli(tmp_path, "fmt", "--check")
    assert result.code == 1 and "postform.yaml:2:11: include[0]: include 'gone.yaml'" in result.err
    (tmp_path / "postform.yaml").write_text("version: [1\n")
    result = cli(tmp_path, "fmt")
    assert result.code == 1 and "postform.yaml:2:1: invalid YAML" in result.err


def test_fmt_leaves_variables_as_written(tmp_path: Path, cli) -> None:
    (tmp_path / "postform.yaml").write_text("relay:\n    hostname: ${UNSET_HOST}\nversion: 1\n")
    assert cli(tmp_path, "fmt").code == 0
    assert (tmp_path / "postform.yaml").read_text() == (
        "version: 1\nrelay:\n  hostname: ${UNSET_HOST}\n"
    )


def test_the_header_comment_stays_on_top_and_a_comment_after_a_blank_line_moves() -> None:
    assert format_text("# header\nsenders: [a@example.com]\nversion: 1\n") == (
        "# header\nversion: 1\nsenders: [a@example.com]\n"
    )
    assert format_text("# header\n\n# senders\nsenders: [a@example.com]\nversion: 1\n") == (
        "# header\n\nversion: 1\n# senders\nsenders: [a@example.com]\n"
    )


@pytest.mark.parametrize(
    "path",
    [
        *sorted((ROOT / "examples").glob("*/*.yaml")),
        *sorted((ROOT / "examples" / "gitops" / "teams").glob("*.yaml")),
        *sorted((ROOT / "tests" / "fixtures" / "bad").glob("*.yaml")),
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_quick_layout_check_agrees_with_ruamel(path: Path) -> None:
    """fmt skips ruamel.yaml's round trip (slow on large files) only for a layout it
    would not change."""
    from reconciler.fmt import _round_trip
    from reconciler.fmtcheck import canonical_layout

    text = path.read_text()
    try:
        root = load_text(text, "f").root
        if canonical_layout(text, root):
            assert _round_trip(text, "f") == text
        out = format_text(text)
    except (ConfigError, PostformError):
        return  # not YAML, or a file fmt refuses (above)
    assert canonical_layout(out, load_text(out, "f").root)
    assert _round_trip(out, "f") == out


def test_a_large_formatted_config_is_checked_without_the_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import reconciler.fmt as fmt

    def slow(*_args: object) -> str:
        raise AssertionError("the round trip ran on a formatted file")

    senders = "".join(
        f"  - {{address: s{i}@example.com, description: n{i}}}\n" for i in range(2000)
    )
    text = f"version: 1\nsenders:\n{senders}users:\n  app: {{credentials: [x]}}\n"
    monkeypatch.setattr(fmt, "_round_trip", slow)
    assert fmt.format_text(text) == text
