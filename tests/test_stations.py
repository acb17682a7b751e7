"""One node broadcasting several stations (one per mount), off air and back without re-tuning.

Real processes on loopback, real ffmpeg as the broadcast tool.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool
from streamerp2p.tone import ToneSource
from test_e2e import COMMON, Reader, node_args

pytestmark = pytest.mark.e2e


def tone_file(path: Path, seconds: float, kbps: int) -> bytes:
    src = ToneSource(kbps)
    data = b"".join(src.frames(round(seconds * 44100 / 1152)))
    path.write_bytes(data)
    return data


def ends_with(data: bytes):  # type: ignore[no-untyped-def]
    return lambda r: len(r.body) > 2048 and data.endswith(bytes(r.body[-2048:]))


def push(ffmpeg: str, src: Path, ingest: str, mount: str) -> subprocess.Popen[bytes]:
    args = [ffmpeg, "-v", "error", "-nostdin", "-re", "-i", str(src), "-c", "copy", "-f", "mp3"]
    args += ["-id3v2_version", "0", "-write_xing", "0", "-content_type", "audio/mpeg"]
    args.append(f"icecast://source:pw@{ingest}{mount}")
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_one_node_broadcasts_one_station_per_mount_and_resumes_after_off_air(
    tmp_path: Path,
) -> None:
    ffmpeg = require_tool("ffmpeg")
    main_src = tone_file(tmp_path / "main.mp3", 14.0, 128)
    jazz1 = tone_file(tmp_path / "jazz1.mp3", 3.0, 96)
    jazz2 = tone_file(tmp_path / "jazz2.mp3", 4.0, 64)  # another encoding: bytes tell them apart
    procs: list[NodeProcess] = []
    readers: list[Reader] = []
    pushes: list[subprocess.Popen[bytes]] = []
    try:
        bc = NodeProcess(
            node_args(
                tmp_path,
                "bc",
                "broadcast",
                "--name",
                "Main FM",
                "--station",
                "/jazz=Jazz FM",
                "--advertise",
                "127.0.0.1",
                "--source",
                "127.0.0.1:0",
                "--password",
                "pw",
                *COMMON,
            ),
            name="broadcaster",
        )
        procs.append(bc)
        bc.wait_line("ingest:")
        links = [line.split()[1] for line in bc.lines if line.startswith("link:")]
        assert len(links) == 2 and links[0] != links[1]
        assert "(mount /jazz)" in bc.output()
        listeners = []
        for i, link in enumerate(links):
            p = NodeProcess(node_args(tmp_path, f"l{i}", "listen", link, *COMMON), name=f"l{i}")
            procs.append(p)
            readers.append(Reader(p.value("stream:")))
            p.wait_line("tuned:")
            listeners.append(p)
        ingest = bc.value("ingest:").split()[2]
        # /live is no station's own mount: it feeds the catch-all station (Main FM)
        pushes.append(push(ffmpeg, tmp_path / "main.mp3", ingest, "/live"))
        bc.wait_line("source connected:")
        pushes.append(push(ffmpeg, tmp_path / "jazz1.mp3", ingest, "/jazz"))
        # a second source for a station that has one is refused; the first goes on
        extra = push(ffmpeg, tmp_path / "jazz1.mp3", ingest, "/other")
        pushes.append(extra)
        bc.wait_line("source refused:", timeout=20)
        main_reader, jazz_reader = readers
        main_l, jazz_l = listeners
        # the jazz source ends: listeners hear that the station went off air
        assert pushes[1].wait(30) == 0
        bc.wait_line("off air: Jazz FM", timeout=10)
        jazz_l.wait_line("station off air: Jazz FM", timeout=10)
        assert jazz_reader.wait_for(ends_with(jazz1), timeout=15)
        heard = len(jazz_reader.body)
        # a new source on the same mount: the same station (same key) resumes, and the
        # listener, never tuned again, hears the new audio on the same connection
        pushes.append(push(ffmpeg, tmp_path / "jazz2.mp3", ingest, "/jazz"))
        jazz_l.wait_line("station back on air: Jazz FM", timeout=15)
        assert pushes[-1].wait(30) == 0
        assert jazz_reader.wait_for(ends_with(jazz2), timeout=15)
        body = bytes(jazz_reader.body)
        # all of the first source's audio, then all of the second's, on one connection
        assert body[:heard] in jazz1 and jazz1.endswith(body[:heard])
        assert body[heard:] == jazz2[len(jazz2) - len(body) + heard :]
        assert len(body) - heard > len(jazz2) // 2
        assert jazz_l.output().count("tuned:") >= 1 and "station off air" in jazz_l.output()
        # the main station was never disturbed by any of it: one contiguous run of its file
        assert pushes[0].wait(30) == 0
        assert main_reader.wait_for(ends_with(main_src), timeout=15)
        out = bytes(main_reader.body)
        assert len(out) > 100_000 and out in main_src
        assert not any(b in out for b in (jazz1[4096:6144], jazz2[4096:6144]))
        # (off air until its source came, on air through the jazz changes, off at its end)
        assert main_l.output().count("station back on air: Main FM") == 1
    finally:
        for f in pushes:
            if f.poll() is None:
                f.kill()
                f.wait()
        for r in readers:
            r.close()
        for p in procs:
            p.stop()


def test_a_source_sending_garbage_goes_off_air_and_what_came_before_is_kept(
    tmp_path: Path,
) -> None:
    import base64
    import contextlib
    import random
    import socket

    good = tone_file(tmp_path / "good.mp3", 4.0, 128)
    bc = NodeProcess(
        node_args(tmp_path, "bc", "broadcast", "--name", "Junk FM", "--advertise", "127.0.0.1",
                  "--source", "127.0.0.1:0", "--password", "pw", *COMMON),
        name="broadcaster",
    )  # fmt: skip
    procs = [bc]
    reader = None
    try:
        link = bc.value("link:")
        host, port = bc.value("ingest:").split()[2].rsplit(":", 1)
        lst = NodeProcess(node_args(tmp_path, "l", "listen", link, *COMMON), name="listener")
        procs.append(lst)
        reader = Reader(lst.value("stream:"))
        lst.wait_line("tuned:")
        auth = base64.b64encode(b"source:pw").decode()
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(
                f"PUT /live HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                "Content-Type: audio/mpeg\r\nice-name: Junk FM\r\n\r\n".encode()
            )
            assert s.recv(1024).startswith(b"HTTP/1.0 200 OK")
            s.sendall(good)
            bc.wait_line("source connected:")
            junk = random.Random(7).randbytes(400_000).replace(b"\xff", b"\x00")
            with contextlib.suppress(OSError):  # the node may close on us mid-junk
                s.sendall(junk)
            bc.wait_line("source dropped:", timeout=20)
        bc.wait_line("off air: Junk FM", timeout=10)
        lst.wait_line("station off air: Junk FM", timeout=10)
        # everything before the junk reached the player, and nothing of the junk
        assert reader.wait_for(ends_with(good), timeout=15)
        body = bytes(reader.body)
        assert body in good and len(body) > len(good) // 2
        assert bc.proc.poll() is None and lst.proc.poll() is None
    finally:
        if reader is not None:
            reader.close()
        for p in procs:
            p.stop()
