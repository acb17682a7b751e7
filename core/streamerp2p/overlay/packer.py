"""Packs codec frames into chunks that fit one datagram (codec-agnostic, no I/O).

Whole frames are packed while they fit; a frame larger than a chunk is split over several
chunks, only the first of which is marked ``frame_start``. A chunk is also closed when its first
frame has waited ``max_delay`` seconds (low bitrates).
"""

from __future__ import annotations

from ..types import Frame


class Packer:
    def __init__(self, max_payload: int, max_delay: float = 0.25) -> None:
        self.max_payload = max_payload
        self.max_delay = max_delay
        self._parts: list[bytes] = []
        self._size = 0
        self._start = False
        self._since: float | None = None

    def push(self, frames: list[Frame], now: float) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        limit = self.max_payload
        for fr in frames:
            data = fr.data
            if not data:
                continue
            if self._size and (self._size + len(data) > limit or (fr.sync and not self._start)):
                out.append(self._close())
            if len(data) > limit:
                if self._size:
                    out.append(self._close())
                first = True
                for i in range(0, len(data), limit):
                    out.append((data[i : i + limit], first and fr.sync))
                    first = False
                continue
            if not self._size:
                self._start = fr.sync
                self._since = now
            self._parts.append(data)
            self._size += len(data)
        if self._size and self._since is not None and now - self._since >= self.max_delay:
            out.append(self._close())
        return out

    def due(self) -> float | None:
        """When the pending partial chunk must be closed, or None."""
        return None if self._since is None else self._since + self.max_delay

    def flush(self) -> list[tuple[bytes, bool]]:
        return [self._close()] if self._size else []

    def _close(self) -> tuple[bytes, bool]:
        chunk = (b"".join(self._parts), self._start)
        self._parts = []
        self._size = 0
        self._start = False
        self._since = None
        return chunk
