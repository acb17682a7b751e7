"""The conformance suite every codec plugin runs, and the encoded fixtures it runs on.

A codec plugin's tests subclass :class:`CodecConformance`, name their CodecSpec and their
fixtures, and get the shared checks::

    from streamerp2p.codec_conformance import CodecConformance

    class TestConformance(CodecConformance):
        codec = plugin.streamerp2p_codecs()[0]
        fixtures = ("aac",)  # kinds of :func:`fixture` in this codec's format

The checks: ``sniff`` scores its own fixtures high and the other formats' fixtures, random
bytes and empty input low (and never raises); framing gives the same frames for 1-byte, random
and whole reads, and the frames are the input minus the bytes counted as skipped; a player that
joins the node's local output (a :class:`~streamerp2p.output.StationOutput` fed the frames as
the node feeds it, with the framer's headers and the codec's ``rejoin``) at random points gets a
stream real ffmpeg decodes; corrupt input (flipped bytes, truncation, inserted junk) is skipped
and counted, never an exception.

Fixtures are encoded with PyAV (FFmpeg's encoders: libmp3lame, the native Vorbis encoder,
libopus, the native AAC encoder) once per process. This module imports pytest and hypothesis:
use it from tests only (they are in the workspace's dev dependencies).
"""

from __future__ import annotations

import array
import io
import math
import random
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .output import StationOutput
from .overlay import wire
from .overlay.packer import Packer
from .testing import in_ci, require_tool
from .types import CodecSpec, Frame, Framer, StationMeta

__all__ = [
    "FIXTURE_KINDS",
    "CodecConformance",
    "Fixture",
    "decode_with_ffmpeg",
    "decode_with_mpv",
    "fixture",
    "frames_of",
    "late_join",
]

# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    """An encoded stream: its bytes, the content type a source would declare, its length."""

    kind: str
    data: bytes = field(repr=False)
    content_type: str
    seconds: float
    format: str  # FFmpeg demuxer name


def _signal(rate: int, seconds: float, freq: float) -> array.array[float]:
    """A chirp from ``freq`` Hz up, with a 2 Hz tremolo, as float samples in [-0.5, 0.5]."""
    count = int(rate * seconds)
    two_pi = 2 * math.pi
    return array.array(
        "f",
        (
            0.4
            * (0.75 + 0.25 * math.sin(two_pi * 2 * i / rate))
            * math.sin(two_pi * (freq + 200 * i / rate / seconds) * i / rate)
            for i in range(count)
        ),
    )


def encode(
    codec: str,
    container: str,
    *,
    rate: int,
    layout: str = "stereo",
    seconds: float = 3.0,
    bit_rate: int | None = None,
    freq: float = 440.0,
    metadata: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
) -> bytes:
    """Encode a chirp with PyAV's ``codec`` into ``container`` (FFmpeg muxer names)."""
    import av

    channels = 1 if layout == "mono" else 2
    mono = _signal(rate, seconds, freq)
    buf = io.BytesIO()
    with av.open(buf, "w", format=container, options=container_options or {}) as out:
        for key, value in (metadata or {}).items():
            out.metadata[key] = value
        stream: Any = out.add_stream(codec, rate=rate, layout=layout, options=codec_options or {})
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        ctx = stream.codec_context
        supported = [f.name for f in ctx.codec.audio_formats or []]
        fmt = "fltp" if "fltp" in supported else "flt"
        ctx.format = fmt
        ctx.open()
        step = ctx.frame_size or 1152
        pts = 0
        for start in range(0, len(mono), step):
            part = mono[start : start + step]
            frame = av.AudioFrame(format=fmt, layout=layout, samples=len(part))
            if fmt == "fltp":
                for plane in frame.planes[:channels]:
                    plane.update(part.tobytes())
            else:  # "flt": interleaved
                inter = array.array("f", (s for s in part for _ in range(channels)))
                frame.planes[0].update(inter.tobytes())
            frame.sample_rate = rate
            frame.pts = pts
            pts += len(part)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _vorbis(serial: int, rate: int, title: str, freq: float, seconds: float = 3.0) -> bytes:
    return encode(
        "vorbis",
        "ogg",
        rate=rate,
        seconds=seconds,
        freq=freq,
        metadata={"title": title, "artist": "Streamer P2P"},
        container_options={"serial_offset": str(serial), "page_duration": "100000"},
        codec_options={"strict": "experimental"},
    )


def _opus(serial: int, bit_rate: int, title: str, freq: float, seconds: float = 3.0) -> bytes:
    return encode(
        "libopus",
        "ogg",
        rate=48000,
        seconds=seconds,
        bit_rate=bit_rate,
        freq=freq,
        metadata={"title": title, "artist": "Streamer P2P"},
        container_options={"serial_offset": str(serial), "page_duration": "100000"},
    )


def _opus_duration(packet: bytes) -> int:
    """Samples (at 48 kHz) in an Opus packet, from its TOC byte (RFC 6716, section 3.1)."""
    if not packet:
        return 0
    config, code = packet[0] >> 3, packet[0] & 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        size = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        size = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        size = (120, 240, 480, 960)[config & 3]
    count = 1 if code == 0 else 2 if code < 3 else (packet[1] & 0x3F if len(packet) > 1 else 0)
    return size * count


def repage_ogg(data: bytes, body_size: int, duration: Callable[[bytes], int]) -> bytes:
    """Re-page a one-stream Ogg file as libogg does: audio pages are filled up to about
    ``body_size`` bytes, packets continue across pages (``duration(packet)`` gives each
    packet's granule length, to keep every page's granule position exact). Header pages are
    kept as they are."""
    import struct

    head = struct.Struct("<4sBBqIIIB")

    def page_crc(page: bytes) -> int:
        crc = 0
        for byte in page:
            crc ^= byte << 24
            for _ in range(8):
                crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
        return crc

    pos = 0
    out: list[bytes] = []
    packets: list[tuple[bytes, int]] = []  # audio packets with their end granule
    partial = b""
    serial = seq = 0
    headers_done = False
    while pos < len(data):
        _, _, flags, granule, serial, seq_in, _, nsegs = head.unpack_from(data, pos)
        lacing = data[pos + 27 : pos + 27 + nsegs]
        body = data[pos + 27 + nsegs : pos + 27 + nsegs + sum(lacing)]
        length = 27 + nsegs + len(body)
        if not headers_done:
            out.append(data[pos : pos + length])
            seq = seq_in + 1
            headers_done = granule == 0 and lacing[-1:] != b"\xff" and not flags & 2
            pos += length
            continue
        ended: list[bytes] = []
        start = cur = 0
        for value in lacing:
            cur += value
            if value < 255:
                ended.append(partial + body[start:cur])
                partial = b""
                start = cur
        partial += body[start:cur]
        end = granule
        for packet in reversed(ended):
            packets.append((packet, end))
            end -= duration(packet)
        packets[len(packets) - len(ended) :] = reversed(packets[len(packets) - len(ended) :])
        pos += length
    eos_flag = 4

    def emit(segs: list[int], chunk: bytes, flags: int, granule: int) -> None:
        nonlocal seq
        page = head.pack(b"OggS", 0, flags, granule, serial, seq, 0, len(segs))
        page += bytes(segs) + chunk
        crc = page_crc(page)
        out.append(page[:22] + crc.to_bytes(4, "little") + page[26:])
        seq += 1

    segs: list[int] = []
    chunk = b""
    granule = -1
    continued = 0
    for index, (packet, end) in enumerate(packets):
        rest = packet
        while True:
            piece = rest[:255]
            rest = rest[255:]
            segs.append(len(piece))
            chunk += piece
            done = len(piece) < 255 or (not rest and len(piece) < 255)
            if len(piece) == 255 and not rest:
                segs.append(0)  # a packet of a multiple of 255 bytes ends with a 0 lacing
                done = True
            if done:
                granule = end
            if len(chunk) >= body_size or len(segs) >= 250:
                last = index == len(packets) - 1 and done
                emit(segs, chunk, continued | (eos_flag if last else 0), granule)
                continued = 0 if done else 1
                segs, chunk, granule = [], b"", -1
            if done:
                break
    if segs:
        emit(segs, chunk, continued | eos_flag, granule)
    return b"".join(out)


def _ffmpeg_encode(args: list[str]) -> bytes:
    """Encode with the real ffmpeg (for encoders PyAV's wheel lacks, e.g. libvorbis)."""
    ffmpeg = require_tool("ffmpeg")
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", *args, "pipe:1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


_MAKERS: dict[str, Callable[[], Fixture]] = {
    "mp3": lambda: Fixture(
        "mp3",
        encode("libmp3lame", "mp3", rate=44100, bit_rate=128_000),
        "audio/mpeg",
        3.0,
        "mp3",
    ),
    # There is no mp3PRO encoder: an MPEG-2 22.05 kHz mp3 is what an mp3PRO stream looks like
    # to a plain mp3 decoder (the SBR data hides in the ancillary bits). Declared as mp3PRO.
    "mp3pro": lambda: Fixture(
        "mp3pro",
        encode("libmp3lame", "mp3", rate=22050, bit_rate=64_000),
        "audio/mp3pro",
        3.0,
        "mp3",
    ),
    "vorbis": lambda: Fixture(
        "vorbis", _vorbis(1111, 44100, "First tone", 440.0), "audio/ogg", 3.0, "ogg"
    ),
    # A source that restarts: a second encode (other serial, sample rate and title) follows.
    "vorbis-chained": lambda: Fixture(
        "vorbis-chained",
        _vorbis(1111, 44100, "First tone", 440.0, 2.0) + _vorbis(2222, 22050, "Second", 880.0, 2.0),
        "audio/ogg",
        4.0,
        "ogg",
    ),
    # libvorbis (what real sources use; PyAV's wheel has only FFmpeg's own Vorbis encoder)
    # through Debian's ffmpeg, at quality 6 (big packets), quarter-second pages
    "vorbis-libvorbis": lambda: Fixture(
        "vorbis-libvorbis",
        _ffmpeg_encode(
            [
                *("-f", "lavfi", "-i", "sine=frequency=523:sample_rate=48000:duration=3"),
                *("-ac", "2", "-c:a", "libvorbis", "-q:a", "6", "-metadata", "title=libvorbis"),
                *("-f", "ogg", "-page_duration", "250000"),
            ]
        ),
        "application/ogg",
        3.0,
        "ogg",
    ),
    "opus": lambda: Fixture(
        "opus", _opus(3333, 64_000, "Opus tone", 440.0), "audio/ogg; codecs=opus", 3.0, "ogg"
    ),
    "opus-chained": lambda: Fixture(
        "opus-chained",
        _opus(3333, 64_000, "Opus tone", 440.0, 2.0) + _opus(4444, 32_000, "Again", 660.0, 2.0),
        "audio/ogg; codecs=opus",
        4.0,
        "ogg",
    ),
    # libogg-style pages (about 1 KiB, packets continuing across pages), which FFmpeg's muxer
    # never makes: pages whose first packet continues are not places to start.
    "opus-paged": lambda: Fixture(
        "opus-paged",
        repage_ogg(_opus(5555, 128_000, "Paged", 550.0), 1024, _opus_duration),
        "audio/ogg",
        3.0,
        "ogg",
    ),
    "aac": lambda: Fixture(
        "aac",
        encode("aac", "adts", rate=44100, bit_rate=96_000),
        "audio/aac",
        3.0,
        "aac",
    ),
}

#: The fixture kinds :func:`fixture` makes.
FIXTURE_KINDS: tuple[str, ...] = tuple(_MAKERS)


@cache
def fixture(kind: str) -> Fixture:
    """The encoded fixture ``kind`` (one of :data:`FIXTURE_KINDS`), made once per process."""
    pytest.importorskip("av")
    return _MAKERS[kind]()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def frames_of(framer: Framer, data: bytes, cuts: list[int] | None = None) -> list[Frame]:
    """Push ``data`` into ``framer`` cut at ``cuts`` (whole if None), flush, return frames."""
    out: list[Frame] = []
    last = 0
    for cut in sorted(cuts or []):
        out += framer.push(data[last:cut])
        last = cut
    out += framer.push(data[last:])
    out += framer.flush()
    return out


def late_join(
    codec: CodecSpec, data: bytes, join_at: int, *, burst_bytes: int = 4096
) -> tuple[bytes, list[Frame]]:
    """What a player gets when it connects to the node's local output after the first
    ``join_at`` frames of ``data`` went out.

    The output is fed as the node feeds it: the frames packed into chunks by the broadcaster's
    :class:`~streamerp2p.overlay.packer.Packer` (several small frames a chunk, big ones split,
    ``start`` set on chunks that begin with a sync frame), the headers from ``framer.headers()``
    as known at that point, the codec's ``rejoin``. The player subscribes after frame
    ``join_at`` and reads live: after each frame fed, it reads everything it can before the
    next one is fed. Returns the bytes read and all the frames.
    """
    frames = frames_of(codec.framer(), data)
    packer = Packer(wire.MAX_PAYLOAD)  # the broadcaster's: big frames are split into chunks

    async def run() -> bytes:
        out = StationOutput("test", StationMeta(), burst_bytes=burst_bytes, rejoin=codec.rejoin)
        live = codec.framer()
        chunks: list[bytes] = []

        def feed(frame: Frame) -> None:
            live.push(frame.data)
            out.set_headers(live.headers())
            for payload, start in packer.push([frame], 0.0):
                out.feed(payload, start)

        def reader_blocked() -> bool:  # waiting for the next feed, or done
            return sub.closed or (sub._waiter is not None and sub._waiter in out._waiters)

        async def read() -> None:
            async with sub:
                async for chunk in sub:
                    chunks.append(chunk)

        for frame in frames[:join_at]:
            feed(frame)
        sub = out.subscribe()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            for frame in frames[join_at:]:
                while not reader_blocked():
                    await anyio.lowlevel.checkpoint()
                feed(frame)
            for payload, start in packer.flush():
                out.feed(payload, start)
            while not reader_blocked():
                await anyio.lowlevel.checkpoint()
            out.end()
        return b"".join(chunks)

    return anyio.run(run), frames


@dataclass(frozen=True)
class Decoded:
    returncode: int
    seconds: float  # decoded audio duration
    errors: str  # ffmpeg's error output


_PCM_OUT = ("-f", "s16le", "-ac", "1", "-ar", "8000")  # 16000 bytes per second


def decode_with_ffmpeg(data: bytes, demuxer: str | None = None) -> Decoded:
    """Decode ``data`` with the real ffmpeg (to 8 kHz mono s16); how long and how cleanly."""
    ffmpeg = require_tool("ffmpeg")
    fmt = ["-f", demuxer] if demuxer else []
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", *fmt, "-i", "pipe:0", *_PCM_OUT, "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return Decoded(proc.returncode, len(proc.stdout) / 16000, proc.stderr.decode(errors="replace"))


def decode_with_mpv(data: bytes) -> Decoded:
    """Play ``data`` with the real mpv into a PCM file (as fast as it decodes); how long.

    The output format is fixed: mpv's untimed null output hangs when a chained stream changes
    the sample rate, its PCM output at a fixed rate does not.
    """
    import tempfile
    from pathlib import Path

    mpv = require_tool("mpv")
    with tempfile.TemporaryDirectory() as tmp:
        src, pcm = Path(tmp) / "in", Path(tmp) / "out.raw"
        src.write_bytes(data)
        args = [
            *("--no-config", "--input-terminal=no", "--vo=null", "--msg-level=all=error"),
            *("--ao=pcm", f"--ao-pcm-file={pcm}", "--ao-pcm-waveheader=no"),
            *("--audio-format=s16", "--audio-channels=mono", "--audio-samplerate=8000"),
        ]
        proc = subprocess.run(
            [mpv, *args, str(src)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        size = pcm.stat().st_size if pcm.exists() else 0
    return Decoded(proc.returncode, size / 16000, (proc.stdout + proc.stderr).decode("replace"))


def _normalised(line: str) -> str:
    """An ffmpeg message without its context address and numbers (to compare kinds)."""
    return re.sub(r"0x[0-9a-f]+|\d+", "#", line.strip())


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip bytes, insert junk, cut pieces out and truncate."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 12)):
        at = rng.randrange(len(out) + 1)
        action = rng.randrange(4)
        if action == 0 and out:
            at = min(at, len(out) - 1)
            out[at] ^= 1 << rng.randrange(8)
        elif action == 1:
            out[at:at] = rng.randbytes(rng.randrange(1, 300))
        elif action == 2:
            del out[at : at + rng.randrange(1, 500)]
        else:
            out[at:at] = bytes(out[max(0, at - 700) : at])  # a repeated piece
    if rng.random() < 0.5:
        del out[rng.randrange(len(out) + 1) :]
    return bytes(out)


_EXAMPLES = 15 if in_ci() else 25
# differing_executors: the same test methods run on each codec's subclass, by design
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.differing_executors]


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


class CodecConformance:
    """Subclass as ``TestSomething`` with ``codec`` (the CodecSpec) and ``fixtures`` (kinds of
    :func:`fixture` in this codec's format); ``foreign`` defaults to every other kind.

    ``late_join_errors_allowed``: ffmpeg error lines a late joiner may cause beyond those the
    whole stream causes (mp3's bit reservoir makes the first frame after a join refer to data
    the player never got: FFmpeg says so once and goes on). ``late_join_mpv``: also play every
    late-join stream with mpv (null video, PCM to a file) and compare the durations.
    """

    codec: ClassVar[CodecSpec]
    fixtures: ClassVar[tuple[str, ...]]
    foreign: ClassVar[tuple[str, ...] | None] = None
    late_join_points: ClassVar[int] = 4
    late_join_errors_allowed: ClassVar[int] = 0
    late_join_mpv: ClassVar[bool] = False  # also play each late join with mpv

    # ---- helpers ---------------------------------------------------------------------------

    @classmethod
    def _own(cls) -> list[Fixture]:
        return [fixture(kind) for kind in cls.fixtures]

    @classmethod
    def _foreign(cls) -> list[Fixture]:
        kinds = cls.foreign
        if kinds is None:
            mine = {k.split("-")[0] for k in cls.fixtures}
            kinds = tuple(k for k in FIXTURE_KINDS if k.split("-")[0] not in mine)
        return [fixture(kind) for kind in kinds]

    def _conserved(self, framer: Framer, frames: list[Frame], data: bytes | None = None) -> None:
        """Every input byte is in a frame or counted as skipped; with ``data``, the frames are
        pieces of it, in order (the input minus the skipped bytes)."""
        s = framer.stats
        assert s.frames == len(frames)
        assert s.bytes_in == sum(len(f.data) for f in frames) + s.skipped_bytes
        if data is not None:
            pos = 0
            for index, frame in enumerate(frames):
                at = data.find(frame.data, pos)
                assert at >= 0, f"frame {index} is not a piece of the input after the previous"
                pos = at + len(frame.data)

    # ---- sniffing --------------------------------------------------------------------------

    def test_sniff_own_format_high(self) -> None:
        for fix in self._own():
            head = fix.data[:4096]
            assert self.codec.sniff(head, fix.content_type) >= 0.9, fix.kind
            # without a content type too, unless the format is only known by what sources say
            if not self.codec.passthrough:
                assert self.codec.sniff(head, None) > 0.5, fix.kind

    def test_sniff_others_low(self) -> None:
        for fix in self._foreign():
            for ctype in (fix.content_type, None):
                score = self.codec.sniff(fix.data[:4096], ctype)
                assert score <= 0.5, (fix.kind, ctype, score)
        rng = random.Random(5)
        for _ in range(20):
            assert self.codec.sniff(rng.randbytes(rng.randrange(4096)), None) <= 0.5
        assert self.codec.sniff(b"", None) <= 0.5

    @settings(max_examples=_EXAMPLES * 4, deadline=None, suppress_health_check=_SUPPRESS)
    @given(st.binary(max_size=4096), st.sampled_from([None, "", "audio/mpeg", "audio/ogg", "x"]))
    def test_sniff_never_raises(self, head: bytes, ctype: str | None) -> None:
        assert 0.0 <= self.codec.sniff(head, ctype) <= 1.0

    def test_plugin_host_picks_it(self) -> None:
        from .plugins import load_plugins

        host = load_plugins(groups=["streamerp2p.codecs"])
        for fix in self._own():
            found = host.codec_for(fix.content_type, fix.data[:4096])
            assert found is not None and found.name == self.codec.name, fix.kind

    # ---- framing ---------------------------------------------------------------------------

    def test_frames_cover_the_stream(self) -> None:
        for fix in self._own():
            framer = self.codec.framer()
            frames = frames_of(framer, fix.data)
            assert len(frames) > 10, fix.kind
            assert any(f.sync for f in frames)
            self._conserved(framer, frames, fix.data)
            joined = b"".join(f.data for f in frames)
            assert len(joined) >= 0.95 * len(fix.data), fix.kind  # tags at most
            assert joined in fix.data or framer.stats.skipped_bytes > 0
            assert framer.stats.errors == 0, (fix.kind, framer.stats.reasons)
            assert framer.format() is not None

    def test_same_frames_for_any_read_size(self) -> None:
        rng = random.Random(11)
        for fix in self._own():
            data = fix.data[:30000]
            whole = frames_of(self.codec.framer(), data)
            ones = frames_of(self.codec.framer(), data, list(range(1, len(data))))
            assert ones == whole, fix.kind
            for _ in range(3):
                cuts = [rng.randrange(len(data)) for _ in range(rng.randrange(1, 60))]
                assert frames_of(self.codec.framer(), data, cuts) == whole, fix.kind

    @settings(
        max_examples=_EXAMPLES,
        deadline=None,
        suppress_health_check=_SUPPRESS,
    )
    @given(st.data())
    def test_split_anywhere(self, data: st.DataObject) -> None:
        fix = data.draw(st.sampled_from(self._own()), label="fixture")
        stream = fix.data[:20000]
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30), label="cuts")
        a, b = self.codec.framer(), self.codec.framer()
        assert frames_of(a, stream, cuts) == frames_of(b, stream)
        assert a.stats == b.stats

    # ---- corruption ------------------------------------------------------------------------

    def test_junk_between_frames_is_skipped_and_counted(self) -> None:
        rng = random.Random(7)
        for fix in self._own():
            clean = frames_of(self.codec.framer(), fix.data)
            for _ in range(3):
                at = rng.randrange(3, len(clean) - 3)
                junk = rng.randbytes(rng.randrange(1, 2000))
                stream = b"".join(f.data for f in clean[:at]) + junk
                stream += b"".join(f.data for f in clean[at:])
                framer = self.codec.framer()
                frames = frames_of(framer, stream, [rng.randrange(len(stream))])
                assert frames == clean, (fix.kind, at, len(junk))
                assert framer.stats.skipped_bytes == len(junk), fix.kind
                self._conserved(framer, frames)

    def test_damaged_frame_is_skipped_and_counted(self) -> None:
        """Junk inside a frame: that frame (at most it and a neighbour) is lost, and counted."""
        rng = random.Random(8)
        for fix in self._own():
            clean = frames_of(self.codec.framer(), fix.data)
            for _ in range(3):
                at = rng.randrange(3, len(clean) - 3)
                victim = clean[at].data
                cut = rng.randrange(1, len(victim))
                damaged = victim[:cut] + rng.randbytes(rng.randrange(1, 50)) + victim[cut:]
                stream = b"".join(f.data for f in clean[:at]) + damaged
                stream += b"".join(f.data for f in clean[at + 1 :])
                framer = self.codec.framer()
                frames = frames_of(framer, stream)
                self._conserved(framer, frames, stream)
                assert frames[:at] == clean[:at], fix.kind
                assert frames[-(len(clean) - at - 2) :] == clean[at + 2 :], fix.kind
                assert framer.stats.skipped_bytes > 0, fix.kind

    def test_truncation_is_counted(self) -> None:
        rng = random.Random(9)
        for fix in self._own():
            clean = frames_of(self.codec.framer(), fix.data)
            ends = [0]
            for f in clean:
                ends.append(ends[-1] + len(f.data))
            offset = len(fix.data) - ends[-1] if fix.data.endswith(clean[-1].data) else 0
            for _ in range(3):
                at = rng.randrange(3, len(clean) - 1)
                cut = rng.randrange(1, len(clean[at].data))
                stream = b"".join(f.data for f in clean[:at]) + clean[at].data[:cut]
                framer = self.codec.framer()
                frames = frames_of(framer, stream)
                assert frames == clean[:at], (fix.kind, offset)
                assert framer.stats.skipped_bytes == cut, fix.kind
                self._conserved(framer, frames)

    @settings(
        max_examples=_EXAMPLES,
        deadline=None,
        suppress_health_check=_SUPPRESS,
    )
    @given(st.randoms(use_true_random=False), st.data())
    def test_random_damage_never_raises(self, rng: random.Random, data: st.DataObject) -> None:
        """Flipped bits, junk, holes, repeats, truncation: no exception, every byte accounted
        for, the same output for any split."""
        fix = data.draw(st.sampled_from(self._own()), label="fixture")
        stream = _mutate(rng, fix.data[:25000])
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
        framer = self.codec.framer()
        frames = frames_of(framer, stream, cuts)
        self._conserved(framer, frames, stream)
        reference = self.codec.framer()
        assert frames_of(reference, stream) == frames
        assert framer.stats == reference.stats
        framer.headers()
        framer.format()

    def test_garbage_never_raises(self) -> None:
        rng = random.Random(3)
        for size in (0, 1, 3, 27, 100, 5000, 70000):
            framer = self.codec.framer()
            frames = frames_of(framer, rng.randbytes(size), [size // 3, size // 2])
            self._conserved(framer, frames)
            framer.headers()
            framer.format()
        for fix in self._foreign():  # another format: skipped (nothing of ours in it)
            framer = self.codec.framer()
            frames = frames_of(framer, fix.data[:20000], [777, 5000])
            self._conserved(framer, frames)

    @settings(
        max_examples=_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_SUPPRESS,
    )
    @given(st.randoms(use_true_random=False), st.data())
    def test_fuzz_mutations_keep_the_framer_invariants(
        self, rng: random.Random, data: st.DataObject
    ) -> None:
        """The ``codec:NAME`` target of ``streamer bench fuzz`` (its mutations and its oracle),
        briefly: no exception, every byte framed or counted as skipped, frames are pieces of the
        input in order, the same frames and counters for the reads the first byte says and for
        one read."""
        from .benchfuzz import check_framer, mutate

        fix = data.draw(st.sampled_from(self._own()), label="fixture")
        start = data.draw(st.integers(0, len(fix.data) - 1), label="start")
        seed = bytes([data.draw(st.integers(0, 255), label="reads")]) + fix.data[start:][:2500]
        for _ in range(5):
            check_framer(self.codec, mutate(rng, seed, tokens=(b"OggS", b"\xff\xfb"), max_len=4000))

    @settings(
        max_examples=_EXAMPLES * 2,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=_SUPPRESS,
    )
    @given(st.binary(max_size=3000))
    def test_fuzz_garbage_is_counted(self, data: bytes) -> None:
        from .benchfuzz import check_framer

        check_framer(self.codec, data)
        framer = self.codec.framer()
        frames = framer.push(data) + framer.flush()
        if not frames:
            assert framer.stats.skipped_bytes == len(data)

    # ---- late join -------------------------------------------------------------------------

    def test_late_join_decodes_with_ffmpeg(self) -> None:
        require_tool("ffmpeg")
        rng = random.Random(2024)
        for fix in self._own():
            frames = frames_of(self.codec.framer(), fix.data)
            total = sum(len(f.data) for f in frames)
            # what ffmpeg says about the whole stream (e.g. timestamps at an Ogg chain boundary)
            # is not the late joiner's fault
            baseline = decode_with_ffmpeg(fix.data, fix.format)
            assert baseline.returncode == 0, (fix.kind, baseline.errors)
            known = {_normalised(line) for line in baseline.errors.splitlines()}
            points = [1, *sorted(rng.sample(range(2, len(frames) - 3), self.late_join_points))]
            for join_at in points:
                got, _ = late_join(self.codec, fix.data, join_at)
                # a player starts at a sync frame: the first one from the join point on
                start = next((i for i in range(join_at, len(frames)) if frames[i].sync), None)
                rest = sum(len(f.data) for f in frames[start:]) if start is not None else 0
                where = f"{fix.kind}, joined after frame {join_at} of {len(frames)}"
                assert len(got) >= rest * 0.5, where
                decoded = decode_with_ffmpeg(got, fix.format)
                assert decoded.returncode == 0, (where, decoded.errors)
                new = [
                    line
                    for line in decoded.errors.splitlines()
                    if line.strip() and _normalised(line) not in known
                ]
                assert len(new) <= self.late_join_errors_allowed, (where, decoded.errors)
                # at least what remained after the join point (the burst may add some)
                expected = fix.seconds * rest / total
                assert decoded.seconds >= expected * 0.8 - 0.15, (where, decoded.seconds)
                assert decoded.seconds <= fix.seconds + 0.5, (where, decoded.seconds)
                if self.late_join_mpv:
                    played = decode_with_mpv(got)
                    assert played.returncode == 0, (where, played.errors)
                    assert abs(played.seconds - decoded.seconds) < 0.25, (where, played, decoded)
