"""Overlay behaviour on the deterministic simulator (virtual time, seeded, loss by dropping).

These drive the unchanged sans-I/O Node, like aioquic's connection tests.
"""

from __future__ import annotations

import random
import struct
from dataclasses import replace

import pytest
from simkit import FRAME, FRAME_DT, Radio, addr, frame
from streamerp2p.overlay import node as node_module
from streamerp2p.overlay import wire
from streamerp2p.overlay.events import AudioData, ChildLeft, CodecHeaders, LeaveComplete, Tuned
from streamerp2p.overlay.node import Node, NodeConfig, headers_hash
from streamerp2p.overlay.records import StationKey
from streamerp2p.sim import Link, Simulator
from streamerp2p.types import Frame, StationMeta


def contiguous(r: Radio, a: tuple[str, int]) -> list[int]:
    nums = r.frame_numbers(a)
    assert nums, f"{a}: no audio"
    assert nums == list(range(nums[0], nums[0] + len(nums))), f"{a}: gap or disorder"
    return nums


def build(seed: int = 1, n: int = 6, **kw: object) -> Radio:
    r = Radio(seed, slots=2, source_slots=1, **kw)  # type: ignore[arg-type]
    for i in range(1, n + 1):
        r.add_listener(i)
        r.run(0.4)
    r.run(3)
    return r


def root_path(r: Radio, a: tuple[str, int]) -> list[tuple[str, int]]:
    """Follow parents to the broadcaster; fails on a loop or a dangling node."""
    seen = [a]
    while a != r.src:
        p = r.parent(a)
        assert p is not None, f"{a} has no parent"
        assert p not in seen, f"loop: {[*seen, p]}"
        seen.append(p)
        a = p
    return seen


def test_tree_respects_slots_and_everyone_hears_everything() -> None:
    r = build()
    r.run(5)
    depths = [r.depth(a) for a in r.listeners]
    assert max(depths) >= 3
    for a in [r.src, *r.listeners]:
        sess = r.node(a).sessions[r.sid[:4]]
        assert len(sess.children) <= (1 if a == r.src else 2)
    last = max(contiguous(r, r.src)[-1] for _ in [0])
    for a in r.listeners:
        nums = contiguous(r, a)
        assert last - nums[-1] <= 40  # all near the live edge (chunk + seal batching)
        assert len(root_path(r, a)) == r.depth(a) + 1


def test_new_listener_gets_cushion_at_once() -> None:
    r = build(n=1)
    r.run(6)
    a = r.add_listener(50)
    t0 = r.sim.now
    r.run(0.5)
    got = r.frame_numbers(a)
    # within half a second it holds about cushion_seconds (4 s) of audio
    assert len(got) * FRAME_DT >= 3.5, len(got) * FRAME_DT
    first = next(e for e in r.sim.peers[a].events if isinstance(e, Tuned))
    assert first.depth >= 1
    assert r.sim.now - t0 < 0.51


def test_loss_is_repaired_without_gaps() -> None:
    # 5 % loss on every path: hundreds of chunks lost, all but a handful repaired in time (the
    # rare miss is a chunk lost again on every retry; which seeds see one shifts with any change
    # to message sizes or timing, so the bound is on the count, not on one lucky seed)
    r = build(seed=3, n=8, link=Link(delay=0.03, loss=0.025))
    r.run(20)
    repaired = skipped = 0
    for a in r.listeners:
        nums = r.frame_numbers(a)
        assert nums == sorted(set(nums)), f"{a}: disorder or duplicates"
        st = r.node(a).stats
        skipped += st.skipped_chunks
        repaired += st.repairs_requested
    assert repaired > 50 and r.sim.lost > 100
    assert skipped <= 4, skipped


def test_crash_of_middle_relay_leaves_no_gap() -> None:
    r = build()
    r.run(3)
    victim = next(
        a for a in r.listeners if r.depth(a) == 2 and r.node(a).sessions[r.sid[:4]].children
    )
    orphans = list(r.node(victim).sessions[r.sid[:4]].children)
    r.sim.kill(victim)
    t_kill = r.sim.now
    r.run(8)
    for o in orphans:
        re = [e for e in r.sim.peers[o].events if isinstance(e, Tuned) and e.rehome]
        assert re, f"{o} did not re-home"
        assert r.sim.now - 8 + 0 <= t_kill + 8
    for a in r.listeners:
        if a == victim:
            continue
        contiguous(r, a)
        assert r.node(a).stats.skipped_chunks == 0
        root_path(r, a)


def test_parent_loss_detected_and_rehomed_within_about_a_second() -> None:
    r = build()
    victim = next(
        a for a in r.listeners if r.depth(a) == 2 and r.node(a).sessions[r.sid[:4]].children
    )
    orphan = next(iter(r.node(victim).sessions[r.sid[:4]].children))
    n_before = len(r.sim.peers[orphan].events)
    r.sim.kill(victim)
    t_kill = r.sim.now
    r.run(3, step=0.01)
    re = next(e for e in r.sim.peers[orphan].events[n_before:] if isinstance(e, Tuned))
    assert re.rehome
    # find when: replay the event order by scanning time-stamped stats is not possible, so
    # re-run a fresh copy in small steps and stop at the first re-home
    r2 = build()
    v2 = victim
    o2 = orphan
    n2 = len(r2.sim.peers[o2].events)
    r2.sim.kill(v2)
    t0 = r2.sim.now
    while not any(isinstance(e, Tuned) for e in r2.sim.peers[o2].events[n2:]):
        r2.run(0.01, step=0.01)
        assert r2.sim.now - t0 < 3
    assert r2.sim.now - t0 <= 1.5
    assert t_kill > 0


def test_polite_leave_rehomes_children_first_with_zero_gap() -> None:
    r = build(seed=2)
    r.run(2)
    leaver = next(a for a in r.listeners if r.depth(a) == 1)
    kids = list(r.node(leaver).sessions[r.sid[:4]].children)
    assert kids
    r.sim.call(leaver, lambda n, t: n.leave(t))
    done_at = None
    while done_at is None:
        r.run(0.01, step=0.01)
        if any(isinstance(e, LeaveComplete) for e in r.sim.peers[leaver].events):
            done_at = r.sim.now
        assert r.sim.now < 40
    # the leaver went only after every child detached (re-homed), well within the grace period
    reasons = [e.reason for e in r.sim.peers[leaver].events if isinstance(e, ChildLeft)]
    assert reasons.count("detach") == len(kids)
    for k in kids:
        assert any(isinstance(e, Tuned) and e.rehome for e in r.sim.peers[k].events)
    r.sim.kill(leaver)  # gone for good
    r.run(6)
    for a in r.listeners:
        if a != leaver:
            contiguous(r, a)
            assert r.node(a).stats.skipped_chunks == 0
            root_path(r, a)


def test_no_loops_under_concurrent_rejoins() -> None:
    for seed in range(4):
        r = Radio(seed, slots=2, source_slots=2)
        for i in range(1, 15):
            r.add_listener(i)
            r.run(0.2)
        r.run(3)
        rng = random.Random(seed)
        for victim in rng.sample(r.listeners, 4):
            r.sim.kill(victim)
        r.run(10)
        for a in r.listeners:
            if r.sim.peers[a].alive:
                root_path(r, a)


def test_forged_chunks_seals_and_garbage_are_dropped_and_counted() -> None:
    r = build(n=2)
    victim = r.listeners[-1]
    evil = ("10.9.9.9", 6666)
    node = r.node(victim)
    sess = node.sessions[r.sid[:4]]
    seq = sess.head + 3  # a chunk not yet received
    before = r.frame_numbers(victim)
    forged = wire.encode_data(sess.tag, seq, 0, wire.DATA_FRAME_START, b"\xde\xad" * 200)
    fake_seal = wire.Seal(sess.tag, seq, [b"\x01" * 16], b"\x02" * 64).encode()
    for data in (forged, fake_seal, b"garbage", b"SP\x01\x99junk", b"SP\x01\x21" + b"\x00" * 9):
        r.sim.call(victim, lambda n, t, d=data: n.receive_datagram(d, evil, t))
    r.run(5)
    st = node.stats
    assert st.bad_seals == 1
    assert st.bad_datagrams >= 2 and st.unknown_messages == 1
    after = contiguous(r, victim)
    assert after[: len(before)] == before and len(after) > len(before)
    # the forged payload never reached the player
    assert b"\xde\xad" * 50 not in r.audio(victim)
    # a forged chunk whose seal is known is caught by its hash
    seq2 = sess.head + 1
    while seq2 not in sess.hashes:
        r.run(0.05)
        seq2 = max(sess.hashes) if sess.hashes and max(sess.hashes) > sess.head else seq2
    # (the first forged chunk may already be counted: its seal came before the real chunk)
    assert node.stats.bad_chunks <= 1
    bad_before = node.stats.bad_chunks
    bad = wire.encode_data(sess.tag, seq2, 0, 0, b"\xbe\xef" * 100)
    r.sim.call(victim, lambda n, t: n.receive_datagram(bad, evil, t))
    assert node.stats.bad_chunks == bad_before + 1
    r.run(2)
    contiguous(r, victim)


def test_authentication_overhead_below_five_percent() -> None:
    for kbps in (24, 128, 320):
        sim = Simulator(1)
        key = StationKey.generate()
        n = Node(NodeConfig(slots=1))
        sim.add(n, addr(0))
        sim.call(
            addr(0), lambda nd, t, k=key, b=kbps: nd.start_broadcast(k, StationMeta(bitrate=b), t)
        )
        child = Node(NodeConfig(slots=0))
        sim.add(child, addr(1))
        sim.call(addr(1), lambda nd, t, k=key: nd.tune(k.station_id, [addr(0)], t))
        seal_bytes = data_bytes = 0

        def count(src: object, dst: object, d: bytes) -> bool:
            nonlocal seal_bytes, data_bytes
            if src == addr(0):
                if d[3] == wire.SEAL:
                    seal_bytes += len(d)
                elif d[3] == wire.DATA:
                    data_bytes += len(d) - wire.DATA_HEADER_LEN
            return False

        sim.drop = count
        frame_len = 144 * kbps * 1000 // 44100
        sent = 0
        while sim.now < 30:
            due = int((sim.now + 0.05) / FRAME_DT) - sent
            frames = [Frame(bytes([k % 256]) * frame_len) for k in range(due)]
            sent += due
            sim.call(
                addr(0), lambda nd, t, f=frames, k=key: nd.broadcast_frames(k.station_id, f, t)
            )
            sim.run_for(0.05)
        ratio = seal_bytes / data_bytes
        print(f"auth overhead at {kbps} kbit/s: {ratio:.2%}")
        assert ratio <= 0.05, (kbps, ratio)
        got = b"".join(e.payload for e in sim.peers[addr(1)].events if isinstance(e, AudioData))
        assert len(got) > 0.8 * data_bytes


def test_frames_larger_than_a_datagram_are_split_and_reassembled() -> None:
    sim = Simulator(1)
    key = StationKey.generate()
    sim.add(Node(NodeConfig(slots=1)), addr(0))
    sim.call(addr(0), lambda nd, t: nd.start_broadcast(key, StationMeta(), t))
    sim.add(Node(NodeConfig(slots=1)), addr(1))
    sim.call(addr(1), lambda nd, t: nd.tune(key.station_id, [addr(0)], t))
    sim.run_for(0.5)
    big = [Frame(bytes([i]) * 3000) for i in range(10)]
    sim.call(addr(0), lambda nd, t: nd.broadcast_frames(key.station_id, big, t))
    sim.run_for(7)  # a stream that just began: playout waits for the cushion (4 s from its start)
    evs = [e for e in sim.peers[addr(1)].events if isinstance(e, AudioData)]
    assert b"".join(e.payload for e in evs) == b"".join(f.data for f in big)
    assert [e.frame_start for e in evs].count(True) == 10
    assert all(len(e.payload) <= wire.MAX_PAYLOAD for e in evs)
    assert FRAME > 0


def test_broadcaster_restart_with_same_key_resumes_listeners() -> None:
    r = build(n=3)
    r.run(5)
    before = {
        a: sum(1 for e in r.sim.peers[a].events if isinstance(e, AudioData)) for a in r.listeners
    }
    # the broadcasting node restarts: a new node on the same address with the same key;
    # its sequence numbers start again at 0 (a new epoch in the signed record)
    r.sim.kill(r.src)
    r.run(1)
    before = {  # (chunks of the old stream in flight at the crash play until here)
        a: sum(1 for e in r.sim.peers[a].events if isinstance(e, AudioData)) for a in r.listeners
    }
    fresh = Node(NodeConfig(slots=1), rng=random.Random(99))
    r.sim.add(fresh, r.src, r.link)
    r.sim.call(r.src, lambda n, t: n.start_broadcast(r.key, StationMeta(name="Test FM"), t))
    r.run(12)
    for a in r.listeners:
        evs = [e for e in r.sim.peers[a].events if isinstance(e, AudioData)]
        assert len(evs) > before[a] + 50, f"{a} did not resume"
        # after the restart the new stream plays in order from a frame start
        tail = [e.seq for e in evs[before[a] :] if e.seq < 1000]
        assert tail and tail == list(range(tail[0], tail[0] + len(tail)))


def test_lost_station_record_is_requested_again() -> None:
    r = Radio(5, slots=2, source_slots=2)
    dropped = []

    def drop(src: object, dst: object, data: bytes) -> bool:
        if data[3] == wire.STATION and len(dropped) < 3:
            dropped.append(dst)
            return True
        return False

    r.sim.drop = drop
    r.run(2)
    a = r.add_listener(1)
    r.run(12)
    assert dropped
    contiguous(r, a)
    assert r.node(a).sessions[r.sid[:4]].verifier is not None


def test_unsolicited_offers_are_ignored() -> None:
    r = build(n=1)
    a = r.listeners[0]
    node = r.node(a)
    fake = wire.Offer(r.sid, 7, b"evil" * 2, wire.OFFER_IN_TREE, 255, 255, 0, 0, 0, [])
    r.sim.call(a, lambda n, t: n.receive_datagram(fake.encode(), ("10.9.9.9", 1), t))
    assert ("10.9.9.9", 1) not in node.sessions[r.sid[:4]].candidates
    assert ("10.9.9.9", 1) not in node.hosts


def test_lost_seal_is_fetched_alone() -> None:
    r = build(n=2)
    victim = r.listeners[-1]
    lost: list[int] = []
    data_to_victim: dict[int, int] = {}
    seal_only: list[list[tuple[int, int]]] = []

    def drop(src: object, dst: object, data: bytes) -> bool:
        if dst == victim and data[3] == wire.SEAL and not lost:
            lost.append(int.from_bytes(data[8:12], "big"))
            return True
        if dst == victim and data[3] == wire.DATA:
            seq = int.from_bytes(data[8:12], "big")
            data_to_victim[seq] = data_to_victim.get(seq, 0) + 1
        if src == victim and data[3] == wire.NACK:
            ranges = wire.decode(data).ranges  # type: ignore[union-attr]
            if any(c == 0 for _, c in ranges):
                seal_only.append(ranges)
        return False

    r.sim.drop = drop
    r.run(6)
    assert lost and seal_only, "the seal was not asked for on its own"
    first = lost[0]
    contiguous(r, victim)
    node = r.node(victim)
    assert node.stats.skipped_chunks == 0 and node.stats.bad_chunks == 0
    # the chunks it already held were not sent again: only their seal was
    covered = [s for s in range(first, first + 8) if s in data_to_victim]
    assert covered and all(data_to_victim[s] == 1 for s in covered)


def test_missing_chunk_is_skipped_when_the_audio_after_it_is_due() -> None:
    r = build(n=2)
    victim = r.listeners[-1]
    sess = r.node(victim).sessions[r.sid[:4]]
    gone = sess.head + 40  # about 3 s ahead: this chunk never reaches the victim

    def drop(src: object, dst: object, data: bytes) -> bool:
        return dst == victim and data[3] == wire.DATA and data[8:12] == gone.to_bytes(4, "big")

    r.sim.drop = drop
    times: dict[int, float] = {}
    skips: list[tuple[float, int, int]] = []

    def on_event(peer: object, ev: object) -> None:
        if getattr(peer, "addr", None) == victim:
            if isinstance(ev, AudioData):
                times[ev.seq] = r.sim.now
            elif type(ev).__name__ == "Skipped":
                skips.append((r.sim.now, ev.first_seq, ev.count))  # type: ignore[attr-defined]
        peer.events.append(ev)  # type: ignore[attr-defined]

    r.sim.on_event = on_event
    r.sim.keep_events = False
    r.run(10)
    assert skips and skips[0][1] == gone, skips
    t_skip, _, count = skips[0]
    nxt = gone + count
    # skipped right when the chunk after the gap was due, and it played on time
    ts_next = next(
        e.ts for e in r.sim.peers[victim].events if isinstance(e, AudioData) and e.seq == nxt
    )
    due = sess.play_t0 + (ts_next - sess.play_ts0) / 1000
    assert due - 0.1 <= t_skip <= due + 1e-9, (t_skip, due)
    assert times[nxt] <= due + 1e-9
    # every other chunk was played before its deadline
    late = [
        e.seq
        for e in r.sim.peers[victim].events
        if isinstance(e, AudioData)
        and e.seq in times
        and times[e.seq] > sess.play_t0 + (e.ts - sess.play_ts0) / 1000 + 1e-9
    ]
    assert not late, late


def test_repairs_for_others_never_delay_live_data() -> None:
    """A relay at 1.5x the bitrate feeds one child; a stranger hammers it with repair requests.
    Live chunks reach the child as fast as without the stranger; the stranger gets only what the
    spare upload carries."""
    key = StationKey.from_seed(bytes(range(32)))
    meta = StationMeta(name="Test FM", bitrate=128)

    def run(hammer: bool) -> tuple[float, int]:
        sim = Simulator(7)
        src, relay, child, stranger = addr(0), addr(1), addr(2), addr(3)
        sim.add(Node(NodeConfig(slots=1), rng=random.Random(1)), src, Link(delay=0.01))
        cfg = NodeConfig(upload_kbps=192, slots=0)  # 1 slot at 128 kbit/s, ~0.4x spare
        sim.add(Node(cfg, rng=random.Random(2)), relay, Link(0.01, 0.0, 192_000))
        sim.add(Node(NodeConfig(slots=0), rng=random.Random(3)), child, Link(delay=0.01))
        sim.add(Node(NodeConfig(slots=0), rng=random.Random(4)), stranger, Link(delay=0.01))
        sim.call(src, lambda n, t: n.start_broadcast(key, meta, t))
        emitted: dict[int, float] = {}
        arrived: dict[int, float] = {}
        served = [0]

        def drop(s: object, d: object, data: bytes) -> bool:
            if data[3] == wire.DATA:
                seq = int.from_bytes(data[8:12], "big")
                if s == src:
                    emitted.setdefault(seq, sim.now)
                if s == relay and d == stranger:
                    served[0] += 1
            return False

        def on_event(peer: object, ev: object) -> None:
            if getattr(peer, "addr", None) == child and isinstance(ev, AudioData):
                arrived.setdefault(ev.seq, sim.now)

        sim.drop = drop
        sim.on_event = on_event
        frames = 0
        sim.call(relay, lambda n, t: n.tune(key.station_id, [src], t))
        sim.run_for(1.0)
        sim.call(child, lambda n, t: n.tune(key.station_id, [relay], t))
        # the stranger is a known host of the relay (it said hello)
        sim.call(stranger, lambda n, t: n.add_seeds([relay]))
        t = 0.0
        while t < 20.0:
            t = round(t + 0.05, 3)
            due = int(t / FRAME_DT) - frames
            if due > 0:
                fs = [Frame(bytes([(frames + k) % 251]) * FRAME) for k in range(due)]
                frames += due
                sim.call(src, lambda n, tt, f=fs: n.broadcast_frames(key.station_id, f, tt))
            if hammer and t > 8 and int(t * 20) % 4 == 0:
                head = sim.peers[relay].node.sessions[key.station_id[:4]].head
                nack = wire.Nack(key.station_id[:4], [(max(0, head - 60), 60)]).encode()
                sim.call(relay, lambda n, tt, d=nack: n.receive_datagram(d, stranger, tt))
            sim.run_until(t)
        delays = [arrived[s] - emitted[s] for s in arrived if s in emitted and emitted[s] > 10]
        return max(delays), served[0]

    calm, _ = run(False)
    busy, served = run(True)
    assert served > 0  # the stranger got some chunks from the spare upload...
    assert busy <= calm + 0.1, (busy, calm)  # ...and live data did not wait behind them


def test_a_loop_coming_round_is_left_and_a_lone_filter_hit_is_not() -> None:
    # a parent's filter holding our bits while our depth grows is a loop coming round: leave.
    # Our bits alone (a false positive of the Bloom filter) are no reason to leave
    r = build(n=3)
    a = r.listeners[-1]
    node = r.node(a)
    sess = node.sessions[r.sid[:4]]
    parent = sess.parent
    assert parent is not None
    ours = wire.ancestor_bits(node.node_id)
    same = wire.PStat(sess.tag, sess.depth - 1, sess.head, ours, None).encode()
    r.sim.call(a, lambda n, t: n.receive_datagram(same, parent, t))
    assert sess.parent == parent
    deeper = wire.PStat(sess.tag, sess.depth + 5, sess.head, ours, None).encode()
    r.sim.call(a, lambda n, t: n.receive_datagram(deeper, parent, t))
    assert sess.parent is None  # left at once...
    r.run(8)
    assert sess.parent is not None and sess.depth < 10  # ...and joined again


def test_an_absurd_depth_is_a_loop() -> None:
    r = build(n=3)
    a = r.listeners[-1]
    sess = r.node(a).sessions[r.sid[:4]]
    parent = sess.parent
    assert parent is not None
    pstat = wire.PStat(sess.tag, 230, sess.head, 0, None).encode()
    r.sim.call(a, lambda n, t: n.receive_datagram(pstat, parent, t))
    assert sess.parent is None


def test_no_loop_at_any_depth() -> None:
    # a chain 40 deep (one slot each): the node at the top may not attach under the bottom,
    # though the bottom is far more hops below it than a path of node ids could carry
    r = Radio(3, slots=1, source_slots=1, reshuffle=False)
    for i in range(1, 41):  # each joiner is told where the one free slot is: at the bottom
        r.add_listener(i, [addr(i - 1)])
        for _ in range(50):
            r.run(0.2)
            if r.depth(addr(i)):
                break
    # (a joiner the Bloom filter falsely places above the bottom stays out: rare, tolerated)
    chain = sorted((a for a in r.listeners if r.depth(a)), key=r.depth)
    top, bottom = chain[0], chain[-1]
    assert r.depth(top) == 1 and r.depth(bottom) >= 36
    replies: list[int] = []

    def watch(src: object, dst: object, data: bytes) -> bool:
        if src == bottom and dst == top and data[3] == wire.ATTACH_NO:
            replies.append(wire.decode(data).reason)  # type: ignore[union-attr]
        return False

    r.sim.drop = watch
    top_id = r.node(top).node_id
    attach = wire.Attach(r.sid, top_id, wire.FRESH, 1, wire.ATTACH_LAST).encode()
    r.sim.call(bottom, lambda n, t: n.receive_datagram(attach, top, t))
    r.run(0.5)
    assert replies == [wire.NO_LOOP]
    assert top not in r.node(bottom).sessions[r.sid[:4]].children


def test_a_lost_attach_ok_is_recovered_from_the_parents_data() -> None:
    # the parent took us but its ATTACH_OK was lost: its data shows it, so we ask it again at
    # once instead of timing out and leaving a slot there that feeds nobody
    r = build(n=1)  # the broadcaster's one slot is taken: the listener is the only parent
    dropped: list[object] = []

    def drop(src: object, dst: object, data: bytes) -> bool:
        if dst == addr(9) and data[3] == wire.ATTACH_OK and not dropped:
            dropped.append(src)
            return True
        return False

    r.sim.drop = drop
    a = r.add_listener(9)
    r.run(1.0)
    node = r.node(a)
    sess = node.sessions[r.sid[:4]]
    assert dropped and sess.parent == dropped[0]
    assert node.stats.lost_attach_ok == 1
    r.run(5)
    contiguous(r, a)


def test_slots_keep_upload_for_control_traffic() -> None:
    """Control traffic costs a node about the same whatever the bitrate: 1.1x the bitrate is
    one slot at 128 kbit/s but none at 32 (a 32 kbit/s child would leave ~0.2 kbit/s for
    gossip, status and offers: the uplink ran over and every node below it was late)."""
    from streamerp2p.overlay.node import Session

    def slots(upload: float, bitrate: int) -> int:
        n = Node(NodeConfig(upload_kbps=upload, slots=0), rng=random.Random(1))
        sess = Session(station_id=b"s" * 16, tag=b"ssss")
        sess.bitrate_hint = bitrate
        return n._slots(sess)

    assert slots(1.1 * 128, 128) == 1
    assert slots(3.3 * 128, 128) == 3
    assert slots(1.1 * 32, 32) == 0
    assert slots(3.3 * 32, 32) == 2
    assert slots(10 * 24, 24) == 9


def _headers_events(r: Radio, a: tuple[str, int]) -> list[object]:
    return [e for e in r.sim.peers[a].events if isinstance(e, (CodecHeaders, AudioData))]


def test_codec_headers_reach_every_listener_before_any_audio() -> None:
    # Ogg-style headers (several datagrams' worth) must reach listeners, checked against the
    # signed record, before any audio; a new chain's headers reach them too, and a listener
    # joining later gets the new ones, while forged fragments are counted and ignored
    r = Radio(3, slots=1, source_slots=1)  # a chain: each listener fetches from its parent
    hdr1 = bytes(random.Random(1).randbytes(20_000))
    r.sim.call(r.src, lambda n, t: n.set_headers(r.sid, hdr1, t))
    for i in range(1, 4):
        r.add_listener(i)
    r.run(8)
    for a in r.listeners:
        evs = _headers_events(r, a)
        assert isinstance(evs[0], CodecHeaders) and evs[0].headers == hdr1, a
        assert sum(isinstance(e, AudioData) for e in evs) > 50
    deep = r.listeners[-1]
    assert r.depth(deep) == 3
    # forged fragments for the next hash, from an address that is not the parent, and from
    # the parent with wrong bytes: nothing is taken
    hdr2 = bytes(random.Random(2).randbytes(3000))
    h2 = headers_hash(hdr2)
    forged = wire.CodecHdr(r.sid[:4], h2, len(hdr2), 0, b"\xff" * len(hdr2[:1024])).encode()
    r.sim.call(r.src, lambda n, t: n.set_headers(r.sid, hdr2, t))
    node = r.node(deep)
    parent = r.parent(deep)
    r.sim.call(deep, lambda n, t: n.receive_datagram(forged, ("10.9.9.9", 8466), t))
    r.run(3)
    for a in r.listeners:
        got = [e.headers for e in r.sim.peers[a].events if isinstance(e, CodecHeaders)]
        assert got == [hdr1, hdr2], a
    assert parent is not None
    sess = node.sessions[r.sid[:4]]
    # a wrong whole set from the parent's address is refused by its hash
    bad = bytes(len(hdr2))
    sess.record = replace(sess.record, headers_hash=headers_hash(b"x"))  # type: ignore[arg-type]
    r.sim.call(deep, lambda n, t: n._request_headers(sess, t))  # (fetching for that hash)
    frags = [
        wire.CodecHdr(r.sid[:4], headers_hash(b"x"), len(bad), o, bad[o : o + 1024]).encode()
        for o in range(0, len(bad), 1024)
    ]
    for f in frags:
        r.sim.call(deep, lambda n, t, f=f: n.receive_datagram(f, parent, t))
    assert node.stats.bad_headers == 1
    # a listener that joins after the change gets the new headers first
    late = r.add_listener(9)
    r.run(6)
    evs = _headers_events(r, late)
    assert isinstance(evs[0], CodecHeaders) and evs[0].headers == hdr2
    assert sum(isinstance(e, AudioData) for e in evs) > 20


def test_codec_headers_are_only_sent_to_children() -> None:
    r = build(n=1)
    hdr = b"h" * 5000
    r.sim.call(r.src, lambda n, t: n.set_headers(r.sid, hdr, t))
    r.run(1)
    assert [e.headers for e in r.sim.peers[r.listeners[0]].events if isinstance(e, CodecHeaders)]
    req = wire.CodecHdrReq(r.sid[:4], headers_hash(hdr), 0).encode()
    sent: list[bytes] = []

    def count(src: object, dst: object, data: bytes) -> bool:
        if data[3] == wire.CODEC_HDR:
            sent.append(data)
        return False

    r.sim.drop = count
    stranger = r.add_listener(7)  # a real peer that never attached asks for the headers
    r.sim.call(r.src, lambda n, t: n.receive_datagram(req, stranger, t))
    r.run(0.01)
    assert not sent
    # once it is a child, the same request is answered (5,000 bytes: 5 fragments)
    r.run(3)
    assert len(sent) >= 5


class Tamperer(Node):
    """A relay that alters every chunk it passes on (after its own verification)."""

    def datagrams_to_send(self) -> list[tuple[bytes, tuple[str, int]]]:
        out = []
        for data, a in super().datagrams_to_send():
            if data[3] == wire.DATA and len(data) > 40:
                data = data[:30] + bytes(b ^ 0x5A for b in data[30:40]) + data[40:]
            out.append((data, a))
        return out


def test_a_relay_that_alters_chunks_is_banned_and_routed_around_with_no_bad_byte_played() -> None:
    r = Radio(7, slots=2, source_slots=2)
    evil = addr(1)
    t = Tamperer(NodeConfig(slots=2, bandwidth_test=False), rng=random.Random(3))
    r.sim.add(t, evil, r.link)
    r.sim.call(evil, lambda n, tt: n.tune(r.sid, [r.src], tt))
    r.listeners.append(evil)
    r.run(2)
    honest = r.add_listener(2, hosts=[evil])  # it asks the tamperer first
    r.run(1)
    for i in range(3, 6):
        r.add_listener(i)
        r.run(0.3)
    r.run(10)
    node = r.node(honest)
    assert node.stats.bad_chunks >= 1 and node.stats.banned == 1
    assert r.parent(honest) != evil and r.parent(honest) is not None
    # everything it played is the broadcaster's audio, in order
    nums = r.frame_numbers(honest)
    assert nums and nums == sorted(nums) and len(set(nums)) == len(nums)
    audio = r.audio(honest)
    for k in range(0, len(audio), FRAME):
        n = struct.unpack_from("!I", audio, k)[0]
        assert audio[k : k + FRAME] == frame(n).data
    # the tamperer's datagrams are ignored from then on
    dropped = node.stats.banned_dropped
    r.sim.call(evil, lambda n, tt: n.receive_datagram(b"", evil, tt))  # (keeps it busy)
    r.sim.call(honest, lambda n, tt: n.receive_datagram(wire.Punch(b"x" * 8).encode(), evil, tt))
    assert node.stats.banned_dropped == dropped + 1


def test_tuning_again_while_the_old_session_is_still_leaving_plays_again() -> None:
    """Stop and tune in again at once (one click after another, before the node's next tick):
    the new tune is not lost in the old session's polite leave: the session stays, with its
    buffer and its parent, and plays on without a gap."""
    r = build(seed=3, n=3)
    a = next(x for x in r.listeners if r.node(x).sessions[r.sid[:4]].children)
    before = len(r.frame_numbers(a))
    assert before

    def again(n: Node, t: float) -> None:
        n.untune(r.sid, t)
        n.tune(r.sid, [r.src], t)

    r.sim.call(a, again)
    sess = r.node(a).sessions[r.sid[:4]]
    assert not sess.leaving
    r.run(4)
    assert r.node(a).sessions[r.sid[:4]] is sess and sess.playing
    assert len(r.frame_numbers(a)) > before + 100  # (4 s of 38 frames a second, less a cushion)
    # its children were told to go and re-home (here the broadcaster has one slot: a child
    # may wait for it a few seconds, on its cushion); everyone plays on without a gap
    r.run(8)
    for x in r.listeners:
        assert r.node(x).sessions[r.sid[:4]].playing
        root_path(r, x)
        contiguous(r, x)
        assert r.node(x).stats.skipped_chunks == 0
    assert r.parent(a) == r.src  # (its slot kept: not dropped as a child that left)


def test_untune_ends_a_childless_session_at_once() -> None:
    r = build(seed=3, n=3)
    a = next(x for x in r.listeners if not r.node(x).sessions[r.sid[:4]].children)
    r.sim.call(a, lambda n, t: n.untune(r.sid, t))
    assert r.node(a).get_timer() <= r.sim.now  # (the leave goes out on the next tick: now)
    r.run(0.01, step=0.01)
    assert r.sid[:4] not in r.node(a).sessions


def test_a_re_homing_node_asks_the_broadcaster_only_if_it_is_its_grandparent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every listener's link names the broadcaster: in a large audience re-homing nodes asking
    it all would take its spare upload (its one slot is taken anyway). Only a node whose
    grandparent it is (an orphan of its child) asks it in its first join rounds."""
    monkeypatch.setattr(node_module, "SOURCE_SKIP_AUDIENCE", 4)  # (6 listeners: "large")
    r = build(n=6)
    sid4 = r.sid[:4]
    joins: list[tuple[tuple[str, int], float]] = []

    def watch(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> bool:
        if dst == r.src and data[3] == wire.JOIN_REQ:
            joins.append((src, r.sim.now))
        return False  # (nothing dropped)

    r.sim.drop = watch
    deep = next(a for a in r.listeners if r.depth(a) >= 3 and r.node(a).sessions[sid4].children)
    orphans = list(r.node(deep).sessions[sid4].children)
    assert all(r.node(o).sessions[sid4].source == r.src for o in orphans)
    r.sim.kill(deep)
    t = r.sim.now
    r.run(6)
    for o in orphans:
        assert any(isinstance(e, Tuned) and e.rehome for e in r.sim.peers[o].events)
        assert not [j for j in joins if j[0] == o and j[1] >= t]  # (its grandparent was not it)
    top = next(a for a in r.listeners if r.parent(a) == r.src)
    kids = list(r.node(top).sessions[sid4].children)
    assert kids and all(r.node(k).sessions[sid4].backup == r.src for k in kids)
    r.sim.kill(top)
    t = r.sim.now
    r.run(6)
    assert any(j[0] in kids and j[1] >= t for j in joins)  # orphans of its child: they ask it
    for a in r.listeners:
        if a not in (deep, top):
            assert r.node(a).sessions[sid4].playing
            root_path(r, a)
