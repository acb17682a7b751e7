"""Versioned binary wire format of the overlay (see docs/protocol.md).

Every datagram starts with a 4-byte header: magic ``b"SP"``, protocol version, message type.
All integers are big-endian. Datagrams are at most :data:`MAX_DATAGRAM` bytes so that they
never fragment at the IP layer. Decoding checks every length and bound and raises only
:class:`WireError`; unknown message types raise :class:`UnknownMessage` (a ``WireError``) so
receivers can ignore them and count them apart from garbage.

The DATA message is the hot path: the relay loop never decodes it into an object, it reads the
fixed header with :data:`DATA_HEADER` and forwards the datagram bytes unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import struct
from dataclasses import dataclass, field

MAGIC = b"SP"
VERSION = 1
MAX_DATAGRAM = 1400

Addr = tuple[str, int]

# message types
HELLO_REQ = 0x01
HELLO = 0x02
JOIN_REQ = 0x10
OFFER = 0x11
ATTACH = 0x12
ATTACH_OK = 0x13
ATTACH_NO = 0x14
DATA = 0x20
SEAL = 0x21
NACK = 0x22
PSTAT = 0x23
CSTAT = 0x24
LEAVE = 0x25
DETACH = 0x26
REPORT = 0x27  # -> a parent: "your child starved me / forged data" (see docs/protocol.md)
STATION = 0x30
STATION_REQ = 0x31
CODEC_HDR_REQ = 0x32
CODEC_HDR = 0x33
# reachability and NAT traversal (see docs/protocol.md, "NAT")
REACH_REQ = 0x40
REACH_FWD = 0x41
REACH_PROBE = 0x42
PROXY_REQ = 0x43
PROXY_OK = 0x44
VIA = 0x45
FWD = 0x46
PUNCH = 0x47
# upload capacity test (see overlay/bwtest.py)
BW_TRAIN = 0x48
BW_REPORT = 0x49
# address validation (see docs/protocol.md, "Amplification"): a request from an address that
# has not proven it receives our datagrams gets only a CHALLENGE, as small as any request
CHALLENGE = 0x50
RESPONSE = 0x51

ID_LEN = 8  # node id
STATION_ID_LEN = 16
TAG_LEN = 4  # first bytes of the station id, routes data messages
HASH_LEN = 16
SIG_LEN = 64
ANC_LEN = 64  # ancestor filter: a 512-bit Bloom filter of every node from the root down
ANC_SPARSE = 32  # up to this many set bits travel as a list of bit numbers (shallow nodes)
MAX_REFERRALS = 8
MAX_HOSTS = 40
MAX_SEAL_COUNT = 32
MAX_NACK_RANGES = 64
MAX_CODEC_HEADERS = 65536  # codec headers for late joiners (Ogg: identification, comments, setup)
HDR_FRAGMENT = 1024  # bytes of codec headers per CODEC_HDR datagram
FRESH = 0xFFFFFFFF  # ATTACH.from_seq for a new listener: "start me at your cushion point"

# DATA: magic(2) version(1) type(1) tag(4) seq(4) ts_ms(4) flags(1) payload
DATA_HEADER = struct.Struct("!2sBB4sIIB")
DATA_HEADER_LEN = DATA_HEADER.size  # 17
MAX_PAYLOAD = MAX_DATAGRAM - DATA_HEADER_LEN
DATA_FRAME_START = 0x01  # payload begins on a decodable frame boundary
DATA_HASHED_FROM = 8  # chunk hash covers seq, ts, flags and payload

_HDR = struct.Struct("!2sBB")
_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SLOTS_AGE = struct.Struct("!BH")
_OFFER_HEAD = struct.Struct("!BBBBI")  # flags, free, slots, depth, head seq
_OFFER_TAIL = struct.Struct("!BHB")  # weakest, bitrate, spare


class WireError(ValueError):
    """A datagram that is not a valid message of this protocol."""


class UnknownMessage(WireError):
    """A well-formed header with a message type this version does not know."""


# ---------------------------------------------------------------------------------------------
# Reader / writer helpers
# ---------------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise WireError("truncated message")
        out = self.data[self.pos : end]
        self.pos = end
        return bytes(out)

    def u8(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            raise WireError("truncated message")
        self.pos = pos + 1
        return self.data[pos]

    def u16(self) -> int:
        pos = self.pos
        if pos + 2 > len(self.data):
            raise WireError("truncated message")
        self.pos = pos + 2
        return int(_U16.unpack_from(self.data, pos)[0])

    def u32(self) -> int:
        pos = self.pos
        if pos + 4 > len(self.data):
            raise WireError("truncated message")
        self.pos = pos + 4
        return int(_U32.unpack_from(self.data, pos)[0])

    def many(self, count: int, size: int) -> list[bytes]:
        """``count`` fields of ``size`` bytes each."""
        pos = self.pos
        end = pos + count * size
        if end > len(self.data):
            raise WireError("truncated message")
        data = bytes(self.data[pos:end])
        self.pos = end
        return [data[i : i + size] for i in range(0, count * size, size)]

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def addr(self) -> Addr:
        fam = self.u8()
        if fam == 4:
            ip = _ip_text(self.take(4))
        elif fam == 6:
            ip = _ip_text(self.take(16))
        else:
            raise WireError(f"bad address family {fam}")
        return (ip, self.u16())

    def addrs(self, limit: int) -> list[Addr]:
        n = self.u8()
        if n > limit:
            raise WireError("too many addresses")
        return [self.addr() for _ in range(n)]

    def reach(self) -> tuple[int, Addr | None, Addr | None]:
        flags = self.u8()
        proxy = self.addr() if flags & _REACH_PROXY else None
        lan = self.addr() if flags & _REACH_LAN else None
        return flags & 0x3F, proxy, lan

    def rest(self) -> bytes:
        out = bytes(self.data[self.pos :])
        self.pos = len(self.data)
        return out

    def anc(self) -> int:
        n = self.u8()
        if n == _ANC_DENSE:
            return int.from_bytes(self.take(ANC_LEN), "big")
        if n > ANC_SPARSE:
            raise WireError("bad ancestor filter")
        filt = 0
        for _ in range(n):
            bit = self.u16()
            if bit >= 8 * ANC_LEN:
                raise WireError("bad ancestor filter")
            filt |= 1 << bit
        return filt

    def text(self, limit: int) -> str:
        n = self.u16()
        if n > limit:
            raise WireError("string too long")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError("bad utf-8") from exc

    def end(self) -> None:
        # Extra trailing bytes are allowed (forward compatibility: newer versions may append).
        return None


@functools.lru_cache(maxsize=8192)
def _ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


@functools.lru_cache(maxsize=8192)
def _addr(a: Addr) -> bytes:
    ip = ipaddress.ip_address(a[0])
    if ip.version == 4:
        return b"\x04" + ip.packed + _U16.pack(a[1])
    return b"\x06" + ip.packed + _U16.pack(a[1])


REACH_OPEN = 0x01  # unsolicited datagrams reach it (public, or a forwarded port)
REACH_SYMMETRIC = 0x02  # behind a NAT that maps each destination to a new port
_REACH_PROXY = 0x80  # (on the wire) a proxy address follows
_REACH_LAN = 0x40  # (on the wire) a LAN address follows


@functools.lru_cache(maxsize=8192)
def _reach(reach: int, proxy: Addr | None, lan: Addr | None = None) -> bytes:
    flags = (reach & 0x3F) | (_REACH_PROXY if proxy else 0) | (_REACH_LAN if lan else 0)
    out = _U8.pack(flags)
    if proxy is not None:
        out += _addr(proxy)
    if lan is not None:
        out += _addr(lan)
    return out


def _addrs(addrs: list[Addr], limit: int) -> bytes:
    addrs = addrs[:limit]
    return _U8.pack(len(addrs)) + b"".join(map(_addr, addrs))


def ancestor_bits(node_id: bytes) -> int:
    """The 3 bits a node sets in an ancestor filter (from a hash, so ids cannot aim them)."""
    h = int.from_bytes(hashlib.blake2b(node_id, digest_size=8).digest(), "big")
    return (1 << (h & 511)) | (1 << ((h >> 9) & 511)) | (1 << ((h >> 18) & 511))


def may_hold(ancestors: int, bits: int) -> bool:
    """Whether an ancestor filter may hold the node with these bits (no false negatives)."""
    return ancestors & bits == bits


_ANC_DENSE = 0xFF


@functools.lru_cache(maxsize=8192)
def _anc(ancestors: int) -> bytes:
    # a node near the root has few bits set: their numbers (2 bytes each) are shorter than the
    # 64-byte bitmap, and shorter than the list of node ids paths used to carry
    bits: list[int] = []
    x = ancestors
    while x and len(bits) <= ANC_SPARSE:
        low = x & -x
        bits.append(low.bit_length() - 1)
        x ^= low
    if len(bits) <= ANC_SPARSE:
        return _U8.pack(len(bits)) + b"".join(_U16.pack(b) for b in bits)
    return _U8.pack(_ANC_DENSE) + ancestors.to_bytes(ANC_LEN, "big")


def _text(s: str, limit: int) -> bytes:
    b = s.encode("utf-8")[:limit]
    # never cut a multi-byte character in half
    b = b.decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(len(b)) + b


@functools.lru_cache(maxsize=256)
def header(mtype: int) -> bytes:
    return _HDR.pack(MAGIC, VERSION, mtype)


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class HostEntry:
    node_id: bytes
    tag: bytes  # station tag the host is tuned to, or 4 zero bytes
    addr: Addr
    slots: int = 0  # relay capacity it announced
    age: int = 0  # seconds since the sender last heard from it directly
    reach: int = 0  # REACH_* flags
    proxy: Addr | None = None  # where to send first to reach it (behind a NAT)
    lan: Addr | None = None  # its address on its LAN (nodes behind the same NAT use it)


@dataclass(slots=True)
class HelloReq:
    """Gossip request; also tells the receiver about the sender (tag tuned to, capacity)."""

    req_id: int
    node_id: bytes
    tag: bytes
    flags: int = 0  # HELLO_WANT_STATIONS
    slots: int = 0
    reach: int = 0  # the sender's REACH_* flags
    proxy: Addr | None = None  # the sender's proxy (it is behind a NAT)
    lan: Addr | None = None  # the sender's LAN address (it is behind a NAT)

    TYPE = HELLO_REQ

    def encode(self) -> bytes:
        return (
            header(HELLO_REQ)
            + _U32.pack(self.req_id)
            + self.node_id
            + self.tag
            + bytes([self.flags, min(self.slots, 255)])
            + _reach(self.reach, self.proxy, self.lan)
        )


@dataclass(slots=True)
class Hello:
    req_id: int
    node_id: bytes
    tag: bytes
    observed: Addr  # the requester's address as this node sees it
    hosts: list[HostEntry] = field(default_factory=list)
    reach: int = 0  # the sender's REACH_* flags
    proxy: Addr | None = None  # the sender's proxy
    lan: Addr | None = None  # the sender's LAN address

    TYPE = HELLO

    def encode(self) -> bytes:
        hosts = self.hosts[:MAX_HOSTS]
        out = [header(HELLO), _U32.pack(self.req_id), self.node_id, self.tag, _addr(self.observed)]
        tail = _reach(self.reach, self.proxy, self.lan)
        room = MAX_DATAGRAM - sum(map(len, out)) - 1 - len(tail)
        entries = []
        for h in hosts:
            e = b"".join(
                [
                    h.node_id,
                    h.tag,
                    _addr(h.addr),
                    _SLOTS_AGE.pack(min(h.slots, 255), min(max(h.age, 0), 0xFFFF)),
                    _reach(h.reach, h.proxy, h.lan),
                ]
            )
            room -= len(e)
            if room < 0:
                break  # (never fragment: the rest another time)
            entries.append(e)
        return b"".join([*out, _U8.pack(len(entries)), *entries, tail])


@dataclass(slots=True)
class JoinReq:
    """Ask for an offer; with JOIN_ATTACH, a node with a free slot accepts at once (ATTACH_OK)."""

    station_id: bytes
    req_id: int
    node_id: bytes
    flags: int = 0
    slots: int = 0  # the joiner's own relay capacity
    from_seq: int = FRESH
    pad: int = 0  # zero bytes appended: room for the OFFER of a node that never heard of us

    TYPE = JOIN_REQ

    def encode(self) -> bytes:
        return (
            header(JOIN_REQ)
            + self.station_id
            + _U32.pack(self.req_id)
            + self.node_id
            + bytes([self.flags, min(self.slots, 255)])
            + _U32.pack(self.from_seq)
            + bytes(self.pad)
        )


JOIN_ATTACH = 0x01
HELLO_WANT_STATIONS = 0x01  # answer with a station record as well
HELLO_SOURCE = 0x02  # the sender broadcasts the station of its tag (not a listener)


OFFER_IN_TREE = 0x01
OFFER_SOURCE = 0x02


@dataclass(slots=True)
class Offer:
    station_id: bytes
    req_id: int
    node_id: bytes
    flags: int
    free: int
    slots: int
    depth: int
    head_seq: int
    ancestors: int  # Bloom filter of root .. this node (see ancestor_bits)
    referrals: list[Addr]
    weakest: int = 255  # fewest slots among its children (a stronger joiner may take that place)
    bitrate: int = 0  # the station's bitrate, kbit/s (a joiner sizes its own slots with it)
    spare: int = 0  # spare upload in 1/16 of the bitrate (repairs, cushions), 255 = plenty
    token: bytes = b""  # echoed in the ATTACH: the joiner proves it receives our datagrams

    TYPE = OFFER

    def encode(self) -> bytes:
        return b"".join(
            [
                header(OFFER),
                self.station_id,
                _U32.pack(self.req_id),
                self.node_id,
                _OFFER_HEAD.pack(
                    self.flags,
                    min(self.free, 255),
                    min(self.slots, 255),
                    min(self.depth, 255),
                    self.head_seq,
                ),
                _anc(self.ancestors),
                _addrs(self.referrals, MAX_REFERRALS),
                _OFFER_TAIL.pack(
                    min(self.weakest, 255), min(self.bitrate, 0xFFFF), min(self.spare, 255)
                ),
                self.token[:8],
            ]
        )


ATTACH_PREEMPT = 0x01  # the joiner has more slots than the parent's weakest child: swap them
ATTACH_LAST = 0x02  # a joiner that found no other room may take a slot kept for relays
ATTACH_GENTLE = 0x04  # displace only if the parent can feed both while the child moves
ATTACH_ORPHAN = 0x08  # (ATTACH and JOIN_REQ) my parent went silent: your silent child is gone


@dataclass(slots=True)
class Attach:
    station_id: bytes
    node_id: bytes
    from_seq: int  # FRESH for a new listener
    slots: int = 0  # the joiner's relay capacity
    flags: int = 0
    token: bytes = b""  # the OFFER's token: proves the joiner receives what the parent sends

    TYPE = ATTACH

    def encode(self) -> bytes:
        return (
            header(ATTACH)
            + self.station_id
            + self.node_id
            + _U32.pack(self.from_seq)
            + bytes([min(self.slots, 255), self.flags])
            + self.token[:8]
        )


@dataclass(slots=True)
class AttachOk:
    station_id: bytes
    node_id: bytes
    depth: int  # the parent's depth
    head_seq: int
    start_seq: int  # first seq the parent will serve this child
    ancestors: int  # Bloom filter of root .. parent
    epoch: int = 0  # the stream epoch the parent relays (see the station record)

    TYPE = ATTACH_OK

    def encode(self) -> bytes:
        return b"".join(
            [
                header(ATTACH_OK),
                self.station_id,
                self.node_id,
                bytes([min(self.depth, 255)]),
                _U32.pack(self.head_seq),
                _U32.pack(self.start_seq),
                _anc(self.ancestors),
                _U32.pack(self.epoch & 0xFFFFFFFF),
            ]
        )


NO_FULL = 1
NO_LOOP = 2
NO_NOT_IN_TREE = 3
NO_LEAVING = 4


@dataclass(slots=True)
class AttachNo:
    station_id: bytes
    reason: int
    referrals: list[Addr]

    TYPE = ATTACH_NO

    def encode(self) -> bytes:
        return (
            header(ATTACH_NO)
            + self.station_id
            + bytes([self.reason])
            + _addrs(self.referrals, MAX_REFERRALS)
        )


@dataclass(slots=True)
class Seal:
    """A station-signed batch of chunk hashes: authenticates chunks first_seq..first_seq+n-1."""

    tag: bytes
    first_seq: int
    hashes: list[bytes]
    signature: bytes

    TYPE = SEAL

    def encode(self) -> bytes:
        return (
            header(SEAL)
            + self.tag
            + _U32.pack(self.first_seq)
            + bytes([len(self.hashes)])
            + b"".join(self.hashes)
            + self.signature
        )

    @staticmethod
    def signed_bytes(station_id: bytes, first_seq: int, hashes: list[bytes]) -> bytes:
        return (
            b"SP-seal" + station_id + _U32.pack(first_seq) + bytes([len(hashes)]) + b"".join(hashes)
        )


@dataclass(slots=True)
class Nack:
    tag: bytes
    ranges: list[tuple[int, int]]  # (first seq, count)

    TYPE = NACK

    def encode(self) -> bytes:
        rs = self.ranges[:MAX_NACK_RANGES]
        return (
            header(NACK)
            + self.tag
            + bytes([len(rs)])
            + b"".join(_U32.pack(s) + _U16.pack(min(c, 0xFFFF)) for s, c in rs)
        )


@dataclass(slots=True)
class PStat:
    """Parent -> child status: heartbeat, tree position and a backup parent."""

    tag: bytes
    depth: int  # the parent's depth
    head_seq: int
    ancestors: int  # Bloom filter of root .. parent
    backup: Addr | None  # the parent's own parent (grandparent of the child)
    spare: int = 0  # the parent's spare upload in 1/16 of the bitrate, 255 = plenty

    TYPE = PSTAT

    def encode(self) -> bytes:
        b = _addrs([self.backup], 1) if self.backup else b"\x00"
        return (
            header(PSTAT)
            + self.tag
            + bytes([min(self.depth, 255)])
            + _U32.pack(self.head_seq)
            + _anc(self.ancestors)
            + b
            + bytes([min(self.spare, 255)])
        )


@dataclass(slots=True)
class CStat:
    """Child -> parent status: liveness and spare relay capacity."""

    tag: bytes
    node_id: bytes
    free: int
    slots: int
    next_seq: int
    loss: int = 0  # chunks this child had to ask for again since its last status

    TYPE = CSTAT

    def encode(self) -> bytes:
        return (
            header(CSTAT)
            + self.tag
            + self.node_id
            + bytes([min(self.free, 255), min(self.slots, 255)])
            + _U32.pack(self.next_seq)
            + bytes([min(self.loss, 255)])
        )


@dataclass(slots=True)
class Leave:
    tag: bytes
    grace_ms: int
    referrals: list[Addr]

    TYPE = LEAVE

    def encode(self) -> bytes:
        return (
            header(LEAVE)
            + self.tag
            + _U16.pack(min(self.grace_ms, 0xFFFF))
            + _addrs(self.referrals, MAX_REFERRALS)
        )


@dataclass(slots=True)
class Detach:
    tag: bytes
    node_id: bytes

    TYPE = DETACH

    def encode(self) -> bytes:
        return header(DETACH) + self.tag + self.node_id


REPORT_STARVING = 1
REPORT_FORGED = 2  # it sent us forged data (we banned it)


@dataclass(slots=True)
class Report:
    """A node that left its parent for starving it, or banned it for forged data, tells the
    parent's parent (its backup); a node referred to a peer it banned for forged data tells
    the peer that referred it (REPORT_FORGED)."""

    tag: bytes
    node_id: bytes  # the reporter
    accused: bytes  # node id of the parent it left
    reason: int = REPORT_STARVING

    TYPE = REPORT

    def encode(self) -> bytes:
        return header(REPORT) + self.tag + self.node_id + self.accused + bytes([self.reason & 0xFF])


@dataclass(slots=True)
class StationMsg:
    record: bytes  # a signed station record (see records.py)

    TYPE = STATION

    def encode(self) -> bytes:
        return header(STATION) + self.record


@dataclass(slots=True)
class StationReq:
    station_id: bytes

    TYPE = STATION_REQ

    def encode(self) -> bytes:
        return header(STATION_REQ) + self.station_id


@dataclass(slots=True)
class CodecHdrReq:
    """Child -> parent: send me the codec headers whose hash the station record names."""

    tag: bytes
    hash: bytes  # BLAKE2b-128 of the headers, from the signed station record
    offset: int  # first byte wanted

    TYPE = CODEC_HDR_REQ

    def encode(self) -> bytes:
        return header(CODEC_HDR_REQ) + self.tag + self.hash + _U32.pack(self.offset)


@dataclass(slots=True)
class CodecHdr:
    """One fragment of a station's codec headers (checked against the record's hash)."""

    tag: bytes
    hash: bytes
    total: int
    offset: int
    data: bytes

    TYPE = CODEC_HDR

    def encode(self) -> bytes:
        return (
            header(CODEC_HDR)
            + self.tag
            + self.hash
            + _U32.pack(self.total)
            + _U32.pack(self.offset)
            + self.data
        )


@dataclass(slots=True)
class Challenge:
    """ "Prove you receive what I send to this address": echo the token in a RESPONSE."""

    token: bytes  # 8 bytes, unpredictable, bound to the address and the minute

    TYPE = CHALLENGE

    def encode(self) -> bytes:
        return header(CHALLENGE) + self.token


@dataclass(slots=True)
class Response:
    token: bytes

    TYPE = RESPONSE

    def encode(self) -> bytes:
        return header(RESPONSE) + self.token


@dataclass(slots=True)
class ReachReq:
    """ "Have someone I never wrote to send me a probe": are unsolicited datagrams let in?"""

    nonce: int

    TYPE = REACH_REQ

    def encode(self) -> bytes:
        return header(REACH_REQ) + _U32.pack(self.nonce)


@dataclass(slots=True)
class ReachFwd:
    """Asked by a REACH_REQ's receiver of a third node: send a probe to ``target``."""

    nonce: int
    target: Addr

    TYPE = REACH_FWD

    def encode(self) -> bytes:
        return header(REACH_FWD) + _U32.pack(self.nonce) + _addr(self.target)


@dataclass(slots=True)
class ReachProbe:
    nonce: int

    TYPE = REACH_PROBE

    def encode(self) -> bytes:
        return header(REACH_PROBE) + _U32.pack(self.nonce)


@dataclass(slots=True)
class ProxyReq:
    """A node behind a NAT asks (and every 20 s asks again: a keepalive) to be proxied.

    ``public``: the asker's public address, sent when it asks a neighbour on its own LAN (at
    the neighbour's LAN address): the proxy then forwards what arrives for that public address
    to the LAN address the request came from."""

    node_id: bytes
    public: Addr | None = None

    TYPE = PROXY_REQ

    def encode(self) -> bytes:
        out = header(PROXY_REQ) + self.node_id
        return out if self.public is None else out + _addr(self.public)


@dataclass(slots=True)
class ProxyOk:
    ok: int  # 1: proxied (keep the path open), 0: no room

    TYPE = PROXY_OK

    def encode(self) -> bytes:
        return header(PROXY_OK) + _U8.pack(self.ok)


@dataclass(slots=True)
class Via:
    """To a proxy: pass ``inner`` (a whole datagram) on to its client ``target``."""

    target: Addr
    inner: bytes

    TYPE = VIA

    def encode(self) -> bytes:
        return header(VIA) + _addr(self.target) + self.inner


@dataclass(slots=True)
class Fwd:
    """From a proxy to its client: ``inner`` came from ``origin`` (as the proxy saw it)."""

    origin: Addr
    inner: bytes

    TYPE = FWD

    def encode(self) -> bytes:
        return header(FWD) + _addr(self.origin) + self.inner


@dataclass(slots=True)
class Punch:
    """Opens this side's NAT toward the receiver (both sides send one: hole punching)."""

    node_id: bytes

    TYPE = PUNCH

    def encode(self) -> bytes:
        return header(PUNCH) + self.node_id


@dataclass(slots=True)
class BwTrain:
    """One datagram of a packet train (the receiver times their arrival)."""

    train: int
    index: int
    count: int
    pad: bytes

    TYPE = BW_TRAIN

    def encode(self) -> bytes:
        return header(BW_TRAIN) + _U32.pack(self.train) + bytes([self.index, self.count]) + self.pad


@dataclass(slots=True)
class BwReport:
    """What arrived of a train: datagrams, bytes after the first, first-to-last microseconds."""

    train: int
    received: int
    bytes: int
    span_us: int

    TYPE = BW_REPORT

    def encode(self) -> bytes:
        return (
            header(BW_REPORT)
            + _U32.pack(self.train)
            + bytes([min(self.received, 255)])
            + _U32.pack(min(self.bytes, 0xFFFFFFFF))
            + _U32.pack(min(self.span_us, 0xFFFFFFFF))
        )


Message = (
    Report
    | HelloReq
    | Hello
    | JoinReq
    | Offer
    | Attach
    | AttachOk
    | AttachNo
    | Seal
    | Nack
    | PStat
    | CStat
    | Leave
    | Detach
    | StationMsg
    | StationReq
    | CodecHdrReq
    | CodecHdr
    | ReachReq
    | ReachFwd
    | ReachProbe
    | ProxyReq
    | ProxyOk
    | Via
    | Fwd
    | Punch
    | BwTrain
    | BwReport
    | Challenge
    | Response
)


def check_header(data: bytes) -> int:
    """Return the message type of ``data`` or raise WireError."""
    if len(data) < 4:
        raise WireError("datagram too short")
    if len(data) > MAX_DATAGRAM:
        raise WireError("datagram too long")
    if data[0:2] != MAGIC:
        raise WireError("bad magic")
    if data[2] != VERSION:
        raise WireError(f"unsupported version {data[2]}")
    return data[3]


# Decoding: one function per message type, reading fixed fields with precompiled structs (the
# receive path of every control datagram). A read past the end raises struct.error or
# IndexError, which decode() turns into WireError.

_S_HELLO_REQ = struct.Struct("!I8s4sBB")
_S_HELLO = struct.Struct("!I8s4s")
_S_HOST = struct.Struct("!8s4s")
_S_JOIN_REQ = struct.Struct("!16sI8sBBI")
_S_OFFER = struct.Struct("!16sI8sBBBBI")
_S_OFFER_TAIL = _OFFER_TAIL
_S_ATTACH = struct.Struct("!16s8sIBB")
_S_ATTACH_OK = struct.Struct("!16s8sBII")
_S_ATTACH_NO = struct.Struct("!16sB")
_S_SEAL = struct.Struct("!4sIB")
_S_TAG_N = struct.Struct("!4sB")
_S_RANGE = struct.Struct("!IH")
_S_PSTAT = struct.Struct("!4sBI")
_S_CSTAT = struct.Struct("!4s8sBBIB")
_S_LEAVE = struct.Struct("!4sH")
_S_DETACH = struct.Struct("!4s8s")
_S_REPORT = struct.Struct("!4s8s8sB")
_S_U32_ADDR_FAM = struct.Struct("!IB")
_S_BW_TRAIN = struct.Struct("!IBB")
_S_BW_REPORT = struct.Struct("!IBII")
_S_HDR_REQ = struct.Struct("!4s16sI")
_S_HDR = struct.Struct("!4s16sII")


def _truncated() -> WireError:
    return WireError("truncated message")


@functools.lru_cache(maxsize=8192)
def _addr_of(raw: bytes) -> Addr:
    """An address from its wire form (family, ip, port), checked for length by the caller."""
    return (_ip_text(raw[1:-2]), (raw[-2] << 8) | raw[-1])


def _addr_at(data: bytes, pos: int) -> tuple[Addr, int]:
    fam = data[pos]
    if fam == 4:
        end = pos + 7
    elif fam == 6:
        end = pos + 19
    else:
        raise WireError(f"bad address family {fam}")
    if end > len(data):
        raise _truncated()
    return _addr_of(data[pos:end]), end


def _addrs_at(data: bytes, pos: int, limit: int) -> tuple[list[Addr], int]:
    n = data[pos]
    if n > limit:
        raise WireError("too many addresses")
    pos += 1
    out = []
    for _ in range(n):
        a, pos = _addr_at(data, pos)
        out.append(a)
    return out, pos


def _reach_at(data: bytes, pos: int) -> tuple[int, Addr | None, Addr | None, int]:
    flags = data[pos]
    pos += 1
    proxy = lan = None
    if flags & _REACH_PROXY:
        proxy, pos = _addr_at(data, pos)
    if flags & _REACH_LAN:
        lan, pos = _addr_at(data, pos)
    return flags & 0x3F, proxy, lan, pos


@functools.lru_cache(maxsize=8192)
def _sparse_anc(raw: bytes) -> int:
    """An ancestor filter from its list of bit numbers (2 bytes each)."""
    filt = 0
    for i in range(0, len(raw), 2):
        bit = (raw[i] << 8) | raw[i + 1]
        if bit >= 8 * ANC_LEN:
            raise WireError("bad ancestor filter")
        filt |= 1 << bit
    return filt


def _anc_at(data: bytes, pos: int) -> tuple[int, int]:
    n = data[pos]
    if n == _ANC_DENSE:
        end = pos + 1 + ANC_LEN
        if end > len(data):
            raise _truncated()
        return int.from_bytes(data[pos + 1 : end], "big"), end
    if n > ANC_SPARSE:
        raise WireError("bad ancestor filter")
    end = pos + 1 + 2 * n
    if end > len(data):
        raise _truncated()
    return _sparse_anc(data[pos + 1 : end]), end


def _dec_hello_req(data: bytes) -> Message:
    req_id, nid, tag, flags, slots = _S_HELLO_REQ.unpack_from(data, 4)
    reach, proxy, lan, _ = _reach_at(data, 22)
    return HelloReq(req_id, nid, tag, flags, slots, reach, proxy, lan)


def _dec_hello(data: bytes) -> Message:
    req_id, nid, tag = _S_HELLO.unpack_from(data, 4)
    observed, pos = _addr_at(data, 20)
    n = data[pos]
    if n > MAX_HOSTS:
        raise WireError("too many hosts")
    pos += 1
    hosts = []
    for _ in range(n):
        hid, htag = _S_HOST.unpack_from(data, pos)
        addr, pos = _addr_at(data, pos + 12)
        slots = data[pos]
        age = _U16.unpack_from(data, pos + 1)[0]
        reach, proxy, lan, pos = _reach_at(data, pos + 3)
        hosts.append(HostEntry(hid, htag, addr, slots, age, reach, proxy, lan))
    reach, proxy, lan, _ = _reach_at(data, pos)
    return Hello(req_id, nid, tag, observed, hosts, reach, proxy, lan)


def _dec_join_req(data: bytes) -> Message:
    return JoinReq(*_S_JOIN_REQ.unpack_from(data, 4), len(data) - 4 - _S_JOIN_REQ.size)


def _dec_offer(data: bytes) -> Message:
    sid, req_id, nid, flags, free, slots, depth, head = _S_OFFER.unpack_from(data, 4)
    anc, pos = _anc_at(data, 4 + _S_OFFER.size)
    refs, pos = _addrs_at(data, pos, MAX_REFERRALS)
    weakest, bitrate, spare = _S_OFFER_TAIL.unpack_from(data, pos)
    token = data[pos + _S_OFFER_TAIL.size : pos + _S_OFFER_TAIL.size + 8]
    return Offer(
        sid, req_id, nid, flags, free, slots, depth, head, anc, refs, weakest, bitrate, spare, token
    )


def _dec_attach(data: bytes) -> Message:
    end = 4 + _S_ATTACH.size
    return Attach(*_S_ATTACH.unpack_from(data, 4), data[end : end + 8])


def _dec_attach_ok(data: bytes) -> Message:
    sid, nid, depth, head, start = _S_ATTACH_OK.unpack_from(data, 4)
    anc, pos = _anc_at(data, 4 + _S_ATTACH_OK.size)
    return AttachOk(sid, nid, depth, head, start, anc, _U32.unpack_from(data, pos)[0])


def _dec_attach_no(data: bytes) -> Message:
    sid, reason = _S_ATTACH_NO.unpack_from(data, 4)
    refs, _ = _addrs_at(data, 21, MAX_REFERRALS)
    return AttachNo(sid, reason, refs)


def _dec_seal(data: bytes) -> Message:
    tag, first, n = _S_SEAL.unpack_from(data, 4)
    if n == 0 or n > MAX_SEAL_COUNT:
        raise WireError("bad seal count")
    pos = 4 + _S_SEAL.size
    end = pos + n * HASH_LEN
    if end + SIG_LEN > len(data):
        raise _truncated()
    hashes = [data[i : i + HASH_LEN] for i in range(pos, end, HASH_LEN)]
    return Seal(tag, first, hashes, data[end : end + SIG_LEN])


def _dec_nack(data: bytes) -> Message:
    tag, n = _S_TAG_N.unpack_from(data, 4)
    if n > MAX_NACK_RANGES:
        raise WireError("too many ranges")
    end = 9 + n * _S_RANGE.size
    if end > len(data):
        raise _truncated()
    return Nack(tag, list(_S_RANGE.iter_unpack(data[9:end])))


def _dec_pstat(data: bytes) -> Message:
    tag, depth, head = _S_PSTAT.unpack_from(data, 4)
    anc, pos = _anc_at(data, 4 + _S_PSTAT.size)
    backups, pos = _addrs_at(data, pos, 1)
    return PStat(tag, depth, head, anc, backups[0] if backups else None, data[pos])


def _dec_cstat(data: bytes) -> Message:
    return CStat(*_S_CSTAT.unpack_from(data, 4))


def _dec_leave(data: bytes) -> Message:
    tag, grace = _S_LEAVE.unpack_from(data, 4)
    refs, _ = _addrs_at(data, 10, MAX_REFERRALS)
    return Leave(tag, grace, refs)


def _dec_detach(data: bytes) -> Message:
    return Detach(*_S_DETACH.unpack_from(data, 4))


def _dec_report(data: bytes) -> Message:
    return Report(*_S_REPORT.unpack_from(data, 4))


def _dec_station(data: bytes) -> Message:
    return StationMsg(data[4:])


def _dec_station_req(data: bytes) -> Message:
    if len(data) < 4 + STATION_ID_LEN:
        raise _truncated()
    return StationReq(data[4 : 4 + STATION_ID_LEN])


def _dec_reach_req(data: bytes) -> Message:
    return ReachReq(_U32.unpack_from(data, 4)[0])


def _dec_reach_fwd(data: bytes) -> Message:
    nonce = _U32.unpack_from(data, 4)[0]
    target, _ = _addr_at(data, 8)
    return ReachFwd(nonce, target)


def _dec_reach_probe(data: bytes) -> Message:
    return ReachProbe(_U32.unpack_from(data, 4)[0])


def _dec_proxy_req(data: bytes) -> Message:
    if len(data) < 4 + ID_LEN:
        raise _truncated()
    end = 4 + ID_LEN
    public = _addr_at(data, end)[0] if len(data) > end else None
    return ProxyReq(data[4:end], public)


def _dec_proxy_ok(data: bytes) -> Message:
    return ProxyOk(data[4])


def _dec_via(data: bytes) -> Message:
    target, pos = _addr_at(data, 4)
    return Via(target, data[pos:])


def _dec_fwd(data: bytes) -> Message:
    origin, pos = _addr_at(data, 4)
    return Fwd(origin, data[pos:])


def _dec_punch(data: bytes) -> Message:
    if len(data) < 4 + ID_LEN:
        raise _truncated()
    return Punch(data[4 : 4 + ID_LEN])


def _dec_bw_train(data: bytes) -> Message:
    train, index, count = _S_BW_TRAIN.unpack_from(data, 4)
    return BwTrain(train, index, count, data[4 + _S_BW_TRAIN.size :])


def _dec_bw_report(data: bytes) -> Message:
    return BwReport(*_S_BW_REPORT.unpack_from(data, 4))


def _dec_codec_hdr_req(data: bytes) -> Message:
    return CodecHdrReq(*_S_HDR_REQ.unpack_from(data, 4))


def _dec_codec_hdr(data: bytes) -> Message:
    tag, h, total, offset = _S_HDR.unpack_from(data, 4)
    chunk = data[4 + _S_HDR.size :]
    if total > MAX_CODEC_HEADERS or offset + len(chunk) > total:
        raise WireError("codec headers out of bounds")
    return CodecHdr(tag, h, total, offset, chunk)


def _dec_token(cls: type[Challenge] | type[Response]):  # type: ignore[no-untyped-def]
    def dec(data: bytes) -> Message:
        if len(data) != 12:
            raise _truncated()
        return cls(data[4:12])

    return dec


_DECODERS = {
    HELLO_REQ: _dec_hello_req,
    HELLO: _dec_hello,
    JOIN_REQ: _dec_join_req,
    OFFER: _dec_offer,
    ATTACH: _dec_attach,
    ATTACH_OK: _dec_attach_ok,
    ATTACH_NO: _dec_attach_no,
    SEAL: _dec_seal,
    NACK: _dec_nack,
    PSTAT: _dec_pstat,
    CSTAT: _dec_cstat,
    LEAVE: _dec_leave,
    DETACH: _dec_detach,
    REPORT: _dec_report,
    STATION: _dec_station,
    STATION_REQ: _dec_station_req,
    CODEC_HDR_REQ: _dec_codec_hdr_req,
    CODEC_HDR: _dec_codec_hdr,
    REACH_REQ: _dec_reach_req,
    REACH_FWD: _dec_reach_fwd,
    REACH_PROBE: _dec_reach_probe,
    PROXY_REQ: _dec_proxy_req,
    PROXY_OK: _dec_proxy_ok,
    VIA: _dec_via,
    FWD: _dec_fwd,
    PUNCH: _dec_punch,
    BW_TRAIN: _dec_bw_train,
    BW_REPORT: _dec_bw_report,
    CHALLENGE: _dec_token(Challenge),
    RESPONSE: _dec_token(Response),
}


def decode(data: bytes) -> Message:
    """Decode a control message (not DATA: use :data:`DATA_HEADER` for that)."""
    mtype = check_header(data)
    dec = _DECODERS.get(mtype)
    if dec is None:
        if mtype == DATA:
            raise WireError("DATA is not decoded into an object; use DATA_HEADER")
        raise UnknownMessage(f"unknown message type {mtype:#x}")
    if type(data) is not bytes:
        data = bytes(data)  # (slices of it become message fields; addresses are cached by them)
    try:
        return dec(data)
    except (struct.error, IndexError) as exc:
        raise _truncated() from exc


def encode_data(tag: bytes, seq: int, ts_ms: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise WireError("payload too large")
    return DATA_HEADER.pack(MAGIC, VERSION, DATA, tag, seq, ts_ms & 0xFFFFFFFF, flags) + payload


def decode_data(data: bytes) -> tuple[bytes, int, int, int, bytes]:
    """(tag, seq, ts_ms, flags, payload) of a DATA datagram; raises WireError."""
    if len(data) < DATA_HEADER_LEN:
        raise WireError("truncated data")
    if len(data) > MAX_DATAGRAM:
        raise WireError("datagram too long")
    magic, ver, mtype, tag, seq, ts, flags = DATA_HEADER.unpack_from(data)
    if magic != MAGIC or ver != VERSION or mtype != DATA:
        raise WireError("not a data message")
    return tag, seq, ts, flags, bytes(data[DATA_HEADER_LEN:])
