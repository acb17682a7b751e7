"""Tests of the Icecast source server: raw-socket clients and real ffmpeg."""

from __future__ import annotations

import base64
import os
import shutil
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
from streamerp2p_icecast import plugin
from streamerp2p_icecast.server import METADATA_OK, IcecastServer, source_info_from_headers

pytestmark = pytest.mark.anyio

PASSWORD = "hackme"
TIMEOUT = 10


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: required on CI")
        pytest.skip(message)
    return path


def make_mp3(seconds: float = 1.5) -> bytes:
    """A small CBR mp3 (the project's generated tone) without ID3 or Xing header."""
    return b"".join(ToneSource().frames(round(seconds * 44100 / 1152)))


@pytest.fixture(scope="module")
def mp3_bytes() -> bytes:
    return make_mp3()


# --------------------------------------------------------------------------------------------
# Harness: an in-process server whose node side collects what sources send
# --------------------------------------------------------------------------------------------


@dataclass
class Received:
    info: SourceInfo
    peer: str
    data: bytearray = field(default_factory=bytearray)
    chunks: int = 0


class Harness:
    def __init__(self) -> None:
        self.server: IcecastServer | None = None
        self.port = 0
        self.titles: list[tuple[str, str]] = []
        self.started_sources: list[Received] = []
        self.done_send, self.done = anyio.create_memory_object_stream[Received](100)
        self.release = anyio.Event()  # sources on mount "/hold" wait for this
        self.source_started = anyio.Event()
        self.title_event = anyio.Event()

    def check_password(self, user: str, password: str) -> bool:
        return user in ("source", "admin") and password == PASSWORD

    async def on_source(self, conn: SourceConnection) -> None:
        rec = Received(conn.info, conn.peer)
        self.started_sources.append(rec)
        self.source_started.set()
        if conn.info.mount == "/hold":
            await self.release.wait()
        else:
            async for chunk in conn:
                rec.data += chunk
                rec.chunks += 1
        await self.done_send.send(rec)

    def on_title(self, mount: str, title: str) -> None:
        self.titles.append((mount, title))
        self.title_event.set()

    async def next_title(self) -> tuple[str, str]:
        with anyio.fail_after(TIMEOUT):
            await self.title_event.wait()
        self.title_event = anyio.Event()
        return self.titles[-1]

    async def next_source(self) -> Received:
        with anyio.fail_after(TIMEOUT):
            return await self.done.receive()

    async def connect(self) -> SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.port)


@asynccontextmanager
async def running_server(**options: object) -> AsyncIterator[Harness]:
    h = Harness()
    started = anyio.Event()

    def on_started(host: str, port: int) -> None:
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
    h.server = IcecastServer(ctx)
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.server.serve)
        with anyio.fail_after(TIMEOUT):
            await started.wait()
        assert h.port > 0
        yield h
        tg.cancel_scope.cancel()


def auth(user: str = "source", password: str = PASSWORD) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Authorization: Basic {token}\r\n".encode()


async def read_until(stream: SocketStream, marker: bytes, buf: bytearray | None = None) -> bytes:
    """Read until ``marker`` has been seen; return everything read up to and including it."""
    buf = bytearray() if buf is None else buf
    with anyio.fail_after(TIMEOUT):
        while marker not in buf:
            buf += await stream.receive()
    end = buf.index(marker) + len(marker)
    out = bytes(buf[:end])
    del buf[:end]
    return out


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
# Raw-socket clients
# --------------------------------------------------------------------------------------------


async def test_put_without_expect(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        head = (
            b"PUT /live HTTP/1.1\r\nHost: localhost\r\n"
            + auth()
            + b"Content-Type: audio/mpeg\r\nice-name: Test Radio\r\nice-genre: Jazz\r\n"
            b"ice-description: a test\r\nice-url: http://example.org/\r\nice-public: 0\r\n"
            b"ice-audio-info: ice-samplerate=44100;ice-bitrate=128;ice-channels=2\r\n"
            b"User-Agent: test/1.0\r\nX-Other: ignored\r\n\r\n"
        )
        # Head and the first body bytes in one segment: the server must keep h11's leftovers.
        await stream.send(head + mp3_bytes[:1000])
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        for i in range(1000, len(mp3_bytes), 4096):
            await stream.send(mp3_bytes[i : i + 4096])
        await stream.send_eof()
        rec = await h.next_source()
        await stream.aclose()
        assert bytes(rec.data) == mp3_bytes
        info = rec.info
        assert info.mount == "/live"
        assert info.content_type == "audio/mpeg"
        assert (info.name, info.genre, info.description) == ("Test Radio", "Jazz", "a test")
        assert info.url == "http://example.org/"
        assert info.public is False
        assert info.bitrate == 128
        assert info.user_agent == "test/1.0"
        assert info.extra == {
            "ice-audio-info": "ice-samplerate=44100;ice-bitrate=128;ice-channels=2"
        }
        assert rec.peer.startswith("127.0.0.1:")
        assert h.server is not None and h.server.stats.sources == 1
        assert not h.server.active_mounts


async def test_put_with_expect_100_continue(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /live HTTP/1.1\r\nHost: x\r\n"
            + auth()
            + b"Content-Type: audio/mpeg\r\nExpect: 100-continue\r\n\r\n"
        )
        buf = bytearray()
        assert await read_until(stream, b"\r\n\r\n", buf) == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send(mp3_bytes)
        await stream.send_eof()
        rec = await h.next_source()
        # Like Icecast, the 100 is the only answer: nothing follows it.
        assert await read_all(stream) == b""
        await stream.aclose()
        assert bytes(rec.data) == mp3_bytes


async def test_put_chunked(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        body = bytearray()
        for i in range(0, len(mp3_bytes), 3000):
            piece = mp3_bytes[i : i + 3000]
            body += b"%x\r\n" % len(piece) + piece + b"\r\n"
        body += b"0\r\n\r\n"
        await stream.send(
            b"PUT /chunky HTTP/1.1\r\nHost: x\r\n"
            + auth()
            + b"Transfer-Encoding: chunked\r\nContent-Type: audio/mpeg\r\n\r\n"
            + bytes(body[:5000])
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.send(bytes(body[5000:]))
        rec = await h.next_source()
        await stream.aclose()
        assert bytes(rec.data) == mp3_bytes
        assert rec.info.mount == "/chunky"


async def test_put_content_length(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /len HTTP/1.1\r\nHost: x\r\n"
            + auth()
            + b"Content-Length: %d\r\n\r\n" % len(mp3_bytes)
            + mp3_bytes
            + b"extra bytes after the body are not audio"
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        rec = await h.next_source()
        await stream.aclose()
        assert bytes(rec.data) == mp3_bytes


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"ICE/1.0"])
async def test_legacy_source(mp3_bytes: bytes, version: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"SOURCE /legacy " + version + b"\r\n" + auth() + b"content-type: audio/mpeg\r\n"
            b"icy-name: Old School\r\nicy-genre: Rock\r\nicy-pub: 1\r\nicy-br: 96\r\n\r\n"
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.send(mp3_bytes)
        await stream.aclose()  # libshout style: the stream ends when the socket closes
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.mount, rec.info.name, rec.info.genre) == ("/legacy", "Old School", "Rock")
        assert rec.info.public is True
        assert rec.info.bitrate == 96


async def test_legacy_source_that_does_not_wait_gets_no_answer(mp3_bytes: bytes) -> None:
    """ffmpeg -legacy_icecast style: audio right after the head, never reads an answer."""
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(b"SOURCE /eager HTTP/1.1\r\nHost: x\r\n" + auth() + b"\r\n")
        await stream.send(mp3_bytes[:5000])
        await stream.send(mp3_bytes[5000:])
        await stream.send_eof()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert await read_all(stream) == b""
        await stream.aclose()


@pytest.mark.parametrize(
    "credentials",
    [auth(password="wrong"), auth(user="source", password=""), b"", b"Authorization: Basic !!\r\n"],
    ids=["wrong", "empty", "missing", "garbled"],
)
async def test_wrong_password(credentials: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /live HTTP/1.1\r\nHost: x\r\n" + credentials + b"Expect: 100-continue\r\n\r\n"
        )
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 401 Unauthorized\r\n")
        assert b'WWW-Authenticate: Basic realm="Icecast2 Server"\r\n' in response
        assert b"100 Continue" not in response
        assert h.server is not None
        # no credentials at all is libshout's first try: counted apart, logged at info
        failures = h.server.stats.auth_failures + h.server.stats.challenges
        assert failures == 1
        assert h.server.stats.challenges == (credentials == b"")
        assert h.server.stats.sources == 0
        assert h.started_sources == []


async def test_wrong_password_with_body_still_gets_401(mp3_bytes: bytes) -> None:
    """The client already sent audio: the 401 must reach it anyway (no reset before it)."""
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(b"SOURCE /live HTTP/1.0\r\n" + auth(password="no") + b"\r\n" + mp3_bytes)
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 401 Unauthorized\r\n")
        assert h.started_sources == []


async def test_mount_in_use() -> None:
    async with running_server() as h:
        first = await h.connect()
        await first.send(b"SOURCE /hold HTTP/1.0\r\n" + auth() + b"\r\n")
        assert await read_until(first, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        with anyio.fail_after(TIMEOUT):
            await h.source_started.wait()
        second = await h.connect()
        await second.send(b"PUT /hold HTTP/1.1\r\nHost: x\r\n" + auth() + b"\r\n")
        response = await read_all(second)
        await second.aclose()
        assert response.startswith(b"HTTP/1.0 403 Forbidden\r\n")
        assert b"Mountpoint in use" in response
        assert h.server is not None and h.server.stats.mount_in_use == 1
        # Once the first source is done, the mount is free again.
        h.release.set()
        await h.next_source()
        await first.aclose()
        assert not h.server.active_mounts
        third = await h.connect()
        await third.send(b"PUT /hold HTTP/1.1\r\nHost: x\r\n" + auth() + b"\r\n")
        assert await read_until(third, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await third.aclose()


async def test_disconnect_mid_chunked_body_ends_quietly(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /cut HTTP/1.1\r\nHost: x\r\n"
            + auth()
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % 4000
            + mp3_bytes[:1500]  # the chunk is cut short by the hang-up
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes[:1500]
        assert h.server is not None and h.server.stats.errors == 0


async def test_source_timeout_ends_stream() -> None:
    async with running_server(source_timeout=0.2) as h:
        stream = await h.connect()
        await stream.send(b"SOURCE /quiet HTTP/1.0\r\n" + auth() + b"\r\nabc")
        rec = await h.next_source()
        assert bytes(rec.data) == b"abc"
        await stream.aclose()


async def test_metadata_update() -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"GET /admin/metadata?mode=updinfo&mount=/live&song=Artist%20-%20Caf%C3%A9+Song"
            b" HTTP/1.0\r\n" + auth() + b"User-Agent: libshout/2.4.6\r\n\r\n"
        )
        response = await read_all(stream)
        await stream.aclose()
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK\r\n")
        assert b"Content-Type: text/xml" in head
        assert body.decode() == METADATA_OK
        assert h.titles == [("/live", "Artist - Café Song")]

        # admin user, latin-1 charset and HTTP/1.1 without Host
        stream = await h.connect()
        await stream.send(
            b"GET /admin/metadata?mode=updinfo&mount=/x&song=Caf%E9&charset=ISO-8859-1 HTTP/1.1"
            b"\r\n" + auth(user="admin") + b"\r\n"
        )
        assert (await read_all(stream)).startswith(b"HTTP/1.0 200 OK\r\n")
        await stream.aclose()
        assert h.titles[-1] == ("/x", "Café")


async def test_metadata_update_needs_auth() -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"GET /admin/metadata?mode=updinfo&mount=/live&song=x HTTP/1.0\r\n"
            + auth(password="bad")
            + b"\r\n"
        )
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 401 Unauthorized\r\n")
        assert b'WWW-Authenticate: Basic realm="Icecast2 Server"' in response
        assert h.titles == []


async def test_other_get_is_404() -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await read_all(stream)
        await stream.aclose()
        assert response.startswith(b"HTTP/1.0 404 Not Found\r\n")
        assert h.server is not None and h.server.stats.not_found == 1


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)),  # a TLS hello
        b"hello there\r\n\r\n",
        b"PUT /x HTTP/9.9 extra\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nbad header line\r\n\r\n",
        b"A" * 40000,
        b"",
    ],
    ids=["tls", "words", "version", "header", "huge", "empty"],
)
async def test_garbage_is_dropped_quietly(garbage: bytes, mp3_bytes: bytes) -> None:
    async with running_server(head_timeout=1.0) as h:
        stream = await h.connect()
        try:
            await stream.send(garbage)
            await stream.send_eof()
            await read_all(stream)
        finally:
            await stream.aclose()
        assert h.server is not None
        # The listener survives and still accepts a source.
        ok = await h.connect()
        await ok.send(b"SOURCE /after HTTP/1.0\r\n" + auth() + b"\r\n" + mp3_bytes[:100])
        await ok.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes[:100]
        stats = h.server.stats
        assert stats.bad_requests + stats.not_found + stats.probes >= 1
        assert stats.errors == 0


async def test_on_source_raising_does_not_kill_listener(mp3_bytes: bytes) -> None:
    async with running_server() as h:
        calls = 0
        original = h.on_source

        async def boom(conn: SourceConnection) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("node said no")
            await original(conn)

        assert h.server is not None
        h.server.ctx.on_source = boom
        for _ in range(2):
            stream = await h.connect()
            await stream.send(b"SOURCE /x HTTP/1.0\r\n" + auth() + b"\r\n" + mp3_bytes[:10])
            await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes[:10]
        assert h.server.stats.errors == 1


def test_source_info_from_headers_audio_info_bitrate() -> None:
    info = source_info_from_headers(
        "/m", {"ice-audio-info": "samplerate=48000;bitrate=192;channels=2", "icy-url": "u"}
    )
    assert info.bitrate == 192
    assert info.url == "u"
    assert info.extra == {"ice-audio-info": "samplerate=48000;bitrate=192;channels=2"}


async def test_plugin_hook_and_port_zero() -> None:
    specs = plugin.streamerp2p_ingest_servers()
    assert [s.name for s in specs] == ["icecast"]
    spec = specs[0]
    assert spec.default_port == 8000
    started: list[tuple[str, int]] = []
    ready = anyio.Event()

    def on_started(host: str, port: int) -> None:
        started.append((host, port))
        ready.set()

    async def on_source(conn: SourceConnection) -> None:
        pass

    ctx = IngestContext(
        host="127.0.0.1",
        port=0,
        check_password=lambda u, p: True,
        on_source=on_source,
        on_title=lambda m, t: None,
        started=on_started,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(spec.serve, ctx)
        with anyio.fail_after(TIMEOUT):
            await ready.wait()
        host, port = started[0]
        assert host == "127.0.0.1" and port > 0
        stream = await anyio.connect_tcp(host, port)
        await stream.aclose()
        tg.cancel_scope.cancel()


# --------------------------------------------------------------------------------------------
# Real ffmpeg as the broadcast tool
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("legacy", [False, True], ids=["put", "source"])
async def test_ffmpeg_source(mp3_bytes: bytes, tmp_path: Path, legacy: bool) -> None:
    ffmpeg = need_tool("ffmpeg")
    path = tmp_path / "in.mp3"
    path.write_bytes(mp3_bytes)
    # A generous answer_wait keeps the legacy (SOURCE) case exact on a loaded machine: ffmpeg
    # then never gets an answer it would not read (see IcecastServer._answer).
    async with running_server(answer_wait=3.0) as h:
        args = [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning",
            "-i", str(path), "-c", "copy", "-f", "mp3",
            "-id3v2_version", "0", "-write_xing", "0",
            "-content_type", "audio/mpeg",
            "-ice_name", "FF Radio", "-ice_genre", "Test", "-ice_description", "from ffmpeg",
            "-ice_public", "1", "-user_agent", "ffmpeg-test",
        ]  # fmt: skip
        if legacy:
            args += ["-legacy_icecast", "1"]
        args.append(f"icecast://source:{PASSWORD}@127.0.0.1:{h.port}/live")
        log = tmp_path / "ffmpeg.log"
        with log.open("wb") as err:
            process = await anyio.open_process(args, stdout=subprocess.DEVNULL, stderr=err)
        try:
            rec = await h.next_source()
            with anyio.fail_after(TIMEOUT):
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
            await process.aclose()
        stderr = log.read_bytes()
        assert code == 0, stderr.decode(errors="replace")
        assert len(rec.data) == len(mp3_bytes), stderr.decode(errors="replace")
        assert bytes(rec.data) == mp3_bytes
        assert rec.info.mount == "/live"
        assert rec.info.content_type == "audio/mpeg"
        assert rec.info.name == "FF Radio"
        assert rec.info.genre == "Test"
        assert rec.info.description == "from ffmpeg"
        assert rec.info.user_agent == "ffmpeg-test"


# --------------------------------------------------------------------------------------------
# Replayed client dialects (bytes captured from each client, or read in its source code)
# --------------------------------------------------------------------------------------------

LIBSHOUT_HEADERS = (
    b"Host: 127.0.0.1:8000\r\nUser-Agent: libshout/2.4.6\r\nContent-Type: audio/mpeg\r\n"
)
LIBSHOUT_ICE = (
    b"ice-public: 1\r\nice-name: EZ Radio\r\nice-url: http://ez.example/\r\n"
    b"ice-genre: Ambient\r\nice-description: from ezstream\r\n"
    b"ice-audio-info: bitrate=128;samplerate=44100;channels=2\r\nPrefer: return=minimal\r\n\r\n"
)


async def test_libshout_http_dialect(mp3_bytes: bytes) -> None:
    """libshout 2.4.6 (ezstream, ices, Mixxx's libshout-idjc), as captured from ezstream.

    1. ``OPTIONS *`` asking to upgrade to TLS; 2. ``SOURCE`` without credentials and with
    ``Content-Length: 0``, ``Connection: Keep-Alive`` (it wants the 401 and the server's
    ``Allow``); 3. the real ``SOURCE`` with Basic auth; titles: the same two-step for
    ``GET /admin/metadata`` with ``artist`` and ``title``.
    """
    async with running_server() as h:
        options = await h.connect()
        await options.send(
            b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: libshout/2.4.6\r\n"
            b"Connection: Upgrade\r\nUpgrade: TLS/1.0, HTTP/1.1\r\n\r\n"
        )
        response = await read_all(options)
        await options.aclose()
        # anything but silence (libshout would then try TLS): 405 makes it go on in plain text
        assert response.startswith(b"HTTP/1.0 405 ")

        challenge = await h.connect()
        await challenge.send(
            b"SOURCE /ez.mp3 HTTP/1.0\r\n"
            + LIBSHOUT_HEADERS
            + b"Content-Length: 0\r\nConnection: Keep-Alive\r\n"
            + LIBSHOUT_ICE
        )
        response = await read_all(challenge)
        await challenge.aclose()
        assert response.startswith(b"HTTP/1.0 401 Unauthorized\r\n")
        assert b"Connection: close\r\n" in response  # so libshout reconnects for step 3

        stream = await h.connect()
        await stream.send(b"SOURCE /ez.mp3 HTTP/1.0\r\n" + auth() + LIBSHOUT_HEADERS + LIBSHOUT_ICE)
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.send(mp3_bytes)

        query = (
            b"GET /admin/metadata?mode=updinfo&mount=%2fez%2emp3&charset=UTF%2d8"
            b"&artist=Test%20Artist&title=Test%20Title HTTP/1.1\r\n"
            b"Host: 127.0.0.1:8000\r\nUser-Agent: libshout/2.4.6\r\n"
        )
        for credentials in (b"", auth()):
            meta = await h.connect()
            await meta.send(query + credentials + b"\r\n")
            response = await read_all(meta)
            await meta.aclose()
            assert response.startswith(
                b"HTTP/1.0 200 OK\r\n" if credentials else b"HTTP/1.0 401 Unauthorized\r\n"
            )
        assert h.titles == [("/ez.mp3", "Test Artist - Test Title")]

        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.name, rec.info.genre, rec.info.bitrate) == ("EZ Radio", "Ambient", 128)
        assert rec.info.user_agent == "libshout/2.4.6"
        assert h.server is not None
        stats = h.server.stats
        assert (stats.probes, stats.challenges, stats.auth_failures) == (1, 2, 0)


async def test_darkice_icecast2_dialect(mp3_bytes: bytes) -> None:
    """darkice 1.3's own Icecast 2 connector (captured): LF-only header lines, CRLF at the end."""
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"SOURCE /dark.mp3 HTTP/1.0\nContent-type: audio/mpeg\n"
            + auth().replace(b"\r\n", b"\n")
            + b"User-Agent: DarkIce/1.3 (http://code.google.com/p/darkice/)\nice-bitrate: 128\n"
            b"ice-public: 0\nice-name: Dark Radio\nice-description: from darkice\n"
            b"ice-genre: Drone\r\n\r\n"
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.send(mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.content_type, rec.info.name, rec.info.bitrate) == (
            "audio/mpeg",
            "Dark Radio",
            128,
        )
        assert rec.info.public is False


async def test_darkice_icecast1_xaudiocast_dialect(mp3_bytes: bytes) -> None:
    """darkice [icecast-0] (Icecast 1, x-audiocast), captured: ``SOURCE password /mount`` with no
    protocol, ``x-audiocast-*`` lines; it wants ``OK`` (and knows Icecast 1's error lines)."""
    login = (
        b"SOURCE hackme /ice1.mp3\nx-audiocast-bitrate: 128\nx-audiocast-public: 1\n"
        b"x-audiocast-name: Ice One\nx-audiocast-description: from darkice\n"
        b"x-audiocast-url: http://ice1.example/\nx-audiocast-genre: Old\n\n"
    )
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(login)
        assert await read_until(stream, b"\r\n") == b"OK\r\n"
        await stream.send(mp3_bytes)
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        info = rec.info
        assert (info.mount, info.name, info.genre, info.url) == (
            "/ice1.mp3",
            "Ice One",
            "Old",
            "http://ice1.example/",
        )
        assert (info.description, info.bitrate, info.public) == ("from darkice", 128, True)

        wrong = await h.connect()
        await wrong.send(login.replace(b"hackme", b"nope") + mp3_bytes[:2000])
        assert await read_all(wrong) == b"ERROR - Bad Password\r\n"
        await wrong.aclose()
        assert h.server is not None and h.server.stats.auth_failures == 1
        assert len(h.started_sources) == 1


async def test_butt_icecast_dialect(mp3_bytes: bytes) -> None:
    """butt (icecast.cpp): PUT HTTP/1.1 with Expect: 100-continue and a raw body (no length,
    not chunked); titles by a GET /admin/metadata it closes without reading the answer."""
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /butt HTTP/1.1\r\n"
            + auth()
            + b"Host: 127.0.0.1:8000\r\nUser-Agent: butt 0.1.37\r\nContent-Type: audio/aac\r\n"
            b"ice-name: Butt FM\r\nice-public: 0\r\nice-url: http://butt.example/\r\n"
            b"ice-genre: Talk\r\nice-description: from butt\r\n"
            b"ice-audio-info: ice-bitrate=96;ice-channels=2;ice-samplerate=44100\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = await read_until(stream, b"\r\n\r\n")
        assert answer == b"HTTP/1.1 100 Continue\r\n\r\n"  # butt accepts 100 (and 200)
        await stream.send(mp3_bytes)

        title = await h.connect()
        await title.send(
            b"GET /admin/metadata?mode=updinfo&mount=/butt&song=Live%20%26%20Loud HTTP/1.0\r\n"
            b"User-Agent: butt 0.1.37\r\n" + auth() + b"Host: 127.0.0.1:8000\r\n\r\n"
        )
        await title.aclose()  # butt does not read the answer
        assert await h.next_title() == ("/butt", "Live & Loud")

        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.content_type, rec.info.bitrate) == ("audio/aac", 96)
        assert h.server is not None and h.server.stats.errors == 0


async def test_liquidsoap_cry_dialect(mp3_bytes: bytes) -> None:
    """liquidsoap 2.1 (ocaml-cry), captured: SOURCE HTTP/1.0 with no Host; titles by
    /admin/metadata with song, artist and title. The answer must be HTTP/1.0: cry starts
    chunking its body when the answer says HTTP/1.1."""
    headers = (
        b"ice-name: Liq Radio\r\n"
        + auth()
        + b"ice-description: from liquidsoap\r\nice-public: 1\r\n"
        b"User-Agent: Liquidsoap/2.1.3 (Unix; OCaml 4.13.1)\r\nice-genre: Synth\r\n"
        b"ice-audio-info: channels=2;samplerate=44100;bitrate=128\r\n"
    )
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"SOURCE /liq HTTP/1.0\r\n" + headers + b"Content-Type: audio/mpeg\r\n\r\n"
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.send(mp3_bytes)
        meta = await h.connect()
        await meta.send(
            b"GET /admin/metadata?mode=updinfo&mount=/liq&charset=UTF-8&title=Liq%20Title"
            b"&artist=Liq%20Artist&song=Liq%20Artist%20%2D%20Liq%20Title HTTP/1.0\r\n"
            + headers
            + b"\r\n"
        )
        assert (await read_all(meta)).startswith(b"HTTP/1.0 200 OK\r\n")
        await meta.aclose()
        assert h.titles == [("/liq", "Liq Artist - Liq Title")]
        await stream.aclose()
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes
        assert (rec.info.name, rec.info.bitrate, rec.info.public) == ("Liq Radio", 128, True)


@pytest.mark.parametrize(
    "content_type",
    ["audio/mpeg", "audio/ogg", "application/ogg", "audio/aac", "audio/aacp", "audio/opus"],
)
async def test_content_types_pass_through(content_type: str) -> None:
    async with running_server() as h:
        stream = await h.connect()
        await stream.send(
            b"PUT /ct HTTP/1.1\r\nHost: x\r\n"
            + auth()
            + f"Content-Type: {content_type}\r\n\r\n".encode()
            + b"\x00\x01data"
        )
        assert await read_until(stream, b"\r\n\r\n") == b"HTTP/1.0 200 OK\r\n\r\n"
        await stream.aclose()
        rec = await h.next_source()
        assert rec.info.content_type == content_type
        assert bytes(rec.data) == b"\x00\x01data"


async def test_probe_connections_are_quiet() -> None:
    """Tools and monitors that connect and close (or only send OPTIONS) are not errors."""
    async with running_server() as h:
        for _ in range(3):
            stream = await h.connect()
            await stream.aclose()
        assert h.server is not None
        with anyio.fail_after(TIMEOUT):
            while h.server.stats.probes < 3:
                await anyio.sleep(0.01)
        assert h.server.stats.bad_requests == 0
        assert h.server.stats.errors == 0


# --------------------------------------------------------------------------------------------
# More real tools: ffmpeg Ogg, ezstream, ices2, liquidsoap, darkice
# --------------------------------------------------------------------------------------------


async def run_tool(args: list[str], log: Path, timeout: float = 30) -> int:
    """Run a tool to completion (killed by PID on timeout or error); returns its exit code."""
    with log.open("wb") as out:
        process = await anyio.open_process(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        with anyio.fail_after(timeout):
            return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


def decodes(ffmpeg: str, data: bytes, tmp: Path, name: str) -> str:
    """ffmpeg's errors decoding ``data`` ("" when it decodes cleanly)."""
    path = tmp / name
    path.write_bytes(data)
    r = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return r.stderr.strip() if r.returncode == 0 else f"exit {r.returncode}: {r.stderr}"


@pytest.fixture(scope="module")
def vorbis_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 s of Ogg Vorbis, encoded once by ffmpeg (libvorbis)."""
    ffmpeg = require_tool("ffmpeg")
    path = tmp_path_factory.mktemp("ogg") / "tone.ogg"
    args = [ffmpeg, "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=f=440:d=1.5"]
    subprocess.run(
        [*args, "-c:a", "libvorbis", "-f", "ogg", str(path)],
        check=True,
        timeout=60,
    )
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("legacy", [False, True], ids=["put", "source"])
async def test_ffmpeg_ogg_vorbis(vorbis_file: Path, tmp_path: Path, legacy: bool) -> None:
    """ffmpeg -f ogg (Vorbis) over PUT and -legacy_icecast SOURCE: bytes, type and info intact.

    With -fflags +bitexact ffmpeg's Ogg muxer is deterministic, so the same command writing to
    a file gives the bytes ffmpeg sent.
    """
    ffmpeg = require_tool("ffmpeg")
    base = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "warning", "-i", str(vorbis_file)]
    base += ["-c", "copy", "-fflags", "+bitexact", "-f", "ogg"]
    reference = tmp_path / "ref.ogg"
    subprocess.run([*base, str(reference)], check=True, timeout=60)
    async with running_server(answer_wait=3.0) as h:
        args = [*base, "-content_type", "audio/ogg", "-ice_name", "Ogg Radio"]
        args += ["-ice_genre", "Vorbis", "-ice_public", "1"]
        if legacy:
            args += ["-legacy_icecast", "1"]
        args.append(f"icecast://source:{PASSWORD}@127.0.0.1:{h.port}/live.ogg")
        log = tmp_path / "ffmpeg.log"
        code = await run_tool(args, log)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
    assert bytes(rec.data) == reference.read_bytes(), output
    assert rec.data[:4] == b"OggS"
    assert rec.info.content_type == "audio/ogg"
    assert (rec.info.mount, rec.info.name, rec.info.genre) == ("/live.ogg", "Ogg Radio", "Vorbis")
    assert rec.info.public is True
    assert decodes(ffmpeg, bytes(rec.data), tmp_path, "got.ogg") == ""


METADATA_SCRIPT = """#!/bin/sh
case "$1" in
  artist) echo "Test Artist";;
  title) echo "Test Title";;
  "") echo "Test Artist - Test Title";;
  *) echo;;
esac
"""


def ezstream_config(tmp: Path, mp3: Path, protocol: str, port: int, password: str) -> Path:
    """An ezstream 1.x config streaming ``mp3`` once (its metadata program gives the title)."""
    script = tmp / "meta.sh"
    script.write_text(METADATA_SCRIPT)
    script.chmod(0o755)
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
  <metadata><program>{script}</program></metadata>
</ezstream>
"""
    )
    config.chmod(0o600)  # the file holds the password
    return config


@pytest.mark.e2e
async def test_ezstream_http(mp3_bytes: bytes, tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        config = ezstream_config(tmp_path, mp3, "HTTP", h.port, PASSWORD)
        log = tmp_path / "ezstream.log"
        code = await run_tool([ezstream, "-v", "-c", str(config)], log)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
        assert bytes(rec.data) == mp3_bytes, output
        assert rec.info.mount == "/ez.mp3"
        assert rec.info.content_type == "audio/mpeg"
        assert (rec.info.name, rec.info.genre, rec.info.description) == (
            "EZ Radio",
            "Ambient",
            "from ezstream",
        )
        assert rec.info.bitrate == 128
        assert ("/ez.mp3", "Test Artist - Test Title") in h.titles, output
        assert h.server is not None and h.server.stats.auth_failures == 0


@pytest.mark.e2e
async def test_ezstream_http_wrong_password(mp3_bytes: bytes, tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        config = ezstream_config(tmp_path, mp3, "HTTP", h.port, "wrong")
        log = tmp_path / "ezstream.log"
        code = await run_tool([ezstream, "-v", "-c", str(config)], log)
        assert code != 0, log.read_text(errors="replace")
        assert h.started_sources == []
        assert h.titles == []
        assert h.server is not None and h.server.stats.auth_failures >= 1


@pytest.mark.e2e
async def test_ices2_ogg(vorbis_file: Path, tmp_path: Path) -> None:
    """ices2 (libshout, HTTP) streaming an Ogg Vorbis file from a playlist, as is."""
    ices = require_tool("ices2")
    playlist = tmp_path / "list.txt"
    playlist.write_text(f"{vorbis_file}\n")
    async with running_server() as h:
        config = tmp_path / "ices.xml"
        config.write_text(
            f"""<?xml version="1.0"?>
<ices>
  <background>0</background><logpath>{tmp_path}</logpath><logfile>ices.log</logfile>
  <loglevel>3</loglevel><consolelog>1</consolelog>
  <stream>
    <metadata><name>Ices Radio</name><genre>Vorbis</genre>
      <description>from ices2</description></metadata>
    <input>
      <module>playlist</module>
      <param name="type">basic</param><param name="file">{playlist}</param>
      <param name="random">0</param><param name="once">1</param>
    </input>
    <instance>
      <hostname>127.0.0.1</hostname><port>{h.port}</port><password>{PASSWORD}</password>
      <mount>/ices.ogg</mount><reconnectdelay>1</reconnectdelay>
      <reconnectattempts>1</reconnectattempts>
    </instance>
  </stream>
</ices>
"""
        )
        log = tmp_path / "ices2.log"
        code = await run_tool([ices, str(config)], log)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
    assert bytes(rec.data) == vorbis_file.read_bytes(), output
    assert rec.info.content_type == "application/ogg"
    assert (rec.info.mount, rec.info.name, rec.info.genre) == ("/ices.ogg", "Ices Radio", "Vorbis")
    assert rec.info.description == "from ices2"
    assert rec.info.user_agent.startswith("IceS 2")


LIQUIDSOAP_SCRIPT = """
settings.log.stdout.set(true)
settings.log.file.set(false)
settings.init.allow_root.set(true)
s = once(single("annotate:artist=\\"Liq Artist\\",title=\\"Liq Title\\":{mp3}"))
output.icecast(%mp3(bitrate=128), host="127.0.0.1", port={port}, password="{password}",
  mount="/liq", name="Liq Radio", genre="Synth", description="from liquidsoap",
  {protocol}fallible=true, on_stop=shutdown, s)
"""


def liquidsoap_script(tmp: Path, mp3: Path, port: int, protocol: str = "") -> Path:
    script = tmp / "radio.liq"
    script.write_text(
        LIQUIDSOAP_SCRIPT.format(mp3=mp3, port=port, password=PASSWORD, protocol=protocol)
    )
    return script


@pytest.mark.e2e
@pytest.mark.parametrize(
    "options", ["", 'method="put", chunked=true, '], ids=["source", "put-chunked"]
)
async def test_liquidsoap_icecast(mp3_bytes: bytes, tmp_path: Path, options: str) -> None:
    """liquidsoap output.icecast (ocaml-cry): SOURCE with a raw body (the default), or PUT with a
    chunked body (``Host:`` left empty); encodes the file to mp3, sends a title."""
    liquidsoap = require_tool("liquidsoap")
    ffmpeg = require_tool("ffmpeg")
    mp3 = tmp_path / "in.mp3"
    mp3.write_bytes(mp3_bytes)
    async with running_server() as h:
        log = tmp_path / "liquidsoap.log"
        script = liquidsoap_script(tmp_path, mp3, h.port, options)
        code = await run_tool([liquidsoap, str(script)], log, 60)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
    assert len(rec.data) > 16000, output  # 1.5 s at 128 kbit/s, re-encoded
    assert decodes(ffmpeg, bytes(rec.data), tmp_path, "liq.mp3") == ""
    assert rec.info.content_type == "audio/mpeg"
    assert (rec.info.mount, rec.info.name, rec.info.genre) == ("/liq", "Liq Radio", "Synth")
    assert rec.info.user_agent.startswith("Liquidsoap/")
    assert ("/liq", "Liq Artist - Liq Title") in h.titles, output


@pytest.mark.e2e
@pytest.mark.parametrize("section", ["icecast2-0", "icecast-0"], ids=["icecast2", "icecast1"])
async def test_darkice(tmp_path: Path, section: str) -> None:
    """darkice 1.3 (its own connectors: Icecast 2 SOURCE, Icecast 1 x-audiocast) encoding 2 s
    from ALSA's null capture device."""
    darkice = require_tool("darkice")
    ffmpeg = require_tool("ffmpeg")
    async with running_server() as h:
        config = tmp_path / "darkice.cfg"
        config.write_text(
            f"""[general]
duration = 2
bufferSecs = 1
reconnect = no

[input]
device = null
sampleRate = 44100
bitsPerSample = 16
channel = 2

[{section}]
bitrateMode = cbr
format = mp3
bitrate = 128
quality = 0.5
server = 127.0.0.1
port = {h.port}
password = {PASSWORD}
mountPoint = dark.mp3
name = Dark Radio
description = from darkice
genre = Drone
public = no
"""
        )
        log = tmp_path / "darkice.log"
        code = await run_tool([darkice, "-c", str(config)], log)
        output = log.read_text(errors="replace")
        assert code == 0, output
        rec = await h.next_source()
    assert len(rec.data) > 16000, output
    assert decodes(ffmpeg, bytes(rec.data), tmp_path, "dark.mp3") == ""
    assert rec.info.mount == "/dark.mp3"
    assert (rec.info.name, rec.info.genre, rec.info.bitrate) == ("Dark Radio", "Drone", 128)
    assert rec.info.description == "from darkice"
    assert rec.info.public is False
    if section == "icecast2-0":
        assert rec.info.content_type == "audio/mpeg"
        assert rec.info.user_agent.startswith("DarkIce/")
    else:  # Icecast 1 sent neither: the node sniffs the format
        assert (rec.info.content_type, rec.info.user_agent) == ("", "")
