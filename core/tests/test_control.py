"""The front ends' controller on real Apps (loopback UDP, the real icecast ingest)."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import anyio
import anyio.abc
import pytest
from streamerp2p.app import App, NodeOptions
from streamerp2p.config import Config, ConfigError
from streamerp2p.control import Controller, tool_help
from streamerp2p.overlay.node import NodeConfig
from streamerp2p.plugins import load_plugins
from streamerp2p.tone import ToneSource

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


async def wait_for(ctl: Controller, pred, timeout: float = 10.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with anyio.fail_after(timeout):
        async for snap in ctl.changes():
            if pred(snap):
                return snap
    raise AssertionError("unreachable")


async def test_broadcast_tune_states_titles_stop_and_settings(tmp_path: Path) -> None:
    plugins = load_plugins()
    cfg_path = tmp_path / "config.toml"
    config = Config(path=cfg_path)
    config.set_value("ingest.port", 0)
    src_app = App(opts(2), tmp_path / "src", plugins)
    src = Controller(src_app, config, idle=0.5, min_interval=0.05)
    async with anyio.create_task_group() as tg:
        await src_app.start(tg)
        lst_app = App(opts(1, [src_app.advertised()]), tmp_path / "lst", plugins)
        await lst_app.start(tg)
        lst = Controller(lst_app, Config(path=tmp_path / "l.toml"), idle=0.5, min_interval=0.05)
        with pytest.raises(ValueError, match="name"):
            await src.start_broadcast(" ")
        st = await src.start_broadcast("Control FM", genre="Tests", password="pw", mount="/live")
        assert st["name"] == "Control FM" and st["link"].startswith("streamerp2p://")
        assert not st["on_air"] and st["source"] is None  # no tool connected yet
        assert any(h["tool"] == "ffmpeg" and "source:pw@" in h["how"] for h in st["help"])
        with pytest.raises(ValueError, match="mount"):
            await src.start_broadcast("Other", password="pw", mount="/live")
        # the tool help stays in every snapshot (a front end shows it again later)
        assert src.snapshot()["broadcasts"][0]["help"] == st["help"]
        ingest = src.snapshot()["ingest"]
        assert ingest["plugin"] == "icecast" and ingest["port"] > 0
        # the listener tunes in by link before any audio: tuning / buffering, not playing
        sid = lst.tune(st["link"])
        snap = lst.snapshot()
        assert snap["tuned"]["station_id"] == sid and snap["tuned"]["state"] in (
            "tuning",
            "buffering",
            "off air",
        )
        # a broadcast tool connects (PUT, as ffmpeg does) and sends audio in real time
        stream = await anyio.connect_tcp("127.0.0.1", ingest["port"])
        auth = base64.b64encode(b"source:pw").decode()
        await stream.send(
            f"PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
            "Content-Type: audio/mpeg\r\n\r\n".encode()
        )
        assert (await stream.receive()).startswith(b"HTTP/1.0 200 OK")
        tone = ToneSource()

        async def feed() -> None:
            while True:
                await stream.send(b"".join(tone.frames(8)))
                await anyio.sleep(8 * 1152 / 44100)

        tg.start_soon(feed)
        snap = await wait_for(src, lambda s: s["broadcasts"][0]["on_air"])
        assert snap["broadcasts"][0]["source"]
        seen: set[str] = set()

        def playing(s: dict) -> bool:  # type: ignore[type-arg]
            seen.add(s["tuned"]["state"])
            return s["tuned"]["state"] == "playing"

        snap = await wait_for(lst, playing, 15)
        assert "buffering" in seen or "tuning" in seen
        tree = snap["tuned"]["tree"]
        assert tree["parent"] == f"127.0.0.1:{src_app.address[1]}"
        assert tree["depth"] == 1 and snap["tuned"]["stream_url"].startswith("http://127.0.0.1:")
        src_app.node.update_station(src_app.station_for_mount("/live"), src_app.now(), title="T1")
        src_app.runtime.poke()
        snap = await wait_for(lst, lambda s: s["tuned"]["title"] == "T1")
        assert snap["status"].startswith("1 stations")
        row = next(r for r in snap["stations"] if r["station_id"] == sid)
        assert row["tuned"] and not row["broadcasting"] and row["name"] == "Control FM"
        b = src.snapshot()["broadcasts"][0]
        assert b["tree"]["children"] and b["title"] == "T1"
        # stop and tune again at once (two clicks, before the node's next tick): it plays on,
        # and the new output knows the station (name, title) without waiting for gossip
        lst.stop()
        assert lst.tune(st["link"]) == sid
        snap = await wait_for(lst, playing, 10)
        assert snap["tuned"]["title"] == "T1" and snap["tuned"]["tree"]["parent"] == tree["parent"]
        out = lst_app.outputs[src_app.station_for_mount("/live")]
        assert out.title == "T1" and out.meta.name == "Control FM"
        # stop: not tuned any more, and the broadcaster loses its child
        lst.stop()
        assert lst.snapshot()["tuned"] is None
        await wait_for(src, lambda s: not s["broadcasts"][0]["tree"]["children"], 10)
        # settings: typed or text, validated all or nothing, written to the TOML file
        keys = {s["key"]: s for s in src.settings()}
        assert keys["node.slots"]["type"] and keys["node.slots"]["help"]
        assert keys["node.slots"]["kind"] == "int" and keys["node.seeds"]["kind"] == "list[str]"
        assert keys["node.bandwidth_test"]["kind"] == "bool"
        assert src.update_settings({"node.slots": "5", "node.seeds": ["10.0.0.1:8466"]}) == [
            "node.slots",
            "node.seeds",
        ]
        saved = tomllib.loads(cfg_path.read_text())
        assert saved["node"]["slots"] == 5 and saved["node"]["seeds"] == ["10.0.0.1:8466"]
        with pytest.raises(ConfigError):
            src.update_settings({"node.slots": "many", "http.port": "9000"})
        with pytest.raises(ConfigError, match="not a setting"):
            src.update_settings({"ingest.password": "x"})
        assert tomllib.loads(cfg_path.read_text())["node"]["slots"] == 5
        assert "http" not in tomllib.loads(cfg_path.read_text())
        # stopping the broadcast ends the station, and the tool still sending is let go
        src.stop_broadcast(sid)
        assert src.snapshot()["broadcasts"] == []
        await wait_for(src, lambda s: any("station was stopped" in r["line"] for r in s["log"]))
        assert src_app._live_sources == {}
        await stream.aclose()
        tg.cancel_scope.cancel()


def test_tool_help_names_the_mount_and_password() -> None:
    rows = tool_help("127.0.0.1", 8000, "*", "s3cret")
    tools = {r["tool"] for r in rows}
    assert {"ffmpeg", "butt", "Mixxx", "liquidsoap", "ezstream", "darkice"} <= tools
    assert all("s3cret" in r["how"] or "password" in r["how"] for r in rows)
    assert "icecast://source:s3cret@127.0.0.1:8000/live" in rows[0]["how"]


async def test_broadcast_on_a_busy_ingest_port_fails_and_the_node_runs_on(tmp_path: Path) -> None:
    busy = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = busy.extra(anyio.abc.SocketAttribute.local_port)
    config = Config(path=tmp_path / "c.toml")
    config.set_value("ingest.port", port)
    app = App(opts(1), tmp_path / "st", load_plugins())
    ctl = Controller(app, config, idle=0.5, min_interval=0.05)
    async with busy, anyio.create_task_group() as tg:
        await app.start(tg)
        with pytest.raises(ValueError, match=f"cannot start the icecast ingest on .*:{port}"):
            await ctl.start_broadcast("Busy FM", password="pw")
        snap = ctl.snapshot()
        assert snap["broadcasts"] == [] and snap["ingest"] is None
        assert app._broadcasts == {}  # the station was taken back (its mount is free)
        config.set_value("ingest.port", 0)  # the node still runs: another try works
        st = await ctl.start_broadcast("Busy FM", password="pw")
        assert st["name"] == "Busy FM" and ctl.snapshot()["ingest"]["port"] != port
        tg.cancel_scope.cancel()
