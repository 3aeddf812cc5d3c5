"""The policy document as lines, the sharded sender set and how a relay frees a replaced
policy (issue #13: a reload must not hold the sessions for long at 100,000 senders)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from relay.contract.policy import RelayPolicy
from relay.contract.policycodec import SENDERS_PER_LINE, decode_policy, encode_policy
from relay.contract.policyfile import write_policy_file
from relay.contract.senderset import SHARDS, SenderSet
from relay.events import EventLog
from relay.policyholder import PolicyHolder
from relay.policysource import FilePolicySource


def _senders(count: int) -> list[str]:
    return [f"user{i}@d{i % 7}.example" for i in range(count)]


def test_the_document_is_a_head_line_then_lines_of_senders_and_reads_back() -> None:
    document = {"format": "x", "version": 2, "senders": _senders(12_345), "users": {}}
    raw = encode_policy(document)
    lines = raw.splitlines()
    assert len(lines) == 1 + -(-12_345 // SENDERS_PER_LINE) == 4
    assert b"user0@" not in lines[0]  # the head holds no sender
    assert decode_policy(raw) == document
    legacy = b'{"version": 2, "senders": ["a@x.example"]}\n'  # what earlier releases wrote
    assert decode_policy(legacy) == {"version": 2, "senders": ["a@x.example"]}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"sender_lines": 2}\n["a@x.example"]\n',  # a line missing
        b'{"version": 2}\n["a@x.example"]\n',  # data after a one-line document
        b'{"sender_lines": 1}\n{"a": 1}\n',  # a sender line that is not a list
        b'["not", "an", "object"]\n',
        b"{not json\n",
    ],
)
def test_a_damaged_document_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_policy(raw)


def test_a_sender_set_is_a_set_in_shards() -> None:
    addresses = _senders(5_000)
    senders = SenderSet(addresses)
    assert len(senders) == 5_000 and "user42@d0.example" in senders
    assert "nobody@d0.example" not in senders and 42 not in senders
    assert senders == frozenset(addresses) and frozenset(addresses) == senders
    assert sorted(senders) == sorted(addresses)
    assert len(senders._shards) == SHARDS and max(map(len, senders._shards)) < 200
    with pytest.raises(TypeError):
        SenderSet(["a@x.example", 7])  # type: ignore[list-item]
    senders.dismantle()
    assert len(senders) == 0 and not senders._shards


def test_a_replaced_policy_is_freed_shard_by_shard_once_nothing_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "state.policy.json"
    write_policy_file(path, RelayPolicy(serial=1, lineage="l", senders=frozenset(_senders(300))))

    async def scenario() -> None:
        holder = PolicyHolder(FilePolicySource(path), EventLog(path=tmp_path / "events.jsonl"))
        first_senders = holder.policy.senders
        assert isinstance(first_senders, SenderSet) and len(first_senders) == 300
        await holder.reload(forced=True)
        await holder._bury()  # nothing holds the first policy: its shards are freed
        assert len(first_senders) == 0 and not holder._retired
        session_view = holder.policy  # a session in the middle of a decision
        await holder.reload(forced=True)
        await holder._bury()
        assert len(session_view.senders) == 300  # not while it is in use
        assert len(holder._retired) == 1
        del session_view
        await holder._bury()
        assert not holder._retired

    asyncio.run(scenario())
