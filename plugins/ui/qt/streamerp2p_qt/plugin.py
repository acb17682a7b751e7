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


class GuiThread:
    """The GUI thread: the QApplication, the window and Qt's event loop until it closes.

    :meth:`request_quit` may be called from any thread, at any time (before the window
    exists, while it runs, after it closed).
    """

    def __init__(self, node: NodeSide, volume: int, on_exit: Any) -> None:
        self.node = node
        self.volume = volume
        self.on_exit = on_exit  # called in the GUI thread when it ends
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._quit: Any = None  # posts a quit to the running Qt loop
        self.thread = threading.Thread(target=self._main, name="qt-gui", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def request_quit(self) -> None:
        with self._lock:
            self._stopping = True
            if self._quit is not None:
                self._quit()

    def _main(self) -> None:
        try:
            self._gui()
        except BaseException as exc:  # reported by run()
            self.error = exc
        finally:
            self.on_exit()

    def _gui(self) -> None:
        import gc

        from PySide6.QtCore import QMetaObject, Qt
        from PySide6.QtWidgets import QApplication

        from .window import MainWindow

        node = self.node
        qapp = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "streamer"])
        qapp.setApplicationName("Streamer P2P")
        qapp.setQuitOnLastWindowClosed(True)
        link = NodeLink(node)
        window = MainWindow(link, volume=self.volume)
        said: list[bool] = []

        def on_shown() -> None:
            if not said:  # once: what scripts (and the end-to-end test) wait for
                said.append(True)
                link.call(node.say, "qt: window shown")

        window.shown.connect(on_shown)
        window.closed.connect(qapp.quit)  # even with a dialog still open
        window.show()
        try:
            with self._lock:
                if self._stopping:  # the node stopped while the window was being made
                    return
                # a queued call is thread-safe: Qt runs it in this thread
                self._quit = lambda: QMetaObject.invokeMethod(
                    qapp, "quit", Qt.ConnectionType.QueuedConnection
                )
            qapp.exec()
        finally:
            with self._lock:
                self._quit = None
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
            "first thread (the node's); use another front end there"
        )
    controller = Controller(app, app.config)
    volume = int(controller.config.get("player.volume"))
    player = InternalPlayer(app, volume=volume, device=controller.config.get("player.device"))
    node = NodeSide(controller, player)
    loop = asyncio.get_running_loop()
    done = anyio.Event()

    def on_exit() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone
            loop.call_soon_threadsafe(done.set)

    gui = GuiThread(node, volume, on_exit)
    async with anyio.create_task_group() as tg:
        tg.start_soon(node.serve)
        gui.start()
        try:
            await done.wait()  # the window was closed
        finally:  # (or the node stops: SIGTERM, Ctrl+C)
            gui.request_quit()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(gui.thread.join, QUIT_TIMEOUT)
            tg.cancel_scope.cancel()
    if gui.error is not None:
        raise gui.error


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
