"""Ogg pages, the Vorbis framer's headers and sync points, titles, and the late-join rewriter."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p.codec_conformance import fixture, frames_of, late_join
from streamerp2p.plugins import PluginHost
from streamerp2p.types import Frame, framer_title
from streamerp2p_vorbis import plugin
from streamerp2p_vorbis.ogg import (
    OggFramer,
    OggRejoin,
    Page,
    build_page,
    crc32,
    crc32_reference,
    page_at,
    parse_page,
)

VORBIS = plugin.streamerp2p_codecs()[0]


def pages(data: bytes) -> list[Page]:
    """Every valid page of ``data`` in order (junk between them ignored)."""
    out = []
    pos = data.find(b"OggS")
    while 0 <= pos < len(data):
        length = page_at(data, pos)
        if length > 0:
            out.append(parse_page(data[pos : pos + length]))
            pos += length
        else:
            pos = data.find(b"OggS", pos + 1)
    return out


def stream_of(data: bytes) -> list[Frame]:
    return frames_of(VORBIS.framer(), data)


# ---- pages -------------------------------------------------------------------------------------


def test_crc_matches_the_encoder() -> None:
    data = fixture("vorbis").data
    ps = pages(data)
    assert sum(len(p.data) for p in ps) == len(data)  # every page of the file is valid
    first = ps[0].data
    assert crc32(first[:22] + bytes(4) + first[26:]) == int.from_bytes(first[22:26], "little")
    broken = bytearray(first)
    broken[40] ^= 1
    assert page_at(bytes(broken), 0) == 0
    assert page_at(first[:30], 0) == -1
    assert page_at(b"OggS\x01" + first[5:], 0) == 0  # version 1 does not exist


def test_fast_crc_is_the_reference_crc() -> None:
    rng = random.Random(4)
    for size in (0, 1, 3, 27, 255, 4096, 65307):
        data = rng.randbytes(size)
        assert crc32(data) == crc32_reference(data)


def test_build_page_recomputes_crc() -> None:
    page = pages(fixture("vorbis").data)[3]
    rebuilt = build_page(
        page, serial=7, seq=99, flags=page.flags, lacing=page.lacing, body=page.body
    )
    assert page_at(rebuilt, 0) == len(page.data)
    again = parse_page(rebuilt)
    assert (again.serial, again.seq, again.granule, again.body) == (7, 99, page.granule, page.body)


# ---- framer ------------------------------------------------------------------------------------


def test_headers_are_the_header_pages_and_not_sync() -> None:
    data = fixture("vorbis").data
    framer = VORBIS.framer()
    frames = frames_of(framer, data)
    ps = pages(data)
    assert ps[0].bos
    # identification page, then comment + setup (one page here): not places to start
    header_count = 2
    assert framer.headers() == b"".join(p.data for p in ps[:header_count])
    assert [f.sync for f in frames[:header_count]] == [False, False]
    assert all(f.sync for f in frames[header_count:])  # FFmpeg's muxer: whole packets only


def test_continued_pages_are_not_sync() -> None:
    """libogg-style pages (packets across pages): only pages starting a packet are sync."""
    opus = pytest.importorskip("streamerp2p_opus.plugin")
    data = fixture("opus-paged").data
    frames = frames_of(opus.framer(), data)
    ps = pages(data)
    assert len(frames) == len(ps)
    assert [f.sync for f in frames[:2]] == [False, False]  # OpusHead, OpusTags
    for frame, page in zip(frames[2:], ps[2:], strict=True):
        assert frame.sync == (not page.continued)
    assert 5 < sum(p.continued for p in ps) < len(ps) - 5


def test_headers_wait_for_all_three_packets() -> None:
    data = fixture("vorbis").data
    first = pages(data)[0].data
    framer = VORBIS.framer()
    assert [f.sync for f in framer.push(first)] == [False]
    assert framer.headers() == b""  # the comment and setup headers are not there yet
    assert framer.format() is None
    assert framer.title() is None


def test_format_and_title() -> None:
    framer = VORBIS.framer()
    frames_of(framer, fixture("vorbis").data)
    fmt = framer.format()
    assert fmt is not None
    assert (fmt.sample_rate, fmt.channels) == (44100, 2)
    assert 10 < fmt.bitrate < 200
    assert fmt.description.startswith("Ogg Vorbis, ")
    assert framer.title() == "Streamer P2P - First tone"
    assert framer_title(framer) == "Streamer P2P - First tone"
    assert framer.comments()["TITLE"] == ["First tone"]


def test_chained_stream_switches_headers_format_and_title() -> None:
    data = fixture("vorbis-chained").data
    ps = pages(data)
    second_bos = next(i for i, p in enumerate(ps) if p.bos and i > 0)
    framer = VORBIS.framer()
    frames_of(framer, b"".join(p.data for p in ps[: second_bos + 1]))
    assert framer.title() == "Streamer P2P - First tone"  # the new chain is not complete
    first_headers = framer.headers()
    assert first_headers.startswith(ps[0].data)
    framer.push(b"".join(p.data for p in ps[second_bos + 1 :]))
    assert framer.headers().startswith(ps[second_bos].data)
    assert framer.title() == "Streamer P2P - Second"
    fmt = framer.format()
    assert fmt is not None and fmt.sample_rate == 22050


def test_other_logical_streams_and_orphans_skipped() -> None:
    data = fixture("vorbis").data
    opus = fixture("opus").data
    ps = pages(data)
    # pages before any identification header (joined an Ogg stream in the middle): skipped
    framer = VORBIS.framer()
    middle = b"".join(p.data for p in ps[5:])
    assert frames_of(framer, middle) == []
    assert framer.stats.skipped_bytes == len(middle)
    # an Opus stream is not Vorbis: all skipped, nothing raised
    framer = VORBIS.framer()
    assert frames_of(framer, opus) == []
    assert framer.stats.skipped_bytes == len(opus)


def test_host_tells_vorbis_from_opus_under_audio_ogg() -> None:
    host = PluginHost()
    import streamerp2p_opus.plugin as opus_plugin

    host.register(opus_plugin, "streamerp2p.codecs", "opus")
    host.register(plugin, "streamerp2p.codecs", "vorbis")
    for kind, name in (("vorbis", "vorbis"), ("opus", "opus")):
        found = host.codec_for("audio/ogg", fixture(kind).data[:200])
        assert found is not None and found.name == name
    assert host.codec_for("audio/ogg", b"") is None  # wait for the first page
    assert plugin.sniff(fixture("vorbis").data[:100], "application/ogg") == 1.0


# ---- the rewriter ------------------------------------------------------------------------------


def rewrite(data: bytes, cuts: list[int] | None = None) -> bytes:
    rejoin = OggRejoin(3)
    out = []
    last = 0
    for cut in sorted(cuts or []):
        out.append(rejoin(data[last:cut]))
        last = cut
    out.append(rejoin(data[last:]))
    return b"".join(out)


def test_rewriter_leaves_a_whole_stream_alone() -> None:
    data = fixture("vorbis").data
    assert rewrite(data) == data
    chained = fixture("vorbis-chained").data
    assert rewrite(chained) == chained


def test_late_join_stream_is_renumbered_without_a_gap() -> None:
    data = fixture("vorbis").data
    frames = stream_of(data)
    got, _ = late_join(VORBIS, data, len(frames) // 2, burst_bytes=1)
    ps = pages(got)
    assert sum(len(p.data) for p in ps) == len(got)  # all valid pages, CRCs included
    assert [p.seq for p in ps] == list(range(len(ps)))
    assert len(ps) < len(frames) - 5  # it did start in the middle
    assert ps[0].bos and not ps[2].continued
    source = pages(data)
    assert [p.body for p in ps[2:]] == [p.body for p in source[-(len(ps) - 2) :]]
    assert [p.granule for p in ps[2:]] == [p.granule for p in source[-(len(ps) - 2) :]]


def test_joining_before_a_chain_boundary() -> None:
    """Headers of the new chain sent first, then old-chain pages: those are dropped, and the
    in-stream copy of the new chain's headers is not sent twice."""
    data = fixture("vorbis-chained").data
    ps = pages(data)
    second = next(i for i, p in enumerate(ps) if p.bos and i > 0)
    new_headers = ps[second].data + ps[second + 1].data
    old_audio = b"".join(p.data for p in ps[second - 4 : second])
    rest = b"".join(p.data for p in ps[second:])
    got = rewrite(new_headers + old_audio + rest, [len(new_headers) + 5, len(new_headers) + 999])
    out = pages(got)
    assert {p.serial for p in out} == {ps[second].serial}
    assert [p.seq for p in out] == list(range(len(out)))
    assert [p.body for p in out] == [p.body for p in ps[second:]]


def test_restart_with_the_same_serial_gets_a_new_one() -> None:
    data = fixture("vorbis").data
    got = rewrite(data + data)
    out = pages(got)
    serials = [p.serial for p in out]
    half = len(out) // 2
    assert len(set(serials[:half])) == 1 and len(set(serials[half:])) == 1
    assert serials[0] != serials[half]
    assert out[half].bos and out[half].seq == 0


def test_loss_shows_as_a_sequence_jump_and_cuts_the_dangling_packet() -> None:
    data = fixture("opus-paged").data
    ps = pages(data)
    lost = next(i for i in range(4, len(ps) - 1) if ps[i + 1].continued)
    damaged = b"".join(p.data for p in ps[:lost]) + ps[lost].data[:100]
    damaged += b"".join(p.data for p in ps[lost + 1 :])
    rejoin = OggRejoin(2)
    out = pages(rejoin(damaged))
    assert rejoin.dropped_bytes == 100
    seqs = [p.seq for p in out]
    assert seqs[:lost] == list(range(lost))
    assert seqs[lost] == lost + 1  # one missing
    assert not out[lost].continued  # the end of the lost packet was cut off
    assert len(out[lost].body) < len(ps[lost + 1].body)
    assert ps[lost + 1].body.endswith(out[lost].body)
    assert [p.seq for p in out[lost + 1 :]] == list(range(lost + 2, len(out) + 1))


def test_unknown_stream_pages_and_junk_dropped() -> None:
    data = fixture("vorbis").data
    ps = pages(data)
    rejoin = OggRejoin(3)
    assert rejoin(b"".join(p.data for p in ps[4:8])) == b""  # never saw its BOS
    assert rejoin(b"junk" * 100) == b""
    assert rejoin.dropped_pages == 4 and rejoin.dropped_bytes >= 397


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 20000), max_size=40), st.integers(1, 30))
def test_rewriter_split_anywhere(cuts: list[int], join: int) -> None:
    data = fixture("vorbis").data
    ps = pages(data)
    stream = ps[0].data + ps[1].data + b"".join(p.data for p in ps[join:])
    cuts = [c for c in cuts if c <= len(stream)]
    assert rewrite(stream, cuts) == rewrite(stream)


def test_framer_with_random_reads_matches_whole() -> None:
    rng = random.Random(1)
    data = fixture("vorbis-chained").data
    whole = stream_of(data)
    for _ in range(5):
        cuts = sorted(rng.randrange(len(data)) for _ in range(rng.randrange(200)))
        assert frames_of(OggFramer(plugin.VORBIS), data, cuts) == whole


@pytest.mark.parametrize("kind", ["vorbis", "vorbis-chained"])
def test_spec(kind: str) -> None:
    assert VORBIS.name == "vorbis" and not VORBIS.passthrough
    assert VORBIS.decoder_format == "ogg" and VORBIS.rejoin is not None
    assert isinstance(VORBIS.rejoin(), OggRejoin)
    assert VORBIS.sniff(fixture(kind).data[:4096], None) == 0.95


def test_headers_again_after_a_lag_skip_make_a_new_chain() -> None:
    """StationOutput resends the headers after a lag skip: the player gets a valid chain."""
    from streamerp2p.codec_conformance import decode_with_ffmpeg

    data = fixture("vorbis").data
    ps = pages(data)
    headers = ps[0].data + ps[1].data
    stream = headers + b"".join(p.data for p in ps[3:10]) + headers
    stream += b"".join(p.data for p in ps[18:])
    got = rewrite(stream)
    out = pages(got)
    assert sum(len(p.data) for p in out) == len(got)
    first, second = out[0].serial, out[9].serial
    assert first != second and out[9].bos
    assert [p.seq for p in out if p.serial == first] == list(range(9))
    assert [p.seq for p in out if p.serial == second] == list(range(len(out) - 9))
    decoded = decode_with_ffmpeg(got, "ogg")
    assert decoded.returncode == 0 and not decoded.errors.strip(), decoded
    # (a chain boundary: ffmpeg's clock restarts; 7 + the rest of the pages' worth of audio)
    assert decoded.seconds > 1.5


def test_every_join_point_around_a_chain_boundary_decodes() -> None:
    from streamerp2p.codec_conformance import decode_with_ffmpeg

    data = fixture("vorbis-chained").data
    frames = stream_of(data)
    boundary = next(i for i, p in enumerate(pages(data)) if p.bos and i > 0)
    for join_at in range(boundary - 3, boundary + 5):
        got, _ = late_join(VORBIS, data, join_at, burst_bytes=1)
        assert got, join_at
        out = pages(got)
        assert out[0].bos, join_at
        decoded = decode_with_ffmpeg(got, "ogg")
        assert decoded.returncode == 0, (join_at, decoded.errors)
        assert "Application provided invalid" not in decoded.errors or join_at < boundary
        assert decoded.seconds >= 1.5, (join_at, decoded.seconds)
    assert len(frames) > boundary + 5


@pytest.mark.parametrize("kind", ["vorbis-chained", "opus-paged"])
def test_lost_chunks_still_give_a_decodable_stream(kind: str) -> None:
    """Chunks lost on the way (a relay's playout skips them): the player's stream stays
    valid Ogg and decodes without errors; a chain whose header page was lost is left out."""
    from streamerp2p.codec_conformance import decode_with_ffmpeg
    from streamerp2p.overlay import wire
    from streamerp2p.overlay.packer import Packer

    opus = pytest.importorskip("streamerp2p_opus.plugin")
    mapping_module = opus if kind.startswith("opus") else plugin
    header_packets = 2 if kind.startswith("opus") else 3
    data = fixture(kind).data
    packer = Packer(wire.MAX_PAYLOAD)
    chunks = []
    for frame in frames_of(mapping_module.framer(), data):
        chunks += packer.push([frame], 0.0)
    chunks += packer.flush()
    losses = 0
    for seed in range(5):
        rng = random.Random(seed)
        kept = [c for i, c in enumerate(chunks) if i < 3 or rng.random() > 0.1]
        losses += len(chunks) - len(kept)
        rejoin = OggRejoin(header_packets)
        got = b"".join(rejoin(payload) for payload, _ in kept)
        out = pages(got)
        assert sum(len(p.data) for p in out) == len(got)  # valid pages only
        for serial in {p.serial for p in out}:
            seqs = [p.seq for p in out if p.serial == serial]
            assert all(0 < b - a <= 2 for a, b in itertools.pairwise(seqs))
        decoded = decode_with_ffmpeg(got, "ogg")
        errors = [
            line
            for line in decoded.errors.splitlines()
            if line.strip() and "non monotonically increasing dts" not in line
        ]
        assert decoded.returncode == 0 and not errors, (seed, decoded.errors)
        assert decoded.seconds > 1.0
    assert losses > 5
