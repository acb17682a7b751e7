"""No amplification: every request type, sent from an address that never proved it receives
our datagrams (a spoofed victim), gets back at most as many bytes as it carried."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from simkit import Radio
from streamerp2p.overlay import wire
from streamerp2p.overlay.node import JOIN_PAD, Node, NodeConfig
from streamerp2p.sim import Link

VICTIM = ("10.9.0.1", 8466)
NID = b"\x02" * wire.ID_LEN


def requests(sid: bytes) -> dict[str, bytes]:
    tag = sid[:4]
    pad = JOIN_PAD - 38
    return {
        "HELLO_REQ": wire.HelloReq(1, NID, tag, 0, 2).encode(),
        "HELLO_REQ stations": wire.HelloReq(2, NID, tag, wire.HELLO_WANT_STATIONS, 2).encode(),
        "JOIN_REQ": wire.JoinReq(sid, 3, NID, 0, 2, wire.FRESH).encode(),
        "JOIN_REQ attach": wire.JoinReq(sid, 4, NID, wire.JOIN_ATTACH, 2, wire.FRESH).encode(),
        "JOIN_REQ padded": wire.JoinReq(sid, 5, NID, 0, 2, wire.FRESH, pad).encode(),
        "JOIN_REQ attach padded": wire.JoinReq(
            sid, 6, NID, wire.JOIN_ATTACH, 2, wire.FRESH, pad
        ).encode(),
        "ATTACH": wire.Attach(sid, NID, wire.FRESH, 2, 0).encode(),
        "ATTACH forged token": wire.Attach(sid, NID, wire.FRESH, 2, 0, b"12345678").encode(),
        "NACK": wire.Nack(tag, [(0, 60)]).encode(),
        "NACK seals": wire.Nack(tag, [(0, 0), (8, 0), (16, 0)]).encode(),
        "STATION_REQ": wire.StationReq(sid).encode(),
        "CODEC_HDR_REQ": wire.CodecHdrReq(tag, b"\0" * 16, 0).encode(),
        "CSTAT": wire.CStat(tag, NID, 2, 2, 0, 0).encode(),
        "REPORT": wire.Report(tag, NID, b"\x07" * wire.ID_LEN).encode(),
        "REACH_REQ": wire.ReachReq(7).encode(),
        "REACH_FWD": wire.ReachFwd(8, VICTIM).encode(),
        "PROXY_REQ": wire.ProxyReq(NID, None).encode(),
        "VIA": wire.Via(VICTIM, wire.HelloReq(9, NID, tag, 1, 2).encode()).encode(),
        "PUNCH": wire.Punch(NID).encode(),
        "CHALLENGE": wire.Challenge(b"abcdefgh").encode(),
        "RESPONSE": wire.Response(b"abcdefgh").encode(),
        "BW_TRAIN": wire.BwTrain(9, 0, 24, b"x" * 1000).encode(),
        "DETACH": wire.Detach(tag, NID).encode(),
    }


@pytest.mark.parametrize("target", ["broadcaster", "relay"])
def test_no_request_is_answered_with_more_bytes_than_it_carried(target: str) -> None:
    r = Radio(1, slots=2, source_slots=2)
    for i in range(1, 4):
        r.add_listener(i)
        r.run(0.3)
    r.run(3)
    victim = Node(NodeConfig(slots=0, bandwidth_test=False), rng=random.Random(5))
    victim.receive_datagram = lambda *a, **k: None  # type: ignore[method-assign]
    r.sim.add(victim, VICTIM, Link(delay=0.01))
    tgt = r.src if target == "broadcaster" else r.listeners[0]
    sent: Counter[int] = Counter()

    def count(src: object, dst: object, data: bytes) -> bool:
        # (its own gossip may reach an address it learned, at its own pace: not an answer)
        if src == tgt and dst == VICTIM and data[3] != wire.HELLO_REQ:
            sent[data[3]] += len(data)
        return False

    r.sim.drop = count
    total_in = total_out = 0
    report = {}
    for name, data in requests(r.sid).items():
        sent.clear()
        r.sim.call(tgt, lambda n, t, d=data: n.receive_datagram(d, VICTIM, t))
        r.run(6)  # long enough for any stream or repair to have started
        out = sum(sent.values())
        report[name] = (len(data), out)
        total_in += len(data)
        total_out += out
        assert out <= len(data), f"{name}: {len(data)} bytes in, {out} out {dict(sent)}"
    assert total_out <= total_in
    node = r.node(tgt)
    assert node.stats.challenges >= 5 and node.stats.bad_tokens >= 1
    # the node still serves its real listeners
    assert all(r.node(a).sessions[r.sid[:4]].parent is not None for a in r.listeners)


def test_a_request_flood_from_one_address_is_rate_limited_and_others_are_served() -> None:
    r = Radio(2, slots=2, source_slots=2)
    for i in range(1, 3):
        r.add_listener(i)
        r.run(0.3)
    r.run(3)
    node = r.node(r.listeners[0])
    flooder = ("10.9.0.7", 8466)
    node.validate(flooder, r.sim.now)  # even a proven address may not flood
    req = wire.StationReq(r.sid).encode()
    answered = []

    def count(src: object, dst: object, data: bytes) -> bool:
        if dst == flooder and data[3] == wire.STATION:
            answered.append(data)
        return False

    victim = Node(NodeConfig(slots=0, bandwidth_test=False), rng=random.Random(5))
    victim.receive_datagram = lambda *a, **k: None  # type: ignore[method-assign]
    r.sim.add(victim, flooder, Link(delay=0.01))
    r.sim.drop = count
    r.sim.call(
        r.listeners[0], lambda n, t: [n.receive_datagram(req, flooder, t) for _ in range(1000)]
    )
    r.run(0.5)
    assert 40 <= len(answered) <= 70  # the burst, not a thousand answers
    assert node.stats.rate_limited >= 900
    # the rest of the network is unaffected: a new listener joins through this node
    late = r.add_listener(9, hosts=[r.listeners[0]])
    r.run(5)
    assert r.node(late).sessions[r.sid[:4]].parent is not None


def test_a_peer_asking_a_helper_for_everything_gets_a_few_chunks_a_second() -> None:
    """A known host (not a child) that NACKs a relay for its whole history over and over is
    served HELP_BURST chunks, then HELP_RATE per second: the relay's spare upload stays for
    honest repairs."""
    r = Radio(2, slots=2, source_slots=2)
    r.add_listener(1)
    r.run(8)
    helper = r.listeners[0]
    node = r.node(helper)
    asker = ("10.9.0.8", 8466)
    sink = Node(NodeConfig(slots=0, bandwidth_test=False), rng=random.Random(6))
    sink.receive_datagram = lambda *a, **k: None  # type: ignore[method-assign]
    r.sim.add(sink, asker, Link(delay=0.01))
    node.validate(asker, r.sim.now)
    node._learn(asker, b"\x03" * wire.ID_LEN, None, r.sim.now)  # (helpers serve known hosts)
    got: list[bytes] = []

    def count(src: object, dst: object, data: bytes) -> bool:
        if src == helper and dst == asker and data[3] == wire.DATA:
            got.append(data)
        return False

    r.sim.drop = count
    low = node.sessions[r.sid[:4]].low
    nack = wire.Nack(r.sid[:4], [(low + 16 * i, 16) for i in range(4)]).encode()
    for _ in range(20):  # 10 s: ten NACKs a second, 64 chunks each
        for _ in range(5):
            r.sim.call(helper, lambda n, t: n.receive_datagram(nack, asker, t))
            r.run(0.1)
    assert 0 < len(got) <= 64 + 4 * 10 + 4, len(got)  # burst + rate, not 12,800 chunks
