"""sniff scores and the plugin hook / entry point."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p import hookspecs
from streamerp2p.types import CodecSpec
from streamerp2p_mp3 import plugin
from streamerp2p_mp3.framer import Mp3Framer, find_frame_pair, sniff


class Mp3File(Protocol):
    """What the conftest fixtures give (an encoded file and its tag lengths)."""

    data: bytes
    id3v2: int

    @property
    def audio(self) -> bytes: ...


OGG_HEAD = b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis" + bytes(100)


@pytest.mark.parametrize("ctype", ["audio/mpeg", "audio/mp3", "audio/x-mpeg", "Audio/MPEG; x=1"])
def test_sniff_content_type(cbr: Mp3File, ctype: str) -> None:
    assert sniff(b"", ctype) == 1.0
    assert sniff(cbr.data[:4096], ctype) == 1.0
    assert sniff(cbr.audio[:4096], ctype) == 1.0
    assert sniff(cbr.data[:20], ctype) == 1.0  # just the start of an ID3v2 tag
    assert sniff(cbr.audio[:100], ctype) == 1.0  # starts with a frame header
    assert sniff(OGG_HEAD, ctype) == 0.0  # says mp3, is not


def test_sniff_without_content_type(mp3: Mp3File) -> None:
    assert sniff(mp3.data[:4096], None) == 0.9
    assert sniff(mp3.audio[:4096], "application/octet-stream") == 0.9
    assert sniff(b"junk" * 10 + mp3.audio[:4096], None) == 0.9


def test_sniff_negative(cbr: Mp3File) -> None:
    assert sniff(b"", None) == 0.0
    assert sniff(OGG_HEAD, None) == 0.0
    assert sniff(OGG_HEAD, "audio/ogg") == 0.0
    assert sniff(cbr.audio[:300], None) == 0.0  # one frame start: not two headers
    assert sniff(b"\xff\xfb\x90\x64" * 200, None) == 0.0  # headers, but not a frame apart


def test_find_frame_pair(cbr: Mp3File) -> None:
    assert find_frame_pair(cbr.data) == cbr.id3v2
    assert find_frame_pair(b"") == -1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.one_of(st.none(), st.sampled_from(["audio/mpeg", "x", ""])))
def test_sniff_never_raises(head: bytes, ctype: str | None) -> None:
    assert 0.0 <= sniff(head, ctype) <= 1.0


def test_hook_returns_codec() -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    specs = [spec for result in pm.hook.streamerp2p_codecs() for spec in result]
    assert len(specs) == 1
    spec = specs[0]
    assert isinstance(spec, CodecSpec)
    assert spec.name == "mp3"
    assert spec.content_types == ("audio/mpeg", "audio/mp3", "audio/x-mpeg")
    assert spec.extensions == ("mp3",)
    assert spec.decoder_format == "mp3" and not spec.passthrough
    assert spec.sniff is sniff
    assert isinstance(spec.framer(), Mp3Framer)


def test_entry_point() -> None:
    (ep,) = [e for e in entry_points(group="streamerp2p.codecs") if e.name == "mp3"]
    assert ep.value == "streamerp2p_mp3.plugin"
    assert hasattr(ep.load(), "streamerp2p_codecs")
