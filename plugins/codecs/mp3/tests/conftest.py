"""Real mp3 fixtures, encoded once per session with PyAV (libmp3lame)."""

from __future__ import annotations

import array
import io
import math
from dataclasses import dataclass

import pytest

av = pytest.importorskip("av")


@dataclass(frozen=True)
class Mp3Fixture:
    """An encoded file and the byte ranges of its tags."""

    name: str
    data: bytes
    id3v2: int  # length of the leading ID3v2 tag
    id3v1: int  # 128 if the file ends with an ID3v1 tag, else 0

    @property
    def audio(self) -> bytes:
        """The frames only: the file minus its tags."""
        return self.data[self.id3v2 : len(self.data) - self.id3v1]


def encode(
    rate: int,
    layout: str,
    *,
    bit_rate: int | None = None,
    vbr_quality: int | None = None,
    seconds: float = 1.0,
    id3v1: bool = False,
) -> bytes:
    """Encode a sweeping sine with libmp3lame and write it with FFmpeg's mp3 muxer."""
    channels = 1 if layout == "mono" else 2
    count = int(rate * seconds)
    pcm = array.array("h")
    for i in range(count):
        t = i / rate
        sample = int(12000 * math.sin(2 * math.pi * (300 + 1500 * t) * t))
        pcm.extend((sample,) * channels)
    raw = pcm.tobytes()
    out_buf = io.BytesIO()
    options = {"write_id3v1": "1"} if id3v1 else {}
    with av.open(out_buf, "w", format="mp3", options=options) as out:
        out.metadata["title"] = "Streamer P2P test tone"
        stream = out.add_stream("libmp3lame", rate=rate, layout=layout)
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        if vbr_quality is not None:
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = vbr_quality * 118  # FF_QP2LAMBDA
        pts = 0
        step = 1152
        width = 2 * channels
        for start in range(0, count, step):
            samples = min(step, count - start)
            frame = av.AudioFrame(format="s16", layout=layout, samples=samples)
            frame.planes[0].update(raw[start * width : (start + samples) * width])
            frame.sample_rate = rate
            frame.pts = pts
            pts += samples
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_buf.getvalue()


def _fixture(name: str, data: bytes) -> Mp3Fixture:
    assert data.startswith(b"ID3")
    s0, s1, s2, s3 = data[6:10]
    id3v2 = 10 + ((s0 << 21) | (s1 << 14) | (s2 << 7) | s3)
    id3v1 = 128 if data[-128:-125] == b"TAG" else 0
    return Mp3Fixture(name, data, id3v2, id3v1)


@pytest.fixture(scope="session")
def cbr() -> Mp3Fixture:
    """MPEG-1, 128 kbit/s CBR, 44.1 kHz stereo, ID3v2 + ID3v1 tags."""
    return _fixture("cbr", encode(44100, "stereo", bit_rate=128_000, seconds=2.0, id3v1=True))


@pytest.fixture(scope="session")
def vbr() -> Mp3Fixture:
    """MPEG-1 VBR (LAME -V 4), 44.1 kHz stereo."""
    return _fixture("vbr", encode(44100, "stereo", vbr_quality=4, seconds=2.0))


@pytest.fixture(scope="session")
def mpeg2() -> Mp3Fixture:
    """MPEG-2, 32 kbit/s CBR, 22.05 kHz mono."""
    return _fixture("mpeg2", encode(22050, "mono", bit_rate=32_000, seconds=2.0))


@pytest.fixture(scope="session")
def mpeg25() -> Mp3Fixture:
    """MPEG-2.5, 16 kbit/s CBR, 8 kHz mono."""
    return _fixture("mpeg25", encode(8000, "mono", bit_rate=16_000, seconds=2.0))


@pytest.fixture(scope="session", params=["cbr", "vbr", "mpeg2", "mpeg25"])
def mp3(request: pytest.FixtureRequest) -> Mp3Fixture:
    """Each of the encoded files."""
    return request.getfixturevalue(request.param)
