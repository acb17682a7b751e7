"""An Icecast 2 compatible source server (the part of Icecast that broadcast tools talk to).

Accepts ``PUT /mount`` (Icecast 2.4+, ffmpeg's ``icecast://``, libshout 2.4+) and the legacy
``SOURCE /mount`` (older libshout, butt, ffmpeg ``-legacy_icecast 1``), with HTTP Basic
authentication, ``Expect: 100-continue``, chunked, ``Content-Length`` or raw (until close)
bodies, and the ``/admin/metadata?mode=updinfo`` title updates. Icecast 1's x-audiocast login
(``SOURCE password /mount``, darkice's ``[icecast-0]``) is accepted too.

Request heads are parsed with h11; responses are written as raw bytes because Icecast clients
expect exactly what Icecast sends: one answer, ``HTTP/1.1 100 Continue`` to a ``PUT`` with
``Expect: 100-continue``, else ``HTTP/1.0 200 OK`` (even to an HTTP/1.1 ``PUT``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import anyio
import h11
from anyio.abc import SocketAttribute, SocketStream
from streamerp2p.ingest_source import SocketSource
from streamerp2p.types import IngestContext, SourceInfo

log = logging.getLogger("streamerp2p.icecast")

REALM = "Icecast2 Server"
SOURCE_METHODS = frozenset({b"PUT", b"SOURCE"})

# Defaults for the options a node may pass in ``IngestContext.options``.
DEFAULT_HEAD_TIMEOUT = 10.0  # seconds to send a complete request head
DEFAULT_SOURCE_TIMEOUT = 30.0  # seconds without a byte before a source is dropped
DEFAULT_MAX_HEAD_BYTES = 16384
DEFAULT_READ_SIZE = 65536
# A legacy SOURCE client that sends audio before it has our answer is not going to read the
# answer; we wait this long for such audio before answering (see IcecastServer._answer).
DEFAULT_ANSWER_WAIT = 0.25
LINGER_SECONDS = 2.0  # how long to drain a refused client so it can read our answer

_HEAD_END = re.compile(rb"\n\r?\n")
_TOKEN_PREFIX = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}(?: |$)")
_HOST_HEADER = re.compile(rb"\nhost[ \t]*:", re.IGNORECASE)
# Icecast 1 (x-audiocast): "SOURCE password /mount", no protocol version
_XAUDIOCAST = re.compile(rb"^SOURCE +(\S+) +(/\S*) *\r?$", re.IGNORECASE)

METADATA_OK = (
    '<?xml version="1.0"?>\n'
    "<iceresponse><message>Metadata update successful</message><return>1</return></iceresponse>"
)


def _xml_error(message: str) -> str:
    return (
        '<?xml version="1.0"?>\n'
        f"<iceresponse><message>{message}</message><return>0</return></iceresponse>"
    )


@dataclass(slots=True)
class IcecastStats:
    """Counters of what the server has seen since it started."""

    connections: int = 0
    sources: int = 0  # authenticated sources handed to the node
    auth_failures: int = 0  # wrong credentials
    challenges: int = 0  # requests without credentials (libshout asks without, then with)
    probes: int = 0  # connections closed before sending anything, OPTIONS (libshout's TLS check)
    bad_requests: int = 0  # garbage, non-HTTP input, malformed or timed-out heads
    mount_in_use: int = 0
    title_updates: int = 0
    not_found: int = 0
    errors: int = 0  # unexpected exceptions in a connection handler (logged)


class _BadRequest(Exception):
    pass


class _Probe(Exception):
    """The client connected and closed without sending a byte."""


# --------------------------------------------------------------------------------------------
# Header helpers
# --------------------------------------------------------------------------------------------


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _int_prefix(value: str) -> int:
    m = re.match(r"\s*(\d+)", value)
    return int(m.group(1)) if m else 0


def _parse_audio_info(value: str) -> dict[str, str]:
    """``ice-audio-info: ice-samplerate=44100;ice-bitrate=128;ice-channels=2`` → dict."""
    out: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        key = key.removeprefix("ice-")
        out[key] = unquote(val.strip())  # libshout URL-encodes the values (ices: 3%2e00)
    return out


def _is_true(value: str) -> bool:
    return value.strip().lower() not in ("0", "no", "false", "off")


def source_info_from_headers(mount: str, headers: dict[str, str]) -> SourceInfo:
    """Build a :class:`SourceInfo` from a source's (lower-cased) request headers."""

    used: set[str] = set()

    def pick(*names: str) -> str:
        for name in names:
            if name in headers:
                used.update(names)
                return headers[name]
        return ""

    info = SourceInfo(mount=mount)
    info.content_type = headers.get("content-type", "")
    info.user_agent = headers.get("user-agent", "")
    info.name = pick("ice-name", "icy-name")
    info.genre = pick("ice-genre", "icy-genre")
    info.description = pick("ice-description", "icy-description")
    info.url = pick("ice-url", "icy-url")
    public = pick("ice-public", "icy-pub", "icy-public")
    if public:
        info.public = _is_true(public)
    elif "ice-private" in headers:
        info.public = not _is_true(headers["ice-private"])
    bitrate = pick("ice-bitrate", "icy-br")
    if bitrate:
        info.bitrate = _int_prefix(bitrate)
    audio_info = headers.get("ice-audio-info") or headers.get("icy-audio-info") or ""
    if not info.bitrate and audio_info:
        info.bitrate = _int_prefix(_parse_audio_info(audio_info).get("bitrate", ""))
    for name, value in headers.items():
        # Icy-MetaData is what a player asks for; ffmpeg sends it to Icecast too.
        if name.startswith(("ice-", "icy-")) and name not in used and name != "icy-metadata":
            info.extra[name] = value
    return info


def _basic_auth(headers: dict[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = _text(raw).partition(":")
    if not sep:
        return None
    return user, password


def _split_target(target: str) -> SplitResult | None:
    """The request target split, or None when urlsplit refuses it (ValueError: an absolute URL
    whose host has an unbalanced "[" or "]"; found by bench fuzz, it escaped the handler)."""
    try:
        return urlsplit(target)
    except ValueError:
        return None


def _peer_name(stream: SocketStream) -> str:
    try:
        addr = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    if isinstance(addr, tuple):
        host, port = str(addr[0]), addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)


# --------------------------------------------------------------------------------------------
# The source connection handed to the node
# --------------------------------------------------------------------------------------------

BodyMode = Literal["raw", "h11"]


class IcecastSource(SocketSource):
    """A :class:`~streamerp2p.types.SourceConnection`: station info plus the audio bytes.

    Iterating yields the body as it arrives; the iteration simply ends when the broadcast tool
    disconnects, stops sending for ``timeout`` seconds, or sends a malformed body.
    """

    def __init__(
        self,
        info: SourceInfo,
        peer: str,
        stream: SocketStream,
        conn: h11.Connection,
        mode: BodyMode,
        *,
        prefix: bytes = b"",
        timeout: float | None,
        read_size: int,
    ) -> None:
        super().__init__(info, peer, stream, prefix=prefix, timeout=timeout, read_size=read_size)
        self._conn = conn
        self._mode: BodyMode = mode

    async def _body(self) -> AsyncGenerator[bytes, None]:
        if self._mode == "raw":
            if self._prefix:
                self.bytes_received += len(self._prefix)
                yield self._prefix
                self._prefix = b""
            while data := await self._recv():
                self.bytes_received += len(data)
                yield data
            return
        # Chunked or Content-Length: let h11 de-frame.
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                log.info("source %s on %s: bad body framing: %s", self.peer, self.info.mount, exc)
                return
            if event is h11.NEED_DATA:
                data = await self._recv()
                if not data and self._conn.their_state is h11.SEND_BODY:
                    # Peer went away mid-body (or timed out): just end.
                    return
                self._conn.receive_data(data)
                continue
            if isinstance(event, h11.Data):
                if event.data:
                    self.bytes_received += len(event.data)
                    yield bytes(event.data)
                continue
            # EndOfMessage, ConnectionClosed or PAUSED: the body is over.
            return


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class IcecastServer:
    """One listening Icecast-compatible source server bound to an :class:`IngestContext`.

    Options read from ``ctx.options``: ``head_timeout`` (s), ``source_timeout`` (s, None for
    none), ``max_head_bytes``, ``read_size``, ``answer_wait`` (s, see :meth:`_answer`).
    """

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.stats = IcecastStats()
        self.port: int | None = None
        self.active_mounts: set[str] = set()
        opts = ctx.options
        self.head_timeout = float(opts.get("head_timeout", DEFAULT_HEAD_TIMEOUT))
        timeout = opts.get("source_timeout", DEFAULT_SOURCE_TIMEOUT)
        self.source_timeout: float | None = None if timeout is None else float(timeout)
        self.max_head_bytes = int(opts.get("max_head_bytes", DEFAULT_MAX_HEAD_BYTES))
        self.read_size = int(opts.get("read_size", DEFAULT_READ_SIZE))
        self.answer_wait = float(opts.get("answer_wait", DEFAULT_ANSWER_WAIT))

    async def serve(self) -> None:
        """Listen on ``ctx.host:ctx.port`` until cancelled."""
        listener = await anyio.create_tcp_listener(
            local_host=self.ctx.host or None, local_port=self.ctx.port
        )
        async with listener:
            self.port = int(listener.extra(SocketAttribute.local_port))
            log.info("icecast ingest listening on %s:%s", self.ctx.host, self.port)
            self.ctx.started(self.ctx.host, self.port)
            await listener.serve(self._handle_safely)

    async def _handle_safely(self, stream: SocketStream) -> None:
        self.stats.connections += 1
        try:
            await self._handle(stream)
        except Exception:
            self.stats.errors += 1
            log.exception("icecast ingest: error handling %s", _peer_name(stream))
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    # ---- request head -------------------------------------------------------------------

    async def _read_head(self, stream: SocketStream) -> tuple[bytes, bytes]:
        """Read up to the blank line ending the head; return (head, bytes after it)."""
        buf = bytearray()
        while True:
            try:
                data = await stream.receive(self.read_size)
            except anyio.EndOfStream:
                if not buf:
                    raise _Probe() from None
                raise
            buf += data
            match = _HEAD_END.search(buf)
            if match:
                return bytes(buf[: match.end()]), bytes(buf[match.end() :])
            first_line = bytes(buf).split(b"\n", 1)[0]
            if not _TOKEN_PREFIX.match(first_line[:33]):
                raise _BadRequest("not an HTTP request")
            if len(buf) > self.max_head_bytes:
                raise _BadRequest("request head too large")

    @staticmethod
    def _normalise_head(head: bytes) -> bytes:
        """Make ICE/1.0 and Host-less HTTP/1.1 requests acceptable to h11."""
        line, _nl, rest = head.partition(b"\n")
        parts = line.rstrip(b"\r").split(b" ")
        if len(parts) != 3:
            raise _BadRequest("malformed request line")
        if parts[2].upper().startswith(b"ICE/"):
            parts[2] = b"HTTP/1.0"
        if parts[2] == b"HTTP/1.1" and not _HOST_HEADER.search(b"\n" + rest):
            rest = b"Host: localhost\r\n" + rest
        return b" ".join(parts) + b"\r\n" + rest

    async def _handle(self, stream: SocketStream) -> None:
        peer = _peer_name(stream)
        try:
            with anyio.fail_after(self.head_timeout):
                head, rest = await self._read_head(stream)
            login = _XAUDIOCAST.match(head.split(b"\n", 1)[0])
            if not login:
                conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.max_head_bytes)
                conn.receive_data(self._normalise_head(head) + rest)
                event = conn.next_event()
                if not isinstance(event, h11.Request):
                    raise _BadRequest(f"unexpected {event!r}")
        except _Probe:
            self.stats.probes += 1
            log.debug("icecast ingest: %s connected and closed (probe)", peer)
            return
        except (
            _BadRequest,
            h11.RemoteProtocolError,
            TimeoutError,
            anyio.EndOfStream,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as exc:
            self.stats.bad_requests += 1
            log.info("icecast ingest: dropping %s: %s", peer, exc or type(exc).__name__)
            return
        if login:
            await self._xaudiocast(stream, peer, login, head, rest)
            return

        headers: dict[str, str] = {}
        for name, value in event.headers:
            headers[_text(bytes(name)).lower()] = _text(bytes(value)).strip()
        method = bytes(event.method).upper()
        target = bytes(event.target)

        if method in SOURCE_METHODS:
            await self._source(stream, conn, peer, method, _text(target), headers)
        elif method in (b"GET", b"HEAD"):
            # latin-1 maps bytes 1:1, so query values can be turned back into their bytes.
            await self._get(stream, peer, target.decode("latin-1"), headers)
        elif method == b"OPTIONS":
            # libshout 2.4 first sends "OPTIONS * HTTP/1.1" with "Upgrade: TLS/1.0": a 405 (as
            # liquidsoap's harbor answers) makes it go on in plain text with SOURCE.
            self.stats.probes += 1
            log.debug("icecast ingest: %s sent OPTIONS (libshout's TLS upgrade check)", peer)
            await self._refuse(stream, b"HTTP/1.0 405 Method Not Allowed", b"Method not allowed")
        else:
            self.stats.bad_requests += 1
            await self._refuse(stream, b"HTTP/1.0 405 Method Not Allowed", b"Method not allowed")

    # ---- responses ----------------------------------------------------------------------

    async def _refuse(
        self, stream: SocketStream, status: bytes, body: bytes, extra: bytes = b""
    ) -> None:
        """Send an error response, then drain for a moment so the client can read it."""
        response = (
            status
            + b"\r\n"
            + extra
            + b"Content-Type: text/plain\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        await self._send_and_linger(stream, response)

    async def _send_and_linger(self, stream: SocketStream, response: bytes) -> None:
        """Send ``response``, then drain for a moment so that the client can read it (closing
        with unread input would reset the connection and could destroy the answer)."""
        try:
            await stream.send(response)
            await stream.send_eof()
            with anyio.move_on_after(LINGER_SECONDS):
                drained = 0
                while drained < 1 << 20:
                    drained += len(await stream.receive(self.read_size))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    async def _send_xml(self, stream: SocketStream, status: bytes, xml: str) -> None:
        body = xml.encode("utf-8")
        response = (
            status
            + b"\r\nContent-Type: text/xml\r\n"
            + b"Content-Length: %d\r\n" % len(body)
            + b"Connection: close\r\n\r\n"
            + body
        )
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await stream.send(response)

    def _authenticate(self, headers: dict[str, str]) -> str | None:
        """Return the user name when the Basic credentials are right, else None."""
        creds = _basic_auth(headers)
        if creds is None:
            return None
        user, password = creds
        try:
            ok = bool(self.ctx.check_password(user, password))
        except Exception:
            log.exception("icecast ingest: check_password failed")
            return None
        return user if ok else None

    async def _unauthorized(
        self, stream: SocketStream, peer: str, what: str, *, challenge: bool
    ) -> None:
        """401; ``challenge``: the client sent no credentials at all (not counted as failure)."""
        if challenge:
            # libshout (ezstream, ices, darkice, Mixxx) always asks without credentials first
            # and repeats the request with them after this 401: not a failure.
            self.stats.challenges += 1
            log.info("icecast ingest: %s sent no credentials (%s): asking for them", peer, what)
        else:
            self.stats.auth_failures += 1
            log.warning("icecast ingest: authentication failed for %s (%s)", peer, what)
        await self._refuse(
            stream,
            b"HTTP/1.0 401 Unauthorized",
            b"You need to authenticate\r\n",
            f'WWW-Authenticate: Basic realm="{REALM}"\r\n'.encode(),
        )

    # ---- sources ------------------------------------------------------------------------

    async def _source(
        self,
        stream: SocketStream,
        conn: h11.Connection,
        peer: str,
        method: bytes,
        target: str,
        headers: dict[str, str],
    ) -> None:
        parts = _split_target(target)
        if parts is None:
            self.stats.bad_requests += 1
            await self._refuse(stream, b"HTTP/1.0 400 Bad Request", b"Bad request\r\n")
            return
        mount = parts.path or "/"
        if self._authenticate(headers) is None:
            await self._unauthorized(
                stream, peer, f"{method.decode()} {mount}", challenge="authorization" not in headers
            )
            return
        if not mount.startswith("/") or mount.startswith("/admin"):
            self.stats.bad_requests += 1
            await self._refuse(stream, b"HTTP/1.0 400 Bad Request", b"Bad mountpoint\r\n")
            return
        if mount in self.active_mounts:
            self.stats.mount_in_use += 1
            log.warning("icecast ingest: %s refused, mountpoint %s in use", peer, mount)
            await self._refuse(stream, b"HTTP/1.0 403 Forbidden", b"Mountpoint in use\r\n")
            return

        transfer = headers.get("transfer-encoding", "").lower()
        mode: BodyMode = "h11" if ("chunked" in transfer or "content-length" in headers) else "raw"
        self.active_mounts.add(mount)
        try:
            try:
                received = await self._answer(stream, conn, method, headers)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return
            if mode == "h11":
                if received:
                    conn.receive_data(received)
                prefix = b""
            else:
                # Body bytes that came with the head (h11 kept them) plus any read since.
                prefix = bytes(conn.trailing_data[0]) + received
            info = source_info_from_headers(mount, headers)
            await self._feed(stream, conn, peer, info, mode, prefix, method.decode())
        finally:
            self.active_mounts.discard(mount)

    async def _feed(
        self,
        stream: SocketStream,
        conn: h11.Connection,
        peer: str,
        info: SourceInfo,
        mode: BodyMode,
        prefix: bytes,
        how: str,
    ) -> None:
        """Hand an accepted source to the node until it is done with it."""
        source = IcecastSource(
            info,
            peer,
            stream,
            conn,
            mode,
            prefix=prefix,
            timeout=self.source_timeout,
            read_size=self.read_size,
        )
        self.stats.sources += 1
        log.info(
            "icecast ingest: source %s on %s (%s, %s, %s)",
            peer,
            info.mount,
            how,
            info.content_type or "no content type",
            info.user_agent or "unknown client",
        )
        try:
            await self.ctx.on_source(source)
        finally:
            await source.aclose()
        log.info(
            "icecast ingest: source %s on %s ended after %d bytes",
            peer,
            info.mount,
            source.bytes_received,
        )

    async def _xaudiocast(
        self, stream: SocketStream, peer: str, login: re.Match[bytes], head: bytes, rest: bytes
    ) -> None:
        """Icecast 1's x-audiocast login (darkice ``[icecast-0]``, libshout XAUDIOCAST):
        ``SOURCE password /mount`` and ``x-audiocast-*`` lines, answered ``OK`` or the
        ``ERROR - ...`` lines Icecast 1.3 sent."""
        password, mount = _text(login.group(1)), _text(login.group(2))
        headers: dict[str, str] = {}
        for raw in head.split(b"\n")[1:]:
            name, sep, value = _text(raw.rstrip(b"\r")).partition(":")
            if sep and name.strip():
                name = name.strip().lower()
                if name.startswith("x-audiocast-"):
                    name = "ice-" + name.removeprefix("x-audiocast-")
                headers[name] = value.strip()
        try:
            ok = bool(self.ctx.check_password("source", password))
        except Exception:
            log.exception("icecast ingest: check_password failed")
            ok = False
        if not ok:
            self.stats.auth_failures += 1
            log.warning("icecast ingest: wrong password from %s (x-audiocast %s)", peer, mount)
            await self._send_and_linger(stream, b"ERROR - Bad Password\r\n")
            return
        if mount in self.active_mounts or mount.startswith("/admin"):
            self.stats.mount_in_use += 1
            log.warning("icecast ingest: %s refused, mountpoint %s in use or invalid", peer, mount)
            await self._send_and_linger(stream, b"ERROR - Mount Point Taken or Invalid\r\n")
            return
        self.active_mounts.add(mount)
        try:
            try:
                await stream.send(b"OK\r\n")
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return
            info = source_info_from_headers(mount, headers)
            conn = h11.Connection(h11.SERVER)  # unused for a raw body
            await self._feed(stream, conn, peer, info, "raw", rest, "x-audiocast")
        finally:
            self.active_mounts.discard(mount)

    async def _answer(
        self, stream: SocketStream, conn: h11.Connection, method: bytes, headers: dict[str, str]
    ) -> bytes:
        """Answer an accepted source like Icecast; return body bytes read while doing so.

        Icecast sends one response: ``100 Continue`` to a PUT that asked for it, else
        ``200 OK`` (a client that asked for 100 does not read anything after it).

        A legacy SOURCE client that sends audio without waiting for the answer (ffmpeg
        ``-legacy_icecast``) never reads it: the unread bytes would turn its final close into a
        TCP reset that destroys the end of its upload. So a SOURCE client that has sent audio
        before we answer (we wait ``answer_wait`` seconds for some) gets no answer; clients that
        wait for it (libshout, darkice...) get ``200 OK`` after that short wait.
        """
        if method == b"PUT" and "100-continue" in headers.get("expect", "").lower():
            await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return b""
        received = b""
        if method == b"SOURCE":
            sent_early = bool(conn.trailing_data[0])
            if not sent_early and self.answer_wait > 0:
                with anyio.move_on_after(self.answer_wait), contextlib.suppress(anyio.EndOfStream):
                    received = await stream.receive(self.read_size)
                sent_early = bool(received)
            if sent_early:
                log.debug("icecast ingest: SOURCE client streams without waiting: no answer")
                return received
        await stream.send(b"HTTP/1.0 200 OK\r\n\r\n")
        return received

    # ---- GET: title updates --------------------------------------------------------------

    async def _get(
        self, stream: SocketStream, peer: str, target: str, headers: dict[str, str]
    ) -> None:
        parts = _split_target(target)
        if parts is None:
            self.stats.bad_requests += 1
            await self._refuse(stream, b"HTTP/1.0 400 Bad Request", b"Bad request\r\n")
            return
        path = parts.path
        # Keep the raw bytes of each parameter so that the charset can be honoured.
        raw = parse_qs(parts.query, keep_blank_values=True, encoding="latin-1")
        params = {k: v[-1] for k, v in raw.items()}

        def param(name: str) -> str:
            value = params.get(name, "").encode("latin-1")
            charset = params.get("charset", "")
            if charset:
                try:
                    return value.decode(charset, errors="replace")
                except (LookupError, ValueError):
                    # an unknown charset, one whose name cannot be looked up (a NUL in it) or
                    # that refuses errors="replace" (idna, "undefined"): as if none was given
                    pass
            return _text(value)

        if path in ("/admin/metadata", "/admin/metadata.xsl"):
            if self._authenticate(headers) is None:
                await self._unauthorized(
                    stream,
                    peer,
                    f"metadata update {param('mount')}",
                    challenge="authorization" not in headers,
                )
                return
            mount = param("mount")
        elif path == "/admin.cgi":
            # SHOUTcast v1 style: the password is in the query string.
            password = param("pass")
            try:
                ok = bool(self.ctx.check_password("source", password))
            except Exception:
                log.exception("icecast ingest: check_password failed")
                ok = False
            if not ok:
                await self._unauthorized(
                    stream, peer, "admin.cgi metadata update", challenge="pass" not in params
                )
                return
            mount = param("mount") or "/"
        else:
            self.stats.not_found += 1
            await self._refuse(stream, b"HTTP/1.0 404 Not Found", b"Not found\r\n")
            return

        if param("mode") != "updinfo" or not mount:
            self.stats.bad_requests += 1
            await self._send_xml(
                stream, b"HTTP/1.0 400 Bad Request", _xml_error("Missing parameter")
            )
            return
        song = param("song")
        if not song and ("artist" in params or "title" in params):
            artist, title = param("artist"), param("title")
            song = f"{artist} - {title}" if artist and title else artist or title
        try:
            self.ctx.on_title(mount, song)
        except Exception:
            self.stats.errors += 1
            log.exception("icecast ingest: on_title failed")
            await self._send_xml(
                stream, b"HTTP/1.0 500 Internal Server Error", _xml_error("Update failed")
            )
            return
        self.stats.title_updates += 1
        log.info("icecast ingest: title on %s: %r", mount, song)
        await self._send_xml(stream, b"HTTP/1.0 200 OK", METADATA_OK)
