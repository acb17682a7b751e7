"""The running node: overlay + UDP runtime + local HTTP output + ingest + plugin events.

Front ends, the command line, the demo and the benchmarks all drive an :class:`App`. Several
apps can run in one event loop (the demo runs a whole small network in one process).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import re
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .http_output import HttpOutputServer, write_playlists
from .link import Link, format_hostport
from .output import StationOutput
from .overlay import events as ev
from .overlay.node import Node, NodeConfig
from .overlay.records import StationKey, StationRecord, encode_station_id
from .overlay.wire import Addr
from .plugins import PluginHost
from .runtime import UdpRuntime
from .types import (
    IngestContext,
    PeerInfo,
    Rewriter,
    SourceConnection,
    StationMeta,
    framer_title,
)

log = logging.getLogger(__name__)


@dataclass
class NodeOptions:
    host: str = "0.0.0.0"
    port: int = 8466
    advertise: str = ""  # host put in links; "" = guess
    seeds: list[Addr] = field(default_factory=list)
    http_host: str = "127.0.0.1"
    http_port: int = 8467
    http: bool = True
    overlay: NodeConfig = field(default_factory=NodeConfig)
    # test beds only (``streamer bench swarm``): log what is played, run a malicious node
    chunk_log: Path | None = None
    adversary: str = ""  # a kind of streamerp2p.adversary, "" = an honest node

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> NodeOptions:
        from .link import parse_hostport

        ov = NodeConfig(
            slots=int(config.get("node.slots")),
            upload_kbps=float(config.get("node.upload_kbps")),
            bandwidth_test=bool(config.get("node.bandwidth_test")),
            max_proxy_clients=int(config.get("node.max_proxy_clients")),
            history_seconds=float(config.get("node.history_seconds")),
            cushion_seconds=float(config.get("node.cushion_seconds")),
            parent_timeout=float(config.get("node.parent_timeout")),
            leave_grace=float(config.get("node.leave_grace")),
        )
        opts = cls(
            host=config.get("node.host"),
            port=int(config.get("node.port")),
            seeds=[parse_hostport(s) for s in config.get("node.seeds")],
            http_host=config.get("http.host"),
            http_port=int(config.get("http.port")),
            overlay=ov,
        )
        for k, v in overrides.items():
            if v is None:
                continue
            if k == "slots":
                opts.overlay.slots = int(v)
            else:
                setattr(opts, k, v)
        return opts


def guess_local_ip() -> str:
    """Best guess of this machine's LAN address (no datagram is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1; connect() on UDP sends nothing
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-").lower()
    return s or "station"


def write_atomic(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_station_key(state_dir: Path, name: str) -> StationKey:
    """The station's key from the state dir, created on first use (same name, same station)."""
    path = state_dir / "stations" / f"{slug(name)}.key"
    if path.exists():
        seed = path.read_bytes()
        if len(seed) != 32:
            raise ValueError(f"{path}: not a station key (expected 32 bytes)")
        return StationKey.from_seed(seed)
    key = StationKey.generate()
    write_atomic(path, key.seed())
    return key


class App:
    def __init__(
        self,
        opts: NodeOptions,
        state_dir: Path,
        plugins: PluginHost,
        *,
        out: Callable[[str], None] | None = None,
        config: Any = None,
    ) -> None:
        self.opts = opts
        self.config = config  # the Config it was made from (front ends read and save it)
        self.state_dir = state_dir
        self.plugins = plugins
        self.out = out or (lambda line: None)
        if opts.adversary:
            from . import adversary

            up = opts.overlay.upload_kbps or 128.0 * max(1, opts.overlay.slots)
            self.node = adversary.make(
                opts.adversary, opts.overlay, rng=random.Random(), bitrate_kbps=128, upload_kbps=up
            )
        else:
            self.node = Node(opts.overlay)
        self._chunk_log = open(opts.chunk_log, "a") if opts.chunk_log else None  # noqa: SIM115
        self.node.add_seeds(opts.seeds)
        self.runtime = UdpRuntime(self.node, opts.host, opts.port, on_event=self._on_event)
        self.http = HttpOutputServer(opts.http_host, opts.http_port) if opts.http else None
        if self.http is not None:
            self.http.directory = self.directory
        self.outputs: dict[bytes, StationOutput] = {}
        self.first_audio: dict[bytes, anyio.Event] = {}
        self.left = anyio.Event()
        self.created = time.monotonic()
        self.first_audio_at: dict[bytes, float] = {}  # seconds after start
        self.chunks_played: dict[bytes, int] = {}  # AudioData events, by station
        self.listeners: list[Callable[[ev.Event], None]] = []
        self._sent_headers: dict[bytes, bytes] = {}  # codec headers given to the node, by station
        self._broadcasts: dict[str, bytes] = {}  # mount ("*": any other) -> station id
        self._live_sources: dict[bytes, str] = {}  # station id -> the source feeding it
        self._on_air: dict[bytes, bool] = {}  # stations we receive: on air as last heard
        self._metas: dict[bytes, StationMeta] = {}
        self.task_group: TaskGroup | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, tg: TaskGroup) -> None:
        self.task_group = tg  # (front ends start ingest servers in it)
        self.runtime.bind()
        await tg.start(self.runtime.run)
        if self.http is not None:
            await tg.start(self.http.serve)

    @property
    def address(self) -> Addr:
        return self.runtime.address

    def advertised(self) -> Addr:
        host = self.opts.advertise
        if not host:
            bound = self.opts.host
            host = bound if bound not in ("0.0.0.0", "::", "") else guess_local_ip()
        return (host, self.runtime.port)

    def now(self) -> float:
        return self.runtime.clock()

    async def leave(self, timeout: float | None = None) -> None:
        """Polite leave: children re-home before this node goes."""
        if timeout is None:
            timeout = self.opts.overlay.leave_grace + 2.0
        self.node.leave(self.now())
        self.runtime.poke()
        with anyio.move_on_after(timeout):
            await self.left.wait()

    # ------------------------------------------------------------------ listening

    def tune(self, link: Link) -> StationOutput:
        sid = link.station_id
        fresh = sid not in self.outputs
        known = self.node.directory.get(sid)
        meta = known.record.meta if known is not None else StationMeta(name=link.name)
        out = self._output(sid, meta, known=known is not None)
        self.node.tune(sid, list(link.seeds) + self.opts.seeds, self.now())
        sess = self.node.sessions.get(sid[:4])
        if fresh and sess is not None and sess.station_id == sid:
            # tuned again while the node was still leaving (see Node.tune): it stays in the
            # tree, and the new output gets what the node already knows of the station
            if sess.record is not None:
                self._apply_record(out, sess.record, title=bool(sess.record.title))
            if sess.codec_headers:
                out.set_headers(sess.codec_headers)
        self.runtime.poke()
        return out

    def untune(self, station_id: bytes) -> None:
        """Stop receiving a station: the node leaves its tree politely (children re-home);
        players reading its output get the end of the stream."""
        self.node.untune(station_id, self.now())
        self.runtime.poke()
        self._drop_output(station_id)

    def stop_station(self, station_id: bytes) -> None:
        """Stop broadcasting: off air for good, the tree is told to go."""
        self.node.stop_broadcast(station_id, self.now())
        self.runtime.poke()
        for mount in [m for m, s in self._broadcasts.items() if s == station_id]:
            del self._broadcasts[mount]
        self._drop_output(station_id)

    def _drop_output(self, sid: bytes) -> None:
        out = self.outputs.pop(sid, None)
        if out is not None:
            out.end()
            if self.http is not None:
                self.http.remove(out.station_id)
        self.first_audio.pop(sid, None)

    def stream_url(self, station_id: bytes) -> str:
        assert self.http is not None
        return self.http.url(encode_station_id(station_id))

    def write_playlists(self, station_id: bytes) -> tuple[Path, Path]:
        meta = self._metas.get(station_id, StationMeta())
        return write_playlists(
            self.state_dir / "playlists",
            encode_station_id(station_id),
            meta.name or "Streamer P2P",
            self.stream_url(station_id),
        )

    def _output(self, sid: bytes, meta: StationMeta, *, known: bool = True) -> StationOutput:
        out = self.outputs.get(sid)
        if out is None:
            out = StationOutput(
                encode_station_id(sid),
                meta,
                rejoin=self._rejoin(meta.codec) if known else None,
                meta_known=known,
            )
            self.outputs[sid] = out
            self.first_audio[sid] = anyio.Event()
            self._metas[sid] = meta
            if self.http is not None:
                self.http.add(out)
        return out

    def _apply_record(self, out: StationOutput, rec: StationRecord, *, title: bool) -> None:
        """A station record's info for an output (its title too if ``title``)."""
        out.set_meta(rec.meta)
        if out.rejoin is None:
            out.set_rejoin(self._rejoin(rec.meta.codec))
        if title:
            out.set_title(rec.title)

    def _rejoin(self, codec_name: str) -> Callable[[], Rewriter] | None:
        """``CodecSpec.rejoin`` of the codec called ``codec_name`` (None if unknown or none)."""
        if not codec_name:
            return None
        try:
            return self.plugins.codec(codec_name).rejoin
        except KeyError:
            return None

    # ------------------------------------------------------------------ broadcasting

    def start_station(
        self, key: StationKey, meta: StationMeta, mount: str = "*", *, on_air: bool = True
    ) -> Link:
        """Start broadcasting a station whose sources connect on ``mount`` ("*": any mount
        no other station of this node has). ``on_air=False``: off air until a source comes."""
        sid = key.station_id
        self._output(sid, meta)
        self._broadcasts[_mount_key(mount)] = sid  # (first: the node's events name it ours)
        self.node.start_broadcast(key, meta, self.now(), wall_ms=int(time.time() * 1000))
        if not on_air:
            self.node.set_on_air(sid, False, self.now())
        self.runtime.poke()
        return self.link(sid)

    def station_for_mount(self, mount: str) -> bytes | None:
        """The station a source on ``mount`` feeds: the one on that mount, else the catch-all."""
        return self._broadcasts.get(_mount_key(mount), self._broadcasts.get("*"))

    def link(self, station_id: bytes) -> Link:
        meta = self._metas.get(station_id, StationMeta())
        # our seeds too: a listener whose datagrams cannot reach us (we are behind a NAT)
        # finds us, and our proxy, through them
        hosts = dict.fromkeys([self.advertised(), *self.opts.seeds[:3]])
        return Link(station_id, meta.name, tuple(hosts))

    def push_bytes_framer(self, station_id: bytes) -> Callable[[bytes], None]:
        """A sink for a raw stream of this station's codec (used by the demo tone source)."""
        meta = self._metas[station_id]
        codec = (
            self.plugins.codec(meta.codec)
            if meta.codec
            else self.plugins.codec_for(meta.content_type)
        )
        if codec is None:
            raise ValueError(f"no codec plugin for {meta.content_type}")
        framer = codec.framer()
        announced = False

        def push(data: bytes) -> None:
            nonlocal announced
            frames = framer.push(data)
            if frames and station_id[:4] in self.node.sessions:
                self._send_headers(station_id, framer)
                self.node.broadcast_frames(station_id, frames, self.now())
                self.runtime.flush()
                if not announced and framer.format() is not None:
                    announced = True
                    self._announce_format(station_id, codec.name, framer.format())

        return push

    def _send_headers(self, sid: bytes, framer: Any) -> None:
        """Codec headers for late joiners (Ogg), sent before the frames that follow them."""
        headers = framer.headers()
        if headers != self._sent_headers.get(sid, b""):
            self._sent_headers[sid] = headers
            self.node.set_headers(sid, headers, self.now())

    def _announce_format(self, sid: bytes, codec_name: str, fmt: Any) -> None:
        meta = self._metas[sid]
        meta = replace(
            meta,
            codec=codec_name,
            bitrate=meta.bitrate or fmt.bitrate,
            sample_rate=fmt.sample_rate,
            channels=fmt.channels,
        )
        self._metas[sid] = meta
        self.node.update_station(sid, self.now(), meta=meta)
        self.runtime.poke()

    async def serve_ingest(
        self,
        tg: TaskGroup,
        name: str,
        host: str,
        port: int,
        password: str,
        station_id: bytes | None = None,
    ) -> tuple[str, int]:
        """Run an ingest server; returns where it listens. A source feeds ``station_id`` if
        given, else the station of its mount (see :meth:`station_for_mount`)."""
        spec = self.plugins.ingest(name)
        started: dict[str, tuple[str, int]] = {}
        ready = anyio.Event()

        def on_started(h: str, p: int) -> None:
            started["addr"] = (h, p)
            ready.set()

        def check_password(user: str, pw: str) -> bool:
            return hmac.compare_digest(pw.encode(), password.encode())

        def target(mount: str) -> bytes | None:
            return station_id if station_id is not None else self.station_for_mount(mount)

        async def on_source(conn: SourceConnection) -> None:
            sid = target(conn.info.mount)
            if sid is None:
                self.out(f"source refused: no station on mount {conn.info.mount} ({conn.peer})")
                return
            busy = self._live_sources.get(sid)
            if busy is not None:
                self.out(f"source refused: {conn.peer} (the station has a source: {busy})")
                return
            self._live_sources[sid] = conn.peer
            try:
                await self._run_source(sid, conn)
            finally:
                del self._live_sources[sid]
                if sid[:4] in self.node.sessions:
                    self.node.set_on_air(sid, False, self.now())
                    self.runtime.poke()
                    self.out(f"off air: {self._metas[sid].name or encode_station_id(sid)}")

        def on_title(mount: str, title: str) -> None:
            sid = target(mount)
            if sid is None or sid[:4] not in self.node.sessions:
                return
            self.node.update_station(sid, self.now(), title=title)
            self.runtime.poke()

        ctx = IngestContext(host, port, check_password, on_source, on_title, on_started)
        failed: list[Exception] = []

        async def serve() -> None:
            try:
                await spec.serve(ctx)
            except Exception as exc:
                if ready.is_set():
                    raise
                failed.append(exc)  # could not start (port in use...): the caller's error,
                ready.set()  # not the end of the node

        tg.start_soon(serve)
        with anyio.fail_after(10):
            await ready.wait()
        if failed:
            raise failed[0]
        return started["addr"]

    async def _run_source(self, sid: bytes, conn: SourceConnection) -> None:
        info = conn.info
        meta = self._metas[sid]
        meta = replace(
            meta,
            name=meta.name or info.name,
            genre=meta.genre or info.genre,
            description=meta.description or info.description,
            url=meta.url or info.url,
            content_type=info.content_type or meta.content_type,
            bitrate=info.bitrate or meta.bitrate,
        )
        self._metas[sid] = meta
        self.out(f"source connected: {conn.peer} {info.content_type} {info.user_agent}".rstrip())
        self.node.set_on_air(sid, True, self.now())
        self.runtime.poke()
        head = b""
        framer = None
        codec = None
        announced = False
        junk = 0  # bytes since the last frame: a source sending garbage is dropped
        last_title = ""
        try:
            async for data in conn:
                if framer is None:
                    head += data
                    codec = self.plugins.codec_for(info.content_type or None, head)
                    if codec is None:
                        if len(head) < 16384:
                            continue
                        self.out(f"source rejected: unknown format {info.content_type!r}")
                        return
                    framer = codec.framer()
                    data, head = head, b""
                    if sid in self.outputs:
                        self.outputs[sid].set_rejoin(codec.rejoin)
                frames = framer.push(data)
                if not frames:
                    junk += len(data)
                    if junk > MAX_SOURCE_JUNK:
                        self.out(
                            f"source dropped: {conn.peer} sent {junk} bytes without audio "
                            f"({codec.name if codec else '?'} framer)"
                        )
                        return
                    continue
                junk = 0
                if sid[:4] not in self.node.sessions:  # stop_station while the tool sends
                    self.out(f"source dropped: {conn.peer} (the station was stopped)")
                    return
                if frames:
                    self._send_headers(sid, framer)
                    title = framer_title(framer)  # (Vorbis/Opus comments: in the stream)
                    if title and title != last_title:
                        last_title = title
                        self.node.update_station(sid, self.now(), title=title)
                    self.node.broadcast_frames(sid, frames, self.now())
                    self.runtime.flush()
                    fmt = framer.format()
                    if not announced and fmt is not None and codec is not None:
                        announced = True
                        self._announce_format(sid, codec.name, fmt)
        finally:
            if framer is not None:
                frames = framer.flush()
                if frames and sid[:4] in self.node.sessions:
                    self.node.broadcast_frames(sid, frames, self.now())
                self.runtime.poke()
            self.out(f"source disconnected: {conn.peer}")

    # ------------------------------------------------------------------ events

    def _on_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.AudioData):
            self.chunks_played[e.station_id] = self.chunks_played.get(e.station_id, 0) + 1
            if self._chunk_log is not None:
                digest = hashlib.sha256(e.payload).hexdigest()[:16]
                # seq, length, digest, the broadcaster's clock (ms), our wall clock (s)
                line = f"{e.seq} {len(e.payload)} {digest} {e.ts} {time.time():.3f}\n"
                self._chunk_log.write(line)
                self._chunk_log.flush()
            out = self.outputs.get(e.station_id)
            if out is not None:
                out.feed(e.payload, e.frame_start)
                fa = self.first_audio[e.station_id]
                if not fa.is_set():
                    fa.set()
                    self.first_audio_at[e.station_id] = time.monotonic() - self.created
        elif isinstance(e, ev.CodecHeaders):
            out = self.outputs.get(e.station_id)
            if out is not None:
                out.set_headers(e.headers)
        elif isinstance(e, ev.StationUpdated):
            rec = e.record
            sid = rec.station_id
            out = self.outputs.get(sid)
            if out is not None:
                self._apply_record(out, rec, title=e.title_changed)
            if sid not in self._broadcasts.values():
                self._metas[sid] = rec.meta
                if out is not None and self._on_air.get(sid, True) != rec.on_air:
                    name = rec.meta.name or encode_station_id(sid)
                    self.out(f"station {'back on air' if rec.on_air else 'off air'}: {name}")
            self._on_air[sid] = rec.on_air
            text = encode_station_id(sid)
            self.plugins.emit("streamerp2p_station_seen", station_id=text, meta=rec.meta)
            if e.title_changed and rec.title:
                self.plugins.emit("streamerp2p_now_playing", station_id=text, title=rec.title)
        elif isinstance(e, ev.Tuned):
            self.out(
                f"tuned: parent={format_hostport(e.parent)} depth={e.depth}"
                + (" (re-homed)" if e.rehome else "")
            )
            meta = self._metas.get(e.station_id, StationMeta())
            self.plugins.emit(
                "streamerp2p_tuned",
                station_id=encode_station_id(e.station_id),
                meta=meta,
                parent=PeerInfo(e.parent_id.hex(), format_hostport(e.parent)),
            )
        elif isinstance(e, ev.ParentLost):
            self.out(f"parent lost: {format_hostport(e.parent)} ({e.reason})")
        elif isinstance(e, ev.ChildJoined):
            self.out(f"child joined: {format_hostport(e.addr)}")
            self.plugins.emit(
                "streamerp2p_peer_joined",
                station_id=encode_station_id(e.station_id),
                peer=PeerInfo(e.node_id.hex(), format_hostport(e.addr)),
            )
        elif isinstance(e, ev.ChildLeft):
            self.out(f"child left: {format_hostport(e.addr)} ({e.reason})")
            self.plugins.emit(
                "streamerp2p_peer_left",
                station_id=encode_station_id(e.station_id),
                peer=PeerInfo(e.node_id.hex(), format_hostport(e.addr)),
                reason=e.reason,
            )
        elif isinstance(e, ev.Skipped):
            self.out(f"skipped: {e.count} chunks from seq {e.first_seq}")
        elif isinstance(e, ev.LeaveComplete):
            self.left.set()
        for fn in self.listeners:
            fn(e)

    # ------------------------------------------------------------------ status

    def directory(self) -> dict[str, Any]:
        """The station directory as JSON-ready data (``streamer stations``, /api/stations)."""
        now = self.now()
        stations = []
        for entry in self.node.stations(now):
            rec = entry["record"]
            m = rec.meta  # type: ignore[attr-defined]
            sid = entry["station_id"]
            stations.append(
                {
                    "station_id": encode_station_id(sid),  # type: ignore[arg-type]
                    "name": m.name,
                    "genre": m.genre,
                    "description": m.description,
                    "url": m.url,
                    "codec": m.codec,
                    "content_type": m.content_type,
                    "bitrate": m.bitrate,
                    "title": rec.title,  # type: ignore[attr-defined]
                    "listeners": entry["listeners"],
                    "online": entry["online"],
                    "last_seen_s": round(now - float(entry["last_seen"]), 1),  # type: ignore[arg-type]
                    "link": str(Link(sid, m.name, tuple(entry["hosts"]) or (self.advertised(),))),  # type: ignore[arg-type]
                }
            )
        online = [s for s in stations if s["online"]]
        listeners = sum(int(s["listeners"]) for s in online)  # type: ignore[call-overload]
        return {
            "stations": stations,
            "status": f"{len(online)} stations, {listeners} listeners",
            "hosts": len(self.node.hosts),
        }

    def status(self) -> dict[str, Any]:
        n = self.node
        sessions = []
        for s in n.sessions.values():
            sessions.append(
                {
                    "station_id": encode_station_id(s.station_id),
                    "source": s.is_source,
                    "parent": format_hostport(s.parent) if s.parent else None,
                    "depth": s.depth,
                    "children": [format_hostport(a) for a in s.children],
                    "head": s.head,
                    "played": s.play_next,  # (the next seq to play)
                    "chunks_played": self.chunks_played.get(s.station_id, 0),
                    "first_audio_s": self.first_audio_at.get(s.station_id),
                }
            )
        return {
            "pid": os.getpid(),
            "time": time.time(),
            "cpu": time.process_time(),
            "address": format_hostport(self.address),
            "node_id": n.node_id.hex(),
            "upload_kbps": round(n._upload(), 1),
            "upload_measured": n.bw.measured_kbps > 0,
            "nat": {
                **n.nat.status(),
                "hosts_behind_proxies": sum(1 for _, h in n.hosts.items() if h.proxy),
            },
            "sessions": sessions,
            "stats": {k: getattr(n.stats, k) for k in n.stats.__dataclass_fields__},
        }

    async def write_status_loop(self, path: Path, interval: float = 0.5) -> None:
        while True:
            write_atomic(path, json.dumps(self.status()).encode(), 0o644, durable=False)
            await anyio.sleep(interval)


#: A source whose bytes give no audio frame for this long is dropped (off air): a broken
#: encoder or the wrong content, rather than a pause (a pause sends nothing at all).
MAX_SOURCE_JUNK = 256 * 1024


def _mount_key(mount: str) -> str:
    """Mounts compare without surrounding slashes ("/live/" is "/live"); "*" stays."""
    if mount == "*":
        return mount
    return "/" + mount.strip().strip("/")
