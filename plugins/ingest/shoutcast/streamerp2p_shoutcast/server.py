"""A SHOUTcast v1 (DNAS 1.x) compatible source server.

SHOUTcast v1 uses two TCP ports. With ``ctx.port`` = P (the "server port" users type into their
broadcast tool):

* **P + 1, the source port.** The tool connects, sends its password on one line (LF or CRLF;
  ``user:password`` and a DNAS 2 stream id suffix ``password:#N`` are accepted too), and gets
  ``OK2\\r\\nicy-caps:11\\r\\n\\r\\n`` (or ``invalid password\\r\\n``). It then sends
  ``icy-name:``, ``icy-genre:``, ``icy-url:``, ``icy-pub:``, ``icy-br:``, ``content-type:``...
  header lines up to a blank line, then audio until it disconnects. Many tools (libshout, butt)
  send the headers right after the password without waiting for the answer; that is fine.
* **P, the base port.** DNAS serves listeners here; we serve only the title updates tools send:
  ``GET /admin.cgi?mode=updinfo&pass=PASSWORD&song=TITLE`` (any parameter order, ``pass`` maybe
  ``admin:PASSWORD`` or ``PASSWORD:#N``, ``artist``/``title`` instead of ``song``, ``charset``).
  A source that logs in here (a first line that is not HTTP: darkice and some DSP plugins want
  the source port itself, and users often give them P) is accepted as on P + 1.

``ctx.started(host, P)`` is called once both ports listen (the node prints P, the port users
configure); ``ShoutcastServer.port`` and ``.source_port`` hold both, and both are logged. The
source port is P + 1 unless ``ctx.options["source_port"]`` says otherwise; with ``ctx.port == 0``
a free pair of adjacent ports is chosen.

A source's mount is ``/`` (SHOUTcast v1 has one stream per server), or ``/stream/N`` for a DNAS 2
stream id N > 1, or the mount darkice sends with its ``SOURCE password /mount`` login variant.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import Listener, SocketAttribute, SocketStream, TaskGroup
from streamerp2p.ingest_source import SocketSource
from streamerp2p.types import IngestContext, SourceInfo

log = logging.getLogger("streamerp2p.shoutcast")

# What DNAS 1.x answers on the source port, and what clients look for: "OK" at the start
# (butt, darkice, liquidsoap) or anywhere (libshout); "invalid password" (butt, darkice).
OK_ANSWER = b"OK2\r\nicy-caps:11\r\n\r\n"
INVALID_PASSWORD = b"invalid password\r\n"
STREAM_IN_USE = b"stream in use\r\n"  # not "OK", not "invalid password": butt and darkice retry
POKE = "!POKE"  # libshout 2.4's capability probe, sent as the password line

DEFAULT_HEAD_TIMEOUT = 10.0  # seconds to send the password line / the headers / an HTTP head
DEFAULT_SOURCE_TIMEOUT = 30.0  # seconds without a byte before a source is dropped
DEFAULT_MAX_HEAD_BYTES = 16384
DEFAULT_READ_SIZE = 65536
# darkice's login with a mount is "SOURCE password\n /mount\n": how long to wait for line two.
MOUNT_LINE_WAIT = 0.5
LINGER_SECONDS = 2.0  # how long to drain a refused client so it can read our answer
PAIR_ATTEMPTS = 50  # tries to find two free adjacent ports when ctx.port is 0

UPDATE_OK = b"<html><body>Update successful</body></html>\r\n"

_HEADER_LINE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*:")
_HTTP_REQUEST = re.compile(rb"^[A-Z]{3,10} \S+ (?:HTTP|ICE)/\d", re.IGNORECASE)
_SID_SUFFIX = re.compile(r"^(.*):#(\S*)$", re.DOTALL)


@dataclass(slots=True)
class ShoutcastStats:
    """Counters of what the server has seen since it started."""

    connections: int = 0  # on either port
    sources: int = 0  # authenticated sources handed to the node
    auth_failures: int = 0  # wrong passwords (sources and title updates)
    probes: int = 0  # connections that closed before a password line, libshout's !POKE
    bad_requests: int = 0  # garbage, HTTP on the source port, malformed or timed-out input
    stream_in_use: int = 0
    title_updates: int = 0
    not_found: int = 0
    errors: int = 0  # unexpected exceptions in a connection handler (logged)


class _BadInput(Exception):
    pass


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _is_true(value: str) -> bool:
    return value.strip().lower() not in ("0", "no", "false", "off")


def _int_prefix(value: str) -> int:
    m = re.match(r"\s*(\d+)", value)
    return int(m.group(1)) if m else 0


def _peer_name(stream: SocketStream) -> str:
    try:
        addr = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    if isinstance(addr, tuple):
        host, port = str(addr[0]), addr[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(addr)


def _sid_mount(sid: str) -> str:
    sid = sid.strip().strip("/")
    return "/" if sid in ("", "1") else f"/stream/{sid}"


def parse_password_line(line: str) -> tuple[str, str, str | None]:
    """Split a source's first line into (password, stream id, mount from the line or None).

    ``hackme`` → ("hackme", "", None); ``hackme:#2`` → ("hackme", "2", None);
    ``SOURCE hackme /live`` (darkice with a mount, Icecast 1 style) → ("hackme", "", "/live").
    A ``user:password`` form is left to :meth:`ShoutcastServer._password_ok`.
    """
    mount: str | None = None
    if line[:7].upper() == "SOURCE ":
        rest = line[7:].strip()
        password, _sep, tail = rest.partition(" ")
        tail = tail.strip()
        if tail.startswith("/"):
            mount = tail.split()[0]
    else:
        password = line
    sid = ""
    m = _SID_SUFFIX.match(password)
    if m:
        password, sid = m.group(1), m.group(2)
    return password, sid, mount


def source_info_from_icy_headers(mount: str, headers: dict[str, str]) -> SourceInfo:
    """Build a :class:`SourceInfo` from a source's (lower-cased) ICY header lines."""

    used: set[str] = set()

    def pick(*names: str) -> str:
        for name in names:
            if name in headers:
                used.update(names)
                return headers[name]
        return ""

    info = SourceInfo(mount=mount)
    info.content_type = pick("content-type").split(";")[0].strip().lower()
    info.user_agent = pick("user-agent")
    info.name = pick("icy-name", "ice-name")
    info.genre = pick("icy-genre", "ice-genre")
    info.description = pick("icy-description", "ice-description")
    info.url = pick("icy-url", "ice-url")
    public = pick("icy-pub", "icy-public", "ice-public")
    if public:
        info.public = _is_true(public)
    bitrate = pick("icy-br", "ice-bitrate")
    if bitrate:
        info.bitrate = _int_prefix(bitrate)
    for name, value in headers.items():
        if name.startswith(("icy-", "ice-")) and name not in used and value:
            info.extra[name] = value
    return info


class _Reader:
    """Line-oriented reads from a stream with a byte buffer (the bytes past the last line)."""

    def __init__(self, stream: SocketStream, read_size: int, max_bytes: int) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.read_size = read_size
        self.max_bytes = max_bytes
        self.eof = False

    async def fill(self) -> bool:
        """Read more; False at end of stream."""
        if self.eof:
            return False
        try:
            data = await self.stream.receive(self.read_size)
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            self.eof = True
            return False
        self.buf += data
        return True

    async def line(self) -> bytes | None:
        """The next line without its LF/CRLF; None at end of stream before a newline."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 1]
                return line.removesuffix(b"\r")
            if len(self.buf) > self.max_bytes:
                raise _BadInput("line too long")
            if not await self.fill():
                return None


# --------------------------------------------------------------------------------------------
# The source connection handed to the node
# --------------------------------------------------------------------------------------------


class IcySource(SocketSource):
    """A :class:`~streamerp2p.types.SourceConnection`: station info plus the audio bytes.

    Iterating yields the audio as it arrives; the iteration ends when the tool disconnects or
    sends nothing for ``timeout`` seconds.
    """

    async def _body(self) -> AsyncGenerator[bytes, None]:
        if self._prefix:
            self.bytes_received += len(self._prefix)
            yield self._prefix
            self._prefix = b""
        while data := await self._recv():
            self.bytes_received += len(data)
            yield data


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class ShoutcastServer:
    """A SHOUTcast v1 source server bound to an :class:`IngestContext` (two listening ports).

    Options read from ``ctx.options``: ``source_port`` (default ``ctx.port + 1``),
    ``head_timeout`` (s), ``source_timeout`` (s, None for none), ``max_head_bytes``,
    ``read_size``.
    """

    def __init__(self, ctx: IngestContext) -> None:
        self.ctx = ctx
        self.stats = ShoutcastStats()
        self.port: int | None = None  # the base port (title updates)
        self.source_port: int | None = None
        self.active_mounts: set[str] = set()
        opts = ctx.options
        self.head_timeout = float(opts.get("head_timeout", DEFAULT_HEAD_TIMEOUT))
        timeout = opts.get("source_timeout", DEFAULT_SOURCE_TIMEOUT)
        self.source_timeout: float | None = None if timeout is None else float(timeout)
        self.max_head_bytes = int(opts.get("max_head_bytes", DEFAULT_MAX_HEAD_BYTES))
        self.read_size = int(opts.get("read_size", DEFAULT_READ_SIZE))
        source_port = opts.get("source_port")
        self._source_port_option = None if source_port is None else int(source_port)

    # ---- listening ----------------------------------------------------------------------

    async def _listen(self, port: int) -> Listener[SocketStream]:
        return await anyio.create_tcp_listener(local_host=self.ctx.host or None, local_port=port)

    async def _bind(self) -> tuple[Listener[SocketStream], Listener[SocketStream]]:
        """The base and source listeners (a free adjacent pair when ctx.port is 0)."""
        if self._source_port_option is not None or self.ctx.port != 0:
            base = await self._listen(self.ctx.port)
            base_port = int(base.extra(SocketAttribute.local_port))
            wanted = self._source_port_option
            try:
                source = await self._listen(base_port + 1 if wanted is None else wanted)
            except BaseException:
                await base.aclose()
                raise
            return base, source
        last: OSError | None = None
        for _ in range(PAIR_ATTEMPTS):
            base = await self._listen(0)
            base_port = int(base.extra(SocketAttribute.local_port))
            if base_port < 65535:
                try:
                    return base, await self._listen(base_port + 1)
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        await base.aclose()
                        raise
                    last = exc
            await base.aclose()
        raise OSError(errno.EADDRINUSE, f"no two free adjacent ports found: {last}")

    async def serve(self) -> None:
        """Listen on both ports until cancelled."""
        base, source = await self._bind()
        async with base, source, anyio.create_task_group() as tg:
            self.port = int(base.extra(SocketAttribute.local_port))
            self.source_port = int(source.extra(SocketAttribute.local_port))
            log.info(
                "shoutcast ingest listening on %s:%s (sources on port %s, title updates on %s)",
                self.ctx.host,
                self.port,
                self.source_port,
                self.port,
            )
            self._serve_on(tg, base, self._handle_base)
            self._serve_on(tg, source, self._handle_source_port)
            self.ctx.started(self.ctx.host, self.port)

    def _serve_on(
        self,
        tg: TaskGroup,
        listener: Listener[SocketStream],
        handler: Callable[[SocketStream], Awaitable[None]],
    ) -> None:
        async def safely(stream: SocketStream) -> None:
            self.stats.connections += 1
            try:
                await handler(stream)
            except Exception:
                self.stats.errors += 1
                log.exception("shoutcast ingest: error handling %s", _peer_name(stream))
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()

        tg.start_soon(listener.serve, safely)

    # ---- helpers ------------------------------------------------------------------------

    def _check(self, user: str, password: str) -> bool:
        try:
            return bool(self.ctx.check_password(user, password))
        except Exception:
            log.exception("shoutcast ingest: check_password failed")
            return False

    def _password_ok(self, password: str) -> bool:
        """The node's one source password, alone or as ``user:password`` (liquidsoap, DNAS 2)."""
        if self._check("source", password):
            return True
        user, sep, rest = password.partition(":")
        return bool(sep) and self._check(user or "source", rest)

    async def _refuse(self, stream: SocketStream, answer: bytes) -> None:
        """Send ``answer``, then drain for a moment so the client can read it before we close.

        (Closing a socket with unread input sends a TCP reset, which can destroy our answer
        before the client reads it: libshout and butt send headers and audio at once.)
        """
        try:
            await stream.send(answer)
            await stream.send_eof()
            with anyio.move_on_after(LINGER_SECONDS):
                drained = 0
                while drained < 1 << 20:
                    drained += len(await stream.receive(self.read_size))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass

    # ---- the source port ----------------------------------------------------------------

    async def _handle_source_port(self, stream: SocketStream) -> None:
        peer = _peer_name(stream)
        reader = _Reader(stream, self.read_size, self.max_head_bytes)
        try:
            with anyio.fail_after(self.head_timeout):
                first = await reader.line()
        except (_BadInput, TimeoutError) as exc:
            self.stats.bad_requests += 1
            log.info("shoutcast ingest: dropping %s: %s", peer, exc or "no password line in time")
            return
        if first is None:
            if reader.buf:
                self.stats.bad_requests += 1
                log.info("shoutcast ingest: dropping %s: incomplete password line", peer)
            else:
                self.stats.probes += 1
                log.debug("shoutcast ingest: %s connected and closed (probe)", peer)
            return
        if _HTTP_REQUEST.match(first):
            self.stats.bad_requests += 1
            log.warning(
                "shoutcast ingest: %s sent HTTP (%r) to the SHOUTcast source port %s; "
                "Icecast tools need --ingest icecast",
                peer,
                first[:60].decode("latin-1"),
                self.source_port,
            )
            await self._refuse(
                stream,
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                b"This is a SHOUTcast v1 source port: send the password line\r\n",
            )
            return
        await self._icy_login(stream, reader, peer, first)

    async def _icy_login(
        self, stream: SocketStream, reader: _Reader, peer: str, first: bytes
    ) -> None:
        """Everything after a source's first line (the password line)."""
        line = _text(first).strip("\r\n\x00")
        if line == POKE:
            # libshout asks what the server is; DNAS has no such password. libshout reconnects
            # with the real one.
            self.stats.probes += 1
            log.debug("shoutcast ingest: %s sent libshout's !POKE probe", peer)
            await self._refuse(stream, INVALID_PASSWORD)
            return
        password, sid, mount = parse_password_line(line)
        if line[:7].upper() == "SOURCE " and mount is None:
            # darkice: "SOURCE password\n /mount\n"
            with anyio.move_on_after(MOUNT_LINE_WAIT):
                while b"\n" not in reader.buf and await reader.fill():
                    pass
            if reader.buf[:1] in (b" ", b"\t") and b"\n" in reader.buf:
                second = _text(await reader.line() or b"").strip()
                if second.startswith("/"):
                    mount = second.split()[0]
        if not self._password_ok(password):
            self.stats.auth_failures += 1
            log.warning("shoutcast ingest: wrong password from %s (invalid password)", peer)
            await self._refuse(stream, INVALID_PASSWORD)
            return
        mount = mount or _sid_mount(sid)
        if mount in self.active_mounts:
            self.stats.stream_in_use += 1
            log.warning("shoutcast ingest: %s refused, a source is already on %s", peer, mount)
            await self._refuse(stream, STREAM_IN_USE)
            return
        self.active_mounts.add(mount)
        try:
            try:
                await stream.send(OK_ANSWER)
                with anyio.fail_after(self.head_timeout):
                    headers = await self._read_icy_headers(reader)
            except (TimeoutError, _BadInput) as exc:
                self.stats.bad_requests += 1
                log.info("shoutcast ingest: dropping %s: %s", peer, exc or "headers timed out")
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                log.info("shoutcast ingest: %s went away during login: %r", peer, exc)
                return
            info = source_info_from_icy_headers(mount, headers)
            source = IcySource(
                info,
                peer,
                stream,
                prefix=bytes(reader.buf),
                timeout=self.source_timeout,
                read_size=self.read_size,
            )
            reader.buf.clear()
            self.stats.sources += 1
            log.info(
                "shoutcast ingest: source %s on %s (%s, %r)",
                peer,
                mount,
                info.content_type or "no content type",
                info.name,
            )
            try:
                await self.ctx.on_source(source)
            finally:
                await source.aclose()
            log.info(
                "shoutcast ingest: source %s on %s ended after %d bytes",
                peer,
                mount,
                source.bytes_received,
            )
        finally:
            self.active_mounts.discard(mount)

    async def _read_icy_headers(self, reader: _Reader) -> dict[str, str]:
        """Header lines up to a blank line; what follows stays in ``reader.buf`` (audio).

        A client that sends no blank line (or no headers at all) before its audio is tolerated:
        the headers end at the first line that is not ``name:value``; that line is audio.
        """
        headers: dict[str, str] = {}
        while True:
            while b"\n" not in reader.buf:
                if (
                    reader.buf
                    and not _HEADER_LINE.match(reader.buf[:64])
                    and (len(reader.buf) >= 64 or not reader.buf.isascii())
                ):
                    return headers  # audio without a blank line before it
                if len(reader.buf) > self.max_head_bytes:
                    raise _BadInput("headers too large")
                if not await reader.fill():
                    return headers  # the source hung up during its headers: an empty stream
            i = reader.buf.index(b"\n")
            raw = bytes(reader.buf[:i]).removesuffix(b"\r")
            if not raw.strip():
                del reader.buf[: i + 1]
                return headers
            if not _HEADER_LINE.match(raw):
                return headers
            del reader.buf[: i + 1]
            name, _sep, value = _text(raw).partition(":")
            headers[name.strip().lower()] = value.strip()

    # ---- the base port: title updates ---------------------------------------------------

    async def _handle_base(self, stream: SocketStream) -> None:
        peer = _peer_name(stream)
        reader = _Reader(stream, self.read_size, self.max_head_bytes)
        try:
            with anyio.fail_after(self.head_timeout):
                request = await reader.line()
                if request is not None and _HTTP_REQUEST.match(request):
                    # Skip the rest of the head (headers do not matter here); tolerate a client
                    # that sends the request line and closes (butt does not wait for the answer).
                    while (header := await reader.line()) is not None and header.strip():
                        pass
        except (_BadInput, TimeoutError) as exc:
            self.stats.bad_requests += 1
            log.info("shoutcast ingest: dropping %s: %s", peer, exc or "no request in time")
            return
        if request is None:
            self.stats.probes += 1
            log.debug("shoutcast ingest: %s connected to the base port and closed", peer)
            return
        if not _HTTP_REQUEST.match(request):
            # Not HTTP: a source tool configured with the base port instead of port + 1 (darkice
            # and some DSP plugins take the source port itself). Accept it all the same.
            log.info(
                "shoutcast ingest: %s logs in on the base port %s (sources belong on %s)",
                peer,
                self.port,
                self.source_port,
            )
            await self._icy_login(stream, reader, peer, request)
            return
        parts = request.split()
        if len(parts) < 2 or parts[0].upper() not in (b"GET", b"HEAD"):
            self.stats.bad_requests += 1
            log.info("shoutcast ingest: %s: unsupported request %r", peer, request[:80])
            await self._http(stream, b"400 Bad Request", b"Bad request\r\n")
            return
        target = parts[1].decode("latin-1")
        try:
            split = urlsplit(target)
        except ValueError:  # an unbalanced "[" or "]" in a URL's host (found by bench fuzz)
            self.stats.bad_requests += 1
            await self._http(stream, b"400 Bad Request", b"Bad request\r\n")
            return
        if split.path.rstrip("/") != "/admin.cgi":
            self.stats.not_found += 1
            log.info("shoutcast ingest: %s asked for %s: not here", peer, split.path)
            await self._http(
                stream,
                b"404 Not Found",
                b"Not found. Listeners tune in through a Streamer P2P node.\r\n",
            )
            return
        await self._admin(stream, peer, split.query)

    async def _http(
        self, stream: SocketStream, status: bytes, body: bytes, content_type: bytes = b"text/plain"
    ) -> None:
        response = (
            b"HTTP/1.0 "
            + status
            + b"\r\nContent-Type: "
            + content_type
            + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await stream.send(response)

    async def _admin(self, stream: SocketStream, peer: str, query: str) -> None:
        # latin-1 keeps each byte, so the charset parameter can be honoured.
        raw = parse_qs(query, keep_blank_values=True, encoding="latin-1")
        params = {k.lower(): v[-1] for k, v in raw.items()}

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

        password, sid, _mount = parse_password_line(param("pass"))
        if not self._password_ok(password):
            self.stats.auth_failures += 1
            log.warning("shoutcast ingest: wrong password in a title update from %s", peer)
            await self._http(
                stream,
                b"401 Unauthorized",
                b"<html><body>Invalid password</body></html>\r\n",
                b"text/html",
            )
            return
        if param("mode").lower() != "updinfo":
            self.stats.bad_requests += 1
            log.info("shoutcast ingest: %s: admin.cgi mode %r not supported", peer, param("mode"))
            await self._http(stream, b"400 Bad Request", b"Only mode=updinfo is supported\r\n")
            return
        mount = _sid_mount(param("sid") or sid)
        song = param("song")
        if not song and ("artist" in params or "title" in params):
            artist, title = param("artist"), param("title")
            song = f"{artist} - {title}" if artist and title else artist or title
        try:
            self.ctx.on_title(mount, song)
        except Exception:
            self.stats.errors += 1
            log.exception("shoutcast ingest: on_title failed")
            await self._http(stream, b"500 Internal Server Error", b"Update failed\r\n")
            return
        self.stats.title_updates += 1
        log.info("shoutcast ingest: title on %s: %r", mount, song)
        await self._http(stream, b"200 OK", UPDATE_OK, b"text/html")
