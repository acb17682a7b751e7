"""The full-screen terminal UI (Textual), fed by the :class:`~streamerp2p.control.Controller`.

It runs on the node's own asyncio loop (``App.run_async`` inside the node's anyio task group):
a worker reads the controller's change feed and redraws; keys call the controller's actions.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any, ClassVar

import click
from rich.markup import escape
from rich.text import Text
from streamerp2p.config import ConfigError
from streamerp2p.control import Controller
from streamerp2p.overlay.records import decode_station_id
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Static,
)

from .player import Player

COLUMNS = (
    ("listeners", "Listeners"),
    ("name", "Station"),
    ("genre", "Genre"),
    ("format", "Format"),
    ("title", "Now playing / last seen"),
)


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def station_cells(s: dict[str, Any]) -> list[Text]:
    """One row of the station table; offline stations dimmed, with when they were last seen."""
    fmt = " ".join(
        x for x in (s.get("codec") or "", f"{s['bitrate']}k" if s["bitrate"] else "") if x
    )
    if s["online"]:
        mark = "▶ " if s.get("tuned") else ("● " if s.get("broadcasting") else "  ")
        cells = [
            f"{s['listeners']:>5}",
            mark + (s["name"] or "(no name)"),
            s["genre"],
            fmt,
            s["title"],
        ]
        style = "bold" if s.get("tuned") else ""
    else:
        cells = [
            "off",
            "  " + (s["name"] or "(no name)"),
            s["genre"],
            fmt,
            f"off air, last seen {_ago(s['last_seen_s'])}",
        ]
        style = "dim"
    return [Text(c or "", style=style, no_wrap=True, overflow="ellipsis") for c in cells]


def kbps(value: float) -> str:
    if value >= 10000:
        return f"{value / 1000:.0f} Mbit/s"
    return f"{value:.0f} kbit/s"


def node_text(snap: dict[str, Any]) -> str:
    """The node pane: address, upload, NAT/proxy state, and the place in each tree."""
    n = snap["node"]
    nat = n["nat"]
    reach = {True: "reachable", False: "not reachable (behind NAT)", None: "not checked yet"}[
        nat.get("reachable")
    ]
    lines = [
        f"[b]Node[/b] {n['address']} (advertised {n['advertised']})",
        f"upload {kbps(n['upload_kbps'])} "
        f"({'measured' if n['upload_measured'] else 'not measured yet'})",
        f"NAT: {reach}"
        + (", symmetric" if nat.get("symmetric_nat") else "")
        + f", public address {nat.get('public') or 'unknown'}",
        f"proxy: {nat.get('proxy') or 'none'}"
        + (f", proxy for {nat['proxy_clients']} nodes" if nat.get("proxy_clients") else ""),
    ]
    tuned = snap.get("tuned")
    if tuned is not None:
        lines += ["", f"[b]Tree of {escape(tuned['name'] or 'the tuned station')}[/b]"]
        lines += tree_lines(tuned.get("tree"))
    for b in snap.get("broadcasts", []):
        air = "on air" if b["on_air"] else "off air (no source yet)"
        lines += ["", f"[b]Broadcasting {escape(b['name'])}[/b] ({escape(b['mount'])}, {air})"]
        if b.get("source"):
            lines.append(f"source {escape(b['source'])}")
        tree = b.get("tree")
        if tree is not None:
            kids = ", ".join(c["address"] for c in tree["children"]) or "none"
            lines.append(f"children ({len(tree['children'])}/{tree['slots']}): {kids}")
    return "\n".join(lines)


def tree_lines(tree: dict[str, Any] | None) -> list[str]:
    if tree is None:
        return ["not in the tree yet"]
    kids = ", ".join(c["address"] for c in tree["children"]) or "none"
    return [
        f"parent {tree['parent'] or 'none yet'}",
        f"grandparent {tree['grandparent'] or 'none'}",
        f"depth {tree['depth']}",
        f"children ({len(tree['children'])}/{tree['slots']}): {kids}",
    ]


class StationTable(DataTable[Text]):
    """The station directory; Enter (or a click on the highlighted row) tunes in."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Tune in", show=True, key_display="Enter")
    ]


def field(label: str, widget: Input) -> ComposeResult:
    with Horizontal(classes="row"):
        yield Label(label, classes="field")
        yield widget


class BroadcastScreen(ModalScreen[None]):
    """Start a broadcast: ingest, name, genre, password, mount; then the link and tool help."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, ctl: Controller) -> None:
        super().__init__()
        self.ctl = ctl

    def compose(self) -> ComposeResult:
        cfg = self.ctl.config
        with VerticalScroll(id="broadcast"):
            yield Label(
                Text.from_markup(
                    "[b]Start a broadcast[/b] (a broadcast tool feeds it through the ingest)"
                )
            )
            yield from field("Station name", Input(placeholder="e.g. My Radio", id="b-name"))
            yield from field("Genre", Input(placeholder="e.g. Jazz", id="b-genre"))
            yield from field(
                "Source password",
                Input(value=cfg.get("ingest.password") or "", password=True, id="b-password"),
            )
            yield from field("Mount point (* = any)", Input(value="/live", id="b-mount"))
            yield from field("Ingest plugin", Input(value=cfg.get("ingest.plugin"), id="b-ingest"))
            yield from field(
                "Ingest port (0 = any)",
                Input(value=str(cfg.get("ingest.port")), id="b-port", type="integer"),
            )
            with Horizontal(classes="buttons"):
                yield Button("Start", variant="primary", id="b-start")
                yield Button("Close", id="b-close")
            yield Static("", id="b-error", classes="error")
            yield Static("", id="b-result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#b-name", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#b-close")
    def _close(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#b-start")
    async def start(self) -> None:
        def val(name: str) -> str:
            return self.query_one(f"#b-{name}", Input).value.strip()

        error = self.query_one("#b-error", Static)
        try:
            st = await self.ctl.start_broadcast(
                val("name"),
                genre=val("genre"),
                password=self.query_one("#b-password", Input).value,
                mount=val("mount") or "*",
                ingest=val("ingest") or None,
                port=int(val("port") or self.ctl.config.get("ingest.port")),
            )
        except (ValueError, OSError, KeyError, RuntimeError) as exc:
            why = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            error.update(Text(f"cannot start: {why}"))
            return
        error.update("")
        ing = self.ctl.snapshot()["ingest"] or {}
        out = Text.assemble(
            (st["name"], "bold"),
            " is ready; it goes on air when a tool connects.\n",
            "Link (give it to listeners): ",
            (st["link"], "bold"),
            f"\nIngest: {ing.get('plugin')} on {ing.get('host')}:{ing.get('port')}\n\n",
            ("Point a broadcast tool at it:", "bold"),
        )
        for h in st["help"]:
            out.append_text(Text.assemble("\n", (h["tool"], "bold"), ": ", h["how"]))
        result = self.query_one("#b-result", Static)
        result.update(out)
        self.call_after_refresh(result.scroll_visible)


def setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


class SettingsScreen(ModalScreen[None]):
    """The advanced settings, saved to the TOML config file (most take effect at next start)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, ctl: Controller) -> None:
        super().__init__()
        self.ctl = ctl
        self.rows = ctl.settings()

    def compose(self) -> ComposeResult:
        path = self.ctl.config_path
        with VerticalScroll(id="settings"):
            yield Label(
                Text.assemble(
                    ("Settings", "bold"),
                    f" (saved to {path or 'no config file'}; they take effect at next start)",
                )
            )
            for row in self.rows:
                lo, hi = row["minimum"], row["maximum"]
                bounds = ""
                if lo is not None and hi is not None:
                    bounds = f", {lo}..{hi}"
                elif lo is not None:
                    bounds = f", at least {lo}"
                elif hi is not None:
                    bounds = f", at most {hi}"
                default = setting_text(row["default"]) or '""'
                yield Label(
                    Text.assemble(
                        (row["key"], "bold"),
                        f" ({row['type']}{bounds}; default {default}): ",
                        row["help"],
                    ),
                    classes="setting-help",
                )
                yield Input(
                    value=setting_text(row["value"]),
                    placeholder="(empty)",
                    id="s-" + row["key"].replace(".", "-"),
                    classes="setting",
                )
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="s-save")
                yield Button("Close", id="s-close")
            yield Static("", id="s-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#s-close")
    def _close(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    @on(Button.Pressed, "#s-save")
    def action_save(self) -> None:
        values = {
            row["key"]: self.query_one("#s-" + row["key"].replace(".", "-"), Input).value
            for row in self.rows
        }
        msg = self.query_one("#s-message", Static)
        try:
            changed = self.ctl.update_settings(values)
        except (ConfigError, ValueError, OSError) as exc:
            msg.set_classes("error")
            msg.update(Text(f"not saved: {exc}"))
            return
        msg.set_classes("ok")
        if changed:
            msg.update(
                Text(
                    f"saved {', '.join(changed)} to {self.ctl.config_path}; "
                    "takes effect at next start"
                )
            )
        else:
            msg.update("nothing changed")


class StreamerTUI(App[None]):
    """The main screen: stations, now playing, node, log; keys in the footer."""

    TITLE = "Streamer P2P"
    CSS = """
    #status { height: 1; background: $primary-background; padding: 0 1; }
    #main { height: 1fr; }
    #stations { width: 2fr; }
    #node { width: 1fr; min-width: 36; padding: 0 1; border-left: solid $primary; }
    #now { height: auto; border-top: solid $primary; }
    #playing { height: auto; max-height: 6; padding: 0 1; }
    #progress { padding: 0 1; height: 1; }
    #log { height: 8; border-top: solid $primary; }
    .error { color: $error; }
    .ok { color: $success; }
    .buttons { height: auto; margin-top: 1; }
    .row { height: 1; margin-top: 1; }
    .field { width: 24; }
    #broadcast Input, #settings Input { border: none; height: 1; padding: 0 1; width: 1fr; }
    #broadcast Input, #settings Input { background: $boost; }
    #broadcast Input:focus, #settings Input:focus { background: $accent 40%; }
    #b-result { margin-top: 1; }
    .setting-help { color: $text-muted; margin-top: 1; width: 1fr; }
    #settings Input { margin-top: 0; }
    #broadcast, #settings { width: 90%; height: 90%; border: thick $primary; padding: 0 1;
                            background: $surface; }
    BroadcastScreen, SettingsScreen { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop", "Stop"),
        Binding("plus,equals_sign", "volume(5)", "Vol+", key_display="+"),
        Binding("minus", "volume(-5)", "Vol-", key_display="-"),
        Binding("b", "broadcast", "Broadcast"),
        Binding("o,f2", "settings", "Settings", key_display="o"),
        Binding("q", "quit", "Quit"),
        Binding("x", "stop_broadcast", "End broadcast"),
    ]

    def __init__(self, ctl: Controller, player: Player | None = None) -> None:
        super().__init__()
        self.ctl = ctl
        self.player = player
        self.snap: dict[str, Any] = {}
        self._log_after = 0.0
        self._keys: list[str] = []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The main screen's keys do nothing while a form is open (Esc closes it)."""
        mine = {"stop", "volume", "broadcast", "settings", "quit", "stop_broadcast"}
        return not (action in mine and isinstance(self.screen, ModalScreen))

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("starting…", id="status")
        with Horizontal(id="main"):
            yield StationTable(id="stations", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="node"):
                yield Static("", id="node-text")
        with Vertical(id="now"):
            yield Static("Not tuned in. Pick a station and press Enter.", id="playing")
            yield ProgressBar(total=1.0, show_eta=False, id="progress")
        yield RichLog(id="log", wrap=True, markup=False, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#stations", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.follow()

    @work(exclusive=True, group="feed")
    async def follow(self) -> None:
        async for snap in self.ctl.changes():
            self.show(snap)

    # ------------------------------------------------------------------ drawing

    def show(self, snap: dict[str, Any]) -> None:
        self.snap = snap
        self.query_one("#status", Static).update(
            Text.assemble(
                ("Network: ", "bold"), snap["status"], f"  ·  {snap['hosts']} hosts known"
            )
        )
        self._show_stations(snap["stations"])
        self.query_one("#node-text", Static).update(Text.from_markup(node_text(snap)))
        self._show_tuned(snap.get("tuned"))
        log = self.query_one("#log", RichLog)
        for entry in snap["log"]:
            if entry["time"] > self._log_after:
                self._log_after = entry["time"]
                stamp = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
                log.write(f"{stamp} {entry['line']}")

    def _show_stations(self, stations: list[dict[str, Any]]) -> None:
        table = self.query_one("#stations", DataTable)
        keys = [s["station_id"] for s in stations]
        if keys == self._keys:
            for s in stations:
                for (col, _), cell in zip(COLUMNS, station_cells(s), strict=True):
                    table.update_cell(s["station_id"], col, cell)
            return
        current = self._highlighted()
        table.clear()
        for s in stations:
            table.add_row(*station_cells(s), key=s["station_id"])
        self._keys = keys
        if current in keys:
            table.move_cursor(row=keys.index(current))

    def _show_tuned(self, tuned: dict[str, Any] | None) -> None:
        playing = self.query_one("#playing", Static)
        bar = self.query_one("#progress", ProgressBar)
        if tuned is None:
            playing.update("Not tuned in. Pick a station and press Enter.")
            bar.update(progress=0)
            return
        state = tuned["state"]
        colour = {"playing": "green", "off air": "red"}.get(state, "yellow")
        name = tuned["name"] or tuned["station_id"][:12]
        line = Text.assemble(
            ("▶ " if state == "playing" else "… ", colour),
            (name, "bold"),
            f" — {tuned['title']}" if tuned["title"] else "",
            "   [",
            (state if state != "buffering" else f"buffering {tuned['progress']:.0%}", colour),
            "]",
        )
        if self.player is not None:
            line.append(f"   volume {self.player.volume} %")
        lines = [line]
        if self.player is not None and self.player.message:
            lines.append(
                Text(
                    self.player.message,
                    style="yellow" if "no sound" in self.player.message else "dim",
                )
            )
        if tuned.get("stream_url"):
            lines.append(Text(f"stream {tuned['stream_url']}", style="dim"))
        playing.update(Text("\n").join(lines))
        bar.update(progress=tuned["progress"])

    # ------------------------------------------------------------------ actions

    def _highlighted(self) -> str | None:
        table = self.query_one("#stations", DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def say(self, line: str) -> None:
        self.ctl.app.out(line)  # (the controller keeps it for the log pane)

    @on(DataTable.RowSelected, "#stations")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.tune(str(event.row_key.value))

    def tune(self, station_id: str) -> None:
        try:
            sid = self.ctl.tune(station_id)
        except ValueError as exc:
            self.say(f"cannot tune in: {exc}")
            return
        row = next((s for s in self.snap.get("stations", []) if s["station_id"] == sid), None)
        self.say(f"tuning in: {row['name'] if row else sid}")
        if self.player is not None:
            self.player.start(decode_station_id(sid))

    def action_stop(self) -> None:
        if self.ctl.tuned is None:
            return
        if self.player is not None:
            self.player.stop()
        self.ctl.stop()
        self.say("stopped")

    def action_volume(self, delta: int) -> None:
        if self.player is None:
            return
        v = self.player.change_volume(delta)
        self.say(f"volume {v} %")

    def action_broadcast(self) -> None:
        self.push_screen(BroadcastScreen(self.ctl))

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen(self.ctl))

    def action_stop_broadcast(self) -> None:
        sid = self._highlighted()
        mine = {b["station_id"]: b["name"] for b in self.ctl.snapshot()["broadcasts"]}
        if sid not in mine:
            self.notify("The highlighted station is not one this node broadcasts.")
            return
        self.ctl.stop_broadcast(sid)
        self.say(f"broadcast stopped: {mine[sid]}")

    async def action_quit(self) -> None:
        if self.player is not None:
            self.player.stop()
        self.exit()


class _ToLog(logging.Handler):
    """Log records go to the log pane while the UI owns the terminal."""

    def __init__(self, out: Any) -> None:
        super().__init__(logging.WARNING)
        self.out = out
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"
        try:
            if threading.get_ident() == self.thread:
                self.out(line)
            else:  # (a decoder thread: the log pane lives on the event loop)
                self.loop.call_soon_threadsafe(self.out, line)
        except Exception:  # logging must never break the UI
            pass


def make_player(app: Any, ctl: Controller) -> Player:
    cfg = ctl.config
    return Player(app, volume=int(cfg.get("player.volume")), device=cfg.get("player.device"))


async def run_tui(app: Any) -> None:
    """``UISpec.run``: the UI on the running node until the user quits (then the node leaves)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.ClickException(
            "streamer --ui cli needs a terminal; scripts use streamer stations --json, "
            "streamer listen and streamer broadcast"
        )
    app.out = lambda line: None  # (the terminal belongs to the UI: lines go to the log pane)
    ctl = Controller(app)
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [_ToLog(app.out)]
    tui = StreamerTUI(ctl, make_player(app, ctl))
    try:
        await tui.run_async()
    finally:
        root.handlers = saved
    if tui.return_code:  # (Textual printed what went wrong)
        await app.leave()
        raise click.ClickException("the terminal UI stopped on an error")
