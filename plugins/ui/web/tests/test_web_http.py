"""The web front end over plain HTTP, in process on a real App: cross-site request and DNS
rebinding protection, frame and CORS headers, the event stream, the actions, shutdown."""

from __future__ import annotations

import http.client
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from streamerp2p.app import App, NodeOptions
from streamerp2p.config import Config
from streamerp2p.overlay.node import NodeConfig
from streamerp2p.plugins import load_plugins
from streamerp2p_web.plugin import page_url
from streamerp2p_web.security import Guard
from webnodes import request, token_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_guard_host_origin_token() -> None:
    g = Guard(8468, "tok", names=("myhost.lan",))
    good = ("127.0.0.1:8468", "localhost:8468", "[::1]:8468", "10.1.2.3:8468", "MyHost.lan:8468")
    for ok in good:
        assert g.host_ok(ok), ok
    for bad in (
        None,
        "",
        "evil.example:8468",  # a rebound name
        "127.0.0.1:8469",
        "127.0.0.1",  # port 80
        "user@127.0.0.1:8468",
        "127.0.0.1:8468/x",
        "[::1",
    ):
        assert not g.host_ok(bad), bad
    assert g.origin_ok(None, "127.0.0.1:8468")
    assert g.origin_ok("http://127.0.0.1:8468", "127.0.0.1:8468")
    assert not g.origin_ok("http://evil.example", "127.0.0.1:8468")
    assert not g.origin_ok("null", "127.0.0.1:8468")
    assert g.token_ok("tok") and not g.token_ok("tok2") and not g.token_ok(None)
    assert page_url("0.0.0.0", 1) == "http://127.0.0.1:1/"
    assert page_url("::1", 2) == "http://[::1]:2/"


def opts() -> NodeOptions:
    return NodeOptions(
        host="127.0.0.1",
        port=0,
        advertise="127.0.0.1",
        http_port=0,
        overlay=NodeConfig(bandwidth_test=False),
    )


def first_event(
    url: str, host: str | None = None
) -> tuple[http.client.HTTPConnection, dict[str, Any]]:
    """Open the event stream and read its first snapshot; the connection stays open."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/api/events", headers={"Host": host} if host else {})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type", "").startswith("text/event-stream")
    event = ""
    while True:
        line = resp.fp.readline().decode()
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "snapshot":
            return conn, json.loads(line[5:])


async def test_requests_refused_and_allowed_and_shutdown_with_a_stream_open(
    tmp_path: Path,
) -> None:
    plugins = load_plugins()
    config = Config(path=tmp_path / "c.toml")
    config.set_value("web.port", 0)
    config.set_value("ingest.port", 0)
    lines: list[str] = []
    started = anyio.Event()

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("web: "):
            started.set()

    app = App(opts(), tmp_path / "state", plugins, out=out, config=config)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ui_done = anyio.Event()

    async def thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async with anyio.create_task_group() as tg:
        await app.start(tg)

        async def run_ui() -> None:
            await plugins.ui("web").run(app)
            ui_done.set()

        tg.start_soon(run_ui)
        with anyio.fail_after(10):
            await started.wait()
        url = next(line for line in lines if line.startswith("web: "))[5:]
        port = urlsplit(url).port
        assert url.startswith("http://127.0.0.1:") and port
        # serving did not take the node's signals
        assert {s: signal.getsignal(s) for s in handlers} == handlers

        status, headers, page = await thread(request, url)
        assert status == 200 and headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        token = token_of(page)
        own = f"127.0.0.1:{port}"

        def post(path: str, body: Any, **extra: str) -> tuple[int, dict[str, Any]]:
            hdrs = {
                "Host": own,
                "Origin": f"http://{own}",
                "Content-Type": "application/json",
                "X-Streamer-Token": token,
                "Sec-Fetch-Site": "same-origin",
                **{k.replace("_", "-"): v for k, v in extra.items()},
            }
            hdrs = {k: v for k, v in hdrs.items() if v != ""}
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            st, _, raw = request(url, "POST", path, data, hdrs)
            return st, json.loads(raw) if raw.startswith(b"{") else {}

        # ---- refused: 403 before anything happens
        refused = await thread(
            lambda: [
                post("/api/tune", {"target": "x"}, X_Streamer_Token=""),  # no token
                post("/api/tune", {"target": "x"}, X_Streamer_Token="wrong"),
                post("/api/tune", {"target": "x"}, Origin="http://evil.example"),
                post("/api/tune", {"target": "x"}, Origin="null"),
                post("/api/tune", {"target": "x"}, Host=f"evil.example:{port}"),  # rebinding
                post("/api/tune", {"target": "x"}, Content_Type="text/plain"),  # a simple request
                post("/api/tune", {"target": "x"}, Sec_Fetch_Site="cross-site"),
                post("/api/settings", {"values": {"node.slots": 9}}, X_Streamer_Token=""),
                post("/api/quit", {}, Origin=f"http://127.0.0.1:{port + 1}"),
            ]
        )
        for i, (st, body) in enumerate(refused):
            assert st == 403 and body.get("error"), (i, st, body)
        assert not config.path.exists() and not ui_done.is_set()
        # reading is refused too under a foreign host name (the page holds the token)
        for path in ("/", "/api/snapshot", "/api/events", "/api/settings", "/static/app.js"):
            st, _, _ = await thread(
                lambda p=path: request(url, path=p, headers={"Host": f"evil.example:{port}"})
            )
            assert st == 403, path
        st, _, _ = await thread(lambda: request(url, "GET", "/api/stop"))
        assert st == 405

        # ---- allowed: JSON with the token, from the page's own origin
        st, body = await thread(post, "/api/tune", {"target": "not a station"})
        assert st == 400 and "station" in body["error"]
        st, body = await thread(post, "/api/tune", b"not json")
        assert st == 400
        # an ingest port in use: a clear error, the node runs on
        busy = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        config.set_value("ingest.port", busy.extra(anyio.abc.SocketAttribute.local_port))
        st, body = await thread(post, "/api/broadcast", {"name": "HTTP FM", "password": "pw"})
        assert st == 400 and "cannot start the icecast ingest" in body["error"], body
        await busy.aclose()
        config.set_value("ingest.port", 0)
        st, body = await thread(post, "/api/broadcast", {"name": " ", "password": "pw"})
        assert st == 400 and "name" in body["error"]
        st, body = await thread(
            post, "/api/broadcast", {"name": "HTTP FM", "mount": "live", "password": "pw"}
        )
        assert st == 200 and body["mount"] == "/live" and body["link"].startswith("streamerp2p://")
        assert any(h["tool"] == "ffmpeg" and "source:pw@" in h["how"] for h in body["help"])
        assert body["snapshot"]["broadcasts"][0]["name"] == "HTTP FM"
        sid = body["station_id"]
        st, body = await thread(post, "/api/settings", {"values": {"node.slots": "many"}})
        assert st == 400 and body["key"] == "node.slots"
        st, body = await thread(post, "/api/settings", {"values": {"node.slots": "6"}})
        assert st == 200 and body["changed"] == ["node.slots"]
        assert "slots = 6" in config.path.read_text()

        # ---- the widget: public, framable by anyone, also under another host name
        st, headers, html = await thread(
            lambda: request(url, path=f"/widget/{sid}", headers={"Host": "radio.example"})
        )
        assert st == 200 and b"HTTP FM" in html and b"streamerp2p://" in html
        assert "x-frame-options" not in headers
        assert "frame-ancestors *" in headers["content-security-policy"]
        st, headers, raw = await thread(lambda: request(url, path=f"/widget/{sid}.json"))
        assert st == 200 and headers["access-control-allow-origin"] == "*"
        assert json.loads(raw)["name"] == "HTTP FM" and json.loads(raw)["listeners"] == 0
        st, _, _ = await thread(lambda: request(url, path=f"/widget/{'a' * 26}"))
        assert st == 404
        st, _, _ = await thread(lambda: request(url, path="/widget/nonsense"))
        assert st == 404

        # ---- the event stream sends snapshots; the stream is refused under a foreign name
        conn, snap = await thread(first_event, url)
        assert snap["broadcasts"][0]["station_id"] == sid and snap["status"]
        # ---- Quit ends run() (and so the node) even with the stream still open
        st, _ = await thread(post, "/api/quit", {})
        assert st == 200
        with anyio.fail_after(5):
            await ui_done.wait()
        conn.close()
        assert "web: quit from the page" in lines
        tg.cancel_scope.cancel()
    assert {s: signal.getsignal(s) for s in handlers} == handlers


async def test_cancelled_with_a_stream_open_stops_within_seconds(tmp_path: Path) -> None:
    """The node cancels the front end (SIGTERM, --exit-after): served streams end, the port
    closes."""
    plugins = load_plugins()
    config = Config(path=tmp_path / "c.toml")
    config.set_value("web.port", 0)
    lines: list[str] = []
    started = anyio.Event()

    def out(line: str) -> None:
        lines.append(line)
        if line.startswith("web: "):
            started.set()

    app = App(opts(), tmp_path / "state", plugins, out=out, config=config)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await app.start(tg)
            tg.start_soon(plugins.ui("web").run, app)
            await started.wait()
            url = next(line for line in lines if line.startswith("web: "))[5:]
            conn, snap = await anyio.to_thread.run_sync(first_event, url)
            assert snap["tuned"] is None
            tg.cancel_scope.cancel()
    conn.close()
    with pytest.raises(OSError):
        request(url)
