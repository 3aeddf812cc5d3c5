"""Property tests: apply-then-plan is always empty; a plan touches only what changed."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.apply import apply_plan
from reconciler.config import load_config
from reconciler.planner import make_plan
from reconciler.resources import desired_resources
from reconciler.schema import _full, is_valid
from reconciler.state.model import State
from reconciler.yamlload import load_text

DOMAINS = ["example.com", "example.org", "mail.example.net"]
LOCALS = ["noreply", "billing", "alerts", "Info"]
label = st.sampled_from(["s1", "s2", "app-2026", "tokyo"])


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    domains = {}
    for d in draw(st.lists(st.sampled_from(DOMAINS), unique=True, max_size=3)):
        sels = draw(st.lists(label, unique=True, max_size=2))
        body: dict[str, Any] = {"dkim": [{"selector": s, "algorithm": "ed25519"} for s in sels]}
        if draw(st.booleans()):
            body["dmarc"] = {"policy": draw(st.sampled_from(["none", "quarantine", "reject"]))}
        if draw(st.booleans()):
            body["spf"] = draw(st.booleans())
        domains[d] = body
    senders = draw(
        st.lists(
            st.tuples(st.sampled_from(LOCALS), st.sampled_from(DOMAINS)), unique=True, max_size=6
        )
    )
    addresses = [f"{local}@{domain}" for local, domain in senders]
    users = {}
    for name in draw(st.lists(st.sampled_from(["app", "web", "cron"]), unique=True, max_size=2)):
        users[name] = {
            "credentials": draw(st.lists(st.sampled_from(["prod", "dev"]), unique=True, max_size=1))
        }
        if addresses and draw(st.booleans()):
            users[name]["senders"] = draw(
                st.lists(st.sampled_from(addresses), unique=True, min_size=1)
            )
    config: dict[str, Any] = {
        "version": 1,
        "domains": domains,
        "senders": addresses,
        "users": users,
    }
    if draw(st.booleans()):
        config["limits"] = {"messages_per_minute": draw(st.integers(1, 20000))}
    if draw(st.booleans()):
        config["suppressions"] = [
            {"address": "x@example.org", "reason": draw(st.sampled_from(["manual", "COMPLAINT"]))}
        ]
    return config


def load(folder: Path, config: dict[str, Any]):
    (folder / "postform.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return load_config(folder / "postform.yaml")


def apply_in_memory(cfg, state: State) -> State:
    plan = make_plan(cfg, state)
    new, _ = apply_plan(
        plan,
        state,
        lambda s: State(s.lineage or "L", s.serial + 1, s.resources, s.dns),
        lambda _: None,
    )
    return new


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(configs())
def test_apply_then_plan_is_empty(config: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(Path(tmp), config)
        state = apply_in_memory(cfg, State())
        assert make_plan(cfg, state).empty


@FAST
@given(configs(), configs())
def test_plan_touches_exactly_the_resources_that_differ(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg_a, cfg_b = load(Path(tmp), a), load(Path(tmp), b)
        state = apply_in_memory(cfg_a, State())
        want_a, want_b = desired_resources(cfg_a), desired_resources(cfg_b)
        differing = {
            addr
            for addr in want_a.keys() | want_b.keys()
            if addr not in want_a
            or addr not in want_b
            or want_a[addr].attributes != want_b[addr].attributes
        }
        plan = make_plan(cfg_b, state)
        assert {c.address for c in plan.changes} == differing
        final = apply_in_memory(cfg_b, state)
        assert make_plan(cfg_b, final).empty
        kept = want_a.keys() & want_b.keys() - differing
        for addr in kept:
            assert final.resources[addr] == state.resources[addr]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70_000_000)
    | st.sampled_from(["a@example.com", "x", "rsa-2048", "none", "mailto:a@b.example", ""]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "senders",
                    "domains",
                    "dkim",
                    "selector",
                    "algorithm",
                    "address",
                    "limits",
                    "max_message_bytes",
                    "users",
                    "credentials",
                    "relay",
                    "hostname",
                    "bogus",
                    "dmarc",
                    "policy",
                    "spf",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


QUICKSTART = yaml.safe_load(
    (Path(__file__).parent.parent / "examples" / "quickstart" / "postform.yaml").read_text()
)


@settings(max_examples=300, deadline=None)
@given(json_values)
@example(QUICKSTART)
@example({**QUICKSTART, "users": {"a": {"credentials": ["bad name"]}}})
@example({**QUICKSTART, "limits": {"max_message_bytes": 100}})
@example({"version": 1, "senders": [{"address": "a@b.example", "extra": 1}]})
def test_fast_and_full_schema_validators_agree(data: Any) -> None:
    doc = load_text(yaml.safe_dump(data), "f.yaml")
    name = "postform.schema.json"
    assert is_valid(name, doc.data) == _full(name).is_valid(doc.data)
    if data is QUICKSTART:
        assert is_valid(name, doc.data)
