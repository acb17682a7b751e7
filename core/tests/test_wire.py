"""Wire codec: every message round-trips; arbitrary bytes never raise anything but WireError."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p.overlay import wire
from streamerp2p.overlay.records import (
    StationKey,
    StationRecord,
    decode_station_id,
    encode_station_id,
    parse_verified_record,
)
from streamerp2p.types import StationMeta

ids = st.binary(min_size=8, max_size=8)
tags = st.binary(min_size=4, max_size=4)
sids = st.binary(min_size=16, max_size=16)
ancs = st.integers(0, (1 << (8 * wire.ANC_LEN)) - 1)
u32 = st.integers(0, 2**32 - 1)
u8 = st.integers(0, 255)
v4 = st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535))
v6 = st.tuples(st.ip_addresses(v=6).map(str), st.integers(0, 65535))
addrs = st.one_of(v4, v6)

reach = st.integers(0, 0x3F)
proxies = st.none() | addrs
inner = st.binary(min_size=4, max_size=1000)

messages = st.one_of(
    st.builds(wire.HelloReq, u32, ids, tags, u8, u8, reach, proxies, proxies),
    st.builds(
        wire.Hello,
        u32,
        ids,
        tags,
        addrs,
        st.lists(
            st.builds(wire.HostEntry, ids, tags, addrs, u8, st.integers(0, 65535), reach, proxies),
            max_size=12,  # (answers carry 3; 12 with IPv6 proxies and LANs fit a datagram)
        ),
        reach,
        proxies,
        proxies,
    ),
    st.builds(wire.ReachReq, u32),
    st.builds(wire.ReachFwd, u32, addrs),
    st.builds(wire.ReachProbe, u32),
    st.builds(wire.ProxyReq, ids),
    st.builds(wire.ProxyReq, ids, addrs),
    st.builds(wire.ProxyOk, u8),
    st.builds(wire.Via, addrs, inner),
    st.builds(wire.Fwd, addrs, inner),
    st.builds(wire.Punch, ids),
    st.builds(wire.JoinReq, sids, u32, ids, u8, u8, u32),
    st.builds(
        wire.Offer,
        sids,
        u32,
        ids,
        u8,
        u8,
        u8,
        u8,
        u32,
        ancs,
        st.lists(addrs, max_size=wire.MAX_REFERRALS),
        u8,
        st.integers(0, 65535),
        u8,
    ),
    st.builds(wire.Attach, sids, ids, u32, u8, u8),
    st.builds(wire.AttachOk, sids, ids, u8, u32, u32, ancs, u32),
    st.builds(wire.AttachNo, sids, u8, st.lists(addrs, max_size=wire.MAX_REFERRALS)),
    st.builds(
        wire.Seal,
        tags,
        u32,
        st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=wire.MAX_SEAL_COUNT),
        st.binary(min_size=64, max_size=64),
    ),
    st.builds(
        wire.Nack,
        tags,
        st.lists(st.tuples(u32, st.integers(0, 65535)), max_size=wire.MAX_NACK_RANGES),
    ),
    st.builds(wire.PStat, tags, u8, u32, ancs, st.none() | addrs, u8),
    st.builds(wire.CStat, tags, ids, u8, u8, u32, u8),
    st.builds(
        wire.Leave, tags, st.integers(0, 65535), st.lists(addrs, max_size=wire.MAX_REFERRALS)
    ),
    st.builds(wire.Detach, tags, ids),
    st.builds(wire.Report, tags, ids, ids, st.integers(0, 255)),
    st.builds(wire.StationReq, sids),
)


@given(messages)
def test_roundtrip_and_size(msg: wire.Message) -> None:
    data = msg.encode()
    assert len(data) <= wire.MAX_DATAGRAM, type(msg).__name__
    assert wire.decode(data) == msg


@given(st.binary(max_size=1500))
@settings(max_examples=2000)
def test_garbage_raises_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.decode(data)


@given(messages, st.data())
def test_mutated_messages_raise_only_wire_error(msg: wire.Message, data: st.DataObject) -> None:
    raw = bytearray(msg.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(wire.WireError):
            wire.decode(candidate)


def test_header_checks() -> None:
    ok = wire.JoinReq(b"s" * 16, 1, b"n" * 8).encode()
    with pytest.raises(wire.WireError, match="magic"):
        wire.decode(b"XX" + ok[2:])
    with pytest.raises(wire.WireError, match="version"):
        wire.decode(ok[:2] + b"\x09" + ok[3:])
    with pytest.raises(wire.UnknownMessage):
        wire.decode(ok[:3] + b"\x7f" + ok[4:])
    with pytest.raises(wire.WireError, match="truncated"):
        wire.decode(ok[:-1])
    with pytest.raises(wire.WireError, match="too long"):
        wire.decode(ok + b"\x00" * 1400)


def test_data_roundtrip_and_payload_bound() -> None:
    d = wire.encode_data(b"abcd", 7, 123456, wire.DATA_FRAME_START, b"x" * wire.MAX_PAYLOAD)
    assert len(d) == wire.MAX_DATAGRAM
    assert wire.decode_data(d) == (b"abcd", 7, 123456, 1, b"x" * wire.MAX_PAYLOAD)
    with pytest.raises(wire.WireError):
        wire.encode_data(b"abcd", 7, 0, 0, b"x" * (wire.MAX_PAYLOAD + 1))


def test_station_record_signature_and_tamper() -> None:
    key = StationKey.generate()
    meta = StationMeta(name="Radio Ünïcode", genre="jazz", codec="mp3", bitrate=128)
    rec = StationRecord(key.public, 5, True, meta, "Song \u2013 Title", b"\x00" * 16).signed(key)
    raw = rec.encode()
    assert len(raw) < wire.MAX_DATAGRAM - 4
    back = parse_verified_record(raw, key.station_id)
    assert back.meta == meta and back.title == "Song \u2013 Title"
    tampered = bytearray(raw)
    tampered[50] ^= 1
    with pytest.raises(wire.WireError):
        parse_verified_record(bytes(tampered), key.station_id)
    with pytest.raises(wire.WireError, match="another station"):
        parse_verified_record(raw, StationKey.generate().station_id)


def test_station_id_text_form() -> None:
    key = StationKey.generate()
    text = encode_station_id(key.station_id)
    assert len(text) == 26 and text.islower()
    assert decode_station_id(text.upper()) == key.station_id
    with pytest.raises(ValueError):
        decode_station_id("not-an-id")


@given(st.lists(ids, min_size=1, max_size=60), ids)
def test_ancestor_filter_has_no_false_negatives(chain: list[bytes], other: bytes) -> None:
    filt = 0
    for node_id in chain:
        filt |= wire.ancestor_bits(node_id)
    assert all(wire.may_hold(filt, wire.ancestor_bits(n)) for n in chain)
    assert bin(wire.ancestor_bits(other)).count("1") in (1, 2, 3)


def test_ancestor_filter_false_positives_are_rare_at_real_depths() -> None:
    rng = random.Random(7)
    hits = trials = 0
    for _ in range(200):
        filt = 0
        for _ in range(20):  # a node 20 hops below the broadcaster
            filt |= wire.ancestor_bits(rng.randbytes(8))
        for _ in range(100):
            trials += 1
            hits += wire.may_hold(filt, wire.ancestor_bits(rng.randbytes(8)))
    assert hits / trials < 0.005, hits / trials
