"""Tests of StationOutput: the frame-aligned ring of recent audio that players read."""

from __future__ import annotations

import anyio
import pytest
from streamerp2p.output import MAX_READ, StationOutput, Subscription
from streamerp2p.types import StationMeta

pytestmark = pytest.mark.anyio

TIMEOUT = 5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def seg(tag: int, size: int = 1000) -> bytes:
    return bytes([tag]) * size


async def next_chunk(sub: Subscription) -> bytes:
    with anyio.fail_after(TIMEOUT):
        return await sub.__anext__()


async def read_all(sub: Subscription) -> bytes:
    out = bytearray()
    with anyio.fail_after(TIMEOUT):
        async for data in sub:
            out += data
    return bytes(out)


class Reader:
    """Reads a subscription in a task, collecting bytes; lets a test await progress."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.data = bytearray()
        self.done = anyio.Event()
        self._progress = anyio.Event()

    async def run(self) -> None:
        async for chunk in self.sub:
            self.data += chunk
            self._progress.set()
            self._progress = anyio.Event()
        self.done.set()

    async def wait_for(self, size: int) -> None:
        with anyio.fail_after(TIMEOUT):
            while len(self.data) < size:
                await self._progress.wait()


async def test_subscriber_before_audio_waits() -> None:
    out = StationOutput("s", StationMeta())
    sub = out.subscribe()
    reader = Reader(sub)
    async with anyio.create_task_group() as tg:
        tg.start_soon(reader.run)
        await anyio.wait_all_tasks_blocked()
        assert reader.data == b""
        # Not a frame start: a late joiner cannot start here.
        out.feed(seg(1), frame_start=False)
        await anyio.wait_all_tasks_blocked()
        assert reader.data == b""
        out.feed(seg(2), frame_start=True)
        out.feed(seg(3), frame_start=False)
        await reader.wait_for(2000)
        assert bytes(reader.data) == seg(2) + seg(3)
        out.end()
        with anyio.fail_after(TIMEOUT):
            await reader.done.wait()
    assert out.listeners == 0


async def test_burst_starts_on_frame_boundary_within_burst_bytes() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=2500)
    out.feed(seg(1), True)
    out.feed(seg(2), False)
    out.feed(seg(3), True)
    out.feed(seg(4), False)
    sub = out.subscribe()
    # seg 2..4 would be 3000 bytes > 2500, so the burst starts at the frame start seg 3.
    assert await next_chunk(sub) == seg(3) + seg(4)
    out.feed(seg(5), False)
    assert await next_chunk(sub) == seg(5)


async def test_burst_is_oldest_frame_start_in_range() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=10_000)
    for i in range(1, 6):
        out.feed(seg(i), True)
    sub = out.subscribe()
    assert await next_chunk(sub) == b"".join(seg(i) for i in range(1, 6))


async def test_no_frame_start_in_burst_range_waits_for_next_one() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=1500)
    out.feed(seg(1), True)
    out.feed(seg(2), False)
    sub = out.subscribe()
    out.feed(seg(3), False)
    out.feed(seg(4), True)
    assert await next_chunk(sub) == seg(4)


async def test_zero_burst_starts_live() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=0)
    out.feed(seg(1), True)
    sub = out.subscribe()
    out.feed(seg(2), True)
    assert await next_chunk(sub) == seg(2)


async def test_headers_come_first() -> None:
    out = StationOutput("s", StationMeta(content_type="audio/ogg"))
    out.set_headers(b"OggS-headers")
    out.feed(seg(1), True)
    sub = out.subscribe()
    assert await next_chunk(sub) == b"OggS-headers"
    assert await next_chunk(sub) == seg(1)
    # A reader subscribed before any audio also gets the headers first.
    early = StationOutput("t", StationMeta())
    sub2 = early.subscribe()
    early.set_headers(b"H")
    early.feed(seg(7), True)
    assert await next_chunk(sub2) == b"H"
    assert await next_chunk(sub2) == seg(7)


async def test_multiple_subscribers_get_the_same_stream() -> None:
    out = StationOutput("s", StationMeta())
    readers = [Reader(out.subscribe()) for _ in range(3)]
    assert out.listeners == 3
    expected = b"".join(seg(i, 700) for i in range(50))
    async with anyio.create_task_group() as tg:
        for r in readers:
            tg.start_soon(r.run)
        for i in range(50):
            out.feed(seg(i, 700), frame_start=i % 3 == 0)
            if i % 10 == 0:
                await anyio.sleep(0)  # let readers interleave with the feeder
        out.end()
        with anyio.fail_after(TIMEOUT):
            for r in readers:
                await r.done.wait()
    for r in readers:
        assert bytes(r.data) == expected
    assert out.listeners == 0


async def test_lagging_subscriber_skips_instead_of_growing_memory() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=2500, buffer_bytes=5000)
    out.feed(seg(0), True)
    sub = out.subscribe()
    assert await next_chunk(sub) == seg(0)
    for i in range(1, 21):
        out.feed(seg(i), frame_start=i % 2 == 0)
        assert out.buffered_bytes <= 5000
    # The reader is 20000 bytes behind with a 5000-byte buffer: it skips to the newest frame
    # start within the burst range (segment 20), not to the oldest data still buffered.
    assert await next_chunk(sub) == seg(20)
    assert sub.skips == 1
    assert out.stats.lag_skips == 1
    out.feed(seg(21), False)
    assert await next_chunk(sub) == seg(21)
    assert sub.skips == 1


async def test_lagging_subscriber_without_frame_start_in_range_waits_for_one() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=1500, buffer_bytes=3000)
    out.feed(seg(0), True)
    sub = out.subscribe()
    assert await next_chunk(sub) == seg(0)
    for i in range(1, 6):
        out.feed(seg(i), False)
    out.feed(seg(6), False)
    out.feed(seg(7), True)
    out.feed(seg(8), False)
    # Buffer holds 6, 7, 8; the newest frame start within 1500 bytes of the end is... none
    # (8 alone is 1000 bytes but not a frame start; 7+8 is 2000 > 1500): wait for the next one.
    reader = Reader(sub)
    async with anyio.create_task_group() as tg:
        tg.start_soon(reader.run)
        await anyio.wait_all_tasks_blocked()
        assert reader.data == b""
        out.feed(seg(9), False)
        out.feed(seg(10), True)
        await reader.wait_for(1000)
        assert bytes(reader.data) == seg(10)
        sub.close()
    assert sub.skips == 1


async def test_reads_are_joined_up_to_max_read() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=0, buffer_bytes=4 * MAX_READ)
    sub = out.subscribe()
    for i in range(200):
        out.feed(seg(i % 256, 1000), True)
    first = await next_chunk(sub)
    assert MAX_READ <= len(first) < MAX_READ + 1000
    sizes = [len(first)]
    while sum(sizes) < 200_000:
        sizes.append(len(await next_chunk(sub)))
    assert sizes == [66_000, 66_000, 66_000, 2_000]


async def test_end_drains_then_stops_and_feed_after_end_is_ignored() -> None:
    out = StationOutput("s", StationMeta())
    sub = out.subscribe()
    out.feed(seg(1), True)
    out.feed(seg(2), False)
    out.end()
    out.feed(seg(3), True)
    assert out.ended
    assert await read_all(sub) == seg(1) + seg(2)
    assert sub.closed
    # A reader arriving after the end gets the recent audio, then the end.
    assert await read_all(out.subscribe()) == seg(1) + seg(2)


async def test_close_wakes_a_waiting_reader() -> None:
    out = StationOutput("s", StationMeta())
    async with out.subscribe() as sub:
        reader = Reader(sub)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await anyio.wait_all_tasks_blocked()
            assert out.listeners == 1
            sub.close()
            with anyio.fail_after(TIMEOUT):
                await reader.done.wait()
    assert out.listeners == 0
    assert out.stats.subscribers_total == 1


async def test_title_tracking() -> None:
    out = StationOutput("s", StationMeta(url="http://x"))
    sub = out.subscribe()
    assert sub.take_title() == ""  # the first call always reports the current title
    assert sub.take_title() is None
    out.set_title("One")
    assert sub.title == "One"
    assert sub.take_title() == "One"
    assert sub.take_title() is None
    out.set_title("One")  # unchanged: no change reported
    assert sub.take_title() is None
    out.set_title("Two")
    out.set_meta(StationMeta(name="New"))
    assert sub.take_title() == "Two"
    assert sub.meta.name == "New"


def test_constructor_clamps_and_validates() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=10_000, buffer_bytes=4000)
    assert out.burst_bytes == 4000
    with pytest.raises(ValueError):
        StationOutput("s", StationMeta(), buffer_bytes=0)


# ---- CodecSpec.rejoin: a per-reader rewriter ---------------------------------------------------


class Upper:
    """A toy rewriter: upper-cases, holds back a trailing "#" until more comes."""

    made = 0

    def __init__(self) -> None:
        Upper.made += 1
        self.seen: list[bytes] = []
        self._rest = b""

    def __call__(self, data: bytes) -> bytes:
        self.seen.append(data)
        data = self._rest + data
        keep = 1 if data.endswith(b"#") else 0
        self._rest = data[len(data) - keep :]
        return data[: len(data) - keep].upper()


async def test_rewriter_sees_headers_then_audio_per_reader() -> None:
    Upper.made = 0
    out = StationOutput("s", StationMeta(), rejoin=Upper)
    out.set_headers(b"head:")
    out.feed(b"abc#", True)
    out.feed(b"def", False)
    out.end()
    first, second = out.subscribe(), out.subscribe()
    assert await read_all(first) == b"HEAD:ABC#DEF"
    assert await read_all(second) == b"HEAD:ABC#DEF"
    assert Upper.made == 2  # one rewriter per reader


async def test_rewriter_holding_everything_does_not_end_the_stream() -> None:
    out = StationOutput("s", StationMeta(), rejoin=Upper)
    sub = out.subscribe()
    out.feed(b"#", True)  # held back: the reader must wait for more, not yield b""
    async with anyio.create_task_group() as tg:
        reader = Reader(sub)
        tg.start_soon(reader.run)
        out.feed(b"x", False)
        await reader.wait_for(2)
        out.end()
    assert bytes(reader.data) == b"#X"


async def test_set_rejoin_applies_to_readers_that_have_not_started() -> None:
    out = StationOutput("s", StationMeta())
    early = out.subscribe()
    out.set_rejoin(Upper)
    out.feed(b"abc", True)
    out.end()
    assert await read_all(early) == b"ABC"
    out2 = StationOutput("s", StationMeta())
    out2.feed(b"abc", True)
    out2.end()
    assert await read_all(out2.subscribe()) == b"abc"  # no rewriter: as is


async def test_a_broken_rewriter_falls_back_to_the_bytes_as_they_are() -> None:
    def broken() -> object:
        def rewrite(data: bytes) -> bytes:
            raise RuntimeError("codec bug")

        return rewrite

    out = StationOutput("s", StationMeta(), rejoin=broken)  # type: ignore[arg-type]
    out.feed(b"abc", True)
    out.end()
    assert await read_all(out.subscribe()) == b"abc"

    def failing_factory() -> object:
        raise RuntimeError("codec bug")

    out = StationOutput("s", StationMeta(), rejoin=failing_factory)  # type: ignore[arg-type]
    out.feed(b"abc", True)
    out.end()
    assert await read_all(out.subscribe()) == b"abc"


async def test_headers_are_sent_again_after_a_lag_skip() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=2500, buffer_bytes=5000)
    out.set_headers(b"H1")
    out.feed(seg(0), True)
    sub = out.subscribe()
    assert await next_chunk(sub) == b"H1"
    assert await next_chunk(sub) == seg(0)
    out.set_headers(b"H2")  # e.g. a new Ogg chain started in the part the reader will skip
    for i in range(1, 21):
        out.feed(seg(i), frame_start=i % 2 == 0)
    assert await next_chunk(sub) == b"H2"
    assert await next_chunk(sub) == seg(20)
    assert sub.skips == 1
    out.feed(seg(21), False)
    assert await next_chunk(sub) == seg(21)  # once only


async def test_a_reader_that_starts_late_gets_the_headers_once() -> None:
    out = StationOutput("s", StationMeta(), burst_bytes=2500, buffer_bytes=5000)
    out.set_headers(b"H")
    out.feed(seg(0), True)
    sub = out.subscribe()  # has not read anything when it falls behind
    for i in range(1, 21):
        out.feed(seg(i), frame_start=i % 2 == 0)
    out.end()
    assert await read_all(sub) == b"H" + seg(20)
