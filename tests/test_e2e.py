"""End to end on loopback: ffmpeg -> Icecast ingest -> broadcaster -> relay tree -> HTTP output.

Real processes, real UDP sockets, real ffmpeg. Every listener's HTTP output must be a
contiguous run of the source file's bytes starting on a frame boundary and running to the end
of the file, also for descendants of a relay killed with SIGKILL and children of a relay stopped
with SIGTERM (polite leave), and ffmpeg must decode it without error.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamerp2p.procs import NodeProcess, read_status
from streamerp2p.testing import require_tool
from streamerp2p.tone import ToneSource

pytestmark = pytest.mark.e2e


def need_ffmpeg() -> str:
    return require_tool("ffmpeg")


def make_source(path: Path, seconds: float) -> list[int]:
    """A pre-encoded mp3 (no ID3, no Xing); returns the byte offset of every frame."""
    src = ToneSource()
    offsets: list[int] = []
    data = bytearray()
    for frame in src.frames(round(seconds * 44100 / 1152)):
        offsets.append(len(data))
        data += frame
    path.write_bytes(bytes(data))
    return offsets


class Reader:
    """A player stand-in: reads a node's HTTP output (no Icy-MetaData) into memory."""

    def __init__(self, url: str, request: bytes | None = None) -> None:
        u = urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=60)
        default = f"GET {u.path} HTTP/1.0\r\nHost: {u.netloc}\r\n\r\n".encode()
        self.sock.sendall(request or default)
        self.head = b""
        self.body = bytearray()
        self.cond = threading.Condition()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.cond:
                    if not self.head:
                        buf += data
                        if b"\r\n\r\n" in buf:
                            self.head, rest = buf.split(b"\r\n\r\n", 1)
                            self.body += rest
                    else:
                        self.body += data
                    self.cond.notify_all()
        except OSError:
            pass
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def wait_for(self, cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self.cond:
            while not cond(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.done:
                    return bool(cond(self))
                self.cond.wait(min(left, 0.5))
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def check_contiguous(out: bytes, src: bytes, frame_offsets: set[int], name: str) -> int:
    assert len(out) > 20000, f"{name}: only {len(out)} bytes"
    start = src.find(out[:2048])
    assert start >= 0, f"{name}: output does not come from the source"
    assert start in frame_offsets, f"{name}: output does not start on a frame boundary"
    assert src[start : start + len(out)] == out, f"{name}: output is not a contiguous run of source"
    return start


def decodes(ffmpeg: str, data: bytes, tmp: Path, name: str) -> None:
    f = tmp / f"{name}.mp3"
    f.write_bytes(data)
    r = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(f), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and not r.stderr.strip(), f"{name}: ffmpeg says {r.stderr[:500]}"


def node_args(tmp: Path, name: str, *extra: str) -> list[str]:
    return ["--state-dir", str(tmp / name), *extra]


COMMON = ["--port", "0", "--bind", "127.0.0.1", "--http", "127.0.0.1:0"]


def start_tree(tmp: Path, n_listeners: int, link: str) -> list[tuple[NodeProcess, Reader, Path]]:
    """Listeners with 2 slots each under a broadcaster with 1 slot: a tree >= 3 deep."""
    nodes = []
    for i in range(n_listeners):
        status = tmp / f"l{i}.json"
        p = NodeProcess(
            node_args(
                tmp, f"l{i}", "listen", link, *COMMON, "--slots", "2", "--status-file", str(status)
            ),
            name=f"listener{i}",
        )
        url = p.value("stream:")
        reader = Reader(url)
        p.wait_line("tuned:")
        nodes.append((p, reader, status))
    return nodes


def tree(nodes: list[tuple[NodeProcess, Reader, Path]]) -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    deadline = time.monotonic() + 5
    for p, _, status in nodes:
        while True:
            st = read_status(status)
            # the file is rewritten twice a second: wait for a snapshot taken after attaching
            if (
                st and st["sessions"] and st["sessions"][0]["parent"]
            ) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert st, f"{p.name}: no status"
        out[p.name] = {
            "address": st["address"],
            "pid": st["pid"],
            "mypid": p.pid,
            "file": str(status),
            **st["sessions"][0],
        }
    return out


def push(
    ffmpeg: str, src_file: Path, ingest: str, password: str, legacy: bool, realtime: bool
) -> subprocess.Popen[bytes]:
    args = [ffmpeg, "-v", "error", "-nostdin"]
    if realtime:
        args.append("-re")
    args += [
        "-i",
        str(src_file),
        "-c",
        "copy",
        "-f",
        "mp3",
        "-id3v2_version",
        "0",
        "-write_xing",
        "0",
        "-content_type",
        "audio/mpeg",
    ]
    if legacy:
        args += ["-legacy_icecast", "1"]
    args.append(f"icecast://source:{password}@{ingest}/live")
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("protocol", ["put", "source"])
def test_stream_reaches_every_listener_byte_for_byte(tmp_path: Path, protocol: str) -> None:
    ffmpeg = need_ffmpeg()
    seconds = 8.0 if protocol == "source" else 24.0
    src_file = tmp_path / "source.mp3"
    offsets = make_source(src_file, seconds)
    src = src_file.read_bytes()
    frame_offsets = set(offsets)
    procs: list[NodeProcess] = []
    readers: list[Reader] = []
    ff = None
    try:
        bc = NodeProcess(
            node_args(
                tmp_path,
                "bc",
                "broadcast",
                "--name",
                f"E2E {protocol}",
                "--slots",
                "1",
                "--advertise",
                "127.0.0.1",
                "--source",
                "127.0.0.1:0",
                "--password",
                "s3cret",
                *COMMON,
            ),
            name="broadcaster",
        )
        procs.append(bc)
        link = bc.value("link:")
        ingest = bc.value("ingest:").split()[2]
        nodes = start_tree(tmp_path, 5, link)
        procs += [p for p, _, _ in nodes]
        readers += [r for _, r, _ in nodes]
        t = tree(nodes)
        depths = sorted(v["depth"] for v in t.values())
        assert depths[-1] >= 3, f"tree not 3 deep: {json.dumps(t, indent=1)}\n" + "\n".join(
            f"--- {p.name}:\n{p.output()}" for p in procs
        )

        ff = push(ffmpeg, src_file, ingest, "s3cret", protocol == "source", realtime=True)
        bc.wait_line("source connected:")
        alive = list(nodes)
        if protocol == "put":
            # let audio flow, then crash a middle relay (one with children, not depth 1)
            time.sleep(5)
            t = tree(nodes)
            by_addr = {v["address"]: k for k, v in t.items()}
            middle = next(k for k, v in t.items() if v["depth"] == 2 and v["children"])
            victim = next(n for n in nodes if n[0].name == middle)
            orphans = [by_addr[c] for c in t[middle]["children"]]
            victim_addr = t[middle]["address"]
            victim[0].kill()
            alive.remove(victim)
            for name in orphans:
                p = next(n[0] for n in nodes if n[0].name == name)
                p.wait_line("tuned:", timeout=10, start=len(p.lines) - 1)
            # then stop another relay politely
            time.sleep(3)
            t = tree(alive)
            leaver_name = next(k for k, v in t.items() if v["children"])
            leaver = next(n for n in alive if n[0].name == leaver_name)
            kids = [c for c in t[leaver_name]["children"] if c != victim_addr]
            leaver[0].signal(signal.SIGTERM)
            leaver[0].wait_line("left", timeout=15)
            assert leaver[0].proc.wait(10) == 0
            out = leaver[0].output()
            for k in kids:  # every child re-homed (detached) before the leaver went
                assert f"child left: {k} (detach)" in out, out
            alive.remove(leaver)
        assert ff.wait(120) == 0, ff.stderr.read().decode() if ff.stderr else ""
        bc.wait_line("source disconnected:")
        # every surviving listener's output runs to the end of the source file
        for p, r, _ in alive:
            ok = r.wait_for(
                lambda rr: src.endswith(bytes(rr.body[-4096:])) and len(rr.body) > 4096, timeout=15
            )
            assert ok, f"{p.name}: output did not reach the end ({len(r.body)} bytes)"
        for p, r, _ in alive:
            body = bytes(r.body)
            start = check_contiguous(body, src, frame_offsets, p.name)
            assert start + len(body) == len(src)
            assert b"icy-name:" in r.head.lower() or b"icy-name" in r.head.lower()
            decodes(ffmpeg, body, tmp_path, p.name)
            st = read_status(tmp_path / f"l{int(p.name[8:])}.json")
            assert st is not None and st["stats"]["skipped_chunks"] == 0
        if protocol == "put":
            # output of the killed relay and of the leaver, up to their end, is intact too
            for p, r, _ in nodes:
                if (p, r, _) not in alive:
                    check_contiguous(bytes(r.body), src, frame_offsets, p.name)
    finally:
        if ff is not None and ff.poll() is None:
            ff.kill()
            ff.wait()
        for r in readers:
            r.close()
        for p in procs:
            p.stop()


def test_wrong_source_password_is_refused(tmp_path: Path) -> None:
    ffmpeg = need_ffmpeg()
    src_file = tmp_path / "source.mp3"
    make_source(src_file, 2.0)
    bc = NodeProcess(
        node_args(
            tmp_path,
            "bc",
            "broadcast",
            "--name",
            "Pw",
            "--advertise",
            "127.0.0.1",
            "--source",
            "127.0.0.1:0",
            "--password",
            "right",
            *COMMON,
        ),
        name="broadcaster",
    )
    try:
        bc.value("link:")
        ingest = bc.value("ingest:").split()[2]
        ff = push(ffmpeg, src_file, ingest, "wrong", False, realtime=False)
        assert ff.wait(30) != 0
        assert "source connected" not in bc.output()
        assert bc.proc.poll() is None  # the node keeps running
    finally:
        bc.stop()
