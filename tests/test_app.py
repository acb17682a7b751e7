"""In-process network of real Apps on loopback UDP: titles and station info travel through the
tree to a player's ICY metadata, plugin event hooks fire, garbage datagrams are counted."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from streamerp2p.app import App, NodeOptions
from streamerp2p.hookspecs import hookimpl
from streamerp2p.overlay.node import NodeConfig
from streamerp2p.overlay.records import StationKey
from streamerp2p.plugins import load_plugins
from streamerp2p.tone import tone_loop
from streamerp2p.types import PeerInfo, StationMeta


class Recorder:
    """A plugin implementing every event hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def streamerp2p_station_seen(self, station_id: str, meta: StationMeta) -> None:
        self.calls.append(("station_seen", {"station_id": station_id, "meta": meta}))

    @hookimpl
    def streamerp2p_tuned(
        self, station_id: str, meta: StationMeta, parent: PeerInfo | None
    ) -> None:
        self.calls.append(("tuned", {"station_id": station_id, "parent": parent}))

    @hookimpl
    def streamerp2p_now_playing(self, station_id: str, title: str) -> None:
        self.calls.append(("now_playing", {"title": title}))

    @hookimpl
    def streamerp2p_peer_joined(self, station_id: str, peer: PeerInfo) -> None:
        self.calls.append(("peer_joined", {"peer": peer}))

    @hookimpl
    def streamerp2p_peer_left(self, station_id: str, peer: PeerInfo, reason: str) -> None:
        self.calls.append(("peer_left", {"reason": reason}))


async def read_icy(port: int, path: str, want_blocks: int) -> tuple[bytes, list[str], int]:
    """Read a stream with Icy-MetaData: 1; return headers, titles, audio byte count."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive()
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        metaint = int(
            next(h for h in lines if h.lower().startswith(b"icy-metaint:")).split(b":")[1]
        )
        titles: list[str] = []
        audio = 0
        blocks = 0
        while blocks < want_blocks:
            while len(buf) < metaint + 1:
                buf += await stream.receive()
            audio += metaint
            n = buf[metaint] * 16
            while len(buf) < metaint + 1 + n:
                buf += await stream.receive()
            meta = buf[metaint + 1 : metaint + 1 + n].rstrip(b"\0").decode()
            if meta:
                titles.append(meta)
            buf = buf[metaint + 1 + n :]
            blocks += 1
    return head, titles, audio


@pytest.mark.anyio
async def test_titles_and_station_info_reach_the_player_through_the_tree(tmp_path: Path) -> None:
    plugins = load_plugins()
    rec = Recorder()
    plugins.register(rec, "test", "recorder")

    def opts(slots: int) -> NodeOptions:
        return NodeOptions(
            host="127.0.0.1",
            port=0,
            advertise="127.0.0.1",
            http_port=0,
            overlay=NodeConfig(slots=slots),
        )

    src = App(opts(1), tmp_path / "src", plugins)
    relay = App(opts(1), tmp_path / "relay", plugins)
    leaf = App(opts(0), tmp_path / "leaf", plugins)
    key = StationKey.generate()
    async with anyio.create_task_group() as tg:
        for a in (src, relay, leaf):
            await a.start(tg)
        link = src.start_station(key, StationMeta(name="Tree FM", genre="Tests"))
        tg.start_soon(tone_loop, src, key.station_id)
        relay.tune(link)
        with anyio.fail_after(5):
            await relay.first_audio[key.station_id].wait()
        leaf.tune(link)  # the source is full: it is referred to the relay
        with anyio.fail_after(5):
            await leaf.first_audio[key.station_id].wait()
        assert leaf.node.sessions[key.station_id[:4]].depth == 2
        # garbage at a live node is dropped and counted; it keeps playing
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (b"", b"hello", b"SP\x01\x20" + b"\xff" * 40, bytes(1500)):
                s.sendto(junk, leaf.address)
        assert leaf.http is not None
        path = leaf.stream_url(key.station_id).split(str(leaf.http.port), 1)[1]
        with anyio.fail_after(15):
            head, titles, audio = await read_icy(leaf.http.port, path, 6)
        assert b"icy-name: Tree FM" in head and b"icy-genre: Tests" in head
        assert any("StreamTitle='Demo tone" in t for t in titles), titles
        assert leaf.node.stats.bad_datagrams >= 3
        # the directory (streamer stations / /api/stations) knows the station and its audience
        d = src.directory()
        assert d["stations"][0]["name"] == "Tree FM" and d["stations"][0]["online"]
        assert d["stations"][0]["listeners"] >= 1 and d["status"].startswith("1 stations")
        assert audio >= 6 * 16000
        await leaf.leave(3)
        await relay.leave(3)
        tg.cancel_scope.cancel()
    names = [c[0] for c in rec.calls]
    for hook in ("station_seen", "tuned", "now_playing", "peer_joined", "peer_left"):
        assert hook in names, names


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
