"""`streamer sim` as a user runs it: JSON figures with the keys the issue names, and a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from streamerp2p.cli import main

KEYS = {
    "peers",
    "continuity",
    "source_upload_ratio",
    "startup_p50_s",
    "startup_p95_s",
    "depth_mean",
    "depth_max",
    "depth_mean_by_class",
    "control_overhead",
    "repairs",
    "wall_s",
}


def test_sim_prints_figures_and_plots(tmp_path: Path) -> None:
    png = tmp_path / "tree.png"
    args = [
        "sim",
        "--peers",
        "12",
        "--minutes",
        "0.75",
        "--churn",
        "0.2",
        "--bitrate",
        "128",
        "--warmup",
        "15",
        "--json",
        "--plot",
        str(png),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[0])
    assert set(figures) >= KEYS
    assert figures["peers"] == 12 and figures["never_started"] == 0
    assert set(figures["depth_mean_by_class"]) == {"fast", "medium", "modem"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # deterministic: the same seed gives the same figures (but the wall time)
    again = json.loads(CliRunner().invoke(main, args[:-2]).stdout.strip().splitlines()[0])
    figures.pop("wall_s"), again.pop("wall_s")
    assert again == figures


def test_sim_lognormal_sessions_churn_at_the_given_rate() -> None:
    """Heavy-tailed sessions: the initial audience is mid-session, so departures run near the
    nominal rate (not the burst of a crowd of fresh short sessions), and peers still play."""
    args = ["sim", "--peers", "40", "--minutes", "2", "--churn", "0.3"]
    args += ["--warmup", "20", "--sessions", "lognormal", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[0])
    assert figures["sessions"] == "lognormal"
    assert 0.15 <= figures["departures_per_minute"] <= 0.5, figures
    assert figures["peers_total"] > 40 and figures["continuity"] > 0.8
    bad = CliRunner().invoke(main, [*args[:-3], "--sessions", "pareto"])
    assert bad.exit_code != 0 and "pareto" in bad.output
