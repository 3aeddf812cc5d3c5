"""The approved senders as the relay holds them: an immutable set kept in SHARDS smaller
frozensets, chosen by the address's hash.

A relay builds the next policy on a thread while its event loop serves sessions, and a
thread keeps the interpreter for the whole of one C call. One frozenset of 100,000
addresses costs one such call to build, another to copy and another to free, each long
enough to hold every session; shards make each of those steps small. `dismantle` frees
a retired set shard by shard (see PolicyHolder).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from typing import Any

SHARDS = 64


class SenderSet(Set[str]):
    __slots__ = ("_shards", "_size")

    def __init__(self, items: Iterable[str] = ()) -> None:
        buckets: list[list[str]] = [[] for _ in range(SHARDS)]
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"a sender is {type(item).__name__}, expected str")
            buckets[hash(item) % SHARDS].append(item)
        self._shards = [frozenset(bucket) for bucket in buckets]
        self._size = sum(len(shard) for shard in self._shards)

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item in self._shards[hash(item) % SHARDS]

    def __iter__(self) -> Iterator[str]:
        for shard in self._shards:
            yield from shard

    def __len__(self) -> int:
        return self._size

    def __hash__(self) -> int:
        return self._hash()

    def __repr__(self) -> str:
        return f"SenderSet({self._size} addresses)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (SenderSet, (list(self),))

    def dismantle(self) -> None:
        """Free the shards one at a time (only for a set nothing else uses any more)."""
        while self._shards:
            self._shards.pop()
        self._size = 0
