"""A short real-process swarm on loopback: churn (crashes and polite leaves) with new joiners,
and one with malicious listeners and a crash of a third of the listeners at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamerp2p.bench import ON_TIME_SLACK, _bad_bytes, _on_time, run_swarm_bench

pytestmark = pytest.mark.e2e


def test_small_swarm_with_churn_keeps_playing() -> None:
    f = run_swarm_bench(peers=6, seconds=14, kill_share=0.34, as_json=True, seed=2)
    assert f["crashed_or_left"] >= 2 and f["peers_total"] >= 8
    assert f["never_started"] == 0, f
    assert f["chunks_played"] > 6 * 10 * 10  # every listener played most of the run
    assert f["continuity_played"] >= 0.99, f  # (1 - skipped / (played + skipped))
    assert f["continuity"] >= 0.97, f  # by the clock: a stall counts (1.0 alone)
    assert f["depth_max"] >= 2
    assert f["bad_bytes_delivered"] == 0 and f["chunks_checked"] > 6 * 10 * 10


def test_swarm_with_tamperers_and_a_crash_plays_only_the_stations_audio() -> None:
    """Real processes: a third of the listeners tamper with what they relay (altered bytes,
    renumbered and injected chunks, broken seals, forged titles) and a third of the listeners
    crash at once; honest listeners play on, and not one byte they play differs from the
    broadcaster's chunk of that sequence number."""
    f = run_swarm_bench(
        peers=9,
        seconds=16,
        kill_share=0.0,
        as_json=True,
        seed=3,
        malicious=0.3,
        malicious_kind="tamper",
        crash_at=8.0,
        crash_share=0.34,
    )
    assert f["malicious_peers"] == 3 and f["crashed"] == 3, f
    assert f["honest_never_started"] == 0, f
    assert f["chunks_checked"] > 5 * 8 * 10, f  # honest listeners played most of the run
    assert f["bad_bytes_delivered"] == 0, f
    # tamperers got to relay: what they forged was caught at the first honest hop
    assert f["honest_nodes"]["bad_chunks"] + f["honest_nodes"]["bad_seals"] > 0, f
    # by the clock (a stalled player counts): 0.84-0.98 over 6 runs beside a busy core; in
    # session 8 honest listeners stalled 10 s and more behind tamperers holding the
    # broadcaster's slots (by the clock under 0.82 in 3 of 8 runs; the old measure: 0.997)
    assert f["honest_continuity"] >= 0.8, f


def test_bad_bytes_counts_what_differs_from_the_broadcaster(tmp_path: Path) -> None:
    (tmp_path / "src.chunks").write_text("1 100 aa 0 0\n2 100 bb 80 0\n3 100 cc 160 0\n")
    (tmp_path / "a.chunks").write_text(
        "1 100 aa 0 5.0\n2 90 xx 80 5.1\n9 50 dd 720 5.2\n3 1"  # (a cut last line)
    )
    assert _bad_bytes(tmp_path, ["a"], wait=0.2) == (140, 3)


def test_bad_bytes_waits_for_the_broadcasters_log_to_catch_up(tmp_path: Path) -> None:
    """The broadcaster logs a chunk as it is sealed, a moment after it went out: a listener
    may have logged it first (a CI failure: 5,014 "bad" bytes in an honest swarm)."""
    src = tmp_path / "src.chunks"
    src.write_text("1 100 aa 0 1.0\n")
    (tmp_path / "a.chunks").write_text("1 100 aa 0 2.0\n2 100 bb 80 2.0\n")
    timer = threading.Timer(0.3, lambda: src.write_text("1 100 aa 0 1.0\n2 100 bb 80 1.1\n"))
    timer.start()
    try:
        assert _bad_bytes(tmp_path, ["a"], wait=5.0) == (0, 2)
    finally:
        timer.cancel()


def test_continuity_counts_a_stalled_player_by_the_clock(tmp_path: Path) -> None:
    """A player that stalls skips nothing: the chunks it did not get by their deadline (its
    clock starts with its first chunk) are missed all the same, and so are those due before
    it ended that never came."""
    src = "".join(f"{seq} 100 h{seq} {seq * 100} 0\n" for seq in range(100))
    (tmp_path / "src.chunks").write_text(src)
    t0 = 1000.0  # chunk 10 first, at t0; chunk k due at t0 + (k - 10) / 10
    lines = [f"{k} 100 h{k} {k * 100} {t0 + max(0, k - 13) / 10:.3f}" for k in range(10, 30)]
    # a stall: 30..39 come 2 s late, then nothing from 50 on (a dead parent, no skips)
    lines += [f"{k} 100 h{k} {k * 100} {t0 + (k - 10) / 10 + 2.0:.3f}" for k in range(30, 50)]
    (tmp_path / "a.chunks").write_text("\n".join(lines) + "\n")
    end = t0 + 6.0 + ON_TIME_SLACK / 2  # chunks 10..72 were due by then
    on_time, due = _on_time(tmp_path, ["a"], {"a": end})
    assert due == 63
    # 10..29 on time, and those of 30..49 that came within the slack of their deadline
    assert on_time == 20, (on_time, due)
