"""Plugin registration: the ``web`` front end (entry point group ``streamerp2p.ui``).

``run(app)`` serves the page on ``web.host:web.port`` (127.0.0.1:8468 by default), prints
``web: http://HOST:PORT/`` and runs until the node stops it (or the page's Quit button).

The HTTP server is uvicorn, run inside the node's anyio task group on its event loop (asyncio):
it does not install signal handlers (the node's own SIGINT/SIGTERM handling stays in charge)
and does not touch the process's logging configuration.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import click
import uvicorn
from streamerp2p.config import Config
from streamerp2p.control import Controller
from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import UISpec

from .security import new_token
from .server import WebUI


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the node handles SIGINT/SIGTERM (and leaves politely)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any); ClickException if impossible."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise click.ClickException(
            f"web: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "set web.port (streamer config set web.port N) or stop the other program"
        ) from exc
    sock.setblocking(False)
    return sock


def page_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def serve(ui: WebUI, sock: socket.socket, stop: anyio.Event | None = None) -> None:
    """Serve ``ui`` on ``sock`` until cancelled (or ``stop`` is set), then shut down gracefully:
    event streams end, uvicorn closes its connections (at most ~1 s), the socket is closed."""
    config = uvicorn.Config(
        ui.asgi,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        http="h11",
        ws="none",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    finished = anyio.Event()

    async def run_server() -> None:
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            finally:
                finished.set()

    async def shutdown_after_stop() -> None:
        if stop is not None:
            await stop.wait()
            finished.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ui.hub.run, ui.controller)
            tg.start_soon(run_server)
            tg.start_soon(shutdown_after_stop)
            try:
                await finished.wait()
            finally:
                ui.hub.close()
                server.should_exit = True
                tg.cancel_scope.cancel()  # the hub; run_server is shielded and ends by itself
    finally:
        sock.close()


async def run(app: Any) -> None:
    config = app.config if app.config is not None else Config()
    host = str(config.get("web.host"))
    sock = listen(host, int(config.get("web.port")))
    controller = Controller(app)
    quit_clicked = anyio.Event()
    ui = WebUI(controller, new_token(), quit=quit_clicked.set)
    port = int(sock.getsockname()[1])
    ui.bind(port, names=(host,))
    app.out(f"web: {page_url(host, port)}")
    await serve(ui, sock, quit_clicked)
    if quit_clicked.is_set():
        app.out("web: quit from the page")


@hookimpl
def streamerp2p_ui() -> list[UISpec]:
    return [
        UISpec(
            name="web",
            description=(
                "A web page served by the node on 127.0.0.1 (web.port): stations, live status, "
                "play in the browser, the tree, broadcasting, settings, an embeddable widget"
            ),
            run=run,
        )
    ]
