"""A local HTTP server that gives the stations this node receives to ordinary players.

Players (mpv, VLC, ffplay, foobar2000, browsers...) connect to ``/stream/<station_id>`` and get
an Icecast-style response: ``HTTP/1.0 200 OK``, ``icy-*`` headers, no chunked encoding, the
body until the station ends. With ``Icy-MetaData: 1`` the now-playing title is interleaved as
ICY metadata blocks every ``icy-metaint`` bytes. ``/<station_id>.pls`` and ``.m3u`` are
playlists pointing at the stream, ``/`` lists the stations as JSON.

Requests are parsed with h11; responses are written as raw bytes (as Icecast does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from . import __version__
from .output import StationOutput, Subscription

log = logging.getLogger("streamerp2p.http_output")

DEFAULT_METAINT = 16000
SERVER = f"StreamerP2P/{__version__}"
ICY_MAX_PAYLOAD = 255 * 16  # the length byte counts 16-byte blocks

_EXTENSIONS = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "application/ogg": ".ogg",
    "audio/vorbis": ".ogg",
    "audio/opus": ".opus",
    "audio/aac": ".aac",
    "audio/aacp": ".aac",
    "audio/x-aac": ".aac",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/webm": ".webm",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VALID_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_DISCONNECTED = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ConnectionError,
    OSError,
)


def extension_for(content_type: str) -> str:
    """File extension players expect for a content type (".mp3"...), "" if unknown."""
    return _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "")


# --------------------------------------------------------------------------------------------
# ICY metadata
# --------------------------------------------------------------------------------------------


def _icy_value(text: str) -> str:
    # Players read a value up to the closing "';", so that sequence must not occur inside it;
    # other apostrophes are kept as they are (as Icecast does).
    return _CONTROL.sub(" ", text).replace("';", "' ;")


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(0, limit)].decode("utf-8", errors="ignore")


def icy_metadata_block(title: str, url: str = "") -> bytes:
    """One ICY metadata block: a length byte N, then N*16 bytes of zero-padded text.

    The text is ``StreamTitle='...';`` followed by ``StreamUrl='...';`` when ``url`` is set,
    in UTF-8, cut so the block never exceeds 255*16 bytes.
    """
    url_part = f"StreamUrl='{_truncate_utf8(_icy_value(url), 512)}';" if url else ""
    budget = ICY_MAX_PAYLOAD - len(url_part.encode("utf-8")) - len("StreamTitle='';")
    title_value = _truncate_utf8(_icy_value(title), budget)
    if title_value.endswith("'") and len(title_value.encode("utf-8")) == budget:
        title_value = title_value[:-1]  # never end right before a cut that forms "';"
    payload = f"StreamTitle='{title_value}';{url_part}".encode()
    blocks = math.ceil(len(payload) / 16)
    return bytes([blocks]) + payload.ljust(blocks * 16, b"\0")


class IcyInterleaver:
    """Inserts ICY metadata blocks every ``metaint`` audio bytes of one client's stream.

    At each metadata point ``current()`` gives (title, url): a full block is sent for the first
    point and whenever the title changed since the last block sent to this client, else a
    single zero byte.
    """

    def __init__(self, metaint: int, current: Callable[[], tuple[str, str]]) -> None:
        if metaint <= 0:
            raise ValueError("metaint must be positive")
        self.metaint = metaint
        self._current = current
        self._until = metaint
        self._last: str | None = None
        self.blocks_sent = 0

    def _block(self) -> bytes:
        title, url = self._current()
        if title == self._last:
            return b"\0"
        self._last = title
        self.blocks_sent += 1
        return icy_metadata_block(title, url)

    def process(self, data: bytes) -> bytes:
        if len(data) < self._until:
            self._until -= len(data)
            return data
        parts: list[bytes] = []
        view = memoryview(data)
        while len(view) >= self._until:
            parts.append(view[: self._until].tobytes())
            view = view[self._until :]
            parts.append(self._block())
            self._until = self.metaint
        if view:
            parts.append(view.tobytes())
            self._until -= len(view)
        return b"".join(parts)


# --------------------------------------------------------------------------------------------
# Playlists
# --------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def pls_playlist(url: str, name: str) -> str:
    return (
        "[playlist]\nNumberOfEntries=1\n"
        f"File1={_one_line(url)}\nTitle1={_one_line(name)}\nLength1=-1\nVersion=2\n"
    )


def m3u_playlist(url: str, name: str) -> str:
    return f"#EXTM3U\n#EXTINF:-1,{_one_line(name)}\n{_one_line(url)}\n"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_playlists(directory: Path, station_id: str, name: str, url: str) -> tuple[Path, Path]:
    """Write ``<station_id>.pls`` and ``<station_id>.m3u`` in ``directory`` atomically."""
    if not station_id or station_id in (".", "..") or re.search(r"[/\\\x00]", station_id):
        raise ValueError(f"station id not usable as a file name: {station_id!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pls = directory / f"{station_id}.pls"
    m3u = directory / f"{station_id}.m3u"
    _atomic_write(pls, pls_playlist(url, name))
    _atomic_write(m3u, m3u_playlist(url, name))
    return pls, m3u


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class HttpOutputStats:
    requests: int = 0
    streams: int = 0  # stream responses started
    not_found: int = 0
    bad_requests: int = 0
    errors: int = 0  # unexpected exceptions in a handler (logged)
    bytes_sent: int = 0


class _BadRequest(Exception):
    pass


def _header_value(value: object) -> bytes:
    return _CONTROL.sub(" ", str(value)).strip().encode("utf-8")


class HttpOutputServer:
    """Serves :class:`StationOutput` objects to players over HTTP (ICY style)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        metaint: int = DEFAULT_METAINT,
        head_timeout: float = 10.0,
        send_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.directory: Callable[[], object] | None = None  # /api/stations (the node's)
        self.port = port
        self.metaint = metaint
        self.head_timeout = head_timeout
        self.send_timeout = send_timeout
        self.stats = HttpOutputStats()
        self._outputs: dict[str, StationOutput] = {}
        self._clients: dict[str, set[Subscription]] = {}

    # ---- stations -------------------------------------------------------------------------

    def add(self, output: StationOutput) -> None:
        """Serve ``output`` (replacing a previous output of the same station)."""
        self._outputs[output.station_id] = output

    def remove(self, station_id: str) -> None:
        """Stop serving a station; its connected players are disconnected."""
        self._outputs.pop(station_id, None)
        for sub in list(self._clients.pop(station_id, ())):
            sub.close()

    def get(self, station_id: str) -> StationOutput | None:
        return self._outputs.get(station_id)

    @property
    def station_ids(self) -> list[str]:
        return list(self._outputs)

    def _base(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def _path(self, station_id: str) -> str:
        output = self._outputs.get(station_id)
        # (no extension while the codec is a guess: the record of an Ogg station may not have
        # come yet; a player finds the format in the stream, and /stream/<id> serves it too)
        known = output is not None and output.meta_known
        ext = extension_for(output.meta.content_type) if known else ""
        return f"/stream/{quote(station_id, safe='')}{ext}"

    def url(self, station_id: str) -> str:
        """The stream URL of a station (valid once :meth:`serve` has bound the port)."""
        return self._base() + self._path(station_id)

    # ---- serving --------------------------------------------------------------------------

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``task_status.started(port)`` once bound."""
        listener = await anyio.create_tcp_listener(
            local_host=self.host or None, local_port=self.port
        )
        async with listener:
            self.port = int(listener.extra(SocketAttribute.local_port))
            log.info("player output on %s", self._base())
            task_status.started(self.port)
            await listener.serve(self._handle_safely)

    async def _handle_safely(self, stream: SocketStream) -> None:
        self.stats.requests += 1
        try:
            await self._handle(stream)
        except _DISCONNECTED:
            pass  # the player went away
        except Exception:
            self.stats.errors += 1
            log.exception("player output: error serving a client")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _read_request(self, stream: SocketStream) -> h11.Request:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is h11.NEED_DATA:
                try:
                    data = await stream.receive()
                except anyio.EndOfStream:
                    data = b""
                conn.receive_data(data)
                continue
            raise _BadRequest(f"unexpected {event!r}")

    async def _handle(self, stream: SocketStream) -> None:
        try:
            with anyio.fail_after(self.head_timeout):
                request = await self._read_request(stream)
        except (_BadRequest, h11.RemoteProtocolError, TimeoutError):
            self.stats.bad_requests += 1
            await self._simple(stream, b"400 Bad Request", b"text/plain", b"Bad request\n")
            return
        headers = {bytes(k).lower(): bytes(v) for k, v in request.headers}
        method = bytes(request.method)
        if method not in (b"GET", b"HEAD"):
            await self._simple(stream, b"405 Method Not Allowed", b"text/plain", b"GET only\n")
            return
        head_only = method == b"HEAD"
        try:
            split = urlsplit(bytes(request.target).decode("latin-1"))
        except ValueError:  # an unbalanced "[" or "]" in a URL's host (found by bench fuzz)
            self.stats.bad_requests += 1
            await self._simple(stream, b"400 Bad Request", b"text/plain", b"Bad request\n")
            return
        path = unquote(split.path, errors="replace")

        if path == "/":
            body = json.dumps(self._index(), indent=1).encode()
            await self._simple(stream, b"200 OK", b"application/json", body, head_only)
            return
        if path == "/api/stations" and self.directory is not None:
            body = json.dumps(self.directory(), indent=1).encode()
            await self._simple(stream, b"200 OK", b"application/json", body, head_only)
            return
        if path.startswith("/stream/"):
            output = self._lookup(path.removeprefix("/stream/"))
            if output is not None:
                await self._stream(stream, output, headers, head_only)
                return
        elif path.endswith((".pls", ".m3u")):
            output = self._outputs.get(path[1:-4])
            if output is not None:
                url = self._base_for(headers) + self._path(output.station_id)
                name = output.meta.name or output.station_id
                if path.endswith(".pls"):
                    body, ctype = pls_playlist(url, name).encode(), b"audio/x-scpls"
                else:
                    body, ctype = m3u_playlist(url, name).encode(), b"audio/x-mpegurl"
                await self._simple(stream, b"200 OK", ctype, body, head_only)
                return
        self.stats.not_found += 1
        await self._simple(stream, b"404 Not Found", b"text/plain", b"Not found\n", head_only)

    def _lookup(self, name: str) -> StationOutput | None:
        output = self._outputs.get(name)
        if output is None and "." in name:
            output = self._outputs.get(name.rsplit(".", 1)[0])
        return output

    def _base_for(self, headers: dict[bytes, bytes]) -> str:
        """Base URL as the player reached us (its Host header), for playlists."""
        host = headers.get(b"host", b"").decode("latin-1").strip()
        if host and _VALID_HOST.match(host):
            return f"http://{host}"
        return self._base()

    def _index(self) -> list[dict[str, object]]:
        return [
            {
                "station_id": sid,
                "name": out.meta.name,
                "url": self.url(sid),
                "title": out.title,
                "content_type": out.meta.content_type,
                "listeners": out.listeners,
            }
            for sid, out in self._outputs.items()
        ]

    async def _send(self, stream: SocketStream, data: bytes) -> None:
        with anyio.fail_after(self.send_timeout):
            await stream.send(data)
        self.stats.bytes_sent += len(data)

    async def _simple(
        self,
        stream: SocketStream,
        status: bytes,
        content_type: bytes,
        body: bytes,
        head_only: bool = False,
    ) -> None:
        head = (
            b"HTTP/1.0 " + status + b"\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: %d\r\n" % len(body) + b"Cache-Control: no-cache\r\n"
            b"Access-Control-Allow-Origin: *\r\n"
            b"Server: " + SERVER.encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        with contextlib.suppress(*_DISCONNECTED, TimeoutError):
            await self._send(stream, head if head_only else head + body)

    def _stream_head(self, output: StationOutput, icy: bool) -> bytes:
        meta = output.meta
        lines: list[tuple[bytes, object]] = [
            (b"Content-Type", meta.content_type or "application/octet-stream")
        ]
        for name, value in (
            (b"icy-name", meta.name),
            (b"icy-genre", meta.genre),
            (b"icy-url", meta.url),
            (b"icy-description", meta.description),
        ):
            if value:
                lines.append((name, value))
        lines.append((b"icy-pub", "1" if meta.public else "0"))
        if meta.bitrate:
            lines.append((b"icy-br", meta.bitrate))
        if meta.sample_rate:
            lines.append((b"icy-sr", meta.sample_rate))
        info = [
            f"ice-{key}={value}"
            for key, value in (
                ("samplerate", meta.sample_rate),
                ("bitrate", meta.bitrate),
                ("channels", meta.channels),
            )
            if value
        ]
        if info:
            lines.append((b"icy-audio-info", ";".join(info)))
        if icy:
            lines.append((b"icy-metaint", self.metaint))
        lines += [
            (b"Cache-Control", "no-cache, no-store"),
            (b"Pragma", "no-cache"),
            (b"Expires", "Mon, 26 Jul 1997 05:00:00 GMT"),
            (b"Access-Control-Allow-Origin", "*"),
            (b"Server", SERVER),
            (b"Connection", "close"),
        ]
        out = [b"HTTP/1.0 200 OK\r\n"]
        out += [name + b": " + _header_value(value) + b"\r\n" for name, value in lines]
        out.append(b"\r\n")
        return b"".join(out)

    async def _stream(
        self,
        stream: SocketStream,
        output: StationOutput,
        headers: dict[bytes, bytes],
        head_only: bool,
    ) -> None:
        icy = headers.get(b"icy-metadata", b"").strip() == b"1"
        head = self._stream_head(output, icy)
        if head_only:
            await self._send(stream, head)
            return
        # Subscribe before answering: once a player has the headers it is a listener.
        sub = output.subscribe()
        clients = self._clients.setdefault(output.station_id, set())
        clients.add(sub)
        self.stats.streams += 1
        interleaver = (
            IcyInterleaver(self.metaint, lambda: (sub.title, sub.meta.url)) if icy else None
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_hangup, stream, tg.cancel_scope)
                try:
                    await self._send(stream, head)
                    async for data in sub:
                        await self._send(stream, interleaver.process(data) if interleaver else data)
                except TimeoutError:
                    log.info("player output: dropping a stalled client of %s", output.station_id)
                except _DISCONNECTED:
                    pass
                finally:
                    tg.cancel_scope.cancel()
        finally:
            sub.close()
            clients.discard(sub)

    @staticmethod
    async def _watch_hangup(stream: SocketStream, scope: anyio.CancelScope) -> None:
        """Cancel the response when the player closes its side (even while no audio flows)."""
        with contextlib.suppress(*_DISCONNECTED):
            while True:
                await stream.receive()
        scope.cancel()
