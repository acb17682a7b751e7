"""A base for ingest plugins' source connections read from a socket.

An ingest plugin hands the node a :class:`~streamerp2p.types.SourceConnection`: station info
plus the audio bytes as an async iterator. :class:`SocketSource` does the common part: the
iteration over the subclass's ``_body()`` generator, ``aclose()``, and ``_recv()``, one read
from the socket that ends the broadcast cleanly (``b""``, logged) on end of stream, a lost
connection or ``timeout`` seconds without data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

import anyio
from anyio.abc import SocketStream

from .types import SourceInfo

log = logging.getLogger(__name__)


class SocketSource:
    """Station info plus the audio a broadcast tool sends on ``stream``; subclasses write
    ``_body()`` (the audio, ``prefix`` first: bytes read with the request head)."""

    def __init__(
        self,
        info: SourceInfo,
        peer: str,
        stream: SocketStream,
        *,
        prefix: bytes = b"",
        timeout: float | None,
        read_size: int,
    ) -> None:
        self.info = info
        self.peer = peer
        self.bytes_received = 0
        self._stream = stream
        self._prefix = prefix
        self._timeout = timeout
        self._read_size = read_size
        self._gen: AsyncGenerator[bytes, None] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._gen is None:
            self._gen = self._body()
        return self._gen

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()

    def _body(self) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError

    async def _recv(self) -> bytes:
        """Next bytes from the socket; b"" at end of stream, on errors or on timeout."""
        try:
            with anyio.fail_after(self._timeout):
                return await self._stream.receive(self._read_size)
        except TimeoutError:
            log.info(
                "source %s on %s: no data for %ss, dropping",
                self.peer,
                self.info.mount,
                self._timeout,
            )
            return b""
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            log.info("source %s on %s: connection lost: %r", self.peer, self.info.mount, exc)
            return b""
