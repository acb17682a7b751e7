"""ADTS (AAC audio data transport stream) framing, sans I/O.

Header (7 bytes, 9 with a CRC), big endian::

    AAAAAAAA AAAABCCD EEFFFFGH HHIJKLMM MMMMMMMM MMMOOOOO OOOOOOPP
    A sync (12 ones)  B MPEG version (0 MPEG-4, 1 MPEG-2)  C layer (0)  D no CRC
    E profile (audio object type - 1)  F sample-rate index  G private  H channel configuration
    I original  J home  K, L copyright bits  M frame length (header included)
    O buffer fullness  P raw data blocks in the frame - 1

Sync rule (as for mp3): when hunting, a candidate is accepted only if the header right after it
is consistent (same version, layer, CRC flag, profile, sample rate, channels) or an ID3v2 tag
starts there; at the end of the data it waits for more (``push``) or is accepted if it ends
exactly there (``flush``). Once locked, frames are accepted while each header is consistent.
The output does not depend on how the input was split.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from streamerp2p.types import Frame, FramerStats, StreamFormat

__all__ = ["CONTENT_TYPES", "AdtsFramer", "AdtsHeader", "parse_header", "sniff"]

CONTENT_TYPES: tuple[str, ...] = ("audio/aac", "audio/aacp", "audio/x-aac", "audio/x-aacp")

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
                8000, 7350)  # fmt: skip
_CHANNELS = (0, 1, 2, 3, 4, 5, 6, 8)  # by channel configuration; 0: given in the stream
_PROFILES = ("Main", "LC", "SSR", "LTP")
_MODES = {1: "mono", 2: "stereo"}

#: Header bits that must stay the same: sync, version, layer, CRC flag, profile, rate, channels.
_SAME_STREAM_MASK = 0xFFFFFDC0
_U32 = struct.Struct(">I")
_SYNC_RE = re.compile(rb"\xff[\xf0\xf1\xf8\xf9]")  # layer 0 only: never an mp3 header
_HUNT_RE = re.compile(rb"\xff[\xf0\xf1\xf8\xf9]|ID3")


class AdtsHeader(NamedTuple):
    mpeg_version: int  # 2 or 4
    profile: str  # "Main", "LC", "SSR", "LTP"
    sample_rate: int
    channels: int  # 0 when the configuration is in the stream (a PCE)
    length: int  # frame length, header included
    blocks: int  # raw data blocks (1024 samples each)
    crc: bool


def parse_header(data: bytes, pos: int = 0) -> AdtsHeader | None:
    """Parse the ADTS header at ``data[pos:]`` (7 bytes needed); None if it is not a valid one."""
    if len(data) - pos < 7:
        return None
    b0, b1, b2, b3, b4, b5, b6 = data[pos : pos + 7]
    if b0 != 0xFF or b1 & 0xF6 != 0xF0:
        return None
    rate_index = (b2 >> 2) & 0xF
    if rate_index >= len(SAMPLE_RATES):
        return None
    crc = not b1 & 1
    length = ((b3 & 3) << 11) | (b4 << 3) | (b5 >> 5)
    if length < (9 if crc else 7):
        return None
    return AdtsHeader(
        mpeg_version=2 if b1 & 8 else 4,
        profile=_PROFILES[b2 >> 6],
        sample_rate=SAMPLE_RATES[rate_index],
        channels=_CHANNELS[((b2 & 1) << 2) | (b3 >> 6)],
        length=length,
        blocks=(b6 & 3) + 1,
        crc=crc,
    )


def _id3v2_length(data: bytes, pos: int) -> int:
    """Length of the ID3v2 tag at ``data[pos:]`` (10 bytes needed); 0 if none."""
    if len(data) - pos < 10 or not data.startswith(b"ID3", pos):
        return 0
    major, revision, flags, s0, s1, s2, s3 = data[pos + 3 : pos + 10]
    if major not in (2, 3, 4) or revision == 0xFF or flags & 0x0F or (s0 | s1 | s2 | s3) & 0x80:
        return 0
    footer = 10 if major == 4 and flags & 0x10 else 0
    return 10 + ((s0 << 21) | (s1 << 14) | (s2 << 7) | s3) + footer


class AdtsFramer:
    """Splits an ADTS byte stream into frames (implements ``streamerp2p.types.Framer``).

    Every ADTS frame is a decoder entry point (``sync=True``) and carries its own header, so
    :meth:`headers` is empty. ID3v2 tags and junk are skipped (``stats.skipped_bytes``); frames
    cut short by the end of the stream or by junk count in ``stats.errors``. At most one frame
    (8 KiB) is held between calls.
    """

    def __init__(self) -> None:
        self.stats = FramerStats()
        self._rest = b""
        self._skip = 0  # bytes of an ID3v2 tag still to skip
        self._lock = -1  # masked header of the locked stream, -1 while hunting
        self._first: AdtsHeader | None = None
        self._bytes = 0  # audio bytes and raw data blocks, for the measured bitrate
        self._blocks = 0

    def push(self, data: bytes) -> list[Frame]:
        self.stats.bytes_in += len(data)
        buf = self._rest + data if self._rest else bytes(data)
        frames, pos = self._run(buf, final=False)
        self._rest = buf[pos:]
        return frames

    def flush(self) -> list[Frame]:
        buf = self._rest
        frames, pos = self._run(buf, final=True)
        self.stats.skipped_bytes += len(buf) - pos
        self._rest = b""
        self._skip = 0
        self._lock = -1
        return frames

    def headers(self) -> bytes:
        return b""

    def format(self) -> StreamFormat | None:
        first = self._first
        if first is None:
            return None
        kbps = 0
        if self._blocks:
            kbps = round(self._bytes * 8 * first.sample_rate / (1024 * self._blocks) / 1000)
        mode = _MODES.get(first.channels, f"{first.channels} channels")
        return StreamFormat(
            bitrate=kbps,
            sample_rate=first.sample_rate,
            channels=first.channels,
            description=(
                f"AAC {first.profile} (ADTS), ~{kbps} kbit/s, "
                f"{first.sample_rate / 1000:g} kHz, {mode}"
            ),
        )

    def _accept(self, out: list[Frame], buf: bytes, pos: int, header: AdtsHeader) -> None:
        out.append(Frame(buf[pos : pos + header.length]))
        self.stats.frames += 1
        self._bytes += header.length
        self._blocks += header.blocks
        if self._first is None:
            self._first = header

    def _run(self, buf: bytes, final: bool) -> tuple[list[Frame], int]:
        out: list[Frame] = []
        stats = self.stats
        n = len(buf)
        pos = 0
        while True:
            if self._skip:
                take = min(self._skip, n - pos)
                self._skip -= take
                stats.skipped_bytes += take
                pos += take
                if self._skip:
                    break
            avail = n - pos
            if avail < 7:
                if final and avail:
                    stats.skipped_bytes += avail
                    pos = n
                break
            if self._lock >= 0:
                word = _U32.unpack_from(buf, pos)[0]
                header = parse_header(buf, pos)
                if word & _SAME_STREAM_MASK == self._lock and header is not None:
                    if avail >= header.length:
                        self._accept(out, buf, pos, header)
                        pos += header.length
                        continue
                    if not final:
                        break  # wait for the rest of the frame
                    stats.count_error("ADTS frame truncated by the end of the stream")
                self._lock = -1

            match = _HUNT_RE.search(buf, pos)
            if match is None:
                keep = n if final else max(pos, n - 2)
                stats.skipped_bytes += keep - pos
                pos = keep
                break
            stats.skipped_bytes += match.start() - pos
            pos = match.start()
            avail = n - pos
            if buf[pos] == 0x49:  # "ID3"
                if avail < 10 and not final:
                    break
                tag = _id3v2_length(buf, pos)
                if tag:
                    self._skip = tag
                else:
                    stats.skipped_bytes += 1
                    pos += 1
                continue
            if avail < 7:
                if final:
                    continue  # the loop ends on avail < 7
                break
            header = parse_header(buf, pos)
            if header is None:
                stats.skipped_bytes += 1
                pos += 1
                continue
            end = pos + header.length
            if n - end >= 7:
                word = _U32.unpack_from(buf, pos)[0]
                following = parse_header(buf, end)
                consistent = (
                    following is not None
                    and _U32.unpack_from(buf, end)[0] & _SAME_STREAM_MASK
                    == word & _SAME_STREAM_MASK
                )
                if not consistent and not (buf.startswith(b"ID3", end) and n - end >= 10
                                           and _id3v2_length(buf, end)):  # fmt: skip
                    stats.skipped_bytes += 1
                    pos += 1
                    continue
            elif not final:
                break  # wait for the next header
            elif end != n:
                stats.skipped_bytes += 1
                pos += 1
                continue
            self._lock = _U32.unpack_from(buf, pos)[0] & _SAME_STREAM_MASK
            self._accept(out, buf, pos, header)
            pos = end
        return out, pos


def find_frame_pair(data: bytes, start: int = 0) -> int:
    """Offset of the first ADTS frame in ``data[start:]`` followed by a consistent header."""
    match = _SYNC_RE.search(data, start)
    while match is not None:
        pos = match.start()
        header = parse_header(data, pos)
        if header is not None:
            end = pos + header.length
            following = parse_header(data, end)
            if following is not None and (
                _U32.unpack_from(data, end)[0] & _SAME_STREAM_MASK
                == _U32.unpack_from(data, pos)[0] & _SAME_STREAM_MASK
            ):
                return pos
        match = _SYNC_RE.search(data, pos + 1)
    return -1


def sniff(head: bytes, content_type: str | None) -> float:
    """Confidence that a stream starting with ``head`` is ADTS AAC.

    1.0 for an AAC content type with an empty or ADTS-looking head (an ADTS header at the
    start or after an ID3v2 tag, two consecutive frames, or a tag longer than the head); 0.9
    for two consecutive consistent ADTS frames under no or another content type; 0.0
    otherwise. Never raises.
    """
    try:
        head = bytes(head or b"")
        tag = _id3v2_length(head, 0)
        pair = find_frame_pair(head, tag) >= 0
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if mime in CONTENT_TYPES:
            if tag and len(head) < tag + 7:
                return 1.0  # all tag so far: cannot tell yet, trust the content type
            if not head or pair or parse_header(head, tag) is not None:
                return 1.0
        return 0.9 if pair else 0.0
    except Exception:
        return 0.0
