"""`dns push` never overwrites a record it did not publish (issue #15): another
provider's DKIM key or a hand-written DMARC record stops the push before anything is
sent, unless --force; SPF at a shared name is merged as before; what postform published
itself is replaced freely; what `state rm` forgot is left alone. Real Knot on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.dns.foreign import ForeignRecordError
from reconciler.dns.operations import push_zone
from reconciler.manager import Manager
from tests.test_dns_live import push, push_all, verify

OTHER_KEY = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
THEIR_DKIM = f"v=DKIM1; k=ed25519; p={OTHER_KEY}"
THEIR_DMARC = "v=DMARC1; p=reject; rua=mailto:abuse@elsewhere.example"


def publish_theirs(knot) -> None:
    """Another provider's DKIM key at postform's selector `ed`, a DMARC record written by
    hand, and the user's own SPF record (shared: merged, never refused)."""
    knot.update(
        "example.com",
        add=[
            ("ed._domainkey.example.com", "TXT", f'"{THEIR_DKIM}"'),
            ("_dmarc.example.com", "TXT", f'"{THEIR_DMARC}"'),
            ("example.com", "TXT", '"v=spf1 ip4:198.51.100.1 -all"'),
        ],
    )


def test_push_refuses_records_it_did_not_publish_and_sends_nothing(
    dns_project: Path, cli, knot
) -> None:
    publish_theirs(knot)
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    refused = push(cli, dns_project, knot)
    assert refused.code == 1
    assert "refusing to push to zone example.com" in refused.err
    assert f'ed._domainkey.example.com TXT "{THEIR_DKIM}"' in refused.err
    assert '(dkim["example.com/ed"] wants its own)' in refused.err
    assert "_dmarc.example.com TXT" in refused.err
    assert "postform import 'dkim[\"example.com/ed\"]' --private-key-file" in refused.err
    assert "--force" in refused.err and "Nothing was sent." in refused.err
    assert 'example.com TXT "v=spf1' not in refused.err  # the shared SPF is merged
    assert "Traceback" not in refused.err
    assert knot.txt("ed._domainkey.example.com") == [THEIR_DKIM]  # nothing was sent
    assert knot.txt("_dmarc.example.com") == [THEIR_DMARC]
    assert knot.txt("s1._domainkey.example.com") == []
    assert knot.txt("example.com") == ["v=spf1 ip4:198.51.100.1 -all"]
    dry = cli(
        dns_project, "dns", "push", "--server", knot.server, "--zone", "example.com", "--dry-run"
    )
    assert dry.code == 1 and "refusing to push" in dry.err


def test_force_replaces_them(dns_project: Path, cli, knot) -> None:
    publish_theirs(knot)
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    manager = Manager.load(dns_project / "postform.yaml")

    def push_directly(force: bool):  # operations.push_zone, what the command calls
        return push_zone(
            manager,
            knot.server,
            "example.com",
            knot.key_file,
            dry_run=False,
            timeout=3,
            lock_timeout=0,
            force=force,
        )

    with pytest.raises(ForeignRecordError):
        push_directly(force=False)
    outcome = push_directly(force=True)
    assert outcome.sent
    assert knot.txt("ed._domainkey.example.com") != [THEIR_DKIM]
    assert knot.txt("_dmarc.example.com") == [
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"
    ]
    assert knot.txt("example.com") == ["v=spf1 ip4:198.51.100.1 include:_spf.example.net -all"]
    assert push(cli, dns_project, knot, "example.net").code == 0
    assert verify(cli, dns_project, knot).code == 0
    assert push(cli, dns_project, knot).out.startswith("No changes")


def test_force_from_the_command_line(dns_project: Path, cli, knot) -> None:
    publish_theirs(knot)
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    forced = push(cli, dns_project, knot, "example.com", None, "--force")
    assert forced.code == 0, forced.err
    assert knot.txt("ed._domainkey.example.com") != [THEIR_DKIM]


def test_what_postform_published_is_replaced_without_force(dns_project: Path, cli, knot) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("policy: quarantine", "policy: reject"))
    assert (
        cli(dns_project, "apply", "--replace", 'dkim["example.com/ed"]', "--auto-approve").code == 0
    )  # a new key at the same selector, too
    again = push(cli, dns_project, knot)
    assert again.code == 0, again.err
    assert knot.txt("_dmarc.example.com") == ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"]
    assert verify(cli, dns_project, knot).code == 0


def test_state_rm_leaves_the_record_in_dns_and_it_is_no_longer_postforms(
    dns_project: Path, cli, knot
) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    published = knot.txt("ed._domainkey.example.com")
    removed = cli(dns_project, "state", "rm", 'dkim["example.com/ed"]')
    assert removed.code == 0, removed.err
    plan = cli(dns_project, "plan")
    assert '# dkim["example.com/ed"] will be created' in plan.out
    pushed = push(cli, dns_project, knot)  # not in the state, yet push does not withdraw it
    assert pushed.code == 0 and pushed.out.startswith("No changes"), pushed.out + pushed.err
    assert knot.txt("ed._domainkey.example.com") == published


def test_a_record_published_by_hand_and_verified_is_postforms(dns_project: Path, cli, knot) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    ours = "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"  # from the BIND fragment
    knot.update("example.com", add=[("_dmarc.example.com", "TXT", f'"{ours}"')])
    verify(cli, dns_project, knot)  # seen live as postform's record
    config = dns_project / "postform.yaml"
    config.write_text(config.read_text().replace("policy: quarantine", "policy: reject"))
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    verify(cli, dns_project, knot)  # now a mismatch: postform wants p=reject
    pushed = push(cli, dns_project, knot)
    assert pushed.code == 0, pushed.err
    assert knot.txt("_dmarc.example.com") == ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"]
