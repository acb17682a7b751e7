"""Helpers of the web front end's tests: nodes with ``--ui web`` as processes, plain HTTP."""

from __future__ import annotations

import http.client
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamerp2p.procs import NodeProcess

COMMON = ["--port", "0", "--bind", "127.0.0.1", "--advertise", "127.0.0.1", "--http", "127.0.0.1:0"]


def web_node(tmp: Path, name: str, config: str, *extra: str) -> tuple[NodeProcess, str, Path]:
    """``streamer node --ui web`` with its own config and state; returns the process, the page
    URL (read from its stdout) and the config path."""
    cfg = tmp / f"{name}.toml"
    cfg.write_text("[web]\nport = 0\n" + config, encoding="utf-8")
    proc = NodeProcess(node_args(tmp, name, *extra), name=name)
    try:
        url = proc.value("web:", timeout=20)
    except BaseException:
        proc.kill()
        raise
    return proc, url, cfg


def node_args(tmp: Path, name: str, *extra: str) -> list[str]:
    """``streamer node --ui web`` on loopback with config ``tmp/NAME.toml``, state ``tmp/NAME``."""
    cfg = tmp / f"{name}.toml"
    args = ["--config", str(cfg), "--state-dir", str(tmp / name), "node", "--ui", "web"]
    return [*args, *COMMON, *extra]


def request(
    url: str,
    method: str = "GET",
    path: str = "/",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with exactly these headers (http.client adds Host unless given)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        hdrs = dict(headers or {})
        skip_host = "Host" in hdrs
        conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def token_of(page_html: bytes) -> str:
    marker = b'name="streamer-token" content="'
    start = page_html.index(marker) + len(marker)
    return page_html[start : page_html.index(b'"', start)].decode()


def snapshot(url: str) -> dict[str, Any]:
    status, _, body = request(url, path="/api/snapshot")
    assert status == 200
    return json.loads(body)  # type: ignore[no-any-return]


class Shots:
    """Screenshots into ``tmp_path/screenshots`` (and ``$STREAMERP2P_SCREENSHOTS`` if set)."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "screenshots"
        self.dir.mkdir(exist_ok=True)
        extra = os.environ.get("STREAMERP2P_SCREENSHOTS")
        self.extra = Path(extra) if extra else None
        self.n = 0

    def take(self, page: Any, name: str, **kw: Any) -> Path:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        page.screenshot(path=str(path), **kw)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)
        return path
