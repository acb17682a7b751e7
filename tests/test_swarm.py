"""A short real-process swarm on loopback: churn (crashes and polite leaves) with new joiners."""

from __future__ import annotations

import pytest
from streamerp2p.bench import run_swarm_bench

pytestmark = pytest.mark.e2e


def test_small_swarm_with_churn_keeps_playing() -> None:
    f = run_swarm_bench(peers=6, seconds=14, kill_share=0.34, as_json=True, seed=2)
    assert f["crashed_or_left"] >= 2 and f["peers_total"] >= 8
    assert f["never_started"] == 0, f
    assert f["chunks_played"] > 6 * 10 * 10  # every listener played most of the run
    assert f["continuity"] >= 0.99, f
    assert f["depth_max"] >= 2
