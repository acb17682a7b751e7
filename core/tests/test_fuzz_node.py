"""Fuzzing the sans-I/O node's datagram entry in CI (long campaigns: ``streamer bench fuzz``).

Garbage and mutated real traffic go into ``Node.receive_datagram`` of a broadcaster and of a
listener of a running simulated station: nothing raises, what the decoder refuses is counted,
and a listener under a stranger's garbage keeps playing.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simkit import Radio
from streamerp2p import benchfuzz
from streamerp2p.overlay import wire
from streamerp2p.testing import fuzz_settings

FUZZ = fuzz_settings()


@pytest.fixture(scope="module")
def harness() -> benchfuzz.NodeHarness:
    return benchfuzz.NodeHarness()


def test_recorded_traffic_covers_the_protocol(harness: benchfuzz.NodeHarness) -> None:
    kinds = {d[3] for d in harness.seeds()}
    for mtype in (wire.DATA, wire.SEAL, wire.STATION, wire.OFFER, wire.ATTACH_OK, wire.NACK):
        assert mtype in kinds, hex(mtype)


@settings(FUZZ, max_examples=100)
@given(st.randoms(use_true_random=False), st.data())
def test_mutated_traffic_never_raises_and_refusals_are_counted(
    harness: benchfuzz.NodeHarness, rng: random.Random, data: st.DataObject
) -> None:
    seeds = harness.seeds()
    seed = data.draw(st.sampled_from(seeds))
    for _ in range(10):
        harness.check(benchfuzz.mutate(rng, seed, corpus=seeds))  # raises on a crash


@settings(FUZZ, max_examples=200)
@given(st.binary(max_size=1500), st.sampled_from([b"", b"SP\x01", b"SP\x01\x20", b"SP\x02"]))
def test_garbage_is_dropped_and_counted(
    harness: benchfuzz.NodeHarness, body: bytes, head: bytes
) -> None:
    harness.check(head + body)


def test_counters_for_each_kind_of_bad_datagram(harness: benchfuzz.NodeHarness) -> None:
    node = harness.nodes[1]
    st_ = node.stats
    bad, unknown = st_.bad_datagrams, st_.unknown_messages
    for data in (b"", b"SP", b"XX\x01\x01" + b"\0" * 30, b"SP\x09\x01", b"SP\x01\x10\x00"):
        node.receive_datagram(data, harness.STRANGER, harness.now)
    assert st_.bad_datagrams == bad + 5
    node.receive_datagram(b"SP\x01\x7f" + b"\0" * 20, harness.STRANGER, harness.now)
    assert st_.unknown_messages == unknown + 1


def test_empty_nack_from_a_child_is_harmless() -> None:
    """Regression (bench fuzz): a NACK without ranges from a child raised IndexError in
    Node._on_nack (``msg.ranges[0]``)."""
    r = Radio(1, slots=2, source_slots=2)
    r.add_listener(1)
    r.run(3)
    child = r.listeners[0]
    tag = r.sid[:4]
    assert child in r.node(r.src).sessions[tag].children
    r.sim.call(r.src, lambda n, t: n.receive_datagram(wire.Nack(tag, []).encode(), child, t))
    before = len(r.frame_numbers(child))
    r.run(2)
    assert len(r.frame_numbers(child)) > before


def test_a_listener_keeps_playing_under_a_strangers_garbage() -> None:
    r = Radio(2, slots=2, source_slots=2)
    for i in (1, 2):
        r.add_listener(i)
        r.run(0.4)
    r.run(3)
    victim = r.listeners[-1]
    seeds = benchfuzz.NodeHarness().seeds()
    rng = random.Random(4)
    before = len(r.frame_numbers(victim))
    for _ in range(100):  # 2,000 datagrams over 5 s
        batch = [benchfuzz.mutate(rng, rng.choice(seeds), corpus=seeds) for _ in range(20)]

        def feed(n: object, t: float, batch: list[bytes] = batch) -> None:
            for d in batch:
                n.receive_datagram(d, ("198.51.100.77", 5555), t)  # type: ignore[attr-defined]

        r.sim.call(victim, feed)
        r.run(0.05)
    nums = r.frame_numbers(victim)
    assert len(nums) - before > 0.9 * 5 * 44100 / 1152  # ~38 frames a second
    assert r.node(victim).stats.bad_datagrams > 100
