"""Station identity and signed station records (pure computation, no I/O).

A station is an Ed25519 key pair; its id is BLAKE2b-128 of the public key. The station record
(name, genre, codec, now-playing title...) is signed by the station key, versioned by the
broadcaster's clock in milliseconds, and relayed unchanged, so any node can check it. Chunks are
authenticated by signed seals over BLAKE2b-128 hashes (see node.py and docs/protocol.md).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..types import StationMeta
from .wire import HASH_LEN, SIG_LEN, STATION_ID_LEN, TAG_LEN, WireError, _Reader, _text

RECORD_DOMAIN = b"SP-station"
MAX_TEXT = 200
MAX_TITLE = 250

FLAG_ON_AIR = 0x01
FLAG_PUBLIC = 0x02


def station_id_of(public_key: bytes) -> bytes:
    return hashlib.blake2b(public_key, digest_size=STATION_ID_LEN).digest()


def tag_of(station_id: bytes) -> bytes:
    return station_id[:TAG_LEN]


_CHUNK_HASHES: dict[bytes, bytes] = {}  # datagram -> chunk_hash (insertion order: oldest first)
CHUNK_HASH_CACHE = 1024


def chunk_hash(datagram: bytes | memoryview) -> bytes:
    """Hash of a DATA datagram's authenticated part (seq, timestamp, flags, payload).

    Remembered process-wide for the last few datagrams (by exact bytes, like the Verifier's
    signatures): many nodes in one process (the simulator) check the same chunk once between
    them. A pure function of the bytes, so a forged chunk is hashed and refused as before.
    """
    if type(datagram) is bytes:
        h = _CHUNK_HASHES.get(datagram)
        if h is None:
            h = hashlib.blake2b(memoryview(datagram)[8:], digest_size=HASH_LEN).digest()
            if len(_CHUNK_HASHES) >= CHUNK_HASH_CACHE:
                del _CHUNK_HASHES[next(iter(_CHUNK_HASHES))]
            _CHUNK_HASHES[datagram] = h
        return h
    return hashlib.blake2b(memoryview(datagram)[8:], digest_size=HASH_LEN).digest()


def encode_station_id(station_id: bytes) -> str:
    """Text form of a station id: 26 lowercase base32 characters."""
    return base64.b32encode(station_id).decode("ascii").rstrip("=").lower()


def decode_station_id(text: str) -> bytes:
    t = text.strip().upper()
    try:
        raw = base64.b32decode(t + "=" * (-len(t) % 8))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a station id: {text!r}") from exc
    if len(raw) != STATION_ID_LEN:
        raise ValueError(f"not a station id: {text!r}")
    return raw


class StationKey:
    """A station's private key (kept by the broadcaster in its state dir)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key().public_bytes_raw()
        self.station_id = station_id_of(self.public)

    @classmethod
    def generate(cls) -> StationKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> StationKey:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self._private.private_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


class Verifier:
    """Verifies signatures of one station (caches the parsed public key).

    Good signatures are remembered process-wide (bounded, by exact bytes): many nodes in one
    process (the simulator, ``streamer demo``) verify the same seal once between them. A
    signature that did not verify is never cached, so a forgery is checked every time.
    """

    __slots__ = ("_key", "public")

    _good: OrderedDict[bytes, None] = OrderedDict()
    CACHE_SIZE = 4096

    def __init__(self, public: bytes) -> None:
        self.public = public
        self._key = Ed25519PublicKey.from_public_bytes(public)

    def verify(self, signature: bytes, data: bytes) -> bool:
        token = self.public + signature + data
        good = Verifier._good
        if token in good:
            return True
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            return False
        good[token] = None
        if len(good) > Verifier.CACHE_SIZE:
            good.popitem(last=False)
        return True


@dataclass(frozen=True, slots=True)
class StationRecord:
    """A station's signed self-description."""

    public_key: bytes
    version: int  # broadcaster's clock, ms; newer wins
    on_air: bool
    meta: StationMeta
    title: str
    headers_hash: bytes  # BLAKE2b-128 of codec headers for late joiners, zeros if none
    epoch: int = 0  # changes when the broadcast restarts (sequence numbers start again)
    signature: bytes = b""

    @property
    def station_id(self) -> bytes:
        return station_id_of(self.public_key)

    def _body(self) -> bytes:
        m = self.meta
        flags = (FLAG_ON_AIR if self.on_air else 0) | (FLAG_PUBLIC if m.public else 0)
        return b"".join(
            [
                self.public_key,
                self.version.to_bytes(8, "big"),
                bytes([flags]),
                _text(m.name, MAX_TEXT),
                _text(m.genre, MAX_TEXT),
                _text(m.description, MAX_TEXT),
                _text(m.url, MAX_TEXT),
                _text(m.content_type, 64),
                _text(m.codec, 32),
                _text(self.title, MAX_TITLE),
                struct.pack("!HIB", min(m.bitrate, 0xFFFF), m.sample_rate, min(m.channels, 255)),
                self.headers_hash,
                struct.pack("!I", self.epoch & 0xFFFFFFFF),
            ]
        )

    def signed(self, key: StationKey) -> StationRecord:
        unsigned = replace(self, signature=b"")
        return replace(self, signature=key.sign(RECORD_DOMAIN + unsigned._body()))

    def encode(self) -> bytes:
        return self._body() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> StationRecord:
        """Parse a record; raises WireError. Does not check the signature (see verify)."""
        r = _Reader(data, 0)
        pub = r.take(32)
        version = r.u64()
        flags = r.u8()
        name, genre, desc, url = (r.text(MAX_TEXT * 4) for _ in range(4))
        content_type, codec, title = r.text(64 * 4), r.text(32 * 4), r.text(MAX_TITLE * 4)
        bitrate, sample_rate, channels = r.u16(), r.u32(), r.u8()
        headers_hash = r.take(HASH_LEN)
        epoch = r.u32()
        sig = r.take(SIG_LEN)
        meta = StationMeta(
            name=name,
            genre=genre,
            description=desc,
            url=url,
            content_type=content_type,
            codec=codec,
            bitrate=bitrate,
            sample_rate=sample_rate,
            channels=channels,
            public=bool(flags & FLAG_PUBLIC),
        )
        return cls(pub, version, bool(flags & FLAG_ON_AIR), meta, title, headers_hash, epoch, sig)

    def verify(self, verifier: Verifier | None = None) -> bool:
        v = verifier or Verifier(self.public_key)
        return v.verify(self.signature, RECORD_DOMAIN + self._body())


def parse_verified_record(data: bytes, expected_station: bytes | None = None) -> StationRecord:
    """Decode and verify a record; raises WireError if anything is wrong."""
    rec = StationRecord.decode(data)
    if expected_station is not None and rec.station_id != expected_station:
        raise WireError("record of another station")
    if not rec.verify():
        raise WireError("bad station record signature")
    return rec
