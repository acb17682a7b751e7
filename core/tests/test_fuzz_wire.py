"""Fuzzing the overlay wire decoder in CI (the long campaigns: ``streamer bench fuzz``).

Deterministic (derandomized, no example database) and bounded. What is checked is the oracle
of the ``wire`` bench target: only WireError escapes, and a message that decodes re-encodes to
bytes that decode to the same message.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamerp2p import benchfuzz
from streamerp2p.overlay import wire
from streamerp2p.overlay.records import StationKey, StationRecord, parse_verified_record
from streamerp2p.testing import fuzz_settings
from streamerp2p.types import StationMeta
from test_wire import ids, messages, sids, tags, u8, u32

FUZZ = fuzz_settings()
SEEDS = benchfuzz.wire_target().seeds

# the message types test_wire's strategy leaves out
more_messages = st.one_of(
    st.builds(wire.CodecHdrReq, tags, st.binary(min_size=16, max_size=16), u32),
    st.integers(0, wire.MAX_CODEC_HEADERS).flatmap(
        lambda total: st.builds(
            wire.CodecHdr,
            tags,
            st.binary(min_size=16, max_size=16),
            st.just(total),
            st.integers(0, min(total, 5000)),
            st.binary(max_size=wire.HDR_FRAGMENT),
        ).filter(lambda m: m.offset + len(m.data) <= m.total)
    ),
    st.builds(wire.Challenge, ids),
    st.builds(wire.Response, ids),
    st.builds(wire.BwTrain, u32, u8, u8, st.binary(max_size=1000)),
    st.builds(wire.BwReport, u32, u8, u32, u32),
    st.builds(wire.StationMsg, st.binary(max_size=1000)),
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
        st.just(0),
        st.just([]),
        u8,
        st.integers(0, 65535),
        u8,
        ids,
    ),
    st.builds(wire.Attach, sids, ids, u32, u8, u8, ids),
)


@FUZZ
@given(st.one_of(messages, more_messages))
def test_every_message_round_trips_through_the_fuzz_oracle(msg: wire.Message) -> None:
    data = msg.encode()
    assert len(data) <= wire.MAX_DATAGRAM, type(msg).__name__
    assert wire.decode(data) == msg
    assert not benchfuzz.check_wire(data).startswith("error")


@FUZZ
@given(tags, u32, u32, u8, st.binary(max_size=wire.MAX_PAYLOAD))
def test_data_round_trips(tag: bytes, seq: int, ts: int, flags: int, payload: bytes) -> None:
    data = wire.encode_data(tag, seq, ts, flags, payload)
    assert wire.decode_data(data) == (tag, seq, ts, flags, payload)
    assert benchfuzz.check_wire(data) == "data"


@settings(FUZZ, max_examples=150)
@given(st.sampled_from(SEEDS), st.randoms(use_true_random=False))
def test_mutated_seeds_raise_only_wire_error_and_reencode(seed: bytes, rng: random.Random) -> None:
    for _ in range(10):
        benchfuzz.check_wire(benchfuzz.mutate(rng, seed, tokens=(wire.MAGIC,), corpus=SEEDS))


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=1500), st.sampled_from([b"", b"SP\x01", b"SP\x01\x11", b"SP\x01\x02"]))
def test_garbage_raises_only_wire_error(data: bytes, head: bytes) -> None:
    benchfuzz.check_wire(head + data)


texts = st.text(max_size=60)


@settings(FUZZ, max_examples=60)
@given(texts, texts, texts, st.integers(0, 2**63), st.integers(0, 0xFFFF), st.booleans())
def test_station_records_round_trip_and_verify(
    name: str, genre: str, title: str, version: int, bitrate: int, on_air: bool
) -> None:
    key = StationKey.from_seed(bytes(range(32)))
    meta = StationMeta(name=name, genre=genre, bitrate=bitrate, codec="mp3")
    rec = StationRecord(key.public, version, on_air, meta, title, b"\1" * 16, 7).signed(key)
    data = rec.encode()
    assert parse_verified_record(data, key.station_id) == rec
    assert benchfuzz.check_wire(wire.StationMsg(data).encode()) == "record"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    with pytest.raises(wire.WireError):
        parse_verified_record(bytes(flipped), key.station_id)


def test_the_oracle_catches_a_decoder_that_loses_a_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """(The fixed-point check is not vacuous: a decoder that drops the token is caught.)"""
    real = wire._DECODERS[wire.CHALLENGE]
    monkeypatch.setitem(
        wire._DECODERS, wire.CHALLENGE, lambda data: wire.Challenge(real(data).token[:4])
    )
    with pytest.raises(AssertionError):
        benchfuzz.check_wire(wire.Challenge(b"12345678").encode())


def test_a_short_campaign_finds_nothing() -> None:
    camp = benchfuzz.run_campaign(benchfuzz.wire_target(), inputs=20_000)
    assert camp.inputs == 20_000
    assert camp.crashes == 0
    assert camp.outcomes > 50  # it got past the header checks into many decoders
