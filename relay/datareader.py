"""Reading a message in DATA.

aiosmtpd 1.4 reads DATA a line at a time and keeps every line as its own bytearray: 2 MB
of empty lines became a million objects (~86 MB, kept by the process after the session
closed) and cost ~1.3 s of the event loop. Here the message is read in the chunks the
connection delivers into one buffer (its memory proportional to its size, freed as one
block) and unstuffed with one replace; the size and line-length rules are aiosmtpd's
(the replies are the same).

A session must also keep sending: after GRACE seconds, DATA must average at least
MIN_RATE bytes per second (Postfix's smtpd_min_data_rate idea), or RateWatch closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

MIN_RATE = 500  # bytes per second, averaged over the DATA phase
GRACE = 30.0  # seconds before the rate counts (a slow start, a big first chunk)


CHUNK = 1 << 22  # more than a StreamReader ever holds (flow control pauses at ~256 KiB)
END = b"\r\n.\r\n"


@dataclass
class DataResult:
    body: bytes = b""
    error: str | None = None  # "too_long" (a line over the limit) or "too_much" (the size)


async def read_data(
    reader: asyncio.StreamReader,
    size_limit: int | None,
    line_limit: int,
    progress: RateWatch | None = None,
) -> DataResult:
    """Read up to the lone dot, in the chunks the connection delivers (no per-line work
    in Python), then unstuff the dots. Everything is read even after an error (RFC 5321
    4.2.5: the reply comes at the end), but past the size limit nothing more is kept.
    Bytes after the dot (pipelined commands) go back to the reader. ConnectionResetError
    (which aiosmtpd handles) when the client closes first."""
    raw = bytearray(b"\r\n")  # a line starts here: the end marker may be the first line
    kept_limit = (size_limit or 0) + 2
    error: str | None = None
    total = 0
    while True:
        chunk = await reader.read(CHUNK)
        if not chunk:
            raise ConnectionResetError("the client closed the connection in DATA")
        total += len(chunk)
        if progress is not None:
            progress.received = total
        start = max(0, len(raw) - 4)
        raw += chunk
        found = raw.find(END, start)
        if found >= 0:
            break
        if size_limit and len(raw) > kept_limit + 4:
            error = "too_much"
            del raw[:-4]  # keep only what the end marker may start with
    extra = bytes(raw[found + len(END) :])
    if extra and not reader.at_eof():
        reader.feed_data(extra)  # the buffer is empty: this keeps the order
    if error is not None:
        return DataResult(error=error)
    del raw[found + 2 :]  # the message with its last CRLF, after the 2-byte prefix
    if size_limit and len(raw) - 2 > size_limit:
        return DataResult(error="too_much")
    if has_long_line(raw, line_limit - 1):
        return DataResult(error="too_long")
    return DataResult(body=bytes(raw.replace(b"\r\n.", b"\r\n"))[2:])


def has_long_line(data: bytes | bytearray, length: int) -> bool:
    """Whether `data` has a run of `length` bytes without CR or LF (a line longer than
    aiosmtpd allows). Such a run contains a whole aligned block of length // 2 bytes, so
    only those blocks are looked at closely: a few microseconds per kilobyte whatever
    the line structure (a regular expression costs ~13 ns per byte tried)."""
    step = max(1, length // 2)
    for start in range(0, len(data) - step + 1, step):
        block = data[start : start + step]
        if b"\n" in block or b"\r" in block:
            continue
        left = max(data.rfind(b"\n", 0, start), data.rfind(b"\r", 0, start)) + 1
        ends = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
        right = min(ends) if ends else len(data)
        if right - left >= length:
            return True
    return False


class RateWatch:
    """Calls `too_slow` once the DATA phase falls below MIN_RATE after GRACE seconds:
    one timer per message, moved forward as bytes arrive (no per-line cost)."""

    def __init__(
        self,
        too_slow: Callable[[], None],
        min_rate: float = MIN_RATE,
        grace: float = GRACE,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.too_slow = too_slow
        self.min_rate = min_rate
        self.grace = grace
        self.received = 0
        self.started = self.loop.time()
        self._handle = self.loop.call_at(self.started + grace, self._check)

    def deadline(self) -> float:
        return self.started + self.grace + self.received / self.min_rate

    def _check(self) -> None:
        deadline = self.deadline()
        if self.loop.time() >= deadline:
            self.too_slow()
        else:
            self._handle = self.loop.call_at(deadline, self._check)

    def cancel(self) -> None:
        self._handle.cancel()
