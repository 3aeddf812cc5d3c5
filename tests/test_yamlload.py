from __future__ import annotations

import pytest

from reconciler.errors import ConfigError
from reconciler.yamlload import format_path, load_text


def test_constructs_plain_data_with_yaml_types() -> None:
    doc = load_text("a: 1\nb: true\nc: [x, 2.5, null]\nd: '1'\n", "f.yaml")
    assert doc.data == {"a": 1, "b": True, "c": ["x", 2.5, None], "d": "1"}


def test_locates_values_and_keys() -> None:
    doc = load_text("top:\n  inner:\n    - a\n    - {k: v}\n", "f.yaml")
    assert doc.locate(("top", "inner", 1, "k")) == (4, 11)
    assert doc.locate(("top", "inner", 1, "k"), at_key=True) == (4, 8)
    assert doc.locate(("top", "missing")) == (2, 3)  # deepest node found


def test_duplicate_keys_are_all_reported_and_the_first_kept() -> None:
    doc = load_text("a: 1\nb: 2\na: 3\nm: {x: 1, x: 2}\n", "f.yaml")
    assert doc.data == {"a": 1, "b": 2, "m": {"x": 1}}
    messages = [str(r) for r in doc.problems]
    assert messages[0].startswith("f.yaml:3:1: a: duplicate key 'a' (first defined at line 1")
    assert messages[1].startswith("f.yaml:4:11: m.x: duplicate key 'x'")


def test_merge_keys_work_and_explicit_keys_win() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["use"] == {"x": 1, "y": 3}


def test_small_aliases_are_allowed() -> None:
    doc = load_text("a: &x [1, 2]\nb: *x\n", "f.yaml")
    assert doc.data["b"] == [1, 2]


def test_alias_bomb_is_refused_before_construction() -> None:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(ConfigError) as info:
        load_text("\n".join(lines) + "\n", "bomb.yaml")
    assert "YAML aliases expand this document" in str(info.value)


def test_malformed_yaml_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        load_text("a: [1, 2\nb: 3\n", "f.yaml")
    reason = info.value.reasons[0]
    assert (reason.file, reason.line) == ("f.yaml", 2)
    assert "invalid YAML" in reason.message


def test_empty_document_is_none() -> None:
    assert load_text("", "f.yaml").data is None


def test_format_path_quotes_names_with_dots() -> None:
    assert format_path(("domains", "example.com", "dkim", 0)) == 'domains["example.com"].dkim[0]'
    assert format_path(("users", "app", "senders", 2)) == "users.app.senders[2]"


def test_keys_stay_strings_and_tags_are_refused() -> None:
    doc = load_text("yes: 1\n1.5: 2\n~: 3\nt: !foo bar\n", "f.yaml")
    assert doc.data == {"yes": 1, "1.5": 2, "~": 3, "t": "bar"}
    assert [str(r) for r in doc.problems] == ["f.yaml:4:4: t: YAML tag !foo is not supported here"]


def test_deep_nesting_with_aliases_is_an_error_not_a_crash() -> None:
    text = "a: &x 1\nb: " + "[" * 900 + "*x" + "]" * 900 + "\n"
    with pytest.raises(ConfigError, match="nests too deeply"):
        load_text(text, "f.yaml")
