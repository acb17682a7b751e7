"""The ADTS framer: headers, format, ID3 and junk, sniffing against mp3."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from streamerp2p.codec_conformance import fixture, frames_of
from streamerp2p.plugins import PluginHost
from streamerp2p_aac import plugin
from streamerp2p_aac.framer import AdtsFramer, AdtsHeader, parse_header, sniff

AAC = plugin.streamerp2p_codecs()[0]


def test_parse_header() -> None:
    data = fixture("aac").data
    header = parse_header(data)
    assert header is not None
    assert header == AdtsHeader(4, "LC", 44100, 2, header.length, 1, False)
    assert parse_header(data[:6]) is None
    assert parse_header(b"\xff\xfb\x90\x64\x00\x00\x00") is None  # an mp3 header
    assert parse_header(b"\xff\xf1\x7c\x80\x00\x1f\xfc") is None  # sample-rate index 15
    assert parse_header(b"\xff\xf1\x50\x80\x00\x1f\xfc") is None  # length 0


def test_frames_are_the_file() -> None:
    data = fixture("aac").data
    framer = AdtsFramer()
    frames = frames_of(framer, data)
    assert b"".join(f.data for f in frames) == data
    assert all(f.sync for f in frames)
    for frame in frames:
        header = parse_header(frame.data)
        assert header is not None and header.length == len(frame.data)
    assert framer.headers() == b""
    fmt = framer.format()
    assert fmt is not None and (fmt.sample_rate, fmt.channels) == (44100, 2)
    assert 60 <= fmt.bitrate <= 130  # encoded at 96 kbit/s
    assert fmt.description.startswith("AAC LC (ADTS), ~")


def test_id3_and_junk_skipped() -> None:
    data = fixture("aac").data
    clean = frames_of(AdtsFramer(), data)
    tag = b"ID3\x04\x00\x00\x00\x00\x01\x00" + b"\xff\xf1" * 64
    framer = AdtsFramer()
    frames = frames_of(framer, b"junk\xff\xf1" + tag + data, [3, 20, 500])
    assert frames == clean
    assert framer.stats.skipped_bytes == 6 + len(tag)


def test_truncated_frame_counted_with_reason() -> None:
    data = fixture("aac").data
    clean = frames_of(AdtsFramer(), data)
    big = max(range(len(clean)), key=lambda i: len(clean[i].data))
    stream = b"".join(f.data for f in clean[:big]) + clean[big].data[:-10]
    framer = AdtsFramer()
    frames = frames_of(framer, stream)
    assert frames == clean[:big]
    assert framer.stats.errors == 1
    assert list(framer.stats.reasons) == ["ADTS frame truncated by the end of the stream"]
    assert framer.stats.skipped_bytes == len(clean[big].data) - 10


@pytest.mark.parametrize("ctype", ["audio/aac", "audio/aacp", "audio/x-aac", "Audio/AACP; x=1"])
def test_content_types(ctype: str) -> None:
    host = PluginHost()
    host.register(plugin, "streamerp2p.codecs", "aac")
    found = host.codec_for(ctype)
    assert found is not None and found.name == "aac"
    assert sniff(b"", ctype) == 1.0


def test_sniff_against_mp3() -> None:
    assert sniff(fixture("aac").data[:4096], None) == 0.9
    assert sniff(fixture("mp3").data[:4096], None) == 0.0
    assert sniff(fixture("mp3").data[:4096], "audio/aac") == 0.0  # says AAC, is not


def test_spec_and_entry_point() -> None:
    assert AAC.name == "aac" and AAC.decoder_format == "aac" and not AAC.passthrough
    assert AAC.rejoin is None
    (ep,) = [e for e in entry_points(group="streamerp2p.codecs") if e.name == "aac"]
    assert ep.value == "streamerp2p_aac.plugin"
