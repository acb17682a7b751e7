"""Tests of the player-facing HTTP output: raw-socket clients, ICY metadata, ffmpeg and mpv."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream
from streamerp2p import __version__
from streamerp2p.http_output import (
    HttpOutputServer,
    IcyInterleaver,
    icy_metadata_block,
    write_playlists,
)
from streamerp2p.output import StationOutput
from streamerp2p.testing import require_tool
from streamerp2p.tone import ToneSource
from streamerp2p.types import StationMeta

pytestmark = pytest.mark.anyio

TIMEOUT = 10
META = StationMeta(
    name="Test FM",
    genre="Jazz",
    description="A test station",
    url="http://example.org/",
    content_type="audio/mpeg",
    codec="mp3",
    bitrate=128,
    sample_rate=44100,
    channels=2,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need_tool(name: str) -> str:
    return require_tool(name)


def make_mp3_frames(seconds: float = 3.0) -> list[bytes]:
    """MP3 frames (one per packet, header included) of the project's generated tone.

    Their concatenation is a valid mp3 file without ID3 tag or Xing header.
    """
    return list(ToneSource().frames(round(seconds * 44100 / 1152)))


@pytest.fixture(scope="module")
def mp3_frames() -> list[bytes]:
    return make_mp3_frames()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@asynccontextmanager
async def running(server: HttpOutputServer) -> AsyncIterator[HttpOutputServer]:
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(TIMEOUT):
            port = await tg.start(server.serve)
        assert port == server.port > 0
        yield server
        tg.cancel_scope.cancel()


async def wait_until(condition: Callable[[], bool]) -> None:
    """For states with no event to wait on (server-side effects of a socket closing)."""
    with anyio.fail_after(TIMEOUT):
        while not condition():
            await anyio.sleep(0.005)


class Client:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    @classmethod
    async def connect(cls, server: HttpOutputServer) -> Client:
        return cls(await anyio.connect_tcp("127.0.0.1", server.port))

    async def _fill(self) -> bool:
        try:
            self.buf += await self.stream.receive()
            return True
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            return False

    async def head(self) -> tuple[str, dict[str, str]]:
        with anyio.fail_after(TIMEOUT):
            while b"\r\n\r\n" not in self.buf:
                assert await self._fill(), f"connection closed: {bytes(self.buf)!r}"
        raw, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        status, *lines = raw.decode("utf-8").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def exactly(self, size: int) -> bytes:
        with anyio.fail_after(TIMEOUT):
            while len(self.buf) < size:
                assert await self._fill(), "connection closed early"
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    async def rest(self) -> bytes:
        with anyio.fail_after(TIMEOUT):
            while await self._fill():
                pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    async def icy_block(self) -> bytes:
        """One ICY metadata block's text (b"" for the single zero byte)."""
        (length,) = await self.exactly(1)
        return (await self.exactly(length * 16)).rstrip(b"\0")

    async def aclose(self) -> None:
        await self.stream.aclose()


async def get(server: HttpOutputServer, request: bytes) -> tuple[str, dict[str, str], bytes]:
    client = await Client.connect(server)
    try:
        await client.stream.send(request)
        status, headers = await client.head()
        return status, headers, await client.rest()
    finally:
        await client.aclose()


def make_server(*outputs: StationOutput, **kwargs: int) -> HttpOutputServer:
    server = HttpOutputServer("127.0.0.1", 0, **kwargs)
    for output in outputs:
        server.add(output)
    return server


# --------------------------------------------------------------------------------------------
# ICY metadata framing (pure)
# --------------------------------------------------------------------------------------------


def test_icy_metadata_block_format() -> None:
    block = icy_metadata_block("Artist - Song", "http://x/")
    text = b"StreamTitle='Artist - Song';StreamUrl='http://x/';"
    assert block[0] == math.ceil(len(text) / 16)
    assert len(block) == 1 + block[0] * 16
    assert block[1:].rstrip(b"\0") == text
    assert icy_metadata_block("")[1:].rstrip(b"\0") == b"StreamTitle='';"


def test_icy_metadata_block_quotes_controls_and_length() -> None:
    block = icy_metadata_block("Don't stop';evil\r\nline", "")
    assert block[1:].rstrip(b"\0") == b"StreamTitle='Don't stop' ;evil  line';"
    huge = icy_metadata_block("é" * 5000, "http://u/")
    assert huge[0] == 255 and len(huge) == 1 + 255 * 16
    text = huge[1:].rstrip(b"\0").decode("utf-8")  # never cut inside a character
    assert text.startswith("StreamTitle='éé") and text.endswith("';StreamUrl='http://u/';")


def test_interleaver_inserts_blocks_at_metaint() -> None:
    title = ["A"]
    icy = IcyInterleaver(10, lambda: (title[0], ""))
    out = icy.process(b"0123456") + icy.process(b"789abcdefghij") + icy.process(b"klmnopqrst")
    block_a = icy_metadata_block("A")
    assert out == b"0123456789" + block_a + b"abcdefghij" + b"\0" + b"klmnopqrst" + b"\0"
    title[0] = "B"
    assert icy.process(b"x" * 10) == b"x" * 10 + icy_metadata_block("B")
    assert icy.process(b"y" * 25) == b"y" * 10 + b"\0" + b"y" * 10 + b"\0" + b"y" * 5


# --------------------------------------------------------------------------------------------
# Raw-socket clients
# --------------------------------------------------------------------------------------------


async def test_icy_stream_with_title_changes() -> None:
    out = StationOutput("abc", META)
    out.set_title("One")
    async with running(make_server(out)) as server:
        client = await Client.connect(server)
        await client.stream.send(
            b"GET /stream/abc HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\nRange: bytes=0-\r\n\r\n"
        )
        status, headers = await client.head()
        assert status == "HTTP/1.0 200 OK"
        assert headers["content-type"] == "audio/mpeg"
        assert headers["icy-metaint"] == "16000"
        assert headers["icy-name"] == "Test FM"
        assert headers["icy-genre"] == "Jazz"
        assert headers["icy-url"] == "http://example.org/"
        assert headers["icy-description"] == "A test station"
        assert headers["icy-br"] == "128"
        assert headers["icy-sr"] == "44100"
        assert headers["icy-pub"] == "1"
        assert headers["icy-audio-info"] == "ice-samplerate=44100;ice-bitrate=128;ice-channels=2"
        assert headers["cache-control"].startswith("no-cache")
        assert headers["server"] == f"StreamerP2P/{__version__}"
        assert headers["connection"] == "close"
        assert "transfer-encoding" not in headers and "content-length" not in headers
        assert out.listeners == 1

        audio = bytes(range(256)) * 200  # 51200 bytes
        out.feed(audio[:20000], True)
        assert await client.exactly(16000) == audio[:16000]
        assert await client.icy_block() == b"StreamTitle='One';StreamUrl='http://example.org/';"
        assert await client.exactly(4000) == audio[16000:20000]
        out.feed(audio[20000:32000], False)
        assert await client.exactly(12000) == audio[20000:32000]
        assert await client.icy_block() == b""  # unchanged title: a single zero byte
        out.set_title("Two")
        out.feed(audio[32000:], False)
        assert await client.exactly(16000) == audio[32000:48000]
        assert await client.icy_block() == b"StreamTitle='Two';StreamUrl='http://example.org/';"
        out.end()
        assert await client.rest() == audio[48000:]
        await client.aclose()
        await wait_until(lambda: out.listeners == 0)
        assert server.stats.errors == 0


@pytest.mark.parametrize(
    ("request_line", "path"),
    [
        (b"GET /stream/abc HTTP/1.0\r\n", "plain 1.0"),
        (b"GET /stream/abc.mp3 HTTP/1.1\r\nHost: 127.0.0.1\r\n", "ext 1.1"),
        (b"GET /stream/abc HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n", "keep-alive"),
    ],
    ids=["http10", "http11-ext", "keep-alive"],
)
async def test_plain_stream_without_metadata(request_line: bytes, path: str) -> None:
    out = StationOutput("abc", META)
    out.set_headers(b"HEAD-BYTES")
    out.feed(b"burst-", True)
    async with running(make_server(out)) as server:
        client = await Client.connect(server)
        await client.stream.send(request_line + b"User-Agent: test\r\n\r\n")
        status, headers = await client.head()
        assert status == "HTTP/1.0 200 OK", path
        assert "icy-metaint" not in headers
        out.feed(b"live", False)
        out.end()
        assert await client.rest() == b"HEAD-BYTES" + b"burst-live"
        await client.aclose()


async def test_head_request_gets_headers_only() -> None:
    out = StationOutput("abc", META)
    out.feed(b"x" * 100, True)
    async with running(make_server(out)) as server:
        status, headers, body = await get(
            server, b"HEAD /stream/abc HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n"
        )
        assert status == "HTTP/1.0 200 OK"
        assert headers["icy-metaint"] == "16000"
        assert body == b""
        assert out.listeners == 0


async def test_unknown_station_and_bad_requests() -> None:
    out = StationOutput("abc", META)
    async with running(make_server(out)) as server:
        status, _, _ = await get(server, b"GET /stream/nope HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 404 Not Found"
        status, _, _ = await get(server, b"GET /nope.pls HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 404 Not Found"
        status, _, _ = await get(server, b"GET /elsewhere HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 404 Not Found"
        status, _, _ = await get(server, b"POST /stream/abc HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 405 Method Not Allowed"
        status, _, _ = await get(server, b"\x16\x03\x01garbage\r\n\r\n")
        assert status == "HTTP/1.0 400 Bad Request"
        status, _, _ = await get(server, b"GET /stream/abc HTTP/1.1\r\n\r\n")  # no Host
        assert status == "HTTP/1.0 400 Bad Request"
        assert server.stats.not_found == 3
        assert server.stats.bad_requests == 2
        assert server.stats.errors == 0


async def test_playlists_and_index() -> None:
    out = StationOutput("abc", META)
    out.set_title("Now")
    other = StationOutput("ogg1", StationMeta(name="", content_type="application/ogg"))
    async with running(make_server(out, other)) as server:
        assert server.url("abc") == f"http://127.0.0.1:{server.port}/stream/abc.mp3"
        assert server.url("ogg1").endswith("/stream/ogg1.ogg")

        status, headers, body = await get(server, b"GET /abc.pls HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 200 OK"
        assert headers["content-type"] == "audio/x-scpls"
        assert body.decode() == (
            f"[playlist]\nNumberOfEntries=1\nFile1={server.url('abc')}\nTitle1=Test FM\n"
            "Length1=-1\nVersion=2\n"
        )
        # The playlist points at the host the player used.
        status, headers, body = await get(
            server, b"GET /abc.m3u HTTP/1.1\r\nHost: radio.lan:8765\r\n\r\n"
        )
        assert headers["content-type"] == "audio/x-mpegurl"
        assert body.decode() == (
            "#EXTM3U\n#EXTINF:-1,Test FM\nhttp://radio.lan:8765/stream/abc.mp3\n"
        )
        status, headers, body = await get(server, b"GET / HTTP/1.0\r\n\r\n")
        assert headers["content-type"] == "application/json"
        index = json.loads(body)
        assert [(s["station_id"], s["name"], s["url"]) for s in index] == [
            ("abc", "Test FM", server.url("abc")),
            ("ogg1", "", server.url("ogg1")),
        ]
        assert index[0]["title"] == "Now"


def test_write_playlists(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8001/stream/abc.mp3"
    pls, m3u = write_playlists(tmp_path / "lists", "abc", "Test\nFM", url)
    assert pls.read_text() == (
        f"[playlist]\nNumberOfEntries=1\nFile1={url}\nTitle1=Test FM\nLength1=-1\nVersion=2\n"
    )
    assert m3u.read_text() == f"#EXTM3U\n#EXTINF:-1,Test FM\n{url}\n"
    # Rewriting replaces the files and leaves no temporary files behind.
    write_playlists(tmp_path / "lists", "abc", "Other", url)
    assert "Title1=Other" in pls.read_text()
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == ["abc.m3u", "abc.pls"]
    with pytest.raises(ValueError):
        write_playlists(tmp_path, "../evil", "x", url)


async def test_client_disconnect_while_waiting_and_remove() -> None:
    out = StationOutput("abc", META)
    async with running(make_server(out)) as server:
        client = await Client.connect(server)
        await client.stream.send(b"GET /stream/abc HTTP/1.0\r\n\r\n")
        await client.head()
        assert out.listeners == 1
        await client.aclose()  # no audio flows: the server must still notice
        await wait_until(lambda: out.listeners == 0)

        client = await Client.connect(server)
        await client.stream.send(b"GET /stream/abc HTTP/1.0\r\n\r\n")
        await client.head()
        out.feed(b"abc", True)
        assert await client.exactly(3) == b"abc"
        server.remove("abc")  # players of a removed station are disconnected
        assert await client.rest() == b""
        await client.aclose()
        assert out.listeners == 0
        status, _, _ = await get(server, b"GET /stream/abc HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 404 Not Found"
        assert server.stats.errors == 0


async def test_slow_client_does_not_block_others() -> None:
    out = StationOutput("abc", META, burst_bytes=16384, buffer_bytes=65536)
    segment = 8192
    total = 8 << 20  # far more than the socket buffers of the client that never reads
    async with running(make_server(out, send_timeout=TIMEOUT)) as server:
        stalled = await Client.connect(server)
        await stalled.stream.send(b"GET /stream/abc HTTP/1.0\r\n\r\n")
        await stalled.head()
        good = await Client.connect(server)
        await good.stream.send(b"GET /stream/abc HTTP/1.0\r\n\r\n")
        await good.head()
        received = 0
        for i in range(total // segment):
            out.feed(bytes([i % 256]) * segment, True)
            # Lockstep with the good client only; the stalled one never reads.
            expected = bytes([i % 256]) * segment
            assert await good.exactly(segment) == expected
            received += segment
        assert received == total
        assert out.buffered_bytes <= 65536  # memory stays bounded whatever the stalled one does
        # When the stalled player reads again it gets what its socket held, then skips to the
        # newest audio instead of everything it missed.
        out.end()
        got = await stalled.rest()
        assert len(got) < total
        assert got.endswith(bytes([(total // segment - 1) % 256]) * segment)
        assert out.stats.lag_skips == 1
        await stalled.aclose()
        await good.aclose()
        await wait_until(lambda: out.listeners == 0)
        assert server.stats.errors == 0


# --------------------------------------------------------------------------------------------
# Real players
# --------------------------------------------------------------------------------------------


async def run_tool(args: list[str], log: Path) -> int:
    """Run a tool to completion (killed by PID on timeout or failure), stderr to ``log``."""
    with log.open("wb") as err:
        process = await anyio.open_process(
            args, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT
        )
    try:
        with anyio.fail_after(TIMEOUT):
            return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


@pytest.mark.e2e
async def test_ffmpeg_reads_stream(mp3_frames: list[bytes], tmp_path: Path) -> None:
    ffmpeg = need_tool("ffmpeg")
    data = b"".join(mp3_frames)
    out = StationOutput("abc", META, burst_bytes=1 << 20)
    out.set_title("Artist - It's a Song")
    for frame in mp3_frames:
        out.feed(frame, True)
    out.end()  # a player arriving now gets all of it, then the end
    async with running(make_server(out)) as server:
        url = server.url("abc")
        # Decoding: no error at all.
        log = tmp_path / "decode.log"
        args = [ffmpeg, "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"]
        code = await run_tool(args, log)
        # The only message allowed: ffmpeg's note that a stream of unknown length ended.
        noise = ("Stream ends prematurely", "Input/output error")
        lines = log.read_text().splitlines()
        errors = [ln for ln in lines if ln and not any(n in ln for n in noise)]
        assert code == 0 and errors == [], log.read_text()
        # Copying: ffmpeg strips the ICY blocks, keeps every audio byte, reports the title.
        log = tmp_path / "copy.log"
        copy = tmp_path / "copy.mp3"
        args = [ffmpeg, "-nostdin", "-hide_banner", "-i", url, "-c", "copy", "-f", "mp3",
                "-id3v2_version", "0", "-write_xing", "0", "-y", str(copy)]  # fmt: skip
        code = await run_tool(args, log)
        text = log.read_text()
        assert code == 0, text
        assert "StreamTitle     : Artist - It's a Song" in text
        assert "icy-name        : Test FM" in text
        assert copy.read_bytes() == data
        assert server.stats.errors == 0


@pytest.mark.e2e
async def test_ffmpeg_reads_live_stream(mp3_frames: list[bytes], tmp_path: Path) -> None:
    """Not ended: ffmpeg stops after 1 s of audio taken from the burst."""
    ffmpeg = need_tool("ffmpeg")
    out = StationOutput("abc", META)
    out.set_title("Live Title")
    for frame in mp3_frames:
        out.feed(frame, True)
    async with running(make_server(out)) as server:
        log = tmp_path / "live.log"
        args = [ffmpeg, "-nostdin", "-hide_banner", "-i", server.url("abc"), "-t", "1",
                "-f", "null", "-"]  # fmt: skip
        code = await run_tool(args, log)
        text = log.read_text()
        assert code == 0, text
        assert "StreamTitle     : Live Title" in text
        await wait_until(lambda: out.listeners == 0)


@pytest.mark.e2e
async def test_mpv_plays_stream_and_shows_title(mp3_frames: list[bytes], tmp_path: Path) -> None:
    mpv = require_tool("mpv")
    out = StationOutput("abc", META)
    out.set_title("Artist - Mpv Song")
    for frame in mp3_frames:
        out.feed(frame, True)
    # mpv shows a title when playback reaches its position in the stream: a small metaint
    # puts the first block 0.125 s in, so half a second of real-time playback is enough.
    async with running(make_server(out, metaint=2000)) as server:
        log = tmp_path / "mpv.log"
        args = [mpv, "--no-config", "--ao=null", "--vo=null", "--length=0.5",
                "--msg-level=all=warn,display-tags=v", server.url("abc")]  # fmt: skip
        code = await run_tool(args, log)
        text = log.read_text(errors="replace")
        assert code == 0, text
        assert "icy-title: Artist - Mpv Song" in text


async def test_the_stream_url_has_no_extension_until_the_codec_is_known() -> None:
    # tuned from a link, before the station's record came: the codec is a guess (mp3)
    out = StationOutput("ogg2", StationMeta(name="Link name"), meta_known=False)
    async with running(make_server(out)) as server:
        assert server.url("ogg2") == f"http://127.0.0.1:{server.port}/stream/ogg2"
        out.feed(b"OggS" + bytes(60), True)
        status, _, _ = await get(server, b"HEAD /stream/ogg2 HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 200 OK"
        out.set_meta(StationMeta(name="Ogg FM", content_type="application/ogg"))
        assert server.url("ogg2").endswith("/stream/ogg2.ogg")
        status, headers, _ = await get(server, b"HEAD /stream/ogg2.ogg HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.0 200 OK" and headers["content-type"] == "application/ogg"
