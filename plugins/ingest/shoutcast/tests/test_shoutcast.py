"""Tests of the SHOUTcast v1 source server: replayed client dialects and real tools."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from streamerp2p.testing import require_tool
from streamerp2p.tone import ToneSource
from streamerp2p.types import IngestContext, SourceConnection, SourceInfo
from streamerp2p_shoutcast import plugin
from streamerp2p_shoutcast.server import (
    INVALID_PASSWORD,
    OK_ANSWER,
    ShoutcastServer,
    parse_password_line,
    source_info_from_icy_headers,
)

pytestmark = pytest.mark.anyio

PASSWORD = "hackme"
TIMEOUT = 10


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mp3_bytes() -> bytes:
    """A small CBR mp3 (the project's generated tone) without ID3 or Xing header."""
    return b"".join(ToneSource().frames(round(1.5 * 44100 / 1152)))


# --------------------------------------------------------------------------------------------
# Harness: an in-process server whose node side records what sources send
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    info: SourceInfo
    peer: str
    data: bytearray = field(default_factory=bytearray)


class Harness:
    def __init__(self) -> None:
        self.server: ShoutcastServer | None = None
        self.port = 0
        self.started: list[tuple[str, int]] = []
        self.titles: list[tuple[str, str]] = []
        self.title_event = anyio.Event()
        self.sources: list[Received] = []
        self.done_send, self.done = anyio.create_memory_object_stream[Received](100)
        self.release = anyio.Event()  # sources on mount "/stream/9" wait for this
        self.source_started = anyio.Event()

    @property
    def source_port(self) -> int:
        assert self.server is not None and self.server.source_port is not None
        return self.server.source_port

    def check_password(self, user: str, password: str) -> bool:
        return user in ("source", "admin") and password == PASSWORD

    async def on_source(self, conn: SourceConnection) -> None:
        rec = Received(conn.info, conn.peer)
        self.sources.append(rec)
        self.source_started.set()
        if conn.info.mount == "/stream/9":
            await self.release.wait()
        else:
            async for chunk in conn:
                rec.data += chunk
        await self.done_send.send(rec)

    def on_title(self, mount: str, title: str) -> None:
        self.titles.append((mount, title))
        self.title_event.set()

    async def next_source(self) -> Received:
        with anyio.fail_after(TIMEOUT):
            return await self.done.receive()

    async def next_title(self) -> tuple[str, str]:
        with anyio.fail_after(TIMEOUT):
            await self.title_event.wait()
        self.title_event = anyio.Event()
        return self.titles[-1]

    async def connect_source(self) -> SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.source_port)

    async def connect_base(self) -> SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.port)


@asynccontextmanager
async def running_server(**options: object) -> AsyncIterator[Harness]:
    h = Harness()
    started = anyio.Event()

    def on_started(host: str, port: int) -> None:
        h.started.append((host, port))
        h.port = port
        started.set()

    ctx = IngestContext(
        host="127.0.0.1",
        port=0,
        check_password=h.check_password,
        on_source=h.on_source,
        on_title=h.on_title,
        started=on_started,
        options=dict(options),
    )
    h.server = ShoutcastServer(ctx)
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.server.serve)
        with anyio.fail_after(TIMEOUT):
            await started.wait()
        yield h
        tg.cancel_scope.cancel()


async def read_exactly(stream: SocketStream, n: int) -> bytes:
    buf = bytearray()
    with anyio.fail_after(TIMEOUT):
        while len(buf) < n:
            buf += await stream.receive()
    return bytes(buf)


async def read_all(stream: SocketStream) -> bytes:
    buf = bytearray()
    with anyio.fail_after(TIMEOUT):
        try:
            while True:
                buf += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            pass
    return bytes(buf)


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------


async def test_ports_base_and_source() -> None:
    async with running_server() as h:
        assert h.server is not None
        # started() reports the base port (what users configure); sources use base + 1
        assert h.started == [("127.0.0.1", h.server.port)]
        assert h.source_port == h.port + 1
        for port in (h.port, h.source_port):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()


async def test_explicit_source_port() -> None:
    with anyio.fail_after(TIMEOUT):
        probe = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        free = int(probe.extra(anyio.abc.SocketAttribute.local_port))
        await probe.aclose()
    async with running_server(source_port=free) as h:
        assert h.source_port == free
        stream = await h.connect_source()
        await stream.send(PASSWORD.encode() + b"\n\nabc")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.aclose()
        assert bytes((await h.next_source()).data) == b"abc"


async def test_plugin_hook() -> None:
    specs = plugin.streamerp2p_ingest_servers()
    assert [s.name for s in specs] == ["shoutcast"]
    assert specs[0].default_port == 8000
    ready = anyio.Event()
    got: list[tuple[str, int]] = []

    def on_started(host: str, port: int) -> None:
        got.append((host, port))
        ready.set()

    async def on_source(conn: SourceConnection) -> None:
        pass

    ctx = IngestContext(
        "127.0.0.1", 0, lambda u, p: False, on_source, lambda m, t: None, on_started
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(specs[0].serve, ctx)
        with anyio.fail_after(TIMEOUT):
            await ready.wait()
        host, port = got[0]
        # both ports accept connections
        for p in (port, port + 1):
            stream = await anyio.connect_tcp(host, p)
            await stream.aclose()
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------------------------
# Replayed client dialects (bytes as captured from, or read in the source of, each client)
# --------------------------------------------------------------------------------------------


async def test_libshout_icy_dialect(mp3_bytes: bytes) -> None:
    """libshout 2.4.6 (ezstream, ices, Mixxx, darkice's shout) in SHOUT_PROTOCOL_ICY, captured.

    It first probes with a "!POKE" password (DNAS answers "invalid password"), reconnects and
    sends password and headers (LF only, no content-type) at once, then audio; titles come as
    ``GET /admin.cgi?mode=updinfo&pass=...&charset=UTF%2d8&artist=...&title=...``.
    """
    async with running_server() as h:
        poke = await h.connect_source()
        await poke.send(b"!POKE\nicy-name:libshout server poke request\n\n")
        assert await read_all(poke) == INVALID_PASSWORD
        await poke.aclose()
        assert h.server is not None and h.server.stats.probes == 1
        assert h.server.stats.auth_failures == 0

        stream = await h.connect_source()
        await stream.send(
            b"hackme\nicy-name:EZ Radio\nicy-url:http://ez.example/\nicy-irc:\nicy-aim:\n"
            b"icy-icq:\nicy-pub:1\nicy-genre:Ambient\nicy-br:128\n\n"
        )
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        for i in range(0, len(mp3_bytes), 4096):
            await stream.send(mp3_bytes[i : i + 4096])

        title = await h.connect_base()
        await title.send(
            b"GET /admin.cgi?mode=updinfo&pass=hackme&charset=UTF%2d8&artist=Test%20Artist"
            b"&title=Caf%C3%A9 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
            b"User-Agent: libshout/2.4.6 (Mozilla compatible)\r\n\r\n"
        )
        response = await read_all(title)
        await title.aclose()
        assert response.startswith(b"HTTP/1.0 200 OK\r\n")
        assert h.titles == [("/", "Test Artist - Café")]

        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        info = rec.info
        assert info.mount == "/"
        assert (info.name, info.genre, info.url) == ("EZ Radio", "Ambient", "http://ez.example/")
        assert info.public is True
        assert info.bitrate == 128
        assert info.content_type == ""  # libshout sends none: the node sniffs the format
        assert info.extra == {}  # empty icy-irc/aim/icq are dropped


async def test_mixxx_libshout_idjc_dialect(mp3_bytes: bytes) -> None:
    """Mixxx's bundled libshout-idjc (proto_icy.c): like libshout, with ``content-type`` right
    after the password; titles as ``song`` through admin.cgi."""
    async with running_server() as h:
        poke = await h.connect_source()
        await poke.send(b"!POKE\nicy-name:libshout server poke request\n\n")
        assert await read_all(poke) == INVALID_PASSWORD
        await poke.aclose()
        stream = await h.connect_source()
        await stream.send(
            b"hackme\ncontent-type:audio/mpeg\nicy-name:Mixxx Live\nicy-url:http://www.mixxx.org\n"
            b"icy-irc:\nicy-aim:\nicy-icq:\nicy-pub:0\nicy-genre:Live Mix\nicy-br:128\n\n"
        )
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(mp3_bytes)
        title = await h.connect_base()
        await title.send(
            b"GET /admin.cgi?mode=updinfo&pass=hackme&song=DJ%20-%20Track HTTP/1.1\r\n"
            b"Host: 127.0.0.1:8000\r\nUser-Agent: Mixxx/2.3 (Mozilla compatible)\r\n\r\n"
        )
        assert (await read_all(title)).startswith(b"HTTP/1.0 200 OK\r\n")
        await title.aclose()
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.content_type, rec.info.name, rec.info.genre) == (
            "audio/mpeg",
            "Mixxx Live",
            "Live Mix",
        )
        assert rec.info.public is False
        assert h.titles == [("/", "DJ - Track")]


async def test_butt_dialect(mp3_bytes: bytes) -> None:
    """butt (shoutcast.cpp): password CRLF, a Host line, icy-* without spaces, content-type
    last, all before reading; titles by a GET it sends and closes without reading the answer."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"hackme\r\n")
        await stream.send(b"Host: 127.0.0.1:8000\r\n")
        for line in (
            b"icy-name:Butt FM",
            b"icy-genre:Talk",
            b"icy-url:http://butt.example/",
            b"icy-irc:#butt",
            b"icy-pub:0",
            b"icy-br:96",
        ):
            await stream.send(line + b"\r\n")
        await stream.send(b"content-type:")
        await stream.send(b"audio/aac")
        await stream.send(b"\r\n\r\n")
        answer = await read_exactly(stream, len(OK_ANSWER))
        assert answer[:2] == b"OK"  # what butt checks
        await stream.send(mp3_bytes)

        title = await h.connect_base()
        await title.send(
            b"GET /admin.cgi?pass=hackme&mode=updinfo&song=Live%20%26%20Loud&url= HTTP/1.0\r\n"
            b"User-Agent: ShoutcastDSP (Mozilla Compatible)\r\n"
        )
        await title.send(b"Host: 127.0.0.1:8000\r\n\r\n")
        await title.aclose()  # butt does not read the answer
        assert await h.next_title() == ("/", "Live & Loud")

        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert rec.info.content_type == "audio/aac"
        assert (rec.info.name, rec.info.genre, rec.info.bitrate) == ("Butt FM", "Talk", 96)
        assert rec.info.public is False
        assert rec.info.extra == {"icy-irc": "#butt"}
        assert h.server is not None and h.server.stats.errors == 0


async def test_darkice_dialect(mp3_bytes: bytes) -> None:
    """darkice (ShoutCast.cpp): password LF, waits for "OK", then each header in its own write
    (LF), a blank line, audio."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"hackme\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        for line in (b"icy-name:Dark", b"icy-url:http://d/", b"icy-genre:Noise", b"icy-br:128"):
            await stream.send(line + b"\n")
        await stream.send(b"icy-pub:1\n")
        await stream.send(b"\n")
        await stream.send(mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.mount, rec.info.name, rec.info.url) == ("/", "Dark", "http://d/")


async def test_darkice_mount_dialect(mp3_bytes: bytes) -> None:
    """darkice with a mountpoint other than "/": ``SOURCE password\\n /mount\\n``."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"SOURCE hackme\n /live\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(b"icy-name:Dark\n\n" + mp3_bytes[:5000])
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.mount == "/live"
        assert bytes(rec.data) == mp3_bytes[:5000]


async def test_liquidsoap_cry_dialect(mp3_bytes: bytes) -> None:
    """liquidsoap (ocaml-cry, protocol="icy"): ``user:password`` CRLF, reads the answer, sends
    ``name:value`` CRLF headers with content-type last; titles by admin.cgi without Host."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"source:hackme\r\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(
            b"icy-name:Liq\r\nicy-pub:1\r\nicy-genre:Electro\r\ncontent-type:audio/mpeg\r\n\r\n"
        )
        await stream.send(mp3_bytes)

        title = await h.connect_base()
        await title.send(
            b"GET /admin.cgi?mode=updinfo&pass=hackme&song=Liq%20Song HTTP/1.0\r\n"
            b"User-Agent: liquidsoap/2.1.3 (Mozilla compatible)\r\n\r\n"
        )
        response = await read_all(title)
        await title.aclose()
        assert response.startswith(b"HTTP/1.0 200 OK\r\n")  # cry requires a 200 status line
        assert h.titles == [("/", "Liq Song")]

        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.name, rec.info.content_type) == ("Liq", "audio/mpeg")


async def test_dnas2_stream_id_suffix(mp3_bytes: bytes) -> None:
    """Newer clients (butt, liquidsoap, SAM) send ``password:#N`` for DNAS 2 stream N."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"hackme:#2\r\ncontent-type:audio/mpeg\r\n\r\n" + mp3_bytes[:3000])
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.mount == "/stream/2"
        assert bytes(rec.data) == mp3_bytes[:3000]

        title = await h.connect_base()
        await title.send(b"GET /admin.cgi?pass=admin:hackme&mode=updinfo&song=x&sid=2 HTTP/1.0\n\n")
        assert (await read_all(title)).startswith(b"HTTP/1.0 200 OK\r\n")
        await title.aclose()
        assert h.titles == [("/stream/2", "x")]

        one = await h.connect_source()  # sid 1 is the default stream "/"
        await one.send(b"source:hackme:#1\n\n")
        assert await read_exactly(one, len(OK_ANSWER)) == OK_ANSWER
        await one.aclose()
        assert (await h.next_source()).info.mount == "/"


async def test_source_on_base_port(mp3_bytes: bytes) -> None:
    """darkice takes the source port itself; a user who gives it the base port still works."""
    async with running_server() as h:
        stream = await h.connect_base()
        await stream.send(b"hackme\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(b"icy-name:Base\nicy-br:128\n\n" + mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.name == "Base"
        assert bytes(rec.data) == mp3_bytes
        wrong = await h.connect_base()
        await wrong.send(b"nope\n")
        assert await read_all(wrong) == INVALID_PASSWORD
        await wrong.aclose()


@pytest.mark.parametrize(
    "content_type",
    ["audio/mpeg", "audio/ogg", "application/ogg", "audio/aac", "audio/aacp", "audio/opus"],
)
async def test_content_types_pass_through(content_type: str) -> None:
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(f"hackme\r\ncontent-type:{content_type}\r\n\r\n".encode() + b"OggS")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.content_type == content_type
        assert bytes(rec.data) == b"OggS"


async def test_audio_without_blank_line(mp3_bytes: bytes) -> None:
    """A client that sends headers then audio with no blank line: the audio is kept whole."""
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"hackme\r\nicy-name:Sloppy\r\nicy-br:128\r\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.name == "Sloppy"
        assert bytes(rec.data) == mp3_bytes


async def test_no_headers_at_all(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"hackme\r\n")
        assert await read_exactly(stream, len(OK_ANSWER)) == OK_ANSWER
        await stream.send(mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert rec.info.name == ""


# --------------------------------------------------------------------------------------------
# Refusals and bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login",
    [
        b"wrong\n",
        b"wrong\r\nicy-name:x\r\n\r\n" + b"\xff\xfb" * 5000,  # libshout/butt: all at once
        b"source:wrong\r\n",
        b"hackme2:#1\r\n",
        b"\r\n",
        b"SOURCE wrong /live\n",
    ],
    ids=["lf", "with-audio", "user", "sid", "empty", "source-line"],
)
async def test_wrong_password(login: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(login)
        response = await read_all(stream)
        await stream.aclose()
        assert response == INVALID_PASSWORD
        assert h.server is not None
        assert h.server.stats.auth_failures == 1
        assert h.server.stats.sources == 0
        assert h.sources == []
        # the server keeps running
        ok = await h.connect_source()
        await ok.send(b"hackme\n\nxyz")
        await ok.aclose()
        assert bytes((await h.next_source()).data) == b"xyz"


async def test_wrong_password_in_title_update() -> None:
    async with running_server() as h:
        stream = await h.connect_base()
        await stream.send(b"GET /admin.cgi?mode=updinfo&pass=nope&song=x HTTP/1.0\r\n\r\n")
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 401 Unauthorized\r\n")
        assert h.titles == []
        assert h.server is not None and h.server.stats.auth_failures == 1


async def test_stream_in_use() -> None:
    async with running_server() as h:
        first = await h.connect_source()
        await first.send(b"hackme:#9\n\n")
        assert await read_exactly(first, len(OK_ANSWER)) == OK_ANSWER
        with anyio.fail_after(TIMEOUT):
            await h.source_started.wait()
        second = await h.connect_source()
        await second.send(b"hackme:#9\n\n")
        response = await read_all(second)
        await second.aclose()
        assert not response.startswith(b"OK")
        assert b"invalid password" not in response  # clients retry rather than give up
        assert h.server is not None and h.server.stats.stream_in_use == 1
        h.release.set()
        await h.next_source()
        await first.aclose()
        assert not h.server.active_mounts


async def test_http_on_source_port_is_refused() -> None:
    async with running_server() as h:
        stream = await h.connect_source()
        await stream.send(b"SOURCE /live HTTP/1.0\r\nAuthorization: Basic eDp5\r\n\r\n")
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 400 Bad Request\r\n")
        assert h.sources == []


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x16\x03\x01\x02\x00\x01\x00" + bytes(range(256)), b"A" * 40000, b"hackme"],
    ids=["probe", "binary", "huge", "no-newline"],
)
async def test_garbage_on_source_port(garbage: bytes) -> None:
    async with running_server(head_timeout=1.0) as h:
        stream = await h.connect_source()
        try:
            if garbage:
                await stream.send(garbage)
            await stream.send_eof()
            answer = await read_all(stream)
        finally:
            await stream.aclose()
        assert not answer.startswith(b"OK")
        assert h.sources == []
        assert h.server is not None and h.server.stats.errors == 0
        ok = await h.connect_source()
        await ok.send(b"hackme\n\nabc")
        await ok.aclose()
        assert bytes((await h.next_source()).data) == b"abc"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET /admin.cgi?mode=viewxml&pass=hackme HTTP/1.0\r\n\r\n",
        b"POST /admin.cgi HTTP/1.0\r\n\r\n",
        b"\x00\x01\x02\n",
        b"",
    ],
    ids=["root", "viewxml", "post", "binary", "probe"],
)
async def test_other_requests_on_base_port(request_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect_base()
        if request_bytes:
            await stream.send(request_bytes)
        await stream.send_eof()
        response = await read_all(stream)
        await stream.aclose()
        assert not response.startswith(b"HTTP/1.0 200")
        assert h.titles == []
        assert h.server is not None and h.server.stats.errors == 0


def test_parse_password_line() -> None:
    assert parse_password_line("hackme") == ("hackme", "", None)
    assert parse_password_line("hack:me") == ("hack:me", "", None)
    assert parse_password_line("hackme:#2") == ("hackme", "2", None)
    assert parse_password_line("source:hackme:#3") == ("source:hackme", "3", None)
    assert parse_password_line("SOURCE hackme /live") == ("hackme", "", "/live")
    assert parse_password_line("SOURCE hackme") == ("hackme", "", None)


def test_source_info_from_icy_headers() -> None:
    info = source_info_from_icy_headers(
        "/",
        {
            "icy-name": "N",
            "icy-pub": "0",
            "icy-br": "128,64",
            "content-type": "Audio/AACP; x=y",
            "icy-aim": "aim",
            "icy-icq": "",
            "icy-description": "D",
        },
    )
    assert (info.name, info.public, info.bitrate) == ("N", False, 128)
    assert info.content_type == "audio/aacp"
    assert info.description == "D"
    assert info.extra == {"icy-aim": "aim"}


# --------------------------------------------------------------------------------------------
# Real tools
# --------------------------------------------------------------------------------------------

METADATA_SCRIPT = """#!/bin/sh
case "$1" in
  artist) echo "Test Artist";;
  title) echo "Test Title";;
  "") echo "Test Artist - Test Title";;
  *) echo;;
esac
"""


def ezstream_config(
    tmp: Path, mp3: Path, protocol: str, port: int, password: str, metadata: bool = True
) -> Path:
    """An ezstream 1.x config streaming ``mp3`` once (its metadata program gives the title)."""
    script = tmp / "meta.sh"
    script.write_text(METADATA_SCRIPT)
    script.chmod(0o755)
    meta = f"<metadata><program>{script}</program></metadata>" if metadata else ""
    config = tmp / f"ezstream-{protocol}.xml"
    config.write_text(
        f"""<ezstream>
  <servers><server>
    <protocol>{protocol}</protocol><hostname>127.0.0.1</hostname><port>{port}</port>
    <user>source</user><password>{password}</password><tls>None</tls>
    <reconnect_attempts>1</reconnect_attempts>
  </server></servers>
  <streams><stream>
    <mountpoint>/ez.mp3</mountpoint><format>MP3</format><public>1</public>
    <stream_name>EZ Radio</stream_name><stream_url>http://ez.example/</stream_url>
    <stream_genre>Ambient</stream_genre><stream_description>from ezstream</stream_description>
    <stream_bitrate>128</stream_bitrate>
  </stream></streams>
  <intakes><intake><type>file</type><filename>{mp3}</filename>
    <stream_once>1</stream_once></intake></intakes>
  {meta}
</ezstream>
"""
    )
    config.chmod(0o600)  # ezstream refuses a config others can read (it holds the password)
    return config


async def run_tool(args: list[str], log: Path, timeout: float = 30) -> int:
    """Run a tool to completion (killed by PID on timeout or error); returns its exit code."""
    with log.open("wb") as err:
        process = await anyio.open_process(args, stdout=err, stderr=subprocess.STDOUT)
    try:
        with anyio.fail_after(timeout):
            return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


@pytest.mark.e2e
async def test_ezstream_icy(mp3_bytes: bytes, tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        config = ezstream_config(tmp_path, mp3, "ICY", h.port, PASSWORD)
        log = tmp_path / "ezstream.log"
        code = await run_tool([ezstream, "-v", "-c", str(config)], log)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes, output
        assert rec.info.mount == "/"
        assert (rec.info.name, rec.info.genre, rec.info.url) == (
            "EZ Radio",
            "Ambient",
            "http://ez.example/",
        )
        assert rec.info.bitrate == 128
        assert rec.info.public is True
        assert ("/", "Test Artist - Test Title") in h.titles, output
        assert h.server is not None
        assert h.server.stats.probes >= 1  # libshout's !POKE
        assert h.server.stats.auth_failures == 0


@pytest.mark.e2e
async def test_ezstream_icy_wrong_password(mp3_bytes: bytes, tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        config = ezstream_config(tmp_path, mp3, "ICY", h.port, "wrong")
        log = tmp_path / "ezstream.log"
        code = await run_tool([ezstream, "-v", "-c", str(config)], log)
        assert code != 0, log.read_text(errors="replace")
        assert h.sources == []
        assert h.titles == []
        assert h.server is not None and h.server.stats.auth_failures >= 1


LIQUIDSOAP_SCRIPT = """
settings.log.stdout.set(true)
settings.log.file.set(false)
settings.init.allow_root.set(true)
s = once(single("annotate:artist=\\"Liq Artist\\",title=\\"Liq Title\\":{mp3}"))
output.icecast(%mp3(bitrate=128), protocol="icy", host="127.0.0.1", port={port},
  password="{password}", name="Liq Radio", genre="Synth", url="http://liq.example/",
  fallible=true, on_stop=shutdown, s)
"""


@pytest.mark.e2e
async def test_liquidsoap_icy(mp3_bytes: bytes, tmp_path: Path) -> None:
    """liquidsoap output.icecast(protocol="icy") (ocaml-cry): login on port + 1, icy headers,
    mp3 re-encoded from the file, the title through admin.cgi on the base port."""
    liquidsoap = require_tool("liquidsoap")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        script = tmp_path / "radio.liq"
        script.write_text(LIQUIDSOAP_SCRIPT.format(mp3=mp3, port=h.port, password=PASSWORD))
        log = tmp_path / "liquidsoap.log"
        code = await run_tool([liquidsoap, str(script)], log, 60)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
    assert len(rec.data) > 16000, output  # 1.5 s at 128 kbit/s
    assert rec.data.find(b"\xff\xfb") >= 0  # MPEG-1 Layer III frames
    assert rec.info.mount == "/"
    assert rec.info.content_type == "audio/mpeg"
    assert (rec.info.name, rec.info.genre, rec.info.url) == (
        "Liq Radio",
        "Synth",
        "http://liq.example/",
    )
    assert rec.info.bitrate == 128
    assert ("/", "Liq Artist - Liq Title") in h.titles, output
