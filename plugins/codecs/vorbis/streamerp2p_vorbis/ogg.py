"""Ogg pages, sans I/O: a framer for single-codec Ogg streams and a late-join rewriter.

Codec-neutral within Ogg: what is codec-specific (how to recognise the identification packet,
how many header packets there are, what they say) comes from an :class:`OggMapping`. The vorbis
plugin uses it with :data:`streamerp2p_vorbis.plugin.VORBIS`, the opus plugin (which depends on
this distribution for this module only) with its own mapping.

Page layout (RFC 3533)::

    0  "OggS"  4  version (0)  5  header type (1 continued, 2 BOS, 4 EOS)  6  granule (i64 LE)
    14 serial (u32 LE)  18 page sequence (u32 LE)  22 CRC (u32 LE)  26 segment count N
    27 N lacing values, then the body (their sum)

The CRC is CRC-32 with polynomial 0x04C11DB7, not reflected, initial value 0, computed over the
whole page with the CRC field zeroed.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from streamerp2p.types import Frame, FramerStats, StreamFormat

__all__ = [
    "MAX_PAGE",
    "OggFramer",
    "OggMapping",
    "OggRejoin",
    "Page",
    "comment_title",
    "crc32",
    "page_at",
    "parse_comments",
    "parse_page",
    "sniff_ogg",
]

CAPTURE = b"OggS"
MAX_PAGE = 27 + 255 + 255 * 255  # 65307 bytes: the most a framer or rewriter holds back
FLAG_CONTINUED = 0x01
FLAG_BOS = 0x02
FLAG_EOS = 0x04

_HEAD = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, nsegs
_CAPTURE_RE = re.compile(re.escape(CAPTURE))


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc32_reference(data: bytes) -> int:
    """The Ogg page CRC, byte by byte (the definition; :func:`crc32` is the fast one)."""
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def crc32(data: bytes) -> int:
    """The Ogg page CRC of ``data`` (the whole page with its CRC field zeroed).

    Computed with zlib's (reflected) CRC-32, which has the same polynomial: on bit-reversed
    bytes, started from 0 and without the final inversion, it gives the bit-reversed Ogg CRC.
    """
    raw = zlib.crc32(bytes(data).translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


class Page(NamedTuple):
    """One parsed Ogg page."""

    data: bytes  # the whole page
    flags: int
    granule: int  # -1: no packet ends on this page
    serial: int
    seq: int
    lacing: bytes  # the segment table

    @property
    def continued(self) -> bool:
        """The first packet continues one from the previous page."""
        return bool(self.flags & FLAG_CONTINUED)

    @property
    def bos(self) -> bool:
        return bool(self.flags & FLAG_BOS)

    @property
    def eos(self) -> bool:
        return bool(self.flags & FLAG_EOS)

    @property
    def body(self) -> bytes:
        return self.data[27 + len(self.lacing) :]

    @property
    def ends_open(self) -> bool:
        """The last packet continues on the next page."""
        return bool(self.lacing) and self.lacing[-1] == 255

    def packets(self) -> list[tuple[bytes, bool]]:
        """The packet pieces of the body: (bytes, complete) in order; the first one is the end
        of a packet from an earlier page when :attr:`continued`."""
        out: list[tuple[bytes, bool]] = []
        body = self.body
        pos = 0
        start = 0
        for value in self.lacing:
            pos += value
            if value < 255:
                out.append((body[start:pos], True))
                start = pos
        if start < pos or self.ends_open:
            out.append((body[start:pos], False))
        return out


def page_at(buf: bytes, pos: int) -> int:
    """Length of the valid page at ``buf[pos:]``; 0 if there is none there (wrong capture,
    version or CRC); -1 if more bytes are needed to tell."""
    n = len(buf) - pos
    if n < 27:
        return 0 if n >= 4 and not buf.startswith(CAPTURE, pos) else -1
    if not buf.startswith(CAPTURE, pos) or buf[pos + 4] != 0:
        return 0
    nsegs = buf[pos + 26]
    if n < 27 + nsegs:
        return -1
    length = 27 + nsegs + sum(buf[pos + 27 : pos + 27 + nsegs])
    if n < length:
        return -1
    page = buf[pos : pos + length]
    stored = int.from_bytes(page[22:26], "little")
    if crc32(page[:22] + b"\0\0\0\0" + page[26:]) != stored:
        return 0
    return length


def parse_page(data: bytes) -> Page:
    """Parse one whole, valid page (as :func:`page_at` found it)."""
    _, _, flags, granule, serial, seq, _, nsegs = _HEAD.unpack_from(data)
    return Page(bytes(data), flags, granule, serial, seq, bytes(data[27 : 27 + nsegs]))


def build_page(
    page: Page, *, serial: int, seq: int, flags: int, lacing: bytes, body: bytes
) -> bytes:
    """A page like ``page`` with new fields, its CRC recomputed."""
    head = _HEAD.pack(CAPTURE, 0, flags, page.granule, serial, seq, 0, len(lacing))
    data = head + lacing + body
    crc = crc32(data)
    return data[:22] + crc.to_bytes(4, "little") + data[26:]


# --------------------------------------------------------------------------------------------
# Comments (the Vorbis comment structure; Opus uses it too after "OpusTags")
# --------------------------------------------------------------------------------------------


def parse_comments(packet: bytes, prefix: bytes) -> dict[str, list[str]] | None:
    """``{"TITLE": [...], ...}`` from a comment header packet (keys upper-cased); None if the
    packet is not one."""
    if not packet.startswith(prefix):
        return None
    try:
        pos = len(prefix)
        (vendor,) = struct.unpack_from("<I", packet, pos)
        pos += 4 + vendor
        (count,) = struct.unpack_from("<I", packet, pos)
        pos += 4
        out: dict[str, list[str]] = {}
        for _ in range(min(count, 10000)):
            (size,) = struct.unpack_from("<I", packet, pos)
            pos += 4
            if pos + size > len(packet):
                return out
            text = packet[pos : pos + size].decode("utf-8", errors="replace")
            pos += size
            key, sep, value = text.partition("=")
            if sep:
                out.setdefault(key.upper(), []).append(value)
        return out
    except struct.error:
        return None


def comment_title(comments: dict[str, list[str]] | None) -> str | None:
    """ "ARTIST - TITLE" (Icecast's habit), or TITLE alone, or None."""
    if not comments:
        return None
    title = " / ".join(v.strip() for v in comments.get("TITLE", []) if v.strip())
    artist = " / ".join(v.strip() for v in comments.get("ARTIST", []) if v.strip())
    if title and artist:
        return f"{artist} - {title}"
    return title or None


# --------------------------------------------------------------------------------------------
# The framer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OggMapping:
    """What an Ogg framer needs to know about one codec.

    ``identify(packet)`` is true for the codec's identification packet (the one on a BOS page);
    ``header_packets`` is how many header packets a stream starts with (3 for Vorbis, 2 for
    Opus), the comment header being the second; ``comment_prefix`` starts the comment packet;
    ``describe(id_packet, measured_kbps)`` tells the format; ``granule_rate(id_packet)`` is
    the number of granule units per second (to measure the bitrate).
    """

    name: str
    header_packets: int
    identify: Callable[[bytes], bool]
    comment_prefix: bytes
    describe: Callable[[bytes, int], StreamFormat | None]
    granule_rate: Callable[[bytes], int]


@dataclass
class _Chain:
    """One logical stream of the mapping's codec, from its BOS page on."""

    serial: int
    pages: list[bytes] = field(default_factory=list)  # header pages so far
    packets: list[bytes] = field(default_factory=list)  # complete header packets
    partial: bytes = b""  # header packet continuing on the next page
    complete: bool = False
    audio_bytes: int = 0  # for the measured bitrate
    first_granule: int = -1
    last_granule: int = -1


class OggFramer:
    """Cuts an Ogg stream of one codec into pages (implements ``streamerp2p.types.Framer``).

    Every valid page of the codec's logical stream is a frame. Header pages (identification,
    comment, setup) are frames with ``sync=False``; audio pages are ``sync=True`` unless their
    first packet continues from the previous page. :meth:`headers` returns the header pages of
    the current chain once they are all there (a chained stream, e.g. a source that restarts,
    replaces them when the new chain's headers are complete). Pages of other logical streams
    (a Skeleton track, a video) and pages before any identification header are skipped and
    counted, as are junk and pages with a wrong CRC. Never raises on bad input.
    """

    def __init__(self, mapping: OggMapping) -> None:
        self.mapping = mapping
        self.stats = FramerStats()
        self._rest = b""
        self._chain: _Chain | None = None  # the newest chain (maybe still collecting headers)
        self._headers = b""
        self._id_packet = b""  # of the chain whose headers are current
        self._comments: dict[str, list[str]] | None = None
        self._measured: _Chain | None = None

    # ---- Framer protocol --------------------------------------------------------------------

    def push(self, data: bytes) -> list[Frame]:
        self.stats.bytes_in += len(data)
        buf = self._rest + data if self._rest else bytes(data)
        frames, pos = self._run(buf, final=False)
        self._rest = buf[pos:]
        return frames

    def flush(self) -> list[Frame]:
        frames, pos = self._run(self._rest, final=True)
        self.stats.skipped_bytes += len(self._rest) - pos  # (nothing: final runs to the end)
        self._rest = b""
        return frames

    def headers(self) -> bytes:
        """The header pages of the current chain (b"" until they are complete)."""
        return self._headers

    def format(self) -> StreamFormat | None:
        if not self._id_packet:
            return None
        kbps = 0
        chain = self._measured
        if chain is not None and chain.first_granule >= 0:
            rate = self.mapping.granule_rate(self._id_packet)
            span = chain.last_granule - chain.first_granule
            if rate > 0 and span >= rate // 2:
                kbps = round(chain.audio_bytes * 8 * rate / span / 1000)
        return self.mapping.describe(self._id_packet, kbps)

    def title(self) -> str | None:
        """TITLE (with ARTIST) from the current chain's comment header; None if none."""
        return comment_title(self._comments)

    def comments(self) -> dict[str, list[str]]:
        """All comments of the current chain (keys upper-cased)."""
        return dict(self._comments or {})

    # ---- internals --------------------------------------------------------------------------

    def _run(self, buf: bytes, final: bool) -> tuple[list[Frame], int]:
        out: list[Frame] = []
        n = len(buf)
        pos = 0
        stats = self.stats
        while pos < n:
            match = _CAPTURE_RE.search(buf, pos)
            if match is None:
                keep = n if final else max(pos, n - 3)  # the end may start "OggS"
                stats.skipped_bytes += keep - pos
                pos = keep
                break
            if match.start() != pos:
                stats.skipped_bytes += match.start() - pos
                pos = match.start()
            length = page_at(buf, pos)
            if length < 0:
                if not final:
                    break  # wait for the rest of the page
                stats.count_error("Ogg page truncated by the end of the stream")
                stats.skipped_bytes += 1
                pos += 1
                continue
            if length == 0:
                stats.count_error("Ogg page with a wrong CRC or version")
                stats.skipped_bytes += 1
                pos += 1
                continue
            frame = self._page(parse_page(buf[pos : pos + length]))
            if frame is None:
                stats.skipped_bytes += length
            else:
                out.append(frame)
                stats.frames += 1
            pos += length
        return out, pos

    def _page(self, page: Page) -> Frame | None:
        chain = self._chain
        if page.bos:
            pieces = page.packets()
            if pieces and pieces[0][1] and self.mapping.identify(pieces[0][0]):
                self._chain = _Chain(page.serial)
                self._header_page(self._chain, page)
                return Frame(page.data, sync=False)
            return None  # another codec's logical stream
        if chain is None or page.serial != chain.serial:
            return None  # not ours, or we never saw its identification header
        if not chain.complete:
            self._header_page(chain, page)
            return Frame(page.data, sync=False)
        if page.granule >= 0:
            if chain.first_granule < 0:
                chain.first_granule = page.granule
            else:
                chain.audio_bytes += len(page.data)
            chain.last_granule = page.granule
        return Frame(page.data, sync=not page.continued)

    def _header_page(self, chain: _Chain, page: Page) -> None:
        chain.pages.append(page.data)
        for piece, complete in page.packets():
            if len(chain.packets) >= self.mapping.header_packets:
                break
            if complete:
                chain.packets.append(chain.partial + piece)
                chain.partial = b""
            else:
                chain.partial += piece
        if len(chain.packets) >= self.mapping.header_packets:
            chain.complete = True
            self._headers = b"".join(chain.pages)
            self._id_packet = chain.packets[0]
            self._comments = parse_comments(chain.packets[1], self.mapping.comment_prefix)
            if self._comments is None:
                self.stats.count_error(f"{self.mapping.name}: no comment header")
            self._measured = chain


def sniff_ogg(head: bytes, identify: Callable[[bytes], bool]) -> int:
    """Where in ``head`` a BOS page whose first packet ``identify`` accepts starts; -1 if none.

    Only the page header and first packet are checked (not the CRC, the page may be cut).
    """
    at = head.find(CAPTURE)
    while at >= 0 and len(head) - at >= 28:
        if head[at + 4] == 0 and head[at + 5] & FLAG_BOS:
            nsegs = head[at + 26]
            lacing = head[at + 27 : at + 27 + nsegs]
            size = 0
            for value in lacing:
                size += value
                if value < 255:
                    break
            start = at + 27 + nsegs
            if identify(head[start : start + size]):
                return at
        at = head.find(CAPTURE, at + 1)
    return -1


# --------------------------------------------------------------------------------------------
# The late-join rewriter
# --------------------------------------------------------------------------------------------


@dataclass
class _Out:
    """What one reader's stream has seen of a logical stream."""

    serial: int  # serial number in the output
    next_seq: int  # page sequence number of the next page sent
    headers_left: int  # header packets still to come
    header_pages: set[bytes] = field(default_factory=set)
    joined: bool = False  # the first page after the headers was sent
    audio: bool = False  # an audio page was sent
    last_in_seq: int = -1
    held: list[bytes] = field(default_factory=list)  # header pages until all are there
    broken: bool = False  # a header page was lost: nothing of this stream can be decoded


class OggRejoin:
    """Makes the Ogg stream one player receives valid although it starts in the middle.

    The player gets the header pages, then pages from a sync page on. For each logical stream
    this rewriter (one per player, fed the bytes in order, split anywhere):

    * renumbers page sequence numbers so they run on without a jump after the headers, while a
      real loss later (bytes that are not a valid page, a jump in the source's numbering) still
      shows as a jump of one, as Ogg demuxers expect, and the dangling end of a packet is cut
      from the first page after such a loss;
    * drops pages of a logical stream whose BOS page it has not passed (e.g. old-chain pages
      before the new chain's headers, which were sent first) and in-stream copies of header
      pages it already sent; holds a stream's header pages back until they are all there, and
      drops the whole stream (until a new BOS) if one of them was lost;
    * gives a new serial number to a stream that restarts with the same serial (a chained
      stream must not reuse one), so chains work in every player;
    * recomputes the CRC of every page it changes; drops bytes that are not valid pages.

    Granule positions are left as they are: players start their clock at the first page's.
    """

    def __init__(self, header_packets: int) -> None:
        self.header_packets = header_packets
        self._rest = b""
        self._streams: dict[int, _Out] = {}  # by input serial
        self._used: set[int] = set()  # output serials used so far
        self._loss = False  # bytes were dropped since the last page sent
        self.dropped_bytes = 0
        self.dropped_pages = 0

    def __call__(self, data: bytes) -> bytes:
        buf = self._rest + data if self._rest else bytes(data)
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            at = buf.find(CAPTURE, pos)
            if at < 0:
                keep = max(pos, n - 3)
                self._drop(keep - pos)
                pos = keep
                break
            if at > pos:
                self._drop(at - pos)
                pos = at
            length = page_at(buf, pos)
            if length < 0:
                break
            if length == 0:
                self._drop(1)
                pos += 1
                continue
            page = parse_page(buf[pos : pos + length])
            pos += length
            rewritten = self._page(page)
            if rewritten is None:
                self.dropped_pages += 1
            else:
                out.append(rewritten)
        self._rest = buf[pos:]
        return b"".join(out)

    def _drop(self, count: int) -> None:
        if count:
            self.dropped_bytes += count
            self._loss = True

    def _page(self, page: Page) -> bytes | None:
        st = self._streams.get(page.serial)
        if page.bos:
            if st is not None and not st.audio and page.data in st.header_pages:
                return None  # the in-stream copy of headers already sent
            serial = page.serial
            while serial in self._used:
                serial = (serial * 1103515245 + 12345) & 0xFFFFFFFF
            self._used.add(serial)
            st = _Out(serial, page.seq, self.header_packets)
            self._streams[page.serial] = st
        elif st is None or st.broken:
            return None  # a stream whose BOS (or another header page) this player never got
        elif not st.audio and page.data in st.header_pages:
            return None
        flags = page.flags
        lacing = page.lacing
        body = page.body
        if st.headers_left > 0:
            if not page.bos and (self._loss or page.seq != (st.last_in_seq + 1) & 0xFFFFFFFF):
                st.broken = True  # a header page is missing: drop the stream until a new BOS
                st.held.clear()
                return None
            st.header_pages.add(page.data)
            st.headers_left -= sum(1 for v in lacing if v < 255)
            st.last_in_seq = page.seq
            self._loss = False
            data = page.data
            if st.next_seq != page.seq or st.serial != page.serial:
                data = build_page(
                    page, serial=st.serial, seq=st.next_seq, flags=flags, lacing=lacing, body=body
                )
            st.next_seq = (st.next_seq + 1) & 0xFFFFFFFF
            st.held.append(data)
            if st.headers_left > 0:
                return b""  # held until the headers are complete
            held, st.held = st.held, []
            return b"".join(held)
        elif not st.joined:
            st.joined = True
            seq = st.next_seq
        else:
            gap = self._loss or page.seq != (st.last_in_seq + 1) & 0xFFFFFFFF
            seq = (st.next_seq + 1) & 0xFFFFFFFF if gap else st.next_seq
            if gap and page.continued:
                # the start of this packet is lost: cut its end off this page
                cut = 0
                size = 0
                for value in lacing:
                    cut += 1
                    size += value
                    if value < 255:
                        break
                lacing, body = lacing[cut:], body[size:]
                flags &= ~FLAG_CONTINUED
                if not lacing:
                    st.last_in_seq = page.seq
                    return None
        st.audio = True
        self._loss = False
        st.last_in_seq = page.seq
        st.next_seq = (seq + 1) & 0xFFFFFFFF
        if (
            seq == page.seq
            and st.serial == page.serial
            and flags == page.flags
            and lacing is page.lacing
        ):
            return page.data
        return build_page(page, serial=st.serial, seq=seq, flags=flags, lacing=lacing, body=body)
