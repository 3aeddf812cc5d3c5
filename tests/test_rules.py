"""Semantic rules beyond the fixtures: warnings and valid edge cases."""

from __future__ import annotations

from pathlib import Path

from reconciler.config import load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postform.yaml"
    path.write_text(text)
    return path


def test_unsigned_domain_is_a_warning_not_an_error(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "version: 1\nsenders: [a@plain.example, b@plain.example]\n"))
    assert len(cfg.warnings) == 1
    text = str(cfg.warnings[0])
    assert text.startswith(f"{tmp_path / 'postform.yaml'}:2:11: senders[0]: warning: ")
    assert "plain.example has no DKIM selector" in text and "and 1 more" in text


def test_large_messages_allowed_when_every_sending_domain_has_spf_and_dkim(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            (
                "version: 1\nlimits: {max_message_bytes: 20971520}\n"
                "relay: {spf_domain: _spf.example.net}\n"
                "domains:\n  example.com: {dkim: [{selector: s1}]}\nsenders: [a@example.com]\n"
            ),
        )
    )
    assert cfg.limits["max_message_bytes"] == 20971520
    assert cfg.warnings == []


def test_normalises_domains_and_keeps_local_part_case(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            (
                "version: 1\ndomains:\n  Example.COM: {dkim: [{selector: S1}]}\n"
                "senders: [NoReply@Example.Com]\nsuppressions: [x@Y.example]\n"
            ),
        )
    )
    assert list(cfg.domains) == ["example.com"]
    assert cfg.domains["example.com"]["dkim"][0]["selector"] == "s1"
    assert list(cfg.senders) == ["NoReply@example.com"]
    assert cfg.suppressions == {"x@y.example": {"reason": "MANUAL", "description": None}}


def test_state_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "version: 1\nstate: {path: s/st.json}\n"))
    assert cfg.state_path == tmp_path.resolve() / "s" / "st.json"


def test_null_domain_and_user_bodies_are_allowed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "version: 1\ndomains:\n  example.com:\nusers:\n  app:\n"))
    assert cfg.domains["example.com"]["dkim"] == []
    assert cfg.users["app"]["credentials"] == []


def test_relay_addresses_are_checked(tmp_path: Path) -> None:
    from reconciler.errors import ConfigError

    path = write(tmp_path, "version: 1\nrelay: {ipv4: [2001:db8::1], ipv6: [nope]}\n")
    try:
        load_config(path)
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("expected a ConfigError")
    assert "relay.ipv4[0]: '2001:db8::1' is not an IPv4 address" in text
    assert "relay.ipv6[0]: 'nope' is not an IPv6 address" in text
