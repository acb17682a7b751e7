"""End to end on loopback: ezstream (SHOUTcast v1) -> `streamer broadcast --ingest shoutcast`
-> a listening node -> its HTTP output, byte for byte, with the title ezstream sets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool
from streamerp2p.tone import ToneSource

pytestmark = pytest.mark.e2e

COMMON = ["--port", "0", "--bind", "127.0.0.1", "--http", "127.0.0.1:0"]
PASSWORD = "s3cret"
TITLE = "Test Artist - Test Title"
METADATA_SCRIPT = """#!/bin/sh
case "$1" in
  artist) echo "Test Artist";;
  title) echo "Test Title";;
  "") echo "Test Artist - Test Title";;
  *) echo;;
esac
"""


class Reader:
    """A player stand-in: reads a node's HTTP output into memory in a thread."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=60)
        self.sock.sendall(f"GET {u.path} HTTP/1.0\r\nHost: {u.netloc}\r\n\r\n".encode())
        self.data = bytearray()
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                with self.cond:
                    self.data += chunk
                    self.cond.notify_all()
        except OSError:
            pass
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    @property
    def body(self) -> bytes:
        with self.cond:
            return bytes(self.data).partition(b"\r\n\r\n")[2]

    def wait_for_end(self, src: bytes, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                body = bytes(self.data).partition(b"\r\n\r\n")[2]
                if len(body) > 4096 and src.endswith(body[-4096:]):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self.done:
                    return False
                self.cond.wait(min(left, 0.5))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def ezstream_config(tmp: Path, mp3: Path, port: int, password: str) -> Path:
    script = tmp / "meta.sh"
    script.write_text(METADATA_SCRIPT)
    script.chmod(0o755)
    config = tmp / "ezstream.xml"
    config.write_text(
        f"""<ezstream>
  <servers><server>
    <protocol>ICY</protocol><hostname>127.0.0.1</hostname><port>{port}</port>
    <password>{password}</password><tls>None</tls><reconnect_attempts>1</reconnect_attempts>
  </server></servers>
  <streams><stream>
    <mountpoint>/</mountpoint><format>MP3</format><public>1</public>
    <stream_name>EZ ICY</stream_name><stream_genre>Ambient</stream_genre>
    <stream_bitrate>128</stream_bitrate>
  </stream></streams>
  <intakes><intake><type>file</type><filename>{mp3}</filename>
    <stream_once>1</stream_once></intake></intakes>
  <metadata><program>{script}</program></metadata>
</ezstream>
"""
    )
    config.chmod(0o600)
    return config


def start_broadcaster(tmp: Path) -> tuple[NodeProcess, str, int]:
    bc = NodeProcess(
        [
            "--state-dir",
            str(tmp / "bc"),
            "broadcast",
            "--name",
            "E2E SHOUTcast",
            "--advertise",
            "127.0.0.1",
            "--ingest",
            "shoutcast",
            "--source",
            "127.0.0.1:0",
            "--password",
            PASSWORD,
            *COMMON,
        ],
        name="broadcaster",
    )
    link = bc.value("link:")
    line = bc.value("ingest:")  # "shoutcast on 127.0.0.1:PORT (SHOUTcast v1: ...)"
    assert line.startswith("shoutcast on "), line
    port = int(line.split()[2].rsplit(":", 1)[1])
    return bc, link, port


def listener_title(url: str) -> str:
    u = urlsplit(url)
    with urllib.request.urlopen(f"http://{u.netloc}/", timeout=10) as r:
        stations = json.load(r)
    return str(stations[0]["title"]) if stations else ""


def test_ezstream_icy_through_a_node(tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    src = b"".join(ToneSource().frames(round(6.0 * 44100 / 1152)))
    mp3 = tmp_path / "source.mp3"
    mp3.write_bytes(src)
    procs: list[NodeProcess] = []
    reader: Reader | None = None
    ez: subprocess.Popen[bytes] | None = None
    try:
        bc, link, port = start_broadcaster(tmp_path)
        procs.append(bc)
        ls = NodeProcess(
            ["--state-dir", str(tmp_path / "l0"), "listen", link, *COMMON], name="listener"
        )
        procs.append(ls)
        url = ls.value("stream:")
        reader = Reader(url)
        ls.wait_line("tuned:")

        config = ezstream_config(tmp_path, mp3, port, PASSWORD)
        ez = subprocess.Popen(
            [ezstream, "-v", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        bc.wait_line("source connected:")
        out, _ = ez.communicate(timeout=60)
        assert ez.returncode == 0, out.decode(errors="replace")
        bc.wait_line("source disconnected:")
        assert reader.wait_for_end(src, 15), f"listener got {len(reader.body)} bytes"
        body = reader.body
        assert len(body) > 20000
        start = src.find(body[:2048])
        assert start >= 0 and src[start:] == body, "listener output is not the source's tail"

        deadline = time.monotonic() + 10
        while listener_title(url) != TITLE and time.monotonic() < deadline:
            time.sleep(0.1)  # the title travels in the station record; polled over HTTP
        assert listener_title(url) == TITLE
    finally:
        if ez is not None and ez.poll() is None:
            ez.kill()
            ez.wait()
        if reader is not None:
            reader.close()
        for p in procs:
            p.stop()


def test_ezstream_icy_wrong_password_is_refused(tmp_path: Path) -> None:
    ezstream = require_tool("ezstream")
    mp3 = tmp_path / "source.mp3"
    mp3.write_bytes(b"".join(ToneSource().frames(40)))
    bc, _link, port = start_broadcaster(tmp_path)
    try:
        config = ezstream_config(tmp_path, mp3, port, "wrong")
        r = subprocess.run(
            [ezstream, "-v", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        assert r.returncode != 0
        assert "source connected" not in bc.output()
        assert bc.proc.poll() is None  # the node keeps running
    finally:
        bc.stop()
