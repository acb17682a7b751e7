"""The Opus mapping: identification, format, title, the hook and entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from streamerp2p.codec_conformance import fixture, frames_of
from streamerp2p.plugins import PluginHost
from streamerp2p_opus import plugin
from streamerp2p_vorbis.ogg import OggRejoin

OPUS = plugin.streamerp2p_codecs()[0]


def test_format_and_title() -> None:
    framer = OPUS.framer()
    frames = frames_of(framer, fixture("opus").data)
    assert [f.sync for f in frames[:3]] == [False, False, True]
    assert framer.headers() == b"".join(f.data for f in frames[:2])
    fmt = framer.format()
    assert fmt is not None
    assert (fmt.sample_rate, fmt.channels) == (48000, 2)
    assert 30 < fmt.bitrate < 200  # measured from granule positions and page sizes
    assert fmt.description.startswith("Ogg Opus, ~")
    assert framer.title() == "Streamer P2P - Opus tone"


def test_chained_title() -> None:
    framer = OPUS.framer()
    frames_of(framer, fixture("opus-chained").data)
    assert framer.title() == "Streamer P2P - Again"


def test_identify() -> None:
    head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    assert plugin.identify(head)
    assert not plugin.identify(head[:18])
    assert not plugin.identify(b"OpusHead\x10" + head[9:])  # version 1.x: incompatible
    assert not plugin.identify(b"\x01vorbis" + bytes(23))


def test_spec_and_sniff() -> None:
    assert OPUS.name == "opus" and OPUS.decoder_format == "ogg" and not OPUS.passthrough
    assert OPUS.rejoin is not None and isinstance(OPUS.rejoin(), OggRejoin)
    assert OPUS.rejoin().header_packets == 2
    head = fixture("opus").data[:4096]
    assert plugin.sniff(head, "audio/ogg; codecs=opus") == 1.0
    assert plugin.sniff(head, None) == 0.95
    assert plugin.sniff(fixture("vorbis").data[:4096], "audio/ogg") == 0.0
    host = PluginHost()
    host.register(plugin, "streamerp2p.codecs", "opus")
    assert host.codec_for("audio/opus") is not None


def test_entry_point() -> None:
    (ep,) = [e for e in entry_points(group="streamerp2p.codecs") if e.name == "opus"]
    assert ep.value == "streamerp2p_opus.plugin"
    assert hasattr(ep.load(), "streamerp2p_codecs")
