"""``streamer bench fuzz``: the command, the engine (it finds planted bugs and saves them), and
the codec targets found through the plugin system."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamerp2p import benchfuzz
from streamerp2p.cli import main
from streamerp2p.plugins import CODECS_GROUP, load_plugins


def test_command_prints_json_figures_per_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["bench", "fuzz", "--target", "wire", "--target", "icy", "--inputs", "3000", "--json",
         "--crashes", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = [json.loads(line) for line in result.output.splitlines()]
    assert [f["target"] for f in figures] == ["wire", "icy"]
    for f in figures:
        assert f["inputs"] == 3000 and f["crashes"] == 0 and f["inputs_per_s"] > 0


def test_unknown_target_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["bench", "fuzz", "--target", "nope", "--inputs", "1"])
    assert result.exit_code != 0 and "unknown fuzz target(s): nope" in result.output


def test_planted_bug_is_found_counted_and_saved(tmp_path: Path) -> None:
    """A parser that breaks on a length field of 0xFFFF, two mutations away from its seed."""

    def check(data: bytes) -> str:
        if len(data) >= 4 and data[:2] == b"LN" and data[2:4] == b"\xff\xff":
            raise IndexError("length past the end")
        return "ok" if data[:2] == b"LN" else "bad"

    target = benchfuzz.Target("planted", "test", [b"LN\x00\x05hello"], check)
    camp = benchfuzz.run_campaign(target, inputs=20_000, crash_dir=tmp_path)
    assert camp.crashes > 0 and camp.distinct_crashes == 1
    (saved,) = camp.saved
    with pytest.raises(IndexError):
        benchfuzz.replay(target, Path(saved))
    assert "IndexError: length past the end" in Path(saved).with_suffix(".txt").read_text()


def test_a_hang_is_a_crash() -> None:
    runner = benchfuzz.AsyncRunner(limit=0.05)

    async def forever() -> None:
        import anyio

        await anyio.sleep(10)

    with pytest.raises(benchfuzz.Hang):
        runner.run(forever)


def test_codec_targets_come_from_the_plugin_system() -> None:
    names = {f"codec:{c.name}" for c in load_plugins(groups=[CODECS_GROUP]).codecs()}
    assert names and names <= set(benchfuzz.target_names())
    source = Path(benchfuzz.__file__).read_text()
    assert "import streamerp2p_" not in source and "from streamerp2p_" not in source


def test_read_splits_cover_the_input() -> None:
    body = bytes(range(256)) * 3
    for mode in range(256):
        assert b"".join(benchfuzz._split(bytes([mode]) + body)) == body
