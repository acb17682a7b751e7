"""The station table model and the window's panels fed with snapshots (no node)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from streamerp2p_qt.window import MainWindow, StationModel, ago


def station(name: str, *, online: bool = True, listeners: int = 0, seen: float = 0.0) -> dict:  # type: ignore[type-arg]
    return {
        "station_id": f"id-{name}",
        "name": name,
        "genre": "Rock",
        "description": "",
        "codec": "mp3",
        "bitrate": 128,
        "title": "A song",
        "listeners": listeners,
        "online": online,
        "last_seen_s": seen,
        "link": f"streamerp2p://id-{name}",
        "tuned": False,
        "broadcasting": False,
    }


def test_offline_stations_are_greyed_with_their_last_seen(qapp: QApplication) -> None:
    model = StationModel()
    model.set_stations([station("On", listeners=3), station("Off", online=False, seen=150)])
    on = [model.index(0, c).data() for c in range(6)]
    off = [model.index(1, c).data() for c in range(6)]
    assert on == ["On", "Rock", 3, "A song", "mp3 128 kbit/s", "on air"]
    assert off[0] == "Off" and off[2] == "" and off[5] == "off air, 2 min ago"
    assert model.index(1, 0).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert model.index(0, 0).data(Qt.ItemDataRole.ForegroundRole) is None
    assert model.headerData(2, Qt.Orientation.Horizontal) == "Listeners"
    assert [ago(s) for s in (5, 61, 7300, 90000)] == ["5 s ago", "1 min ago", "2 h ago", "1 d ago"]


class NoNode:
    """A NodeLink stand-in: signals only (the window never calls it here)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QObject, Signal

        class Sig(QObject):
            snapshot = Signal(object)
            message = Signal(str)

        self._sig = Sig()
        self.snapshot = self._sig.snapshot
        self.message = self._sig.message


def snapshot(**over: Any) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "serial": 1,
        "status": "2 stations, 3 listeners",
        "stations": [station("On", listeners=3), station("Off", online=False, seen=20)],
        "hosts": 2,
        "node": {
            "address": "0.0.0.0:8466",
            "advertised": "192.0.2.1:8466",
            "node_id": "ab",
            "upload_kbps": 812.5,
            "upload_measured": True,
            "nat": {
                "public": "198.51.100.7:40001",
                "reachable": False,
                "symmetric_nat": True,
                "proxy": "203.0.113.9:8466",
                "proxy_clients": 0,
            },
        },
        "tuned": None,
        "broadcasts": [],
        "ingest": None,
        "log": [{"time": 0, "line": "node: 0.0.0.0:8466"}],
    }
    snap.update(over)
    return snap


def test_tree_panel_shows_grandparent_parent_children_upload_and_nat(qapp: QApplication) -> None:
    win = MainWindow(NoNode())  # type: ignore[arg-type]
    tuned = {
        "station_id": "id-On",
        "name": "On",
        "genre": "Rock",
        "title": "A song",
        "state": "playing",
        "progress": 1.0,
        "stream_url": "http://127.0.0.1:8467/stream/id-On.mp3",
        "link": "streamerp2p://id-On",
        "tree": {
            "parent": "10.0.0.2:8466",
            "grandparent": "10.0.0.1:8466",
            "depth": 2,
            "children": [{"address": "10.0.0.5:8466", "node_id": "cd", "slots": 2}],
            "slots": 3,
        },
    }
    # the table keeps the selected station selected across updates
    win.update_snapshot(snapshot())
    win.table.selectRow(1)
    stations = [station("Off", online=False, seen=21), station("On", listeners=3)]
    win.update_snapshot(snapshot(tuned=tuned, stations=stations))
    assert win.selected_station() == "id-Off"
    assert win.network.text() == "2 stations, 3 listeners"
    assert win.now_playing.text() == "On — A song"
    gp = win.tree.topLevelItem(0)
    assert (gp.text(0), gp.text(1)) == ("10.0.0.1:8466", "grandparent")
    parent = gp.child(0)
    me = parent.child(0)
    assert parent.text(1) == "parent" and me.text(0) == "this node 0.0.0.0:8466"
    assert me.child(0).text(0) == "10.0.0.5:8466"
    info = win.tree_info.text()
    assert "depth 2, 1 of 3 child slots used" in info
    assert "upload 812.5 kbit/s (measured)" in info
    assert "public 198.51.100.7:40001, not reachable, symmetric NAT" in info
    assert "reached through proxy 203.0.113.9:8466" in info
    assert win.log.toPlainText() == "node: 0.0.0.0:8466"
    # a broadcaster's own tree when not tuned
    bc = {
        "station_id": "id-B",
        "name": "My FM",
        "mount": "/live",
        "link": "streamerp2p://id-B",
        "on_air": True,
        "source": "127.0.0.1:5000",
        "title": "Live",
        "tree": {"parent": None, "grandparent": None, "depth": 0, "children": [], "slots": 4},
        "stream_url": None,
    }
    win.update_snapshot(snapshot(broadcasts=[bc]))
    assert win.tree.topLevelItem(0).text(1) == "this node"
    assert win.tree_info.text().startswith("broadcasting My FM")
    assert win.broadcasts.item(0, 2).text() == "on air (from 127.0.0.1:5000): Live"
    assert win.progress.format() == "stopped"
    win.deleteLater()
