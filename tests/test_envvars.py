"""`${NAME}` in a config's values (issue #15): substituted at load, an unset variable
located at FILE:LINE:COL, and refused wherever the value would be stored in the state."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli.site import resolve_site
from reconciler.config import load_config
from reconciler.envvars import Unresolved, expand
from reconciler.errors import ConfigError
from reconciler.statesection import state_section

HEAD = "version: 1\n"


def write(tmp_path: Path, text: str, name: str = "postform.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(r) for r in info.value.reasons]


def test_expand_substitutes_and_escapes() -> None:
    env = {"A": "one", "B": "${A}"}
    assert expand("x-${A}-${A}", env) == "x-one-one"
    assert expand("$${A} and $$ and $x", env) == "${A} and $$ and $x"
    assert expand("${B}", env) == "${A}"  # substituted once, never again
    with pytest.raises(Unresolved, match="environment variable C is not set"):
        expand("${C}", env)
    for bad in ("${1A}", "${A", "${}", "${A-B}"):
        with pytest.raises(Unresolved, match="write \\$\\$\\{ for a literal"):
            expand(bad, env)


def test_variables_are_substituted_where_they_are_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_HOST", "smtp.example.net")
    monkeypatch.setenv("PORT", "2525")
    monkeypatch.setenv("STATE_DIR", "states")
    monkeypatch.setenv("CERTS", "/etc/certs")
    path = write(
        tmp_path,
        HEAD + "state: {path: '${STATE_DIR}/prod.json'}\n"
        "dns: {output_dir: '${STATE_DIR}/dns'}\n"
        "relay:\n"
        "  hostname: ${RELAY_HOST}\n"
        '  listen: ["127.0.0.1:${PORT}/starttls"]\n'
        "  tls: {cert: '${CERTS}/a.crt', key: '${CERTS}/a.key'}\n",
    )
    cfg = load_config(path)
    assert cfg.relay is not None
    assert cfg.relay["hostname"] == "smtp.example.net"
    assert cfg.relay["listen"] == ["127.0.0.1:2525/starttls"]
    assert cfg.relay["tls"] == {"cert": "/etc/certs/a.crt", "key": "/etc/certs/a.key"}
    assert cfg.state.path == tmp_path / "states" / "prod.json"
    assert cfg.dns_dir == tmp_path / "states" / "dns"


def test_an_unset_variable_is_located_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(
        tmp_path,
        HEAD + "relay:\n  hostname: smtp.example.net\n  listen:\n    - ${NOT_SET_ANYWHERE}\n",
    )
    assert errors_of(path) == [
        f"{path}:5:7: relay.listen[0]: environment variable NOT_SET_ANYWHERE is not set"
    ]  # reported once: not also as a listener that does not parse


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("senders[0]", "senders: ['${TOKEN}@example.com']\n"),
        (
            'domains["example.com"].description',
            "domains:\n  example.com: {description: 'key ${TOKEN}'}\n",
        ),
        ("users.app.credentials[0]", "users:\n  app: {credentials: ['${TOKEN}']}\n"),
        (
            "relay.smarthost.username",
            "relay:\n  smarthost: {host: mx.example, username: '${TOKEN}'}\n",
        ),
        ("limits.recipients_per_day", "limits: {recipients_per_day: '${TOKEN}'}\n"),
    ],
)
def test_a_variable_is_refused_where_the_value_is_stored_in_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, text: str
) -> None:
    monkeypatch.setenv("TOKEN", "s3cr3t")
    for state in ("", "state: {encryption: {passphrase_env: PF_PASS}}\n"):
        path = write(tmp_path, HEAD + state + text)
        errors = errors_of(path)
        assert len(errors) == 1, errors
        assert (
            f": {where}: ${{TOKEN}} is not allowed here: this value is stored in the state"
            in (errors[0])
        )
        assert "unencrypted" in errors[0] and "relay.listen" in errors[0]
        assert "s3cr3t" not in errors[0]


def test_an_escaped_dollar_brace_is_a_literal_anywhere(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "domains:\n  example.com:\n    description: 'costs $${PRICE}'\n"
        "    dkim: [{selector: s1}]\nsenders: [a@example.com]\n",
    )
    assert load_config(path).domains["example.com"]["description"] == "costs ${PRICE}"


def test_a_malformed_reference_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "relay: {hostname: '${1BAD}'}\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:2:19: relay.hostname: `${{` must start a variable")


def test_include_paths_are_not_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM", "a")
    path = write(tmp_path, HEAD + "include: ['teams/${TEAM}.yaml']\n")
    [error] = errors_of(path)
    assert "include[0]: include paths are read as written" in error


def test_variables_in_an_included_file_are_located_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSING_HOST", raising=False)
    write(tmp_path, "relay:\n  hostname: ${MISSING_HOST}\n", "relay.yaml")
    path = write(tmp_path, HEAD + "include: relay.yaml\n")
    assert errors_of(path) == [
        f"{tmp_path}/relay.yaml:2:13: relay.hostname: environment variable MISSING_HOST is not set"
    ]


def test_the_relay_commands_substitute_the_state_section_or_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    senders = "".join(f"  - s{i}@example.com\n" for i in range(50))
    path = write(
        tmp_path,
        HEAD + f"domains: {{example.com: {{}}}}\nsenders:\n{senders}"
        "state:\n  path: ${PF_STATE_DIR}/state.json\n",
    )
    monkeypatch.setenv("PF_STATE_DIR", "var")
    assert state_section(path) == {"path": "var/state.json", "backend": "local"}
    assert resolve_site(path).default_data_dir == tmp_path / "var" / "relay"
    monkeypatch.delenv("PF_STATE_DIR")
    assert state_section(path) is None  # the full load names the variable and the place
    with pytest.raises(ConfigError, match="PF_STATE_DIR is not set"):
        resolve_site(path)


def test_a_config_without_variables_is_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciler.envvars as envvars

    def fail(*_args: object) -> None:
        raise AssertionError("walked a config that has no ${")

    monkeypatch.setattr(envvars, "_substitute", fail)
    path = write(tmp_path, HEAD + "senders: [a@example.com]  # costs $5\n")
    assert list(load_config(path).senders) == ["a@example.com"]


def test_an_unquoted_variable_in_a_flow_collection_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "dns: {output_dir: ${DIR}/dns}\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:2:") and "quote a value that holds ${...}" in error
