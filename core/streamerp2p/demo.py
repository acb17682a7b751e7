"""``streamer demo``: a broadcaster of generated audio and N listeners on loopback, in one process.

Every node is a full :class:`~streamerp2p.app.App` with its own UDP socket and state dir, so the
demo exercises exactly what separate machines would run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from .app import App, NodeOptions
from .config import load_config
from .link import format_hostport
from .overlay.node import NodeConfig
from .overlay.records import StationKey
from .plugins import load_plugins
from .types import StationMeta


async def run_demo(
    obj: dict[str, Any],
    peers: int,
    duration: float | None,
    slots: int,
    http_port: int,
    say: Callable[[str], None],
) -> None:
    from .cli import _wait_for_stop
    from .tone import tone_loop

    config = load_config(obj.get("config_path"))
    plugins = load_plugins(config)
    root = Path(tempfile.mkdtemp(prefix="streamer-demo-"))

    def options(http: bool, port: int = 0) -> NodeOptions:
        return NodeOptions(
            host="127.0.0.1",
            port=0,
            advertise="127.0.0.1",
            http=http,
            http_port=port,
            overlay=NodeConfig(slots=slots),
        )

    src = App(options(False), root / "broadcaster", plugins)
    listeners = [
        App(options(True, http_port if i == peers - 1 else 0), root / f"listener{i}", plugins)
        for i in range(peers)
    ]
    async with anyio.create_task_group() as tg:
        await src.start(tg)
        key = StationKey.generate()
        link = src.start_station(
            key, StationMeta(name="Streamer P2P Demo", genre="Demo", description="Generated tones")
        )
        tg.start_soon(tone_loop, src, key.station_id)
        say(f"broadcaster: {format_hostport(src.address)} (generated audio)")
        say(f"link: {link}")
        for app in listeners:
            try:
                await app.start(tg)
            except OSError:  # the player port is taken: use any
                assert app.http is not None
                app.http.port = 0
                await app.start(tg)
            app.tune(link)
            await anyio.sleep(0.2)
        last = listeners[-1]
        with anyio.move_on_after(5):
            await last.first_audio[key.station_id].wait()
        pls, _ = last.write_playlists(key.station_id)
        say(f"listen: {last.stream_url(key.station_id)}")
        say(f"playlist: {pls}")
        say("tree:")
        for i, app in enumerate(listeners):
            st = app.status()["sessions"][0]
            say(
                f"  listener{i} {format_hostport(app.address)} depth={st['depth']} "
                f"parent={st['parent']} children={len(st['children'])}"
            )
        say("(Ctrl+C to stop)" if duration is None else f"(running for {duration:g} s)")
        await _wait_for_stop(duration)
        for app in reversed(listeners):
            tg.start_soon(app.leave)
        with anyio.move_on_after(6):
            while any(not a.left.is_set() for a in listeners):
                await anyio.sleep(0.05)
        got = [a.outputs[key.station_id].stats for a in listeners]
        say(
            f"done: {len(listeners)} listeners; bytes received per listener: "
            + ", ".join(str(g.bytes_fed) for g in got)
        )
        tg.cancel_scope.cancel()
    shutil.rmtree(root, ignore_errors=True)
