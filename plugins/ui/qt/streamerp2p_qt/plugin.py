"""Plugin registration: the ``qt`` front end (entry point group ``streamerp2p.ui``).

``run(app)`` is awaited in the node's task group on the node's event loop (the main thread).
Qt gets a thread of its own (the GUI thread, where the QApplication is made and its event loop
runs), so neither loop ever waits for the other; see :mod:`streamerp2p_qt.bridge` for the
hand-offs. Closing the window ends ``run``, after which the node leaves politely; when the
node stops first (SIGTERM, Ctrl+C), the window is closed and the GUI thread joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import Any

import anyio
from streamerp2p.control import Controller
from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import UISpec

from .bridge import NodeLink, NodeSide
from .player import InternalPlayer

#: Seconds the node waits for the GUI thread to finish once asked to quit.
QUIT_TIMEOUT = 10.0


def gui_main(
    node: NodeSide,
    volume: int,
    started: threading.Event,
    stopping: threading.Event,
    quit_box: list[Any],
) -> int:
    """The GUI thread: QApplication, the window, Qt's event loop until the window closes."""
    import gc

    from PySide6.QtCore import QMetaObject, Qt
    from PySide6.QtWidgets import QApplication

    from .window import MainWindow

    qapp = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "streamer"])
    qapp.setApplicationName("Streamer P2P")
    qapp.setQuitOnLastWindowClosed(True)
    link = NodeLink(node)
    window = MainWindow(link, volume=volume)
    said = []

    def on_shown() -> None:
        if not said:  # once: what scripts (and the end-to-end test) wait for
            said.append(True)
            link.call(node.say, "qt: window shown")

    window.shown.connect(on_shown)
    # the node's thread asks Qt to quit with a queued call (thread-safe)
    quit_box.append(
        lambda: QMetaObject.invokeMethod(qapp, "quit", Qt.ConnectionType.QueuedConnection)
    )
    window.show()
    started.set()
    try:
        if stopping.is_set():  # the node stopped while the window was being made
            return 0
        return qapp.exec()
    finally:
        node.on_snapshot = lambda snap: None  # nothing more for this window
        node.on_message = lambda line: None
        window.close()
        window.deleteLater()
        qapp.processEvents()
        gc.collect()
        qapp.shutdown()


async def run(app: Any) -> None:
    """Run the Qt window for ``app`` until it is closed (or the node stops)."""
    if sys.platform == "darwin":
        raise RuntimeError(
            "the qt front end needs Qt's main thread, which macOS gives only to the process's "
            "first thread (the node's); use --ui web there"
        )
    config = app.config
    controller = Controller(app, config)
    volume = int(controller.config.get("player.volume"))
    player = InternalPlayer(app, volume=volume, device=controller.config.get("player.device"))
    node = NodeSide(controller, player)
    loop = asyncio.get_running_loop()
    started, stopping = threading.Event(), threading.Event()
    quit_box: list[Any] = []
    done = anyio.Event()
    result: dict[str, Any] = {}

    def gui() -> None:
        try:
            result["rc"] = gui_main(node, volume, started, stopping, quit_box)
        except BaseException as exc:  # reported by run()
            result["error"] = exc
        finally:
            started.set()
            with contextlib.suppress(RuntimeError):  # the loop is gone
                loop.call_soon_threadsafe(done.set)

    thread = threading.Thread(target=gui, name="qt-gui", daemon=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.serve)
        thread.start()
        try:
            await done.wait()
        finally:
            stopping.set()
            if thread.is_alive():
                if quit_box:
                    quit_box[0]()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(thread.join, QUIT_TIMEOUT)
            tg.cancel_scope.cancel()
    if "error" in result:
        raise result["error"]


@hookimpl
def streamerp2p_ui() -> list[UISpec]:
    return [
        UISpec(
            name="qt",
            description="desktop window (Qt): stations, play/stop, volume, tree, broadcast, "
            "settings",
            run=run,
        )
    ]
