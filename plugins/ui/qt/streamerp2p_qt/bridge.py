"""Hand-offs between the node's event loop and the Qt GUI thread.

The node (anyio on asyncio) and Qt each run their own loop in their own thread. Nothing of one
is touched from the other's thread:

* node -> GUI: :class:`NodeLink` is a ``QObject`` living in the GUI thread; its signals are
  emitted from the node's thread, so Qt queues them to the GUI thread (snapshots from
  ``Controller.changes()``, results of actions, status messages).
* GUI -> node: :meth:`NodeLink.call` puts ``(function, args)`` on the node's loop with
  ``loop.call_soon_threadsafe`` (it never waits for the node); :class:`NodeSide` runs it
  there (awaiting it if it is a coroutine function) and the result comes back as a signal.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
from PySide6.QtCore import QObject, Signal, Slot
from streamerp2p.control import Controller

from .player import InternalPlayer

log = logging.getLogger(__name__)

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class NodeSide:
    """The node's half: runs on the node's event loop (make it there)."""

    def __init__(self, controller: Controller, player: InternalPlayer) -> None:
        self.controller = controller
        self.player = player
        self.loop = asyncio.get_running_loop()
        self._send, self._recv = anyio.create_memory_object_stream[
            tuple[Callable[..., Any], tuple[Any, ...], Callable[[Any, BaseException | None], None]]
        ](math.inf)
        self.on_snapshot: Callable[[dict[str, Any]], None] = lambda snap: None
        self.on_message: Callable[[str], None] = lambda line: None
        player.say = self._say

    def _say(self, line: str) -> None:
        self.controller.app.out(line)  # into the log (and the terminal)
        self.on_message(line)

    # ---- any thread ------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        reply: Callable[[Any, BaseException | None], None],
    ) -> None:
        """Run ``fn(*args)`` on the node's loop; ``reply(result, error)`` is called there."""
        try:
            self.loop.call_soon_threadsafe(self._enqueue, fn, args, reply)
        except RuntimeError:  # the loop is closed: the node is gone
            reply(None, RuntimeError("the node has stopped"))

    def _enqueue(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        reply: Callable[[Any, BaseException | None], None],
    ) -> None:
        try:
            self._send.send_nowait((fn, args, reply))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):  # serve() has ended
            reply(None, RuntimeError("the node has stopped"))

    # ---- node's loop -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Deliver snapshots and run the GUI's actions until cancelled."""
        async with anyio.create_task_group() as tg:
            self.player.task_group = tg
            tg.start_soon(self._pump)
            try:
                async with self._recv:
                    async for fn, args, reply in self._recv:
                        tg.start_soon(self._run, fn, args, reply)
            finally:
                self.player.stop()

    async def _pump(self) -> None:
        async for snap in self.controller.changes():
            snap["player"] = self.player.state()
            self.on_snapshot(snap)

    @staticmethod
    async def _run(
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        reply: Callable[[Any, BaseException | None], None],
    ) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            reply(None, exc)
        else:
            reply(result, None)

    # ---- actions (run on the node's loop through NodeLink.call) -------------------------------

    def listen(self, target: str) -> str:
        """Tune in (station id or link) and play it with the internal player."""
        sid = self.controller.tune(target)
        self.player.play(sid)
        return sid

    def stop(self) -> None:
        self.player.stop()
        self.controller.stop()

    def set_volume(self, percent: int) -> None:
        self.player.set_volume(percent)

    def ingest_plugins(self) -> list[str]:
        return [spec.name for spec in self.controller.app.plugins.ingest_servers()]

    def say(self, line: str) -> None:
        self.controller.app.out(line)


class NodeLink(QObject):
    """The GUI's half: lives in the GUI thread (make it there)."""

    snapshot = Signal(object)  # dict: Controller.snapshot() plus "player"
    message = Signal(str)  # a line for the status bar (player state, errors)
    _reply = Signal(object, object, object, object)  # on_done, on_error, result, error

    def __init__(self, node: NodeSide, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.controller = node.controller
        self._reply.connect(self._deliver)
        node.on_snapshot = self.snapshot.emit
        node.on_message = self.message.emit

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Done | None = None,
        on_error: Failed | None = None,
    ) -> None:
        """Run ``fn(*args)`` on the node's loop (never blocks); ``on_done(result)`` or
        ``on_error(exception)`` then run in the GUI thread."""

        def reply(result: Any, error: BaseException | None) -> None:
            self._reply.emit(on_done, on_error, result, error)

        self.node.submit(fn, args, reply)

    @Slot(object, object, object, object)
    def _deliver(
        self, on_done: Done | None, on_error: Failed | None, result: Any, error: Any
    ) -> None:
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.warning("node action failed: %s", error)
            self.message.emit(f"error: {error}")
