from __future__ import annotations

from reconciler.diff import diff
from reconciler.plan import Action
from reconciler.resources import Resource
from tests.conftest import stored


def res(rtype: str, name: str | None, **attrs: object) -> Resource:
    return Resource(rtype, name, dict(attrs))


DOMAIN = res("domain", "example.com", spf=True)
DKIM = res("dkim", "example.com/s1", domain="example.com", selector="s1", algorithm="rsa-2048")
SENDER = res("sender", "a@example.com", domain="example.com")
CRED = res("credential", "app/prod", user="app")
USER = res("user", "app")


def test_everything_new_is_created_in_dependency_order() -> None:
    plan = diff({r.address: r for r in (CRED, SENDER, DKIM, USER, DOMAIN)}, {})
    assert [c.address for c in plan.changes] == [
        'domain["example.com"]',
        'dkim["example.com/s1"]',
        'sender["a@example.com"]',
        'user["app"]',
        'credential["app/prod"]',
    ]
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert plan.changes[1].unknown_after == ("public_key", "private_key", "created_at")
    assert (plan.add, plan.change, plan.remove) == (5, 0, 0)


def test_unchanged_resources_produce_no_change() -> None:
    everything = [DOMAIN, DKIM, SENDER]
    plan = diff({r.address: r for r in everything}, {r.address: stored(r) for r in everything})
    assert plan.empty


def test_changed_attribute_updates_in_place() -> None:
    new = res("domain", "example.com", spf=False)
    plan = diff({new.address: new}, {DOMAIN.address: stored(DOMAIN)})
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.changed_attributes() == ["spf"]
    assert (plan.add, plan.change, plan.remove) == (0, 1, 0)


def test_algorithm_change_forces_replacement_and_keeps_public_key_visible() -> None:
    new = res("dkim", "example.com/s1", domain="example.com", selector="s1", algorithm="ed25519")
    old = stored(DKIM, public_key="PUB", private_key="SECRET", created_at="t")
    (change,) = diff({new.address: new}, {DKIM.address: old}).changes
    assert change.action is Action.REPLACE
    assert change.forces == ("algorithm",)
    assert change.reason == "forces replacement: algorithm"
    assert change.computed_before == {"public_key": "PUB", "created_at": "t"}
    assert "SECRET" not in repr(change)


def test_requested_replacement_of_an_unchanged_resource() -> None:
    plan = diff({CRED.address: CRED}, {CRED.address: stored(CRED)}, replace={CRED.address})
    (change,) = plan.changes
    assert (
        change.action is Action.REPLACE and change.reason == "replacement requested with --replace"
    )
    assert (plan.add, plan.change, plan.remove) == (1, 0, 1)


def test_removed_resources_are_destroyed_in_reverse_dependency_order() -> None:
    everything = [DOMAIN, DKIM, SENDER, USER, CRED]
    plan = diff({}, {r.address: stored(r) for r in everything})
    assert [c.address for c in plan.changes] == [
        'credential["app/prod"]',
        'user["app"]',
        'sender["a@example.com"]',
        'dkim["example.com/s1"]',
        'domain["example.com"]',
    ]
    assert all(c.action is Action.DELETE for c in plan.changes)


def test_destroys_come_after_creates() -> None:
    new_sender = res("sender", "b@example.com", domain="example.com")
    plan = diff(
        {new_sender.address: new_sender, DOMAIN.address: DOMAIN},
        {DOMAIN.address: stored(DOMAIN), SENDER.address: stored(SENDER)},
    )
    assert [(c.action, c.address) for c in plan.changes] == [
        (Action.CREATE, 'sender["b@example.com"]'),
        (Action.DELETE, 'sender["a@example.com"]'),
    ]
