"""The anyio runtime: drives a sans-I/O overlay ``Node`` on a real UDP socket.

Receiving uses a non-blocking socket with ``anyio.wait_readable`` and drains every queued
datagram per wake-up (see shared research: ~7 µs per datagram, no kernel drops under bursts);
sending calls ``sendto`` directly. Timer ticks come from ``node.get_timer()``. Events are handed
to a callback in the same event loop.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from .overlay.events import Event
from .overlay.node import Node
from .overlay.wire import Addr

log = logging.getLogger(__name__)


class UdpRuntime:
    def __init__(
        self,
        node: Node,
        host: str = "0.0.0.0",
        port: int = 8466,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.on_event = on_event
        self.sock: socket.socket | None = None
        self.side: socket.socket | None = None  # a second port: reachability probes only
        self.send_errors = 0
        self._wake = anyio.Event()
        self._timer_due = 0.0  # when the timer task will next wake
        self._local: dict[str, str] = {}
        node.nat.local_addr = self.local_addr

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    @property
    def address(self) -> Addr:
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        return (host, port)

    def local_addr(self, peer_ip: str) -> Addr | None:
        """Our address toward ``peer_ip`` as this host sends it (its route's source address
        and our port): a routing lookup, no datagram leaves (works on every OS)."""
        ip = self._local.get(peer_ip)
        if ip is None:
            if self.host not in ("0.0.0.0", "::"):
                ip = self.host
            else:
                fam = socket.AF_INET6 if ":" in peer_ip else socket.AF_INET
                try:
                    with socket.socket(fam, socket.SOCK_DGRAM) as probe:
                        probe.connect((peer_ip, 9))
                        ip = probe.getsockname()[0]
                except OSError:
                    return None
            if len(self._local) > 64:
                self._local.clear()
            self._local[peer_ip] = ip
        return (ip, self.port)

    def bind(self) -> None:
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            self._setup(sock)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.port = sock.getsockname()[1]

    def _setup(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        except OSError:  # pragma: no cover - platform limits
            pass
        sock.bind((self.host, self.port))

    async def run(self, *, task_status: TaskStatus[Addr] = anyio.TASK_STATUS_IGNORED) -> None:
        if self.sock is None:
            self.bind()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._timer_loop)
                task_status.started(self.address)
                await self._recv_loop()
        finally:
            if self.sock is not None:
                self.sock.close()
            if self.side is not None:
                self.side.close()

    def poke(self) -> None:
        """Call after a command on the node: send what it queued and reschedule its timer."""
        self.flush()
        self._wake.set()

    def flush(self) -> None:
        node = self.node
        out = node.datagrams_to_send()
        if out:
            sendto = self.sock.sendto  # type: ignore[union-attr]
            for data, addr in out:
                try:
                    sendto(data, addr)
                except OSError:
                    self.send_errors += 1
        side = node.side_datagrams_to_send()
        if side:
            self._send_side(side)
        events = node.events()
        if events and self.on_event is not None:
            for ev in events:
                try:
                    self.on_event(ev)
                except Exception:  # an event consumer must never stop the node
                    log.exception("event handler failed for %r", type(ev).__name__)

    def _send_side(self, out: list[tuple[bytes, Addr]]) -> None:
        """From a second socket on a free port (opened once; what arrives there is ignored)."""
        if self.side is None:
            fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            try:
                side = socket.socket(fam, socket.SOCK_DGRAM)
                side.setblocking(False)
                side.bind((self.host, 0))
            except OSError:
                self.send_errors += len(out)
                return
            self.side = side
        for data, addr in out:
            try:
                self.side.sendto(data, addr)
            except OSError:
                self.send_errors += 1

    async def _recv_loop(self) -> None:
        sock = self.sock
        assert sock is not None
        node = self.node
        recvfrom = sock.recvfrom
        clock = self.clock
        while True:
            await anyio.wait_readable(sock)
            for _ in range(512):
                try:
                    data, addr = recvfrom(2048)
                except BlockingIOError:
                    break
                except OSError:  # e.g. ICMP port unreachable reported on Windows
                    continue
                now = clock()  # per datagram: the bandwidth test times arrivals
                try:
                    node.receive_datagram(data, addr[:2], now)
                except Exception:  # a kernel bug must not stop the node: log and go on
                    log.exception("datagram from %s dropped", addr)
            self.flush()
            if node.get_timer() < self._timer_due:
                self._wake.set()  # a datagram moved the node's deadline earlier

    async def _timer_loop(self) -> None:
        node = self.node
        while True:
            due = node.get_timer()
            delay = due - self.clock()
            if delay > 0:
                self._timer_due = due
                self._wake = anyio.Event()
                with anyio.move_on_after(delay):
                    await self._wake.wait()
                self._timer_due = 0.0
                if node.get_timer() > self.clock():
                    continue
            node.handle_timer(self.clock())
            self.flush()
