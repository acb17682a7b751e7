"""The terminal UI driven by Textual's pilot, fed by a real Controller over real Apps on loopback
(a broadcaster of the generated tone and a listener), with the real icecast ingest."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.text import Text
from streamerp2p.app import App, NodeOptions, load_station_key
from streamerp2p.config import Config
from streamerp2p.control import Controller
from streamerp2p.overlay.node import NodeConfig
from streamerp2p.player import NoSoundDevice, NullSink
from streamerp2p.plugins import load_plugins
from streamerp2p.tone import tone_loop
from streamerp2p.types import StationMeta
from streamerp2p_tui.player import Player
from streamerp2p_tui.tui import StreamerTUI, station_cells
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, RichLog, Static

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def opts(slots: int, seeds: list[tuple[str, int]] | None = None) -> NodeOptions:
    return NodeOptions(
        host="127.0.0.1",
        port=0,
        advertise="127.0.0.1",
        http_port=0,
        seeds=seeds or [],
        overlay=NodeConfig(slots=slots, bandwidth_test=False),
    )


class Net:
    def __init__(self, src: App, lst: App, station_id: bytes, config_path: Path) -> None:
        self.src, self.lst, self.station_id, self.config_path = src, lst, station_id, config_path

    def children(self) -> int:
        sess = self.src.node.sessions.get(self.station_id[:4])
        return len(sess.children) if sess is not None else 0


@asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[Net]:
    """A broadcaster of the tone ("Pilot FM") and a listener node with its own config file."""
    plugins = load_plugins()
    cfg_path = tmp_path / "config.toml"
    async with anyio.create_task_group() as tg:
        src = App(opts(2), tmp_path / "src", plugins)
        await src.start(tg)
        key = load_station_key(tmp_path / "src", "Pilot FM")
        src.start_station(key, StationMeta(name="Pilot FM", genre="Tests"), "*", on_air=True)
        tg.start_soon(tone_loop, src, key.station_id)
        lst = App(
            opts(1, [src.advertised()]), tmp_path / "lst", plugins, config=Config(path=cfg_path)
        )
        await lst.start(tg)
        yield Net(src, lst, key.station_id, cfg_path)
        tg.cancel_scope.cancel()


def text(widget: Any) -> str:
    """What a Static shows, as plain text."""
    content = widget
    if isinstance(widget, Static):  # (Textual < 2 calls it renderable)
        content = getattr(widget, "content", None) or getattr(widget, "renderable", "")
    return content.plain if isinstance(content, Text) else str(content)


def rows(tui: StreamerTUI) -> list[list[str]]:
    table = tui.query_one("#stations", DataTable)
    return [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]


async def until(
    pilot: Pilot[Any], pred: Callable[[], bool], what: str, timeout: float = 15
) -> None:
    """Poll the UI until ``pred`` holds (fails with ``what`` after ``timeout`` seconds)."""
    try:
        with anyio.fail_after(timeout):
            while not pred():
                await pilot.pause(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def shows(tui: StreamerTUI, selector: str, needle: str) -> Callable[[], bool]:
    return lambda: needle in text(tui.screen.query_one(selector, Static))


async def test_tune_play_volume_stop_broadcast_and_settings(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        ctl = Controller(net.lst, idle=0.3, min_interval=0.05)
        sink = NullSink()
        player = Player(net.lst, sink_factory=lambda _d: sink, probe=lambda _d: "test sink")
        tui = StreamerTUI(ctl, player)
        async with tui.run_test(size=(120, 40)) as pilot:
            # the station appears in the table, with its listeners and title
            await until(pilot, lambda: any("Pilot FM" in r[1] for r in rows(tui)), "the station")
            row = next(r for r in rows(tui) if "Pilot FM" in r[1])
            assert row[2] == "Tests" and "mp3" in row[3]
            await until(pilot, shows(tui, "#status", "1 stations, 0 listeners"), "status line")
            assert "Not tuned in" in text(tui.query_one("#playing", Static))
            # Enter tunes the highlighted station: tuning/buffering, then playing with a title
            await pilot.press("enter")
            assert ctl.tuned == net.station_id
            await until(pilot, shows(tui, "#playing", "[playing]"), "playing", 20)
            await until(pilot, shows(tui, "#playing", "Demo tone"), "the title")
            assert tui.query_one("#progress", ProgressBar).progress == 1.0
            await until(pilot, lambda: sink.samples > 44100 // 2, "audio in the player's sink")
            assert "player: internal, mp3 on test sink" in text(tui.query_one("#playing", Static))
            await until(pilot, lambda: rows(tui)[0][0].strip() == "1", "1 listener in the table")
            assert rows(tui)[0][1].startswith("▶")
            await until(pilot, shows(tui, "#status", "1 stations, 1 listeners"), "status line")
            node = tui.query_one("#node-text", Static)
            src_port = net.src.address[1]
            assert f"parent 127.0.0.1:{src_port}" in text(node) and "depth 1" in text(node)
            assert f"Node 127.0.0.1:{net.lst.address[1]}" in text(node)
            # volume: - and + change the playing decoder's gain
            await pilot.press("minus", "minus")
            assert player.volume == 90 and player._decoder.gain == pytest.approx(0.9)
            await until(pilot, shows(tui, "#playing", "volume 90 %"), "the volume")
            await pilot.press("plus")
            assert player.volume == 95
            # s stops: not tuned, the player stops, the broadcaster loses its child
            assert net.children() == 1
            await pilot.press("s")
            assert ctl.tuned is None and not player.playing
            await until(pilot, shows(tui, "#playing", "Not tuned in"), "stopped")
            await until(pilot, lambda: net.children() == 0, "the child to leave", 10)
            await until(pilot, lambda: "stopped" in log_text(tui), "'stopped' in the log pane")

            # b: the broadcast form; an error first, then the link and the tool help
            await pilot.press("b")
            await until(pilot, lambda: tui.screen.query("#b-name"), "the broadcast form")
            form = tui.screen
            form.query_one("#b-port", Input).value = "0"
            form.query_one("#b-password", Input).value = "s3cret"
            await pilot.press("enter")  # (no name yet)
            await until(pilot, shows(tui, "#b-error", "a station needs a name"), "name error")
            await pilot.press(*"Live One")
            assert form.query_one("#b-name", Input).value == "Live One"
            await pilot.press("enter")
            await until(pilot, shows(tui, "#b-result", "streamerp2p://"), "the link")
            result = text(form.query_one("#b-result", Static))
            port = ctl.snapshot()["ingest"]["port"]
            assert f"icecast://source:s3cret@127.0.0.1:{port}/live" in result
            assert "butt:" in result and "Mixxx:" in result and "liquidsoap:" in result
            assert text(form.query_one("#b-error", Static)) == ""
            await pilot.press("escape")
            await until(pilot, shows(tui, "#node-text", "Broadcasting Live One"), "node pane")

            # o: settings; a bad value is an error (nothing written), a good one is saved
            await pilot.press("o")
            await until(pilot, lambda: tui.screen.query("#s-node-slots"), "the settings")
            assert not tui.check_action("broadcast", ()) and not tui.check_action("stop", ())
            slots = tui.screen.query_one("#s-node-slots", Input)
            assert slots.value == "4"
            slots.value = "many"
            await pilot.press("ctrl+s")
            await until(pilot, shows(tui, "#s-message", "not saved"), "the error")
            assert "node.slots" in text(tui.screen.query_one("#s-message", Static))
            assert not net.config_path.exists()
            slots.value = "7"
            tui.screen.query_one("#s-node-seeds", Input).value = "127.0.0.1:9, 127.0.0.2:9"
            await pilot.press("ctrl+s")
            await until(pilot, shows(tui, "#s-message", "takes effect at next start"), "saved")
            saved = tomllib.loads(net.config_path.read_text())
            assert saved["node"]["slots"] == 7
            assert saved["node"]["seeds"] == ["127.0.0.1:9", "127.0.0.2:9"]
            await pilot.press("escape")
            # q quits the UI (the node's leave is the caller's: UISpec.run returns)
            await pilot.press("q")
        assert tui.return_code == 0


def log_text(tui: StreamerTUI) -> str:
    return "\n".join(strip.text for strip in tui.query_one("#log", RichLog).lines)


async def test_no_sound_device_is_said_plainly_and_the_node_runs_on(tmp_path: Path) -> None:
    def no_device(_device: str) -> str:
        raise NoSoundDevice("no output device (PortAudio: none here)")

    async with network(tmp_path) as net:
        ctl = Controller(net.lst, idle=0.3, min_interval=0.05)
        tui = StreamerTUI(ctl, Player(net.lst, probe=no_device))
        async with tui.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: bool(rows(tui)), "the station")
            await pilot.press("enter")
            await until(pilot, shows(tui, "#playing", "no sound device"), "the message")
            await until(pilot, shows(tui, "#playing", "[playing]"), "playing all the same", 20)
            assert net.children() == 1  # the node is in the tree and relays
            await pilot.press("q")
        assert tui.return_code == 0


def test_offline_stations_are_dimmed_with_last_seen() -> None:
    base = {"name": "Gone FM", "genre": "Jazz", "codec": "mp3", "bitrate": 128, "title": "x"}
    off = station_cells({**base, "listeners": 0, "online": False, "last_seen_s": 300.0})
    assert off[0].plain == "off" and off[4].plain == "off air, last seen 5 min ago"
    assert all(c.style == "dim" for c in off)
    on = station_cells({**base, "listeners": 12, "online": True, "last_seen_s": 1.0})
    assert on[0].plain.strip() == "12" and on[4].plain == "x" and on[3].plain == "mp3 128k"
    assert on[0].style != "dim"
