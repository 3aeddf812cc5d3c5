"""The `senders:` list of a config, read once for every check and for the model.

At 100,000 senders each pass over the list costs tens of milliseconds, and the
checks (syntax, duplicates, the limit, users' senders, unsigned domains) and the
config model each made their own. The table normalises every address once and
keeps what they all need, in the order the file lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler import names
from reconciler.yamlload import DocPath, Document


@dataclass(frozen=True)
class SenderTable:
    """One row per well-formed item (an address, or a mapping with a string `address`)."""

    items: list[Any]  # the list as written
    index: list[int]  # the item of each row
    written: list[str]  # the address as written
    keys: list[str | None]  # normalised (domain lower-cased), None when not an address
    domains: list[str]  # the normalised domain ('' when not an address)
    first: dict[str | None, int]  # each key -> its first row

    @property
    def clean(self) -> bool:
        """Every row a valid address and none listed twice: the checks have nothing to say."""
        return None not in self.first and len(self.first) == len(self.keys)

    def path(self, row: int) -> DocPath:
        i = self.index[row]
        return ("senders", i) if type(self.items[i]) is str else ("senders", i, "address")

    def approved(self) -> set[str]:
        return {k for k in self.first if k is not None}


def sender_table(doc: Document) -> SenderTable:
    """The table of `doc`'s senders, made on first use and kept in the document's memo."""
    table = doc.memo.get("sender_table")
    if table is None:
        table = doc.memo["sender_table"] = _make(doc.data)
    assert isinstance(table, SenderTable)
    return table


def _make(data: Any) -> SenderTable:
    items = data.get("senders") if isinstance(data, dict) else None
    if not isinstance(items, list):
        items = []
    index: list[int] = []
    written: list[str] = []
    for i, item in enumerate(items):
        if type(item) is not str:
            item = item.get("address") if isinstance(item, dict) else None
            if not isinstance(item, str):
                continue
        index.append(i)
        written.append(item)
    keys = [names.normalize_address(a) for a in written]
    domains = [k.rpartition("@")[2] if k else "" for k in keys]
    rows = range(len(keys) - 1, -1, -1)
    first = dict(zip(reversed(keys), rows, strict=True))  # the last write is the first row
    return SenderTable(items, index, written, keys, domains, first)
