"""The local output of one station: a frame-aligned ring of recent audio that players read.

The runtime feeds a :class:`StationOutput` with the station's audio in order (on the event loop,
synchronously: feeding never blocks or waits for readers). Each player reads through its own
:class:`Subscription`, an async iterator of bytes that starts with the codec headers, then a
burst of recent audio beginning at a frame boundary (so the player starts at once), then live
data. All subscriptions share one bounded buffer: a reader that falls more than
``buffer_bytes`` behind skips forward instead of making memory grow.

When the station's codec needs it (``CodecSpec.rejoin``, e.g. Ogg), each subscription passes
what it yields through its own rewriter made by that factory, so that a player starting in the
middle of the broadcast still gets a valid stream; the output itself never looks inside the
audio.

Pure Python, no I/O; readers are woken by :class:`anyio.Event` objects that ``feed`` sets (no
polling).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import anyio

from .types import Rewriter, StationMeta

log = logging.getLogger(__name__)

#: Largest chunk a subscription returns at once (several fed segments are joined up to this).
MAX_READ = 65536


@dataclass(slots=True)
class OutputStats:
    bytes_fed: int = 0
    segments_fed: int = 0
    lag_skips: int = 0  # times a reader fell too far behind and skipped forward
    subscribers_total: int = 0


class StationOutput:
    """The in-memory ring of recent audio of one station.

    ``feed(payload, frame_start)`` appends one segment; ``frame_start`` is true when the
    payload begins at a frame a decoder can start at. Only segments starting at such a frame
    are used as the start of a burst or after a skip.
    """

    def __init__(
        self,
        station_id: str,
        meta: StationMeta,
        *,
        burst_bytes: int = 65536,
        buffer_bytes: int = 1 << 20,
        rejoin: Callable[[], Rewriter] | None = None,
        meta_known: bool = True,
    ) -> None:
        if buffer_bytes <= 0:
            raise ValueError("buffer_bytes must be positive")
        self.station_id = station_id
        self.meta = meta
        # False until the station's signed record gave its codec (meta is a guess till then:
        # the stream URL has no file extension yet)
        self.meta_known = meta_known
        self.title = ""
        self.ended = False
        self.burst_bytes = max(0, min(burst_bytes, buffer_bytes))
        self.buffer_bytes = buffer_bytes
        self.stats = OutputStats()
        self.title_serial = 0  # bumped on every title change
        self._headers = b""
        self.rejoin = rejoin  # CodecSpec.rejoin of the station's codec, if any
        # Segments (payload, frame_start); _segments[0] has the absolute index _first.
        self._segments: deque[tuple[bytes, bool]] = deque()
        self._first = 0
        self._buffered = 0
        self._waiters: list[anyio.Event] = []
        self._subscriptions: set[Subscription] = set()

    # ---- runtime side ---------------------------------------------------------------------

    def feed(self, payload: bytes, frame_start: bool) -> None:
        """Append in-order audio. Ignored once :meth:`end` was called."""
        if self.ended or not payload:
            return
        self._segments.append((bytes(payload), frame_start))
        self._buffered += len(payload)
        self.stats.bytes_fed += len(payload)
        self.stats.segments_fed += 1
        while self._buffered > self.buffer_bytes and len(self._segments) > 1:
            dropped, _ = self._segments.popleft()
            self._first += 1
            self._buffered -= len(dropped)
        self._wake()

    def set_meta(self, meta: StationMeta) -> None:
        """New station info (used for responses to players that connect from now on)."""
        self.meta = meta
        self.meta_known = True

    def set_title(self, title: str) -> None:
        """The now-playing title changed (players get it at their next metadata point)."""
        if title != self.title:
            self.title = title
            self.title_serial += 1

    def set_headers(self, headers: bytes) -> None:
        """Codec headers a late joiner needs before any audio (b"" when none, as for mp3)."""
        self._headers = bytes(headers)

    @property
    def headers(self) -> bytes:
        return self._headers

    def set_rejoin(self, rejoin: Callable[[], Rewriter] | None) -> None:
        """The codec's rewriter factory (``CodecSpec.rejoin``), once the codec is known.

        Used by subscriptions that have not yielded anything yet and by later ones.
        """
        self.rejoin = rejoin

    def end(self) -> None:
        """The station went off air: readers finish once they have drained what they can."""
        if not self.ended:
            self.ended = True
            self._wake()

    # ---- player side ----------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """A new reader; use as an async iterator (and preferably ``async with``)."""
        sub = Subscription(self)
        self._subscriptions.add(sub)
        self.stats.subscribers_total += 1
        return sub

    @property
    def listeners(self) -> int:
        """Number of open subscriptions."""
        return len(self._subscriptions)

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    # ---- internals ------------------------------------------------------------------------

    @property
    def _end(self) -> int:
        """Absolute index of the next segment to be fed."""
        return self._first + len(self._segments)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()

    def _sync_index(self, *, oldest: bool) -> int | None:
        """Index of a frame-start segment within the last ``burst_bytes`` (None if none).

        ``oldest`` picks the earliest such segment (the largest burst), otherwise the newest.
        """
        total = 0
        found: int | None = None
        index = self._end
        for payload, frame_start in reversed(self._segments):
            index -= 1
            total += len(payload)
            if total > self.burst_bytes:
                break
            if frame_start:
                found = index
                if not oldest:
                    break
        return found


class Subscription:
    """One reader of a :class:`StationOutput`: ``async for data in sub: ...``.

    Yields the headers (if any) first, then a burst of recent audio starting at a frame-start
    segment, then live audio. When no frame-start segment is within the burst range (or before
    any audio was fed), the reader waits for the next frame-start segment. After a lag skip the
    headers are sent again (the reader may have missed a change of headers in the skipped part;
    for Ogg, the codec's rewriter turns the repeat into a new chain). Iteration ends after
    :meth:`StationOutput.end` once everything is drained, or after :meth:`close`.
    """

    def __init__(self, output: StationOutput) -> None:
        self.output = output
        self.skips = 0
        self.bytes_read = 0
        self.closed = False
        self._headers_sent = False
        self._resend_headers = False  # after a lag skip: the headers may have changed meanwhile
        self._pending = b""
        self._rewrite: Rewriter | None = None
        self._waiter: anyio.Event | None = None
        self._title_serial = -1
        start = output._sync_index(oldest=True)
        if start is None:
            self._next = output._end
            self._need_sync = True
        else:
            self._next = start
            self._need_sync = False

    # ---- title ----------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The station's current title."""
        return self.output.title

    @property
    def meta(self) -> StationMeta:
        return self.output.meta

    def take_title(self) -> str | None:
        """The current title if it changed since the last call (always on the first call)."""
        if self._title_serial == self.output.title_serial:
            return None
        self._title_serial = self.output.title_serial
        return self.output.title

    # ---- iteration ------------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self.closed:
                raise StopAsyncIteration
            data = self._pending or self._take()
            self._pending = b""
            if data:
                if not self._headers_sent or self._resend_headers:
                    if not self._headers_sent:
                        self._headers_sent = True
                        self._rewrite = self._new_rewriter()
                    self._resend_headers = False
                    headers = self.output.headers
                    if headers:
                        self._pending = data
                        data = headers
                if self._rewrite is not None:
                    data = self._rewritten(data)
                    if not data:
                        continue  # the rewriter holds an incomplete unit: read on
                self.bytes_read += len(data)
                return data
            if self.output.ended:
                self.close()
                raise StopAsyncIteration
            self._waiter = anyio.Event()
            self.output._waiters.append(self._waiter)
            await self._waiter.wait()

    def _new_rewriter(self) -> Rewriter | None:
        factory = self.output.rejoin
        if factory is None:
            return None
        try:
            return factory()
        except Exception:
            log.exception(
                "station %s: codec rejoin() raised; stream sent as is", self.output.station_id
            )
            return None

    def _rewritten(self, data: bytes) -> bytes:
        assert self._rewrite is not None
        try:
            return bytes(self._rewrite(data))
        except Exception:  # a codec bug must not end the player's stream
            log.exception(
                "station %s: codec rewriter raised; stream sent as is", self.output.station_id
            )
            self._rewrite = None
            return data

    def _take(self) -> bytes:
        out = self.output
        if self._next < out._first:
            # Fell more than buffer_bytes behind: skip to the newest frame start we have.
            self.skips += 1
            self._resend_headers = True
            out.stats.lag_skips += 1
            index = out._sync_index(oldest=False)
            if index is None:
                self._next = out._end
                self._need_sync = True
            else:
                self._next = index
                self._need_sync = False
        end = out._end
        parts: list[bytes] = []
        size = 0
        while self._next < end and size < MAX_READ:
            payload, frame_start = out._segments[self._next - out._first]
            self._next += 1
            if self._need_sync:
                if not frame_start:
                    continue
                self._need_sync = False
            parts.append(payload)
            size += len(payload)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def lag_bytes(self) -> int:
        """Bytes fed but not yet read by this subscription (within the buffer)."""
        out = self.output
        start = max(self._next, out._first)
        return sum(len(p) for p, _ in list(out._segments)[start - out._first :])

    # ---- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop reading: a pending ``__anext__`` ends, the output forgets this reader."""
        if self.closed:
            return
        self.closed = True
        self.output._subscriptions.discard(self)
        if self._waiter is not None:
            self._waiter.set()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
