"""Reading DATA (relay/datareader.py): aiosmtpd's rules (dot-unstuffing, the size and
line-length replies, pipelined commands after the dot), in one buffer per message."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.datareader import DataResult, RateWatch, has_long_line, read_data

LINE_LIMIT = 1001  # aiosmtpd's, counting CRLF


def read(data: bytes, size_limit: int = 2097152, chunks: int = 1) -> tuple[DataResult, bytes]:
    async def run() -> tuple[DataResult, bytes]:
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        step = max(1, len(data) // chunks)

        async def feed() -> None:
            for i in range(0, len(data), step):
                reader.feed_data(data[i : i + step])
                await asyncio.sleep(0)

        feeding = asyncio.ensure_future(feed())
        result = await read_data(reader, size_limit, LINE_LIMIT)
        await feeding
        rest = await reader.read(10_000) if reader._buffer else b""
        return result, rest

    return asyncio.run(run())


def test_dots_are_unstuffed_and_pipelined_commands_stay_for_the_next_reader() -> None:
    result, rest = read(b"a\r\n..b\r\n.\r\n\r\n.\r\nQUIT\r\n", chunks=7)
    assert (result.body, result.error, rest) == (b"a\r\n.b\r\n", None, b"\r\n.\r\nQUIT\r\n")


def test_an_empty_message_and_one_split_at_every_byte() -> None:
    assert read(b".\r\n")[0].body == b""
    text = b"Subject: x\r\n\r\nline\r\n..dot\r\n"
    assert read(text + b".\r\n", chunks=len(text) + 3)[0].body == text.replace(b"\r\n..", b"\r\n.")


def test_size_and_line_length_give_aiosmtpds_errors_after_reading_everything() -> None:
    result, rest = read(b"x\r\n" * 100 + b".\r\nNOOP\r\n", size_limit=100, chunks=30)
    assert (result.error, rest) == ("too_much", b"NOOP\r\n")
    assert read(b"x" * 999 + b"\r\n.\r\n")[0].error is None
    assert read(b"x" * 1000 + b"\r\n.\r\n")[0].error == "too_long"


def test_the_client_closing_in_data_is_a_connection_reset() -> None:
    async def run() -> None:
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        reader.feed_data(b"half a message\r\n")
        reader.feed_eof()
        with pytest.raises(ConnectionResetError):
            await read_data(reader, 1000, LINE_LIMIT)

    asyncio.run(run())


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 499, 500, 501, 998, 999, 1000, 1001, 2000]),
            st.sampled_from([b"\r\n", b"\n", b"\r"]),
        ),
        max_size=8,
    )
)
def test_long_lines_are_found_as_a_regular_expression_finds_them(
    parts: list[tuple[int, bytes]],
) -> None:
    data = b"".join(b"x" * n + end for n, end in parts)
    assert has_long_line(data, 1000) == bool(re.search(rb"[^\r\n]{1000}", data))


def test_the_rate_watch_fires_once_data_falls_below_the_minimum() -> None:
    async def run() -> list[float]:
        fired: list[float] = []
        loop = asyncio.get_running_loop()
        watch = RateWatch(lambda: fired.append(loop.time()), min_rate=1000, grace=0.1)
        watch.received = 100  # allows 0.1 s more
        await asyncio.sleep(0.35)
        watch.cancel()
        return [t - watch.started for t in fired]

    fired = asyncio.run(run())
    assert len(fired) == 1 and 0.19 <= fired[0] < 0.3
