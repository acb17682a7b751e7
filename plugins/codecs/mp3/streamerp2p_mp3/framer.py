"""MPEG audio Layer III framing, sans I/O.

:class:`Mp3Framer` cuts an arbitrary byte stream into mp3 frames (MPEG-1, MPEG-2 and MPEG-2.5
Layer III, CBR or VBR), skipping ID3v2/ID3v1/APE tags and junk, with the same output for any
read size. :func:`sniff` scores how much a stream head looks like mp3.

Header fields (32 bits, big endian)::

    AAAAAAAA AAABBCCD EEEEFFGH IIJJKLMM
    A sync (all ones)  B version  C layer  D no CRC  E bitrate index  F sample-rate index
    G padding  H private  I channel mode  J mode extension  K copyright  L original  M emphasis

Sync rule: when hunting, a candidate frame is accepted only if the header right after it is
consistent (same version, layer and sample rate) or starts a tag, and no ID3v2 tag starts inside
it; at the end of the data the candidate waits for more bytes (``push``) or, on ``flush``, is
accepted if it ends exactly there. Once locked,
frames are accepted while each header is consistent with the locked one; anything else makes
the framer check for a tag, then hunt again.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from streamerp2p.types import Frame, FramerStats, StreamFormat

__all__ = [
    "CONTENT_TYPES",
    "FREE_FORMAT_ERROR",
    "MAX_FRAME_LENGTH",
    "TRUNCATED_ERROR",
    "FrameHeader",
    "Mp3Framer",
    "find_frame_pair",
    "id3v2_length",
    "parse_header",
    "sniff",
]

CONTENT_TYPES: tuple[str, ...] = ("audio/mpeg", "audio/mp3", "audio/x-mpeg")

#: ``stats.reasons`` keys.
FREE_FORMAT_ERROR = "free-format mp3 frame (bitrate index 0): not supported, skipped"
TRUNCATED_ERROR = "mp3 frame truncated by the end of the stream"

# Layer III bitrates (kbit/s) by index; 0 = free format, 15 = invalid.
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0)
_SAMPLE_RATES_V1 = (44100, 48000, 32000)
_VERSION_NAMES = {3: "MPEG-1", 2: "MPEG-2", 0: "MPEG-2.5"}  # 1 is reserved
_MODE_NAMES = ("stereo", "joint stereo", "dual channel", "mono")
_RATE_SHIFTS = {3: 0, 2: 1, 0: 2}  # sample rate divisor (as a shift) by version

#: Header bits that must stay the same from frame to frame: sync, version, layer, sample rate.
_SAME_STREAM_MASK = 0xFFFE0C00
#: Header of a free-format frame: valid except for bitrate index 0.
_BITRATE_MASK = 0x0000F000

_U32 = struct.Struct(">I")
_APE_FIELDS = struct.Struct("<III")  # size, item count, flags (after "APETAGEX" + version)
_APE_IS_HEADER = 0x20000000

# A Layer III sync candidate (0xFF then 111VV01P with a valid version) or an ID3v2 tag.
_HUNT_RE = re.compile(rb"\xff[\xe2\xe3\xf2\xf3\xfa\xfb]|ID3")
_SYNC_RE = re.compile(rb"\xff[\xe2\xe3\xf2\xf3\xfa\xfb]")
_TAG_STARTS = (b"TAG", b"ID3", b"APET")


def _build_tables() -> tuple[list[int], list[int]]:
    """Frame length and bitrate for each value of header bits 20..9 (0 when not Layer III)."""
    lengths = [0] * 4096
    kbps = [0] * 4096
    for key in range(4096):
        version = key >> 10
        layer = (key >> 8) & 3
        bitrate_index = (key >> 3) & 0xF
        rate_index = (key >> 1) & 3
        padding = key & 1
        if version == 1 or layer != 1 or rate_index == 3:
            continue
        if version == 3:
            rate = _SAMPLE_RATES_V1[rate_index]
            bitrate = _BITRATES_V1[bitrate_index]
            length = 144000 * bitrate // rate + padding
        else:
            rate = _SAMPLE_RATES_V1[rate_index] >> _RATE_SHIFTS[version]
            bitrate = _BITRATES_V2[bitrate_index]
            length = 72000 * bitrate // rate + padding
        if bitrate:
            lengths[key] = length
            kbps[key] = bitrate
    return lengths, kbps


_LENGTHS, _KBPS = _build_tables()
MAX_FRAME_LENGTH = max(_LENGTHS)  # 1441 bytes: the most a framer holds while waiting


class FrameHeader(NamedTuple):
    """A parsed Layer III frame header."""

    version: str  # "MPEG-1", "MPEG-2" or "MPEG-2.5"
    bitrate: int  # kbit/s
    sample_rate: int  # Hz
    padding: bool
    channel_mode: int  # 0 stereo, 1 joint stereo, 2 dual channel, 3 mono
    length: int  # frame length in bytes, header included

    @property
    def channels(self) -> int:
        return 1 if self.channel_mode == 3 else 2


def parse_header(header: int | bytes) -> FrameHeader | None:
    """Parse a 32-bit Layer III frame header; None if it is not a valid one (free format too)."""
    if isinstance(header, bytes | bytearray | memoryview):
        if len(header) < 4:
            return None
        header = _U32.unpack_from(header)[0]
    if (header >> 21) & 0x7FF != 0x7FF:
        return None
    key = (header >> 9) & 0xFFF
    length = _LENGTHS[key]
    if not length:
        return None
    version = (header >> 19) & 3
    rate = _SAMPLE_RATES_V1[(header >> 10) & 3] >> _RATE_SHIFTS[version]
    return FrameHeader(
        version=_VERSION_NAMES[version],
        bitrate=_KBPS[key],
        sample_rate=rate,
        padding=bool(header & 0x200),
        channel_mode=(header >> 6) & 3,
        length=length,
    )


def _is_free_format(header: int) -> bool:
    """True for a Layer III header that is valid except for bitrate index 0 (free format)."""
    return header & _BITRATE_MASK == 0 and _LENGTHS[((header >> 9) & 0xFFF) | 0x8] != 0


def _is_info_frame(frame: bytes) -> bool:
    """True for a Xing/Info/VBRI header frame (first frame of a LAME or Fraunhofer file)."""
    return (
        frame.find(b"Xing", 4, 48) >= 0
        or frame.find(b"Info", 4, 48) >= 0
        or frame.startswith(b"VBRI", 36)
    )


def id3v2_length(data: bytes, pos: int = 0) -> int:
    """Total length of the ID3v2 tag at ``data[pos:]`` (header, body, footer); 0 if none.

    Needs the 10 header bytes; fewer count as no tag.
    """
    if len(data) - pos < 10 or not data.startswith(b"ID3", pos):
        return 0
    major, revision, flags, s0, s1, s2, s3 = data[pos + 3 : pos + 10]
    if major not in (2, 3, 4) or revision == 0xFF or flags & 0x0F or (s0 | s1 | s2 | s3) & 0x80:
        return 0
    size = (s0 << 21) | (s1 << 14) | (s2 << 7) | s3
    footer = 10 if major == 4 and flags & 0x10 else 0
    return 10 + size + footer


def _id3v2_inside(buf: bytes, start: int, end: int, n: int, final: bool) -> int:
    """1 if a valid ID3v2 header starts in ``buf[start:end]``, 0 if not, -1 to wait for bytes."""
    at = buf.find(b"ID3", start, end)
    while at >= 0:
        if n - at < 10 and not final:
            return -1
        if id3v2_length(buf, at):
            return 1
        at = buf.find(b"ID3", at + 1, end)
    return 0


def _tag_length(buf: bytes, pos: int, n: int) -> int:
    """Length of the tag starting at ``buf[pos]`` (needs 4 bytes there): ID3v2, ID3v1 or APE.

    0 if no tag starts there, -1 if more bytes are needed to tell.
    """
    first = buf[pos]
    if first == 0x49:  # "I"
        if buf.startswith(b"ID3", pos):
            return -1 if n - pos < 10 else id3v2_length(buf, pos)
    elif first == 0x54:  # "T"
        if buf.startswith(b"TAG", pos):
            return 128
    elif first == 0x41 and buf.startswith(b"APET", pos):  # "A"
        if n - pos < 32:
            return -1
        if buf.startswith(b"APETAGEX", pos):
            size, _items, flags = _APE_FIELDS.unpack_from(buf, pos + 12)
            # A header is followed by the items and a footer (``size`` covers both); a footer
            # ends the tag (its items were already skipped as junk).
            return 32 + size if flags & _APE_IS_HEADER and size >= 32 else 32
    return 0


class Mp3Framer:
    """Splits an mp3 byte stream into frames (implements ``streamerp2p.types.Framer``).

    Every frame is a decoder entry point (``sync=True``); Xing/Info/VBRI frames are passed
    through as ordinary frames. ``stats.errors`` counts free-format frames (unsupported: a
    free-format stream gives no frames at all, and ``stats.reasons`` says why, under
    :data:`FREE_FORMAT_ERROR`) and frames truncated by the end of the stream. Buffering is
    bounded: at most one frame plus a header is held between calls, whatever the input.
    """

    def __init__(self) -> None:
        self.stats = FramerStats()
        self._rest = b""  # unconsumed bytes from previous pushes
        self._skip = 0  # bytes of a tag still to skip
        self._lock = -1  # masked header bits of the locked stream, -1 while hunting
        self._boundary = True  # at a place where a tag may start (start, after frame or tag)
        self._first = -1  # header of the first accepted frame
        self._first_audio = -1  # header of the first audio frame (not Xing/Info/VBRI)
        self._kbps_sum = 0  # sum and count of audio frame bitrates, for the VBR average
        self._audio_frames = 0

    # ---- Framer protocol --------------------------------------------------------------------

    def push(self, data: bytes) -> list[Frame]:
        """Feed bytes; return the frames they complete, in order. Never raises on bad data."""
        self.stats.bytes_in += len(data)
        buf = self._rest + data if self._rest else bytes(data)
        frames, pos = self._run(buf, final=False)
        self._rest = buf[pos:]
        return frames

    def flush(self) -> list[Frame]:
        """End of stream: return the complete frames left; drop (and count) the rest."""
        buf = self._rest
        frames, pos = self._run(buf, final=True)
        self.stats.skipped_bytes += len(buf) - pos
        self._rest = b""
        self._skip = 0
        self._lock = -1
        self._boundary = True
        return frames

    def headers(self) -> bytes:
        """mp3 needs nothing before a frame: b""."""
        return b""

    def format(self) -> StreamFormat | None:
        """Format of the first accepted frame; the bitrate is the running average for VBR."""
        header = self._first_audio if self._first_audio >= 0 else self._first
        if header < 0:
            return None
        info = parse_header(header)
        if info is None:  # pragma: no cover - always a valid header
            return None
        count = self._audio_frames
        bitrate = info.bitrate
        vbr = self._kbps_sum != bitrate * count
        if vbr:
            bitrate = round(self._kbps_sum / count)
        return StreamFormat(
            bitrate=bitrate,
            sample_rate=info.sample_rate,
            channels=info.channels,
            description=(
                f"{info.version} Layer III, {'VBR ' if vbr else ''}{bitrate} kbit/s, "
                f"{info.sample_rate / 1000:g} kHz, {_MODE_NAMES[info.channel_mode]}"
            ),
        )

    # ---- internals --------------------------------------------------------------------------

    def _run(self, buf: bytes, final: bool) -> tuple[list[Frame], int]:
        """Cut frames from ``buf``; return them and how many bytes were consumed.

        Every decision needs a fixed number of bytes at the current position and waits for them
        unless ``final``, so the output does not depend on how the input was split.
        """
        out: list[Frame] = []
        append = out.append
        unpack = _U32.unpack_from
        search = _HUNT_RE.search
        lengths = _LENGTHS
        kbps = _KBPS
        mask = _SAME_STREAM_MASK
        n = len(buf)
        pos = 0
        skipped = 0
        free = 0  # free-format headers (errors)
        truncated = 0  # frames cut by the end of the stream (errors)
        frames = 0
        info_frames = 0
        kbps_sum = 0
        first_audio = self._first_audio
        skip = self._skip
        lock = self._lock
        boundary = self._boundary
        first = self._first

        while True:
            if skip:  # inside a tag
                if n - pos < skip:
                    skip -= n - pos
                    skipped += n - pos
                    pos = n
                    break
                pos += skip
                skipped += skip
                skip = 0
            avail = n - pos
            if avail < 4:
                break
            header = unpack(buf, pos)[0]

            if lock >= 0:  # locked: the common path
                if header & mask == lock:
                    key = (header >> 9) & 0xFFF
                    length = lengths[key]
                    if length:
                        if avail >= length:
                            append(Frame(buf[pos : pos + length]))
                            frames += 1
                            kbps_sum += kbps[key]
                            if first_audio < 0:
                                first_audio = header
                            pos += length
                            continue
                        if not final:
                            break  # wait for the rest of the frame
                        truncated += 1  # by the end of the stream; hunt in its bytes
                lock = -1
                boundary = True

            if boundary:  # a tag may start here
                tag = _tag_length(buf, pos, n)
                if tag < 0 and not final:
                    break
                if tag > 0:
                    skip = tag
                    continue

            # Hunting: jump to the next sync candidate or ID3v2 tag.
            match = search(buf, pos)
            if match is None:
                keep = n if final else n - 2  # the last bytes may start a candidate
                if keep > pos:
                    skipped += keep - pos
                    pos = keep
                    boundary = False
                break
            start = match.start()
            if start != pos:
                skipped += start - pos
                pos = start
                boundary = False
            avail = n - pos

            if buf[pos] == 0x49:  # "ID3"
                if avail < 10 and not final:
                    break
                tag = id3v2_length(buf, pos)
                if tag:
                    skip = tag
                    boundary = True
                else:
                    pos += 1
                    skipped += 1
                    boundary = False
                continue

            if avail < 4:
                if final:
                    continue  # nothing more to find: the loop ends on avail < 4
                break
            header = unpack(buf, pos)[0]
            key = (header >> 9) & 0xFFF
            length = lengths[key]
            if not length:
                if _is_free_format(header):  # unsupported: count it, skip its header
                    free += 1
                    pos += 4
                    skipped += 4
                else:
                    pos += 1
                    skipped += 1
                boundary = False
                continue
            end = pos + length
            if n - end >= 4:
                following = unpack(buf, end)[0]
                consistent = (
                    following & mask == header & mask and lengths[(following >> 9) & 0xFFF]
                ) or buf.startswith(_TAG_STARTS, end)
            elif not final:
                break  # wait until the next header can be checked
            else:
                consistent = n == end  # last frame of the stream: accept if complete
            if consistent:
                # A frame in junk may "end" inside a tag full of frame-like bytes: refuse a
                # candidate that an ID3v2 tag starts inside.
                inside = _id3v2_inside(buf, pos + 1, end, n, final)
                if inside < 0:
                    break
                consistent = not inside
            if not consistent:
                pos += 1
                skipped += 1
                boundary = False
                continue
            # Accept the candidate and lock on it.
            lock = header & mask
            if first < 0:
                first = header
            data = buf[pos:end]
            append(Frame(data))
            frames += 1
            if _is_info_frame(data):  # its bitrate says nothing about the audio
                info_frames += 1
            else:
                kbps_sum += kbps[key]
                if first_audio < 0:
                    first_audio = header
            pos = end

        stats = self.stats
        stats.frames += frames
        stats.skipped_bytes += skipped
        if free:
            stats.count_error(FREE_FORMAT_ERROR, free)
        if truncated:
            stats.count_error(TRUNCATED_ERROR, truncated)
        self._audio_frames += frames - info_frames
        self._kbps_sum += kbps_sum
        self._first_audio = first_audio
        self._skip = skip
        self._lock = lock
        self._boundary = boundary
        self._first = first
        return out, pos


def find_frame_pair(data: bytes, start: int = 0) -> int:
    """Offset of the first Layer III frame in ``data[start:]`` whose next header is consistent.

    -1 if there is none.
    """
    mask = _SAME_STREAM_MASK
    n = len(data)
    match = _SYNC_RE.search(data, start)
    while match is not None:
        pos = match.start()
        if n - pos < 4:
            break
        header = _U32.unpack_from(data, pos)[0]
        length = _LENGTHS[(header >> 9) & 0xFFF]
        end = pos + length
        if length and n - end >= 4:
            following = _U32.unpack_from(data, end)[0]
            if following & mask == header & mask and _LENGTHS[(following >> 9) & 0xFFF]:
                return pos
        match = _SYNC_RE.search(data, pos + 1)
    return -1


def sniff(head: bytes, content_type: str | None) -> float:
    """Confidence that a stream starting with ``head`` is mp3.

    1.0 for an mp3 content type with an empty or mp3-looking head (ID3v2 tag, frame header at
    the start, or two consecutive frames); 0.9 when the head (after an ID3v2 tag) holds two
    consecutive consistent Layer III frame headers; 0.0 otherwise. Never raises.
    """
    try:
        head = bytes(head or b"")
        tag = id3v2_length(head)
        pair = find_frame_pair(head, tag) >= 0
        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if mime in CONTENT_TYPES and (
            not head or tag or pair or parse_header(head[:4]) is not None
        ):
            return 1.0
        return 0.9 if pair else 0.0
    except Exception:
        return 0.0
