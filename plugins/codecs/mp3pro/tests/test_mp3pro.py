"""mp3PRO: recognised only by what the source declares, never taken from plain mp3."""

from __future__ import annotations

from importlib.metadata import entry_points

from streamerp2p.codec_conformance import fixture, frames_of
from streamerp2p.plugins import PluginHost, load_plugins
from streamerp2p_mp3pro import plugin
from streamerp2p_mp3pro.plugin import CANNOT_DECODE, sniff

MP3PRO = plugin.streamerp2p_codecs()[0]


def test_passthrough_and_plain_message() -> None:
    assert MP3PRO.passthrough and MP3PRO.decoder_format is None
    assert "cannot be decoded by the built-in player" in CANNOT_DECODE
    assert CANNOT_DECODE in MP3PRO.description


def test_declared_content_type_selects_it() -> None:
    host = load_plugins(groups=["streamerp2p.codecs"])
    head = fixture("mp3pro").data[:4096]
    for ctype in ("audio/mp3pro", "audio/x-mp3pro"):
        found = host.codec_for(ctype, head)
        assert found is not None and found.name == "mp3pro"
        assert sniff(head, ctype) == 1.0 > host.codec("mp3").sniff(head, ctype)


def test_plain_mp3_is_never_claimed() -> None:
    host = load_plugins(groups=["streamerp2p.codecs"])
    for kind in ("mp3", "mp3pro"):  # the mp3pro fixture is an mp3 stream in-band
        head = fixture(kind).data[:4096]
        for ctype in (None, "audio/mpeg", "application/octet-stream"):
            assert sniff(head, ctype) == 0.0
            found = host.codec_for(ctype, head)
            assert found is not None and found.name == "mp3"
    assert sniff(fixture("vorbis").data[:4096], "audio/mp3pro") == 0.0  # says mp3PRO, is not


def test_frames_and_format() -> None:
    framer = MP3PRO.framer()
    frames = frames_of(framer, fixture("mp3pro").data)
    assert len(frames) > 50 and all(f.sync for f in frames)
    fmt = framer.format()
    assert fmt is not None
    assert fmt.sample_rate == 44100  # the SBR output rate: twice the 22.05 kHz core
    assert fmt.description.startswith("mp3PRO (MPEG-2 Layer III")


def test_entry_point() -> None:
    (ep,) = [e for e in entry_points(group="streamerp2p.codecs") if e.name == "mp3pro"]
    assert ep.value == "streamerp2p_mp3pro.plugin"
    host = PluginHost()
    assert host.register(ep.load(), "streamerp2p.codecs", "mp3pro") is not None
