"""The internal decoder, its sinks and the recorder, on streams made here (no network)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import numpy as np
import pytest
import soundfile as sf
from streamerp2p import player
from streamerp2p.config import Config, ConfigError
from streamerp2p.hookspecs import hookimpl
from streamerp2p.output import StationOutput
from streamerp2p.player import (
    BytePipe,
    CannotDecode,
    NoSoundDevice,
    NullSink,
    SoundFileSink,
    StreamDecoder,
    decode_output,
    record_format,
)
from streamerp2p.plugins import load_plugins
from streamerp2p.testing import align, decode_pcm, noise_mp3, window_correlations
from streamerp2p.types import CodecSpec, StationMeta

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def noise() -> tuple[bytes, np.ndarray]:
    data = noise_mp3(6.0, seed=3)
    return data, decode_pcm(data)


async def chunks(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos : pos + n]
        pos += n
        i += 1
        await anyio.sleep(0)


async def test_decoder_starts_mid_stream_and_counts_corrupt_bytes(
    noise: tuple[bytes, np.ndarray],
) -> None:
    data, ref = noise
    # start inside a frame, odd read sizes, and a burst of junk in the middle
    cut = len(data) // 2
    stream = data[1001:cut] + bytes(range(256)) * 20 + data[cut:]
    sink = NullSink(keep=True)
    dec = StreamDecoder("mp3", sink)
    stats = await dec.run(chunks(stream, [7, 700, 1500, 33, 4096]))
    assert sink.closed and sink.rate == 44100 and sink.channels == 2
    assert stats.decode_errors >= 1  # the junk was dropped and counted, not fatal
    assert stats.bytes_in == len(stream)
    pcm = sink.pcm()
    assert stats.samples == len(pcm)
    # everything but the frames around the cut and the junk is the source, sample for sample
    assert len(pcm) > len(ref) - 10 * 1152
    head = pcm[: len(pcm) // 3]
    off = align(ref, head)
    assert 0 < off <= 6 * 1152 and off % 1152 == 0  # lost only the cut frames
    w = window_correlations(ref, head, off)
    assert len(w) > 5 and min(w[1:]) > 0.999, w
    tail = pcm[-len(pcm) // 3 :]
    off = align(ref, tail)
    w = window_correlations(ref, tail, off)
    shift = off - (len(pcm) - len(tail))  # samples of the source missing before the tail
    assert shift % 1152 == 0 and off + len(tail) <= len(ref) and min(w[1:]) > 0.999, w


async def test_gain_scales_the_output(noise: tuple[bytes, np.ndarray]) -> None:
    data, _ = noise
    full, half = NullSink(keep=True), NullSink(keep=True)
    await StreamDecoder("mp3", full).run(chunks(data, [4000]))
    await StreamDecoder("mp3", half, gain=0.5).run(chunks(data, [4000]))
    a, b = full.pcm(), half.pcm()
    assert a.shape == b.shape and np.abs(a).max() > 0.1
    np.testing.assert_allclose(b, a * 0.5, atol=1e-6)


async def test_garbage_stream_ends_cleanly() -> None:
    sink = NullSink()
    junk = np.random.default_rng(1).integers(0, 256, 50000, dtype=np.uint8).tobytes()
    stats = await StreamDecoder("mp3", sink).run(chunks(junk, [1000]))
    assert stats.bytes_in == len(junk)  # read to the end without raising


async def test_cancelled_player_stops_without_draining(noise: tuple[bytes, np.ndarray]) -> None:
    data, _ = noise

    class SlowSink(NullSink):
        def write(self, pcm: np.ndarray) -> None:
            super().write(pcm)
            anyio.from_thread.run_sync(started.set)
            stop.wait(5)

    import threading

    started, stop = anyio.Event(), threading.Event()
    sink = SlowSink()
    dec = StreamDecoder("mp3", sink)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: dec.run(chunks(data, [len(data)]), drain=False))
            await started.wait()
            tg.cancel_scope.cancel()
            stop.set()
    assert sink.closed and sink.samples < 44100  # did not play the rest of the 6 s


def test_pipe_drops_what_a_stuck_decoder_did_not_read() -> None:
    pipe = BytePipe(limit=10)
    pipe.write(b"abcdef")
    pipe.write(b"ghijkl")  # over the limit: the unread 6 bytes go
    assert pipe.dropped == 6
    assert pipe.read(4) == b"ghij" and pipe.read(100) == b"kl"
    pipe.close()
    assert pipe.read(10) == b"" and pipe.drained


# ---- codecs the internal decoder cannot play ------------------------------------------------


class Mp3Pro:
    @hookimpl
    def streamerp2p_codecs(self) -> list[CodecSpec]:
        return [
            CodecSpec(
                name="mp3pro",
                content_types=("audio/x-mp3pro",),
                extensions=(".mp3",),
                sniff=lambda head, ct: 0.0,
                framer=lambda: None,  # type: ignore[arg-type,return-value]
                passthrough=True,
                description="mp3PRO (SBR)",
            )
        ]


async def test_a_passthrough_codec_is_refused_plainly(noise: tuple[bytes, np.ndarray]) -> None:
    plugins = load_plugins()
    plugins.register(Mp3Pro(), "test", "mp3pro")
    out = StationOutput("x", StationMeta(codec="mp3pro", content_type="audio/x-mp3pro"))
    out.feed(noise[0][:5000], True)
    # (the real streamerp2p-mp3pro plugin, when installed, is loaded first and wins the name:
    # its description differs, the refusal is the same)
    with pytest.raises(CannotDecode, match=r"cannot decode mp3pro \(mp3PRO "):
        await decode_output(out, plugins, NullSink())
    assert out.listeners == 0
    # a codec no plugin knows
    out = StationOutput("y", StationMeta(content_type="audio/x-unknown"))
    out.feed(b"\x00" * 5000, True)
    with pytest.raises(CannotDecode, match="no codec plugin"):
        await decode_output(out, plugins, NullSink())


async def test_decode_output_uses_the_station_codec(noise: tuple[bytes, np.ndarray]) -> None:
    data, ref = noise
    out = StationOutput("x", StationMeta(codec="mp3"))
    sink = NullSink(keep=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(decode_output, out, load_plugins(), sink)
        await anyio.wait_all_tasks_blocked()
        for i in range(0, len(data), 4180):
            out.feed(data[i : i + 4180], i == 0)
            await anyio.sleep(0)
        out.end()
    assert sink.closed and abs(len(sink.pcm()) - len(ref)) <= 1152


# ---- sound device -----------------------------------------------------------------------------


def test_no_sounddevice_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(NoSoundDevice, match="sounddevice module is missing"):
        player.probe_sound_device()


def test_missing_portaudio_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what sounddevice raises when the PortAudio library is not installed
    (tmp_path / "sounddevice.py").write_text('raise OSError("PortAudio library not found")\n')
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(NoSoundDevice, match=r"PortAudio library not found.*libportaudio2"):
        player.SoundDeviceSink().open(44100, 2)


# ---- recordings -------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_recording_is_readable_while_written_and_complete_when_closed(
    tmp_path: Path, ext: str
) -> None:
    path = tmp_path / f"rec{ext}"
    rate = 44100
    t = np.arange(4 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    pcm = np.stack([tone, -tone], axis=1)
    opened: list[str] = []
    sink = SoundFileSink(path, on_open=opened.append)
    sink.open(rate, 2)
    for i in range(0, len(pcm), 1152):
        sink.write(pcm[i : i + 1152] * 2.5)  # over full scale: clipped, not wrapped
    # not closed (as if the node was killed now): a valid file with most of the audio
    with sf.SoundFile(path) as f:
        assert f.samplerate == rate and f.channels == 2
        got = f.read(dtype="float32")
    min_seconds = {".wav": 4.0, ".flac": 3.0, ".ogg": 1.5}[ext]
    assert len(got) >= min_seconds * rate - 1, len(got) / rate
    sink.close()
    got, sr = sf.read(path, dtype="float32")
    assert sr == rate and abs(len(got) - len(pcm)) < 1152
    clipped = np.clip(pcm * 2.5, -1, 1)
    n = min(len(got), len(pcm))
    if ext == ".ogg":  # lossy: compare the waveform, not the samples
        corr = np.dot(got[:n, 0], clipped[:n, 0]) / np.sqrt(
            np.dot(got[:n, 0], got[:n, 0]) * np.dot(clipped[:n, 0], clipped[:n, 0])
        )
        assert corr > 0.99
    else:
        np.testing.assert_allclose(got[:n], clipped[:n], atol=1.5 / 32768)
    assert opened and opened[0].startswith(sink.format)


def test_record_format_comes_from_the_extension() -> None:
    assert record_format(Path("a.WAV")) == ("WAV", "PCM_16")
    assert record_format(Path("a.flac")) == ("FLAC", "PCM_16")
    assert record_format(Path("a.ogg")) == ("OGG", "VORBIS")
    with pytest.raises(ValueError, match=r"'\.mp3'.*--dump"):
        record_format(Path("a.mp3"))


def test_player_options() -> None:
    c = Config()
    assert c.get("player.default") == "none" and c.get("player.volume") == 100
    c.set("player.default", "internal")
    c.set("player.volume", "40")
    assert c.get("player.volume") == 40
    for bad in ("101", "-1", "loud"):
        with pytest.raises(ConfigError):
            c.set("player.volume", bad)
    with pytest.raises(ConfigError, match="empty"):
        c.set("player.default", " ")


async def test_a_failing_sink_raises_its_own_error(noise: tuple[bytes, np.ndarray]) -> None:
    class NoDevice(NullSink):
        def open(self, rate: int, channels: int) -> None:
            raise NoSoundDevice("default (ALSA): Invalid sample rate")

    async def live() -> AsyncIterator[bytes]:
        yield noise[0]
        await anyio.sleep_forever()  # a live stream: the failure must end the reading

    with anyio.fail_after(10), pytest.raises(NoSoundDevice, match="Invalid sample rate"):
        await StreamDecoder("mp3", NoDevice()).run(live())


def test_codec_is_sniffed_before_the_default_content_type() -> None:
    class Oggish:
        @hookimpl
        def streamerp2p_codecs(self) -> list[CodecSpec]:
            return [
                CodecSpec(
                    name="oggish",
                    content_types=("audio/ogg",),
                    extensions=(".ogg",),
                    sniff=lambda head, ct: 0.9 if head.startswith(b"OggS") else 0.0,
                    framer=lambda: None,  # type: ignore[arg-type,return-value]
                    decoder_format="ogg",
                )
            ]

    plugins = load_plugins()
    plugins.register(Oggish(), "test", "oggish")
    meta = StationMeta()  # no record yet: content_type is only the default audio/mpeg
    assert player.pick_codec(plugins, meta, b"OggS\x00\x02" + bytes(100)).name == "oggish"
    assert player.pick_codec(plugins, meta, bytes(100)).name == "mp3"  # by content type
    named = StationMeta(codec="oggish", content_type="audio/mpeg")
    assert player.pick_codec(plugins, named, b"\xff\xfb").name == "oggish"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--record", "a.mp3"], "cannot record to '.mp3'"),
        (["--record", "a.wav", "--dump", "a.wav"], "a.wav is given twice"),
        (["--volume", "101"], "101 is not in the range"),
    ],
)
def test_listen_refuses_bad_output_options(tmp_path: Path, args: list[str], message: str) -> None:
    from click.testing import CliRunner
    from streamerp2p.cli import main

    link = "streamerp2p://y6bx2q2c7hjngzxsaqhsrjv6di?seed=127.0.0.1:1"
    r = CliRunner().invoke(main, ["--state-dir", str(tmp_path), "listen", link, *args])
    assert r.exit_code == 2 and message in r.output, r.output


def ogg_pages(data: bytes) -> list[tuple[bytes, int]]:
    """An Ogg stream's pages with their granule positions."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS"
        nseg = data[pos + 26]
        size = 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        pages.append((data[pos : pos + size], int.from_bytes(data[pos + 6 : pos + 14], "little")))
        pos += size
    return pages


async def test_ogg_vorbis_from_headers_then_mid_stream_pages() -> None:
    # what a late joiner of an Ogg Vorbis station gets: the header pages, then live pages
    import io

    rng = np.random.default_rng(2)
    pcm = (0.25 * rng.standard_normal((6 * 44100, 2))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, pcm, 44100, format="OGG", subtype="VORBIS")
    data = buf.getvalue()
    ref = decode_pcm(data, "ogg")
    pages = ogg_pages(data)
    headers = b"".join(p for p, granule in pages if granule == 0)
    live = b"".join(p for p, _ in pages[len(pages) // 2 :])
    sink = NullSink(keep=True)
    stats = await StreamDecoder("ogg", sink).run(chunks(headers + live, [1000]))
    got = sink.pcm()
    assert stats.decode_errors == 0 and 2 * 44100 < len(got) < len(ref)
    off = align(ref, got)
    w = window_correlations(ref, got, off)
    assert off + len(got) == len(ref) and min(w[1:]) > 0.999, w
