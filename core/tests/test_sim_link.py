"""The simulator's link model: an uplink's buffer (Link.queue_s)."""

from __future__ import annotations

from simkit import Radio
from streamerp2p.sim import Link


def _overloaded_broadcaster(queue_s: float | None) -> tuple[Radio, float]:
    """A broadcaster whose uplink carries under half its stream, with one listener; its uplink
    queue (s) after 10 s."""
    r = Radio(21, slots=2, source_slots=1)
    r.sim.peers[r.src].link = Link(delay=0.01, upload_bps=60_000, queue_s=queue_s)
    r.add_listener(1)
    r.run(10)
    return r, r.sim.peers[r.src].busy_until - r.sim.now


def test_a_full_uplink_buffer_drops_what_would_wait_longer() -> None:
    r, queued = _overloaded_broadcaster(0.5)
    src = r.sim.peers[r.src]
    assert src.queue_drops > 100 and r.sim.lost >= src.queue_drops
    assert queued <= 0.5 + 1500 * 8 / 60_000  # (the last datagram in may end past the bound)
    # what fits still goes out: the listener gets most of what the link carries
    assert r.node(r.listeners[0]).stats.bytes_in > 0.7 * 60_000 / 8 * 9
    # unbounded (the default), the same queue grows without end and nothing is dropped
    r, queued = _overloaded_broadcaster(None)
    assert r.sim.peers[r.src].queue_drops == 0 and queued > 4.0
