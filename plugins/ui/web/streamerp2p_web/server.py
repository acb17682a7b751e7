"""The web front end's HTTP side: a Starlette app on a :class:`~streamerp2p.control.Controller`.

Routes (see ``docs/ui.md``):

* ``GET /`` — the page (``static/index.html`` with this process's token), ``/static/*`` its
  script and style sheet.
* ``GET /api/snapshot``, ``GET /api/settings`` — JSON; ``GET /api/events`` — Server-Sent
  Events, one ``snapshot`` event (the controller's snapshot as JSON) after each change.
* ``POST /api/tune``, ``/api/stop``, ``/api/broadcast``, ``/api/broadcast/stop``,
  ``/api/settings``, ``/api/quit`` — the controller's actions; JSON in, JSON out (with the
  snapshot right after the action, so the page shows "tuning" at once), errors as
  ``{"error": ...}`` with status 400 (``"key"`` names the setting at fault).
* ``GET /widget/<station_id>`` — the broadcaster widget (an HTML page for an ``<iframe>`` on
  any site), ``/widget/<station_id>.json`` and ``/widget/<station_id>/events`` its public data.

All routes but the widget's check ``Host``; the POST routes also the token, ``Origin`` and the
content type (:mod:`.security`). The page may not be framed; the widget may, by anyone.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from streamerp2p.config import ConfigError
from streamerp2p.control import Controller
from streamerp2p.overlay.records import decode_station_id

from .security import Guard

STATIC = resources.files("streamerp2p_web") / "static"

COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The UI: never framed (clickjacking), scripts and styles only from itself.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' {media}; frame-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The widget: framed by any site (that is what it is for), nothing else loosened.
WIDGET_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors *"
)
_KEY_IN_ERROR = re.compile(r"'([a-z_]+\.[a-z_]+)'|^([a-z_]+\.[a-z_]+):")


class Hub:
    """The latest snapshot, shared by every event stream (one snapshot per change in all)."""

    def __init__(self) -> None:
        self.snap: dict[str, Any] | None = None
        self.serial = 0
        self._event = anyio.Event()
        self.closing = False

    def publish(self, snap: dict[str, Any]) -> None:
        self.snap = snap
        self.serial += 1
        event, self._event = self._event, anyio.Event()
        event.set()

    def close(self) -> None:
        self.closing = True
        self._event.set()

    async def next(self, after: int, timeout: float) -> int:
        """Wait (at most ``timeout`` s) for a snapshot newer than serial ``after``."""
        with anyio.move_on_after(timeout):
            while self.serial <= after and not self.closing:
                await self._event.wait()
        return self.serial

    async def run(self, controller: Controller) -> None:
        async for snap in controller.changes():
            self.publish(snap)


class _GuardHost:
    """ASGI middleware: requests that do not name this server in Host get 403 (rebinding)."""

    def __init__(self, app: ASGIApp, guard: Callable[[], Guard]) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/widget/"):
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if not self.guard().host_ok(host):
                resp = JSONResponse({"error": "unknown Host (DNS rebinding?)"}, 403, COMMON_HEADERS)
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def public_station(controller: Controller, snap: dict[str, Any], sid: str) -> dict[str, Any] | None:
    """What the widget shows of a station (public data only), None if unknown here."""
    row = next((s for s in snap["stations"] if s["station_id"] == sid), None)
    own = next((b for b in snap["broadcasts"] if b["station_id"] == sid), None)
    if row is None and own is None:
        return None
    row = row or {}
    return {
        "station_id": sid,
        "name": row.get("name") or (own or {}).get("name", ""),
        "genre": row.get("genre", ""),
        "title": row.get("title") or (own or {}).get("title", ""),
        "listeners": row.get("listeners", 0),
        "online": bool(row.get("online")) or bool(own and own["on_air"]),
        # the broadcaster's own link names it and its seeds: the best way in
        "link": (own or {}).get("link") or row.get("link", ""),
    }


class WebUI:
    """The Starlette application of one node's web front end."""

    def __init__(
        self,
        controller: Controller,
        token: str,
        *,
        quit: Callable[[], None] | None = None,
    ) -> None:
        self.controller = controller
        self.token = token
        self.hub = Hub()
        self.guard = Guard(0, token)
        self._quit = quit
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        self._page = page.replace("{{TOKEN}}", html.escape(token, quote=True))
        widget = (STATIC / "widget.html").read_text(encoding="utf-8")
        self._widget_page = widget
        api = [
            Route("/", self.index),
            Route("/api/snapshot", self.snapshot),
            Route("/api/events", self.events),
            Route("/api/settings", self.get_settings, methods=["GET"]),
            Route("/api/settings", self.change(self.put_settings), methods=["POST"]),
            Route("/api/tune", self.change(self.tune), methods=["POST"]),
            Route("/api/stop", self.change(self.stop), methods=["POST"]),
            Route("/api/broadcast", self.change(self.broadcast), methods=["POST"]),
            Route("/api/broadcast/stop", self.change(self.stop_broadcast), methods=["POST"]),
            Route("/api/quit", self.change(self.quit), methods=["POST"]),
            Route("/widget/widget.js", self.widget_asset),
            Route("/widget/widget.css", self.widget_asset),
            Route("/widget/{sid}.json", self.widget_json),
            Route("/widget/{sid}/events", self.widget_events),
            Route("/widget/{sid}", self.widget),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ]
        self.starlette = Starlette(routes=api)
        self.asgi: ASGIApp = _GuardHost(self.starlette, lambda: self.guard)

    def bind(self, port: int, names: tuple[str, ...] = ()) -> None:
        """Called once the port is known (the Host check needs it)."""
        self.guard = Guard(port, self.token, names)

    # ------------------------------------------------------------------ helpers

    def change(
        self, fn: Callable[[dict[str, Any]], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A state-changing endpoint: checked (:mod:`.security`), JSON in and out."""

        async def endpoint(request: Request) -> Response:
            why = self.guard.refuse_change(request.method, dict(request.headers))
            if why is not None:
                return JSONResponse({"error": why}, 403, COMMON_HEADERS)
            try:
                body = await request.json() if await request.body() else {}
            except ValueError:
                return JSONResponse({"error": "the body is not JSON"}, 400, COMMON_HEADERS)
            if not isinstance(body, dict):
                return JSONResponse({"error": "the body must be an object"}, 400, COMMON_HEADERS)
            try:
                result = await fn(body)
            except ConfigError as exc:
                text = str(exc)
                m = _KEY_IN_ERROR.search(text)
                key = (m.group(1) or m.group(2)) if m else None
                return JSONResponse({"error": text, "key": key}, 400, COMMON_HEADERS)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                return JSONResponse({"error": str(exc)}, 400, COMMON_HEADERS)
            out = {"ok": True, **(result or {}), "snapshot": self.controller.snapshot()}
            return JSONResponse(out, 200, COMMON_HEADERS)

        return endpoint

    def _media_origin(self) -> str:
        """The node's HTTP output, where ``<audio>`` plays from (another port: another origin)."""
        http = self.controller.app.http
        if http is None:
            return ""
        u = urlsplit(http.url("x"))
        return f"{u.scheme}://{u.netloc}"

    # ------------------------------------------------------------------ page and data

    async def index(self, request: Request) -> Response:
        headers = {
            **COMMON_HEADERS,
            "Content-Security-Policy": UI_CSP.format(media=self._media_origin()),
            "X-Frame-Options": "DENY",
        }
        return HTMLResponse(self._page, headers=headers)

    async def snapshot(self, request: Request) -> Response:
        return JSONResponse(self.controller.snapshot(), headers=COMMON_HEADERS)

    def _settings(self) -> dict[str, Any]:
        path = self.controller.config_path
        return {"settings": self.controller.settings(), "path": str(path) if path else None}

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(self._settings(), headers=COMMON_HEADERS)

    async def events(self, request: Request) -> Response:
        hub = self.hub

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            seen = hub.serial
            yield _sse("snapshot", self.controller.snapshot())  # fresh, not the hub's last
            while not hub.closing:
                serial = await hub.next(seen, 15.0)
                if hub.closing:
                    return
                if serial == seen or hub.snap is None:
                    yield ": keep-alive\n\n"
                    continue
                seen = serial
                yield _sse("snapshot", hub.snap)

        headers = {**COMMON_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # ------------------------------------------------------------------ actions

    async def tune(self, body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ValueError("tune needs a station id or a streamerp2p:// link")
        return {"station_id": self.controller.tune(target)}

    async def stop(self, body: dict[str, Any]) -> None:
        self.controller.stop()

    async def broadcast(self, body: dict[str, Any]) -> dict[str, Any]:
        def text(key: str) -> str:
            value = body.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"{key} must be text")
            return value.strip()

        mount = text("mount") or "*"
        if mount != "*" and not mount.startswith("/"):
            mount = "/" + mount
        return await self.controller.start_broadcast(
            text("name"),
            genre=text("genre"),
            description=text("description"),
            url=text("url"),
            password=text("password") or None,
            mount=mount,
        )

    async def stop_broadcast(self, body: dict[str, Any]) -> None:
        sid = body.get("station_id")
        if not isinstance(sid, str):
            raise ValueError("station_id needed")
        self.controller.stop_broadcast(sid)

    async def put_settings(self, body: dict[str, Any]) -> dict[str, Any]:
        values = body.get("values")
        if not isinstance(values, dict):
            raise ValueError("values must be an object")
        changed = self.controller.update_settings(values)
        return {"changed": changed, **self._settings()}

    async def quit(self, body: dict[str, Any]) -> None:
        if self._quit is not None:
            self._quit()

    # ------------------------------------------------------------------ the widget

    def _widget_headers(self) -> dict[str, str]:
        return {**COMMON_HEADERS, "Content-Security-Policy": WIDGET_CSP}

    def _station(self, request: Request) -> tuple[str, dict[str, Any] | None]:
        sid = request.path_params["sid"]
        try:
            decode_station_id(sid)
        except ValueError:
            return sid, None
        return sid, public_station(self.controller, self.controller.snapshot(), sid)

    async def widget(self, request: Request) -> Response:
        sid, station = self._station(request)
        if station is None:
            return Response("no such station here\n", 404, self._widget_headers())
        page = self._widget_page.replace("{{SID}}", html.escape(sid, quote=True))
        page = page.replace("{{NAME}}", html.escape(station["name"] or "Streamer P2P"))
        page = page.replace("{{LINK}}", html.escape(station["link"], quote=True))
        return HTMLResponse(page, headers=self._widget_headers())

    async def widget_json(self, request: Request) -> Response:
        _, station = self._station(request)
        headers = {**self._widget_headers(), "Access-Control-Allow-Origin": "*"}
        if station is None:
            return JSONResponse({"error": "no such station here"}, 404, headers)
        return JSONResponse(station, headers=headers)

    async def widget_events(self, request: Request) -> Response:
        sid, station = self._station(request)
        headers = {**self._widget_headers(), "Access-Control-Allow-Origin": "*"}
        if station is None:
            return JSONResponse({"error": "no such station here"}, 404, headers)
        hub = self.hub

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            last: dict[str, Any] | None = None
            seen = hub.serial
            snap = self.controller.snapshot()
            while not hub.closing:
                now = public_station(self.controller, snap, sid)
                if now is not None and now != last:
                    last = now
                    yield _sse("station", now)
                serial = await hub.next(seen, 15.0)
                if serial == seen:
                    yield ": keep-alive\n\n"
                seen = serial
                snap = hub.snap or snap

        headers["X-Accel-Buffering"] = "no"
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def widget_asset(self, request: Request) -> Response:
        name = request.url.path.rsplit("/", 1)[1]
        ctype = "text/javascript" if name.endswith(".js") else "text/css"
        body = (STATIC / name).read_text(encoding="utf-8")
        return Response(body, media_type=ctype, headers=self._widget_headers())
