"""Real players on a listener node's output, with titles set at the ingest travelling through
the P2P tree: mpv prints ``icy-title``, ffmpeg logs ``StreamTitle``, a raw HTTP/1.1 client
with ``Range: bytes=0-`` that connected before any audio gets every title once and intact audio.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool
from test_e2e import COMMON, Reader, make_source, node_args, push

pytestmark = pytest.mark.e2e


class IcyReader(Reader):
    """An HTTP/1.1 player that asks for ICY metadata and a byte range, as many players do."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        request = (
            f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUser-Agent: VLC/3.0.18 LibVLC/3.0.18"
            "\r\nRange: bytes=0-\r\nIcy-MetaData: 1\r\nConnection: close\r\n\r\n"
        ).encode()
        super().__init__(url, request)

    def split(self) -> tuple[bytes, list[str]]:
        """(audio, titles in order) from the body, by icy-metaint."""
        m = re.search(rb"icy-metaint:\s*(\d+)", self.head, re.IGNORECASE)
        assert m, self.head
        metaint = int(m.group(1))
        body = bytes(self.body)
        audio = bytearray()
        titles: list[str] = []
        pos = 0
        while pos < len(body):
            audio += body[pos : pos + metaint]
            pos += metaint
            if pos >= len(body):
                break
            n = body[pos] * 16
            block = body[pos + 1 : pos + 1 + n]
            if len(block) < n:
                break
            pos += 1 + n
            if n:
                t = re.search(rb"StreamTitle='(.*?)';", block, re.DOTALL)
                assert t, block
                titles.append(t.group(1).decode())
        return bytes(audio), titles


def set_title(ingest: str, title: str) -> None:
    url = f"http://{ingest}/admin/metadata?mode=updinfo&mount=/live&song={quote(title)}"
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"source:pw").decode())
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and b"<return>1</return>" in r.read()


def test_players_on_a_listener_node_get_titles_through_the_tree(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    mpv = require_tool("mpv")
    src_file = tmp_path / "src.mp3"
    make_source(src_file, 16.0)
    src = src_file.read_bytes()
    procs: list[NodeProcess] = []
    readers: list[Reader] = []
    ff = None
    try:
        bc = NodeProcess(
            node_args(tmp_path, "bc", "broadcast", "--name", "Title FM", "--advertise",
                      "127.0.0.1", "--source", "127.0.0.1:0", "--password", "pw", "--slots", "1",
                      *COMMON),
            name="broadcaster",
        )  # fmt: skip
        procs.append(bc)
        link = bc.value("link:")
        ingest = bc.value("ingest:").split()[2]
        relay = NodeProcess(node_args(tmp_path, "r", "listen", link, *COMMON), name="relay")
        procs.append(relay)
        relay.wait_line("tuned:")
        lst = NodeProcess(
            node_args(tmp_path, "l", "listen", link, "--seed", relay.value("node:"), *COMMON),
            name="listener",
        )
        procs.append(lst)
        url = lst.value("stream:")
        lst.wait_line("tuned:")
        # a player that connects before any audio flows gets its answer at once, then audio
        early = IcyReader(url)
        readers.append(early)
        assert early.wait_for(lambda r: bool(r.head), timeout=10)
        assert early.head.startswith(b"HTTP/1.0 200 OK"), early.head
        assert b"icy-name: Title FM" in early.head and b"icy-metaint:" in early.head
        ff = push(ffmpeg, src_file, ingest, "pw", legacy=False, realtime=True)
        bc.wait_line("source connected:")
        set_title(ingest, "First Artist - Song One")
        assert early.wait_for(lambda r: len(r.body) > 60_000, timeout=20)
        # a second player, mpv, on the same station at the same time: it shows the title
        log = tmp_path / "mpv.log"
        with log.open("w") as f:
            r = subprocess.run(
                [mpv, "--no-config", "--ao=null", "--vo=null", "--length=2",
                 "--msg-level=all=warn,display-tags=v", url],
                stdout=f, stderr=subprocess.STDOUT, timeout=60,
            )  # fmt: skip
        text = log.read_text(errors="replace")
        assert r.returncode == 0, text
        assert "icy-title: First Artist - Song One" in text, text
        set_title(ingest, "Second Artist - Song Two")
        # and a third, ffmpeg: it logs StreamTitle and copies the audio byte for byte
        copy = tmp_path / "copy.mp3"
        r2 = subprocess.run(
            [ffmpeg, "-nostdin", "-hide_banner", "-i", url, "-t", "3", "-c", "copy", "-f", "mp3",
             "-id3v2_version", "0", "-write_xing", "0", "-y", str(copy)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r2.returncode == 0, r2.stderr
        assert "StreamTitle     : Second Artist - Song Two" in r2.stderr, r2.stderr
        copied = copy.read_bytes()
        assert len(copied) > 20_000 and copied in src
        assert ff.wait(60) == 0
        done = lambda r: len(r.body) > 8192 and src.endswith(r.split()[0][-4096:])  # noqa: E731
        assert early.wait_for(done, timeout=20)
        audio, titles = early.split()
        # every title once, in order (a block only on change), and intact audio
        assert titles == ["First Artist - Song One", "Second Artist - Song Two"], titles
        assert len(audio) > 100_000 and audio in src
    finally:
        if ff is not None and ff.poll() is None:
            ff.kill()
            ff.wait()
        for rd in readers:
            rd.close()
        for p in procs:
            p.stop()


def test_http_10_and_11_requests_and_probes(tmp_path: Path) -> None:
    """HTTP/1.0 without Host, HTTP/1.1 with Range, HEAD, and a probe that connects and closes."""
    bc = NodeProcess(
        node_args(tmp_path, "bc", "broadcast", "--name", "Probe FM", "--tone", *COMMON),
        name="broadcaster",
    )
    try:
        url = bc.value("stream:")
        u = urlsplit(url)
        addr = (u.hostname, u.port)
        with socket.create_connection(addr, timeout=5):
            pass  # a probe: connects, sends nothing, goes
        for req in (
            f"GET {u.path} HTTP/1.0\r\n\r\n",
            f"GET {u.path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-\r\n\r\n",
            f"get {u.path} HTTP/1.1\nhost: x\nicy-metadata: 1\n\n",
        ):
            with socket.create_connection(addr, timeout=5) as s:
                s.sendall(req.encode())
                data = b""
                while b"\r\n\r\n" not in data or len(data) < 8000:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if req.startswith("get"):
                # methods are case-sensitive in HTTP: a lower-case "get" is refused cleanly
                assert head.split(b"\r\n")[0].split()[1] in (b"400", b"405"), head
                continue
            assert head.startswith(b"HTTP/1.0 200 OK"), head
            assert b"icy-name: Probe FM" in head and body[:2] in (b"\xff\xfb", b"\xff\xfa")
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(f"HEAD {u.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = s.recv(65536)
            assert head.startswith(b"HTTP/1.0 200 OK") and head.endswith(b"\r\n\r\n")
        assert bc.proc.poll() is None
    finally:
        bc.stop()
