"""The main window, its station table model and the broadcast and settings dialogs.

Everything here runs in the GUI thread and talks to the node only through a
:class:`~streamerp2p_qt.bridge.NodeLink`: snapshots come in as a signal, actions go out with
``link.call`` (never blocking).
"""

from __future__ import annotations

import functools
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .bridge import NodeLink

Index = QModelIndex | QPersistentModelIndex


def ago(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def codec_text(row: dict[str, Any]) -> str:
    codec = row.get("codec") or ""
    rate = row.get("bitrate") or 0
    return f"{codec} {rate} kbit/s".strip() if rate else codec


class StationModel(QAbstractTableModel):
    """The directory (``snapshot()["stations"]``, already ranked) as a table."""

    COLUMNS = ("Station", "Genre", "Listeners", "Now playing", "Codec", "Last seen")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_stations(self, rows: list[dict[str, Any]]) -> None:
        same = [r["station_id"] for r in rows] == [r["station_id"] for r in self.rows]
        if same and rows:
            self.rows = rows
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(rows) - 1, len(self.COLUMNS) - 1)
            )
        elif not same:
            self.beginResetModel()
            self.rows = rows
            self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            online = row["online"]
            return (
                row["name"] or "(no name)",
                row["genre"],
                row["listeners"] if online else "",
                row["title"],
                codec_text(row),
                "on air" if online else f"off air, {ago(row['last_seen_s'])}",
            )[col]
        if role == Qt.ItemDataRole.ForegroundRole and not row["online"]:
            return QBrush(QColor("gray"))
        if role == Qt.ItemDataRole.FontRole and (row.get("tuned") or row.get("broadcasting")):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.get("description") or row["link"]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return row["station_id"]
        return None


class MainWindow(QMainWindow):
    """Station table, play/stop and volume, now playing, progress, tree, broadcasts, log."""

    shown = Signal()
    closed = Signal()

    def __init__(self, link: NodeLink, *, volume: int = 100) -> None:
        super().__init__()
        self.link = link
        self.snap: dict[str, Any] = {}
        self.last_station: str | None = None
        self.broadcast_dialog: BroadcastDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.setWindowTitle("Streamer P2P")
        self.resize(1000, 620)

        # ---- top: play / stop / volume / now playing / progress
        self.play_button = QPushButton("Play")
        self.stop_button = QPushButton("Stop")
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(volume)
        self.volume.setMaximumWidth(140)
        self.volume.setToolTip("Volume of the internal player")
        self.volume_label = QLabel(f"{volume} %")
        self.now_playing = QLabel("Not tuned. Double click a station to listen.")
        self.now_playing.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("stopped")
        self.progress.setMaximumWidth(220)
        self.broadcast_button = QPushButton("Broadcast…")
        self.settings_button = QPushButton("Settings…")
        top = QHBoxLayout()
        for w in (self.play_button, self.stop_button, QLabel("Volume"), self.volume):
            top.addWidget(w)
        top.addWidget(self.volume_label)
        top.addWidget(self.now_playing, 1)
        top.addWidget(self.progress)
        top.addWidget(self.broadcast_button)
        top.addWidget(self.settings_button)

        # ---- stations
        self.model = StationModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setWordWrap(False)
        for col, width in enumerate((160, 80, 70, 180, 115)):
            self.table.setColumnWidth(col, width)

        # ---- side panels: tree, broadcasts, log
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Node", "Role"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree_info = QLabel("Not in a station's tree.")
        self.tree_info.setWordWrap(True)
        self.tree_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tree_panel = QWidget()
        tl = QVBoxLayout(tree_panel)
        tl.addWidget(self.tree, 1)
        tl.addWidget(self.tree_info)

        self.broadcasts = QTableWidget(0, 3)
        self.broadcasts.setHorizontalHeaderLabels(["Station", "Mount", "State"])
        self.broadcasts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.broadcasts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.broadcasts.horizontalHeader().setStretchLastSection(True)
        self.stop_broadcast_button = QPushButton("Stop broadcast")
        bc_panel = QWidget()
        bl = QVBoxLayout(bc_panel)
        bl.addWidget(self.broadcasts, 1)
        bl.addWidget(self.stop_broadcast_button)

        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self._log_lines: list[str] = []

        self.tabs = QTabWidget()
        self.tabs.addTab(tree_panel, "Tree")
        self.tabs.addTab(bc_panel, "Broadcasts")
        self.tabs.addTab(self.log, "Log")

        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 360])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self.setCentralWidget(central)

        self.network = QLabel("0 stations, 0 listeners")
        self.statusBar().addPermanentWidget(self.network)

        # ---- menu
        menu = self.menuBar().addMenu("&Station")
        for text, slot, key in (
            ("&Play", self.play, None),
            ("&Stop", self.stop, None),
            ("&Broadcast…", self.open_broadcast, None),
            ("Se&ttings…", self.open_settings, None),
            ("&Quit", self.close, QKeySequence.StandardKey.Quit),
        ):
            action = QAction(text, self)
            action.triggered.connect(slot)
            if key is not None:
                action.setShortcut(key)
            menu.addAction(action)

        # ---- wiring
        self.table.activated.connect(self._activated)  # double click or Enter
        self.play_button.clicked.connect(self.play)
        self.stop_button.clicked.connect(self.stop)
        self.volume.valueChanged.connect(self._volume_changed)
        self.broadcast_button.clicked.connect(self.open_broadcast)
        self.settings_button.clicked.connect(self.open_settings)
        self.stop_broadcast_button.clicked.connect(self._stop_broadcast)
        link.snapshot.connect(self.update_snapshot)
        link.message.connect(self.say)

    # ------------------------------------------------------------------ events

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.shown.emit()

    def closeEvent(self, event: Any) -> None:
        for dialog in (self.broadcast_dialog, self.settings_dialog):
            if dialog is not None:
                dialog.close()
        super().closeEvent(event)
        self.closed.emit()  # the front end ends (the node leaves) with the main window

    def say(self, line: str) -> None:
        self.statusBar().showMessage(line, 15000)

    def _error(self, exc: BaseException) -> None:
        self.say(f"error: {exc}")

    # ------------------------------------------------------------------ actions

    def selected_station(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()]["station_id"] if rows else None

    def _activated(self, index: QModelIndex) -> None:
        self.tune(self.model.rows[index.row()]["station_id"])

    def tune(self, station: str) -> None:
        """Tune in to a station id or link and play it."""
        self.last_station = station
        self.say("tuning…")
        self.link.call(self.link.node.listen, station, on_error=self._error)

    def play(self) -> None:
        station = self.selected_station() or self.last_station
        if station is None:
            self.say("select a station first")
            return
        self.tune(station)

    def stop(self) -> None:
        self.link.call(self.link.node.stop, on_done=lambda _r: self.say("stopped"))

    def _volume_changed(self, value: int) -> None:
        self.volume_label.setText(f"{value} %")
        self.link.call(self.link.node.set_volume, value)

    def _stop_broadcast(self) -> None:
        rows = self.broadcasts.selectionModel().selectedRows()
        items = self.snap.get("broadcasts") or []
        if not items:
            return
        sid = items[rows[0].row() if rows else 0]["station_id"]
        self.link.call(
            self.link.controller.stop_broadcast,
            sid,
            on_done=lambda _r: self.say("broadcast stopped"),
            on_error=self._error,
        )

    def open_broadcast(self) -> None:
        if self.broadcast_dialog is None:
            self.broadcast_dialog = BroadcastDialog(self.link, self)
        self.broadcast_dialog.show()
        self.broadcast_dialog.raise_()

    def open_settings(self) -> None:
        def ready(items: list[dict[str, Any]], path: Any) -> None:
            if self.settings_dialog is not None:  # (made anew: the values may have changed)
                self.settings_dialog.close()
                self.settings_dialog.deleteLater()
            self.settings_dialog = SettingsDialog(self.link, items, path, self)
            self.settings_dialog.show()

        ctl = self.link.controller
        self.link.call(
            lambda: (ctl.settings(), ctl.config_path),
            on_done=lambda r: ready(*r),
            on_error=self._error,
        )

    # ------------------------------------------------------------------ showing

    def update_snapshot(self, snap: dict[str, Any]) -> None:
        self.snap = snap
        selected = self.selected_station()
        self.model.set_stations(snap["stations"])
        if selected is not None:
            for i, row in enumerate(self.model.rows):
                if row["station_id"] == selected and self.selected_station() != selected:
                    self.table.selectRow(i)
        self.network.setText(snap["status"])
        self._show_tuned(snap.get("tuned"), snap.get("player") or {})
        self._show_tree(snap)
        self._show_broadcasts(snap.get("broadcasts") or [])
        self._show_log(snap.get("log") or [])

    def _show_tuned(self, tuned: dict[str, Any] | None, player: dict[str, Any]) -> None:
        if tuned is None:
            self.now_playing.setText("Not tuned. Double click a station to listen.")
            self.progress.setRange(0, 100)
            self.progress.setValue(0)
            self.progress.setFormat("stopped")
            return
        name = tuned["name"] or "(no name)"
        title = tuned["title"]
        self.now_playing.setText(f"{name} — {title}" if title else name)
        self.now_playing.setToolTip(
            f"{tuned.get('stream_url') or ''}\n{tuned['link']}\nplayer: {player.get('status')}"
        )
        state = tuned["state"]
        self.progress.setRange(0, 100)
        self.progress.setValue(round(tuned["progress"] * 100))
        text = "buffering %p%" if state == "buffering" else state
        if state == "playing" and player.get("status") in ("no sound device", "cannot decode"):
            text = f"playing ({player['status']})"  # the node plays it; this computer does not
        self.progress.setFormat(text)

    def _show_tree(self, snap: dict[str, Any]) -> None:
        node = snap["node"]
        tuned = snap.get("tuned")
        tree: dict[str, Any] | None = None
        what = ""
        if tuned is not None and tuned.get("tree"):
            tree, what = tuned["tree"], f"listening to {tuned['name'] or 'a station'}"
        else:
            for b in snap.get("broadcasts") or []:
                if b.get("tree"):
                    tree, what = b["tree"], f"broadcasting {b['name']}"
                    break
        self.tree.clear()
        me_text = f"this node {node['address']}"
        if tree is None:
            QTreeWidgetItem(self.tree, [me_text, "not in a tree"])
        else:
            parent_item: QTreeWidget | QTreeWidgetItem = self.tree
            if tree.get("grandparent"):
                parent_item = QTreeWidgetItem(parent_item, [tree["grandparent"], "grandparent"])
            if tree.get("parent"):
                parent_item = QTreeWidgetItem(parent_item, [tree["parent"], "parent"])
            me = QTreeWidgetItem(parent_item, [me_text, "this node"])
            font = me.font(0)
            font.setBold(True)
            me.setFont(0, font)
            for child in tree.get("children") or []:
                QTreeWidgetItem(me, [child["address"], f"child ({child['slots']} slots)"])
            self.tree.expandAll()
        nat = node.get("nat") or {}
        reach = {True: "reachable", False: "not reachable", None: "reachability unknown"}[
            nat.get("reachable")
        ]
        parts = [what] if what else []
        if tree is not None:
            parts.append(
                f"depth {tree['depth']}, {len(tree.get('children') or [])} of "
                f"{tree['slots']} child slots used"
            )
        measured = "measured" if node.get("upload_measured") else "not measured yet"
        parts.append(f"upload {node['upload_kbps']} kbit/s ({measured})")
        nat_bits = [f"public {nat['public']}" if nat.get("public") else "public address unknown"]
        nat_bits.append(reach)
        if nat.get("symmetric_nat"):
            nat_bits.append("symmetric NAT")
        if nat.get("proxy"):
            nat_bits.append(f"reached through proxy {nat['proxy']}")
        if nat.get("proxy_clients"):
            nat_bits.append(f"proxy for {nat['proxy_clients']} nodes")
        parts.append("NAT: " + ", ".join(nat_bits))
        self.tree_info.setText("\n".join(parts))

    def _show_broadcasts(self, items: list[dict[str, Any]]) -> None:
        self.broadcasts.setRowCount(len(items))
        for i, b in enumerate(items):
            state = "on air" if b["on_air"] else "waiting for a source"
            if b.get("source"):
                state += f" (from {b['source']})"
            if b.get("title"):
                state += f": {b['title']}"
            for col, text in enumerate((b["name"], b["mount"], state)):
                self.broadcasts.setItem(i, col, QTableWidgetItem(text))
        self.stop_broadcast_button.setEnabled(bool(items))

    def _show_log(self, lines: list[dict[str, Any]]) -> None:
        texts = [e["line"] for e in lines]
        if texts == self._log_lines:
            return
        self._log_lines = texts
        self.log.setPlainText("\n".join(texts))
        bar = self.log.verticalScrollBar()
        bar.setValue(bar.maximum())


class BroadcastDialog(QDialog):
    """Start a broadcast: ingest, name, genre, description, password, mount; then shows the
    station's link (with a copy button) and how to point common tools at the ingest."""

    def __init__(self, link: NodeLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.setWindowTitle("Start a broadcast")
        self.resize(720, 520)
        self.ingest = QComboBox()
        self.name = QLineEdit()
        self.genre = QLineEdit()
        self.description = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.mount = QLineEdit("/live")
        self.mount.setToolTip('Mount point tools send to ("*": any mount)')
        form = QFormLayout()
        form.addRow("Ingest", self.ingest)
        form.addRow("Name", self.name)
        form.addRow("Genre", self.genre)
        form.addRow("Description", self.description)
        form.addRow("Source password", self.password)
        form.addRow("Mount", self.mount)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.link_edit = QLineEdit()
        self.link_edit.setReadOnly(True)
        self.link_edit.setPlaceholderText("the station's link appears here")
        self.copy_button = QPushButton("Copy link")
        self.copy_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.link_edit, 1)
        row.addWidget(self.copy_button)
        self.help = QTableWidget(0, 2)
        self.help.setHorizontalHeaderLabels(["Tool", "How to point it at this node"])
        self.help.horizontalHeader().setStretchLastSection(True)
        self.help.verticalHeader().hide()
        self.help.setColumnWidth(0, 120)
        self.help.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton(
            "Start broadcast", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(row)
        layout.addWidget(self.help, 1)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.close)
        self.copy_button.clicked.connect(self.copy_link)
        self.result: dict[str, Any] | None = None

        ctl = link.controller

        def defaults() -> tuple[list[str], str, str]:
            return (
                link.node.ingest_plugins(),
                ctl.config.get("ingest.plugin"),
                ctl.config.get("ingest.password"),
            )

        link.call(defaults, on_done=lambda r: self._defaults(*r))

    def _defaults(self, plugins: list[str], plugin: str, password: str) -> None:
        self.ingest.clear()
        self.ingest.addItems(plugins)
        if plugin in plugins:
            self.ingest.setCurrentText(plugin)
        if not self.password.text():
            self.password.setText(password)

    def start(self) -> None:
        self.error.clear()
        self.start_button.setEnabled(False)
        fn = functools.partial(
            self.link.controller.start_broadcast,
            self.name.text(),
            genre=self.genre.text(),
            description=self.description.text(),
            password=self.password.text(),
            ingest=self.ingest.currentText() or None,
            mount=self.mount.text().strip() or "*",
        )
        self.link.call(fn, on_done=self._started, on_error=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.start_button.setEnabled(True)
        self.error.setText(f"Cannot start: {exc}")

    def _started(self, result: dict[str, Any]) -> None:
        self.result = result
        self.start_button.setEnabled(True)
        self.link_edit.setText(result["link"])
        self.copy_button.setEnabled(True)
        self.error.setStyleSheet("color: #1b5e20")
        self.error.setText(
            f"{result['name']} is ready; it goes on air when a tool sends to mount "
            f"{result['mount']}. Share the link:"
        )
        rows = result["help"]
        self.help.setRowCount(len(rows))
        for i, h in enumerate(rows):
            self.help.setItem(i, 0, QTableWidgetItem(h["tool"]))
            item = QTableWidgetItem(h["how"])
            item.setToolTip(h["how"])
            self.help.setItem(i, 1, item)
        self.help.resizeRowsToContents()

    def copy_link(self) -> None:
        QGuiApplication.clipboard().setText(self.link_edit.text())
        self.copy_button.setText("Copied")


class SettingsDialog(QDialog):
    """The front ends' settings (``Controller.settings()``) with typed editors; saved to the
    TOML file with ``update_settings`` (they take effect at the node's next start)."""

    saved = Signal(list)

    def __init__(
        self,
        link: NodeLink,
        items: list[dict[str, Any]],
        path: Any,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.link = link
        self.items = items
        self.setWindowTitle("Settings")
        self.resize(560, 480)
        self.editors: dict[str, QWidget] = {}
        form = QFormLayout()
        for item in items:
            editor = self._editor(item)
            tip = f"{item['help']}\n(default: {item['default']!r})"
            editor.setToolTip(tip)
            label = QLabel(item["key"])
            label.setToolTip(tip)
            form.addRow(label, editor)
            self.editors[item["key"]] = editor
        where = f"Saved to {path}" if path else "Saved to the config file"
        note = QLabel(f"{where}; changes take effect at the node's next start.")
        note.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.close)

    @staticmethod
    def _editor(item: dict[str, Any]) -> QWidget:
        kind, value = item.get("kind"), item["value"]
        lo, hi = item.get("minimum"), item.get("maximum")
        if kind == "bool":
            box = QCheckBox()
            box.setChecked(bool(value))
            return box
        if kind == "int":
            spin = QSpinBox()
            spin.setRange(
                int(lo) if lo is not None else -(2**31), int(hi) if hi is not None else 2**31 - 1
            )
            spin.setValue(int(value))
            return spin
        if kind == "float":
            dspin = QDoubleSpinBox()
            dspin.setDecimals(2)
            dspin.setRange(
                float(lo) if lo is not None else -1e12, float(hi) if hi is not None else 1e12
            )
            dspin.setValue(float(value))
            return dspin
        if kind == "list[str]":
            edit = QLineEdit(", ".join(value))
            edit.setPlaceholderText("comma separated")
            return edit
        return QLineEdit(str(value))

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, editor in self.editors.items():
            if isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QSpinBox | QDoubleSpinBox):
                out[key] = editor.value()
            elif isinstance(editor, QLineEdit):
                out[key] = editor.text()  # lists as text: parsed (and checked) by the node
        return out

    def save(self) -> None:
        self.message.clear()
        self.link.call(
            self.link.controller.update_settings,
            self.values(),
            on_done=self._saved,
            on_error=self._failed,
        )

    def _saved(self, changed: list[str]) -> None:
        self.message.setStyleSheet("color: #1b5e20")
        if changed:
            self.message.setText(
                f"Saved {', '.join(changed)}; takes effect at the node's next start."
            )
        else:
            self.message.setText("Nothing changed.")
        self.saved.emit(changed)

    def _failed(self, exc: BaseException) -> None:
        self.message.setStyleSheet("color: #b00020")
        self.message.setText(f"Not saved: {exc}")
