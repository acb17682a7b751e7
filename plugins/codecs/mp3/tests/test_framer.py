"""Mp3Framer on real libmp3lame output, tags, junk, corruption and arbitrary splits."""

from __future__ import annotations

import io
import random
import struct
from typing import Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamerp2p.testing import require_tool
from streamerp2p.types import Frame, Framer, StreamFormat
from streamerp2p_mp3.framer import (
    FREE_FORMAT_ERROR,
    MAX_FRAME_LENGTH,
    TRUNCATED_ERROR,
    FrameHeader,
    Mp3Framer,
    id3v2_length,
    parse_header,
)


class Mp3File(Protocol):
    """What the conftest fixtures give (an encoded file and its tag lengths)."""

    data: bytes
    id3v2: int
    id3v1: int

    @property
    def audio(self) -> bytes: ...


HEADER_128K = 0xFFFB9064  # MPEG-1 Layer III, no CRC, 128 kbit/s, 44.1 kHz, joint stereo


def feed(data: bytes, size: int | None = None, framer: Mp3Framer | None = None) -> list[bytes]:
    """Push ``data`` in ``size``-byte reads (all at once if None), flush, return frame bytes."""
    framer = framer if framer is not None else Mp3Framer()
    frames: list[Frame] = []
    if size is None:
        frames += framer.push(data)
    else:
        for i in range(0, len(data), size):
            frames += framer.push(data[i : i + size])
    frames += framer.flush()
    assert all(f.sync for f in frames)
    return [f.data for f in frames]


def split_feed(data: bytes, cuts: list[int]) -> tuple[list[bytes], Mp3Framer]:
    """Push ``data`` cut at the given offsets, flush; return frame bytes and the framer."""
    framer = Mp3Framer()
    frames: list[Frame] = []
    last = 0
    for cut in sorted(cuts):
        frames += framer.push(data[last:cut])
        last = cut
    frames += framer.push(data[last:])
    frames += framer.flush()
    return [f.data for f in frames], framer


def conserved(framer: Mp3Framer, frames: list[bytes]) -> bool:
    """After flush, every input byte is either in a frame or counted as skipped."""
    s = framer.stats
    return s.bytes_in == sum(map(len, frames)) + s.skipped_bytes and s.frames == len(frames)


def ape_tag(payload: bytes = b"\x05\x00\x00\x00\x00\x00\x00\x00Title\x00hello") -> bytes:
    """An APEv2 tag with header and footer around ``payload`` (the items)."""
    size = len(payload) + 32

    def block(flags: int) -> bytes:
        return b"APETAGEX" + struct.pack("<IIII", 2000, size, 1, flags) + bytes(8)

    return block(0xA0000000) + payload + block(0x80000000)


def id3v2_tag(body: bytes, *, footer: bool = False) -> bytes:
    """An ID3v2.4 tag with a syncsafe size (and a footer if asked)."""
    n = len(body)
    size = bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))
    flags = 0x10 if footer else 0
    tag = b"ID3\x04\x00" + bytes((flags,)) + size + body
    return tag + (b"3DI\x04\x00" + bytes((flags,)) + size if footer else b"")


# ---- header parsing --------------------------------------------------------------------------


def test_parse_header_values() -> None:
    assert parse_header(HEADER_128K) == FrameHeader("MPEG-1", 128, 44100, False, 1, 417)
    assert parse_header(HEADER_128K | 0x200) == FrameHeader("MPEG-1", 128, 44100, True, 1, 418)
    # 32 kbit/s, 22.05 kHz, mono; 16 kbit/s, 8 kHz, mono
    assert parse_header(b"\xff\xf3\x40\xc0") == FrameHeader("MPEG-2", 32, 22050, False, 3, 104)
    assert parse_header(b"\xff\xe3\x28\xc0") == FrameHeader("MPEG-2.5", 16, 8000, False, 3, 144)
    assert FrameHeader("MPEG-2", 32, 22050, False, 3, 104).channels == 1
    assert MAX_FRAME_LENGTH == 1441


@pytest.mark.parametrize(
    "header",
    [
        HEADER_128K & ~0xF000,  # bitrate index 0: free format
        HEADER_128K | 0xF000,  # bitrate index 15
        HEADER_128K | 0x0C00,  # sample-rate index 3
        (HEADER_128K & ~0x180000) | 0x080000,  # reserved version
        (HEADER_128K & ~0x060000) | 0x040000,  # layer II
        HEADER_128K & ~0x00200000,  # broken sync
    ],
)
def test_parse_header_rejects(header: int) -> None:
    assert parse_header(header) is None
    assert parse_header(struct.pack(">I", header)) is None


def test_id3v2_length() -> None:
    assert id3v2_length(id3v2_tag(b"x" * 300)) == 310
    assert id3v2_length(id3v2_tag(b"x" * 300, footer=True)) == 320
    assert id3v2_length(b"ID3\x04\x00\x00\x00\x00\x02\x80") == 0  # not syncsafe
    assert id3v2_length(b"ID3\x04") == 0


# ---- real files --------------------------------------------------------------------------------


def test_protocol_and_empty_state() -> None:
    framer: Framer = Mp3Framer()
    assert framer.headers() == b""
    assert framer.format() is None
    assert framer.push(b"") == []
    assert framer.flush() == []


def test_frames_are_the_file_minus_tags(mp3: Mp3File) -> None:
    framer = Mp3Framer()
    frames = feed(mp3.data, framer=framer)
    assert b"".join(frames) == mp3.audio
    for frame in frames:
        header = parse_header(frame[:4])
        assert header is not None and header.length == len(frame)
    assert framer.stats.skipped_bytes == mp3.id3v2 + mp3.id3v1
    assert framer.stats.errors == 0
    assert framer.stats.bytes_in == len(mp3.data)
    assert conserved(framer, frames)


def test_xing_info_frame_passed_through(mp3: Mp3File) -> None:
    frames = feed(mp3.data)
    assert b"Xing" in frames[0][:48] or b"Info" in frames[0][:48]


def test_frame_count_matches_pyav(mp3: Mp3File) -> None:
    require_tool("ffmpeg")
    import av

    with av.open(io.BytesIO(mp3.data), format="mp3") as container:
        packets = sum(1 for p in container.demux() if p.size)
    # FFmpeg's demuxer consumes the Xing/Info frame instead of returning it as a packet.
    assert len(feed(mp3.data)) == packets + 1


@pytest.mark.parametrize("size", [1, 7, 417, 4096])
def test_read_size_does_not_matter(mp3: Mp3File, size: int) -> None:
    assert feed(mp3.data, size) == feed(mp3.data)


def test_frames_emitted_as_soon_as_complete(cbr: Mp3File) -> None:
    """Once locked, a frame comes out of the push that completes it (no lookahead)."""
    framer = Mp3Framer()
    frames = feed(cbr.data)
    framer.push(cbr.data[: cbr.id3v2 + len(frames[0]) + 4])  # locks on the Info frame
    second_end = cbr.id3v2 + len(frames[0]) + len(frames[1])
    out = framer.push(cbr.data[cbr.id3v2 + len(frames[0]) + 4 : second_end])
    assert [f.data for f in out] == [frames[1]]


def test_format_cbr(cbr: Mp3File) -> None:
    framer = Mp3Framer()
    framer.push(cbr.data)
    assert framer.format() == StreamFormat(
        bitrate=128,
        sample_rate=44100,
        channels=2,
        description="MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo",
    )


def test_format_vbr(vbr: Mp3File) -> None:
    framer = Mp3Framer()
    frames = feed(vbr.data, framer=framer)
    rates = {parse_header(f[:4]).bitrate for f in frames[1:]}  # type: ignore[union-attr]
    assert len(rates) > 1, "fixture should be VBR"
    fmt = framer.format()
    assert fmt is not None
    assert min(rates) <= fmt.bitrate <= max(rates)
    assert (fmt.sample_rate, fmt.channels) == (44100, 2)
    assert fmt.description.startswith("MPEG-1 Layer III, VBR ")


def test_format_mpeg2_mono(mpeg2: Mp3File, mpeg25: Mp3File) -> None:
    framer = Mp3Framer()
    feed(mpeg2.data, framer=framer)
    # The Info frame is bigger than 32 kbit/s; it is left out of the bitrate.
    assert framer.format() == StreamFormat(
        32, 22050, 1, "MPEG-2 Layer III, 32 kbit/s, 22.05 kHz, mono"
    )
    framer = Mp3Framer()
    feed(mpeg25.data, framer=framer)
    assert framer.format() == StreamFormat(
        16, 8000, 1, "MPEG-2.5 Layer III, 16 kbit/s, 8 kHz, mono"
    )


# ---- tags, junk, corruption ----------------------------------------------------------------------


def junk(rng: random.Random, n: int, quiet_end: int = 0) -> bytes:
    """Random bytes sprinkled with valid 128 kbit/s headers (never 'ID3'/'TAG'/'APET').

    No header in the first 4 bytes nor in the last ``quiet_end``: once locked, junk starting
    with a consistent header is taken as a frame, and a junk header exactly one frame length
    before a real frame passes the two-header check; no framer can tell those apart.
    """
    out = bytearray(rng.randbytes(n).replace(b"\xff", b"\x00"))
    for i in range(4, n - 4 - quiet_end, 37):
        out[i : i + 4] = struct.pack(">I", HEADER_128K | rng.randrange(0x200))
    return bytes(out).replace(b"ID3", b"id3").replace(b"TAG", b"tag").replace(b"APET", b"apet")


@pytest.mark.parametrize("size", [1, 7, 417, 4096, None])
def test_junk_and_tags_are_skipped_and_counted(cbr: Mp3File, size: int | None) -> None:
    rng = random.Random(1234)
    frames = feed(cbr.data)
    prefix = junk(rng, 3000)
    parts = [prefix, id3v2_tag(b"\xff\xfb\x90\x00" * 500, footer=True)]
    extra = 0
    for i, frame in enumerate(frames):
        parts.append(frame)
        if i in (3, 10, 14):  # a frame between two gaps would be lost: nothing vouches for it
            gap = junk(rng, 50 + 400 * i, quiet_end=420)
            parts.append(gap)
            extra += len(gap)
        elif i == 20:
            gap = ape_tag() + id3v2_tag(b"TIT2 mid-stream") + b"TAG" + bytes(125)
            parts.append(gap)
            extra += len(gap)
    parts += [ape_tag(), b"TAG" + b"\xff" * 125]
    data = b"".join(parts)
    framer = Mp3Framer()
    out = feed(data, size, framer=framer)
    assert out == frames
    assert framer.stats.skipped_bytes == len(data) - len(b"".join(frames))
    assert framer.stats.skipped_bytes >= len(prefix) + extra
    assert framer.stats.errors == 0
    assert conserved(framer, out)


def test_free_format_rejected_and_counted(cbr: Mp3File) -> None:
    frames = feed(cbr.data)
    free = struct.pack(">I", HEADER_128K & ~0xF000) + bytes(413)  # bitrate index 0
    data = b"".join(frames[:10]) + free * 3 + b"".join(frames[10:])
    framer = Mp3Framer()
    out = feed(data, framer=framer)
    assert out == frames
    assert framer.stats.errors == 3
    assert framer.stats.skipped_bytes == 3 * len(free)


def test_free_format_stream_gives_nothing() -> None:
    free = struct.pack(">I", HEADER_128K & ~0xF000) + bytes(413)
    framer = Mp3Framer()
    assert feed(free * 20, 100, framer=framer) == []
    assert framer.stats.errors == 20
    assert framer.stats.reasons == {FREE_FORMAT_ERROR: 20}
    assert "free-format" in FREE_FORMAT_ERROR and "not supported" in FREE_FORMAT_ERROR
    assert framer.format() is None


def test_truncated_last_frame(cbr: Mp3File) -> None:
    frames = feed(cbr.data)
    data = b"".join(frames)
    cut = len(data) - len(frames[-1]) // 2
    framer = Mp3Framer()
    pushed = [f.data for f in framer.push(data[:cut])]
    assert pushed == frames[:-1]
    assert framer.flush() == []
    assert framer.stats.errors == 1
    assert framer.stats.reasons == {TRUNCATED_ERROR: 1}
    assert framer.stats.skipped_bytes == cut - len(b"".join(frames[:-1]))


def test_complete_last_frame_pushed(cbr: Mp3File) -> None:
    frames = feed(cbr.data)
    framer = Mp3Framer()
    assert [f.data for f in framer.push(b"".join(frames))] == frames
    assert framer.flush() == []


def test_lone_frame_held_until_flush(cbr: Mp3File) -> None:
    frame = feed(cbr.data)[5]
    framer = Mp3Framer()
    assert framer.push(b"junk" + frame) == []
    assert [f.data for f in framer.flush()] == [frame]
    assert framer.stats.skipped_bytes == 4


def test_lone_frame_with_trailing_junk_dropped(cbr: Mp3File) -> None:
    frame = feed(cbr.data)[5]
    framer = Mp3Framer()
    assert framer.push(frame + b"\x00\x01") == []
    assert framer.flush() == []
    assert framer.stats.skipped_bytes == len(frame) + 2


def test_incomplete_lone_frame_dropped_on_flush(cbr: Mp3File) -> None:
    frame = feed(cbr.data)[5]
    framer = Mp3Framer()
    assert framer.push(frame[:-1]) == []
    assert framer.flush() == []
    assert framer.stats.skipped_bytes == len(frame) - 1


def test_resync_after_corruption(cbr: Mp3File) -> None:
    frames = feed(cbr.data)
    data = bytearray(b"".join(frames))
    offset = len(b"".join(frames[:30]))
    data[offset : offset + 2] = b"\x00\x00"  # break frame 30's sync
    out = feed(bytes(data))
    assert out == frames[:30] + frames[31:]


def test_random_sync_bytes_make_no_frames() -> None:
    rng = random.Random(99)
    framer = Mp3Framer()
    # (quiet end: on flush, a candidate ending exactly at the end of the stream is accepted)
    assert feed(junk(rng, 200_000, quiet_end=1500), 4096, framer=framer) == []
    assert framer.stats.skipped_bytes == 200_000


def test_buffering_is_bounded() -> None:
    rng = random.Random(7)
    framer = Mp3Framer()
    for _ in range(50):
        framer.push(junk(rng, 10_000))
        assert len(framer._rest) <= MAX_FRAME_LENGTH + 4
    framer = Mp3Framer()
    framer.push(id3v2_tag(bytes(1_000_000)))
    assert len(framer._rest) == 0
    assert framer.stats.skipped_bytes == 1_000_010


def test_sample_rate_change_relocks(cbr: Mp3File, mpeg2: Mp3File) -> None:
    a, b = feed(cbr.data), feed(mpeg2.data)
    assert feed(b"".join(a) + b"".join(b), 333) == a + b


# ---- fuzzing -------------------------------------------------------------------------------------

fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(st.binary(max_size=6000), st.lists(st.integers(0, 6000), max_size=12))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    out, framer = split_feed(data, cuts)
    whole, reference = split_feed(data, [])
    assert out == whole
    assert framer.stats == reference.stats
    assert conserved(framer, out)


@fuzz
@given(st.binary(max_size=3000).map(lambda b: b.replace(b"\x00", b"\xff")), st.integers(1, 50))
def test_sync_heavy_bytes_never_raise(data: bytes, size: int) -> None:
    framer = Mp3Framer()
    out = feed(data, size, framer=framer)
    assert out == feed(data)
    assert conserved(framer, out)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_damaged_mp3_split_anywhere(vbr: Mp3File, data: st.DataObject) -> None:
    stream = bytearray(vbr.data[:6000])
    for _ in range(data.draw(st.integers(0, 6), label="edits")):
        at = data.draw(st.integers(0, len(stream)), label="at")
        chunk = data.draw(st.binary(max_size=40), label="chunk")
        if data.draw(st.booleans(), label="insert"):
            stream[at:at] = chunk
        else:
            stream[at : at + len(chunk)] = chunk
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    out, framer = split_feed(bytes(stream), cuts)
    whole, reference = split_feed(bytes(stream), [])
    assert out == whole
    assert framer.stats == reference.stats
    assert conserved(framer, out)
    for frame in out:
        header = parse_header(frame[:4])
        assert header is not None and header.length == len(frame)
