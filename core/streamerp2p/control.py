"""The one API every front end uses (web, Qt, terminal): what to show and what to do.

A front end plugin gets the running :class:`~streamerp2p.app.App` (``UISpec.run(app)``), makes a
:class:`Controller` of it and then only talks to the controller, so all front ends show and do
the same things from the same kernel events (in the spirit of mopidy's core API):

* :meth:`Controller.snapshot` — everything a front end shows, as JSON-ready data: the station
  directory ranked by listeners (offline stations after, by last seen), the network status line
  ("N stations, M listeners"), the tuned station with its state (tuning, buffering with
  progress, playing, off air) and now-playing title, this node's place in the tree (parent,
  children, depth, measured upload, NAT/proxy state), the stations it broadcasts, recent log
  lines.
* :meth:`Controller.changes` — an async iterator of snapshots, one soon after anything changed
  (kernel events, tuning, settings), at least one every ``idle`` seconds.
* Actions: :meth:`tune`, :meth:`stop`, :meth:`start_broadcast` (with :func:`tool_help`, how to
  point common broadcast tools at the ingest), :meth:`stop_broadcast`, :meth:`settings` and
  :meth:`update_settings` (validated against the config schema, written back to the TOML file).

Everything runs on the node's event loop (the anyio task group the App started in).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .config import OPTIONS, Config, ConfigError, validate
from .link import Link, format_hostport
from .overlay.records import decode_station_id, encode_station_id
from .types import StationMeta

if TYPE_CHECKING:
    from .app import App

#: Settings a front end offers (the others stay in the TOML file and ``streamer config``).
UI_SETTINGS = (
    "node.port",
    "node.seeds",
    "node.slots",
    "node.upload_kbps",
    "node.bandwidth_test",
    "node.cushion_seconds",
    "http.host",
    "http.port",
    "ingest.plugin",
    "ingest.host",
    "ingest.port",
    "ui.default",
)


def tool_help(host: str, port: int, mount: str, password: str) -> list[dict[str, str]]:
    """How to point common broadcast tools at this node's Icecast-compatible ingest."""
    m = "/live" if mount in ("*", "") else mount
    hp = f"{host}:{port}"
    icecast = f"server type Icecast 2, host {host}, port {port}, mount {m}, user source"
    return [
        {
            "tool": "ffmpeg",
            "how": f"ffmpeg -re -i music.mp3 -c copy -f mp3 -content_type audio/mpeg "
            f"icecast://source:{password}@{hp}{m}",
        },
        {"tool": "butt", "how": f"Settings > Main > Server > Add: {icecast}, password"},
        {"tool": "Mixxx", "how": f"Options > Live Broadcasting: {icecast}, password"},
        {
            "tool": "liquidsoap",
            "how": f'output.icecast(%mp3, host="{host}", port={port}, password="{password}", '
            f'mount="{m}", source)',
        },
        {
            "tool": "ezstream",
            "how": f"<server><hostname>{host}</hostname><port>{port}</port>"
            f"<password>{password}</password></server>, <stream><mountpoint>{m}</mountpoint>",
        },
        {
            "tool": "darkice",
            "how": f"[icecast2-0] server={host} port={port} mountPoint="
            f"{m.lstrip('/')} password={password}",
        },
        {"tool": "SAM Broadcaster", "how": f"Encoders > Icecast 2: {icecast}, password"},
    ]


class Controller:
    """Front ends' view of one running node (see the module docstring)."""

    def __init__(
        self,
        app: App,
        config: Config | None = None,
        *,
        idle: float = 2.0,
        min_interval: float = 0.2,
        log_lines: int = 200,
    ) -> None:
        self.app = app
        if config is None:
            config = app.config if app.config is not None else Config()
        self.config = config
        self.idle = idle
        self.min_interval = min_interval
        self.log: deque[tuple[float, str]] = deque(maxlen=log_lines)
        self.tuned: bytes | None = None
        self.broadcasts: dict[bytes, dict[str, Any]] = {}
        self.ingest: dict[str, Any] | None = None
        self._dirty = anyio.Event()
        self._serial = 0
        out = app.out

        def tee(line: str) -> None:
            self.log.append((time.time(), line))
            self._changed()
            out(line)

        app.out = tee
        app.listeners.append(lambda _e: self._changed())

    # ------------------------------------------------------------------ change feed

    def _changed(self) -> None:
        self._serial += 1
        self._dirty.set()

    async def changes(self) -> AsyncIterator[dict[str, Any]]:
        """Snapshots: the current one at once, then one after each change (coalesced to at
        most one per ``min_interval``), and at least one every ``idle`` seconds."""
        while True:
            self._dirty = anyio.Event()
            yield self.snapshot()
            with anyio.move_on_after(self.idle):
                await self._dirty.wait()
            await anyio.sleep(self.min_interval)

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> dict[str, Any]:
        app = self.app
        node = app.node
        directory = app.directory()
        for s in directory["stations"]:
            sid = decode_station_id(s["station_id"])
            s["tuned"] = sid == self.tuned
            s["broadcasting"] = sid in self.broadcasts
        return {
            "serial": self._serial,
            "status": directory["status"],
            "stations": directory["stations"],
            "hosts": directory["hosts"],
            "node": {
                "address": format_hostport(app.address),
                "advertised": format_hostport(app.advertised()),
                "node_id": node.node_id.hex(),
                "upload_kbps": round(node._upload(), 1),
                "upload_measured": node.bw.measured_kbps > 0,
                "nat": node.nat.status(),
            },
            "tuned": self._tuned_state(),
            "broadcasts": [self._broadcast_state(sid) for sid in self.broadcasts],
            "ingest": dict(self.ingest) if self.ingest else None,
            "log": [{"time": t, "line": line} for t, line in list(self.log)[-50:]],
        }

    def _session(self, sid: bytes) -> Any:
        sess = self.app.node.sessions.get(sid[:4])
        return sess if sess is not None and sess.station_id == sid else None

    def _tree(self, sess: Any) -> dict[str, Any]:
        children = [
            {"address": format_hostport(a), "node_id": c.node_id.hex(), "slots": c.slots}
            for a, c in sess.children.items()
        ]
        return {
            "parent": format_hostport(sess.parent) if sess.parent else None,
            "grandparent": format_hostport(sess.backup) if sess.backup else None,
            "depth": sess.depth,
            "children": children,
            "slots": self.app.node._slots(sess),
        }

    def _tuned_state(self) -> dict[str, Any] | None:
        sid = self.tuned
        if sid is None:
            return None
        app = self.app
        sess = self._session(sid)
        meta = app._metas.get(sid, StationMeta())
        rec = sess.record if sess is not None else None
        state, progress = "tuning", 0.0
        if sess is not None and rec is not None and not rec.on_air:
            state = "off air"
        elif sess is not None and sess.playing:
            state, progress = "playing", 1.0
        elif sess is not None and sess.parent is not None:
            state = "buffering"
            progress = self._buffered(sess) / max(0.1, app.node.config.cushion_seconds)
        out: dict[str, Any] = {
            "station_id": encode_station_id(sid),
            "name": meta.name,
            "genre": meta.genre,
            "title": rec.title if rec is not None else "",
            "state": state,
            "progress": round(min(1.0, max(0.0, progress)), 3),
            "stream_url": app.stream_url(sid) if app.http is not None else None,
            "link": str(app.link(sid)),
        }
        if sess is not None:
            out["tree"] = self._tree(sess)
            out["first_audio_s"] = app.first_audio_at.get(sid)
        return out

    @staticmethod
    def _buffered(sess: Any) -> float:
        """Seconds of audio in hand from the next chunk to play (before playout starts)."""
        first = sess.history.get(sess.play_next)
        last = sess.history.get(sess.contig - 1)
        if first is None or last is None:
            return 0.0
        ts0 = int.from_bytes(first[12:16], "big")
        ts1 = int.from_bytes(last[12:16], "big")
        return ((ts1 - ts0) & 0xFFFFFFFF) / 1000

    def _broadcast_state(self, sid: bytes) -> dict[str, Any]:
        info = self.broadcasts[sid]
        sess = self._session(sid)
        rec = sess.record if sess is not None else None
        return {
            "station_id": encode_station_id(sid),
            "name": info["name"],
            "mount": info["mount"],
            "link": str(self.app.link(sid)),
            "on_air": bool(rec and rec.on_air),
            "source": self.app._live_sources.get(sid),
            "title": rec.title if rec is not None else "",
            "tree": self._tree(sess) if sess is not None else None,
            "stream_url": self.app.stream_url(sid) if self.app.http is not None else None,
            "help": self._help(info["mount"]),
        }

    def _help(self, mount: str) -> list[dict[str, str]]:
        ing = self.ingest
        return tool_help(ing["host"], ing["port"], mount, ing["password"]) if ing else []

    # ------------------------------------------------------------------ listening

    def tune(self, target: str) -> str:
        """Tune in to a station id (from the directory) or a streamerp2p:// link; the station
        tuned before is left. Returns the station id."""
        link = Link.parse(target)
        if not link.seeds:
            for s in self.app.directory()["stations"]:
                if s["station_id"] == encode_station_id(link.station_id):
                    link = Link.parse(s["link"])
                    break
        if self.tuned is not None and self.tuned != link.station_id:
            self.stop()
        self.app.tune(link)
        self.tuned = link.station_id
        self._changed()
        return encode_station_id(link.station_id)

    def stop(self) -> None:
        """Stop listening (this node leaves that station's tree politely)."""
        if self.tuned is None:
            return
        sid, self.tuned = self.tuned, None
        if sid not in self.broadcasts:
            self.app.untune(sid)
        self._changed()

    # ------------------------------------------------------------------ broadcasting

    async def start_broadcast(
        self,
        name: str,
        *,
        genre: str = "",
        description: str = "",
        url: str = "",
        password: str | None = None,
        ingest: str | None = None,
        mount: str = "*",
        host: str | None = None,
        port: int | None = None,
    ) -> dict[str, Any]:
        """Start a station fed by a broadcast tool; its ingest server starts with the first.
        Returns the station (link, mount) and help on pointing tools at the ingest."""
        from .app import load_station_key

        name = name.strip()
        if not name:
            raise ValueError("a station needs a name")
        if any(b["mount"] == mount for b in self.broadcasts.values()):
            raise ValueError(f"mount {mount} already has a station on this node")
        cfg = self.config
        password = password if password is not None else cfg.get("ingest.password")
        if not password:
            raise ValueError("a source password is needed (tools log in with it)")
        if self.ingest is not None and password != self.ingest["password"]:
            raise ValueError("this node's ingest already runs with another password")
        key = load_station_key(self.app.state_dir, name)
        if key.station_id in self.broadcasts:
            raise ValueError(f"{name!r} is already on air from this node")
        meta = StationMeta(name=name, genre=genre, description=description, url=url)
        self.app.start_station(key, meta, mount, on_air=False)
        self.broadcasts[key.station_id] = {"name": name, "mount": mount}
        if self.ingest is None:
            plugin = ingest or cfg.get("ingest.plugin")
            h = host if host is not None else cfg.get("ingest.host")
            p = port if port is not None else int(cfg.get("ingest.port"))
            tg = self.app.task_group
            if tg is None:
                raise RuntimeError("the node is not running")
            try:
                bound = await self.app.serve_ingest(tg, plugin, h, p, password)
            except (OSError, KeyError) as exc:  # port in use, no such ingest plugin...
                del self.broadcasts[key.station_id]
                self.app.stop_station(key.station_id)
                self._changed()
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise ValueError(f"cannot start the {plugin} ingest on {h}:{p}: {why}") from exc
            self.ingest = {"plugin": plugin, "host": bound[0], "port": bound[1]}
            self.ingest["password"] = password
        self._changed()
        return self._broadcast_state(key.station_id)

    def stop_broadcast(self, station_id: str) -> None:
        sid = decode_station_id(station_id)
        if self.broadcasts.pop(sid, None) is None:
            raise ValueError("not a station this node broadcasts")
        self.app.stop_station(sid)
        self._changed()

    # ------------------------------------------------------------------ settings

    def settings(self) -> list[dict[str, Any]]:
        """The settings a front end offers: key, kind (``int``, ``float``, ``bool``, ``str`` or
        ``list[str]``, to pick an editor), type (in words), default, current value, help and
        bounds."""
        out = []
        for key in UI_SETTINGS:
            opt = OPTIONS[key]
            out.append(
                {
                    "key": key,
                    "kind": opt.kind,  # int, float, bool, str or list[str] (for editors)
                    "type": opt.type_name,
                    "default": opt.default,
                    "value": self.config.get(key),
                    "help": opt.help,
                    "minimum": opt.minimum,
                    "maximum": opt.maximum,
                }
            )
        return out

    def update_settings(self, values: dict[str, Any]) -> list[str]:
        """Validate and save settings to the TOML file (all or nothing). Values may be typed
        or text as typed into a form. Returns the keys that changed; most take effect at the
        node's next start (the UI should say so). Raises ConfigError naming the bad one."""
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            if key not in UI_SETTINGS:
                raise ConfigError(f"{key}: not a setting front ends may change")
            if isinstance(value, str) and OPTIONS[key].kind != "str":
                from .config import parse_value

                parsed[key] = parse_value(key, value)
            else:
                parsed[key] = validate(key, value)
        changed = [k for k, v in parsed.items() if self.config.get(k) != v]
        for k in changed:
            self.config.set_value(k, parsed[k])
        if changed:
            self.config.save()
            self._changed()
        return changed

    @property
    def config_path(self) -> Path | None:
        return self.config.path
