"""End to end with Ogg Vorbis: ffmpeg -> Icecast ingest -> broadcaster -> listener -> player.

A player that connects to the listener's HTTP output in the middle of the broadcast must get a
valid Ogg stream (the headers first, then pages from a sync page, renumbered by the vorbis
plugin's rejoin rewriter) that ffmpeg and mpv decode, also across a source restart (a new
chain with its own headers).

The listener node has the headers because the overlay carries them from the broadcaster
(``Framer.headers()`` -> ``Node.set_headers`` -> ``StationOutput.set_headers()`` on every
node). Without them even a player connected before the first page would get nothing: a reader
starts at a sync page, header pages are not sync, so the rewriter never sees a BOS page and
drops every page rather than send an undecodable stream.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from streamerp2p.codec_conformance import decode_with_ffmpeg, decode_with_mpv
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool
from streamerp2p_vorbis.ogg import page_at, parse_page


def _e2e_helpers() -> object:
    """tests/test_e2e.py's player stand-in and node arguments (no package here to import)."""
    spec = importlib.util.spec_from_file_location(
        "_e2e_helpers", Path(__file__).with_name("test_e2e.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers: Any = _e2e_helpers()
COMMON: list[str] = _helpers.COMMON
Reader = _helpers.Reader
node_args = _helpers.node_args

pytestmark = pytest.mark.e2e


def ogg_pages(data: bytes) -> list[tuple[int, int, bool, bool]]:
    """(serial, seq, bos, eos) of every valid page; asserts there is nothing else."""
    out = []
    pos = 0
    while pos < len(data):
        length = page_at(data, pos)
        assert length > 0, f"not a valid Ogg page at byte {pos} of {len(data)}"
        page = parse_page(data[pos : pos + length])
        out.append((page.serial, page.seq, page.bos, page.eos))
        pos += length
    return out


def push_vorbis(
    ffmpeg: str, ingest: str, seconds: float, rate: int, title: str
) -> subprocess.Popen[bytes]:
    # pink noise at a high quality: ~30 KB/s, so the player's 64 KiB burst is ~2 s
    args = [ffmpeg, "-v", "error", "-nostdin", "-re", "-f", "lavfi"]
    args += ["-i", f"anoisesrc=color=pink:amplitude=0.3:sample_rate={rate}:duration={seconds}"]
    args += ["-ac", "2", "-c:a", "libvorbis", "-q:a", "8", "-metadata", f"title={title}"]
    args += ["-f", "ogg"]
    args += ["-content_type", "audio/ogg", f"icecast://source:s3cret@{ingest}/live"]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_late_joiner_of_an_ogg_station_gets_a_valid_stream(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    procs: list[NodeProcess] = []
    readers: list[Any] = []
    ff = None
    try:
        bc = NodeProcess(
            [
                *node_args(tmp_path, "bc", "broadcast", "--name", "E2E Ogg"),
                *("--advertise", "127.0.0.1", "--source", "127.0.0.1:0"),
                *("--password", "s3cret", *COMMON),
            ],
            name="broadcaster",
        )
        procs.append(bc)
        link = bc.value("link:")
        ingest = bc.value("ingest:").split()[2]
        listener = NodeProcess(node_args(tmp_path, "l0", "listen", link, *COMMON), name="l0")
        procs.append(listener)
        url = listener.value("stream:")
        listener.wait_line("tuned:")
        early = Reader(url)
        readers.append(early)

        ff = push_vorbis(ffmpeg, ingest, 6.0, 44100, "First")
        bc.wait_line("source connected:")
        # well past the first 64 KiB, so that the late joiner's burst starts in the middle
        arrived = early.wait_for(lambda r: len(r.body) > 100_000, timeout=20)
        assert arrived, "no audio arrives:\n" + "\n".join(p.output() for p in procs)
        late = Reader(url)  # joins in the middle of the first chain
        readers.append(late)
        assert ff.wait(30) == 0, ff.stderr.read().decode() if ff.stderr else ""
        # the source restarts: a new chain (new serial, other sample rate, other title)
        ff = push_vorbis(ffmpeg, ingest, 3.0, 22050, "Second")
        assert ff.wait(30) == 0, ff.stderr.read().decode() if ff.stderr else ""

        def second_chain_ended(r: Any) -> bool:
            try:
                pages = ogg_pages(bytes(r.body))
            except AssertionError:
                return False  # a page still incomplete
            serials = list(dict.fromkeys(s for s, _, _, _ in pages))
            return len(serials) >= 2 and any(e and s == serials[-1] for s, _, _, e in pages)

        for r in (early, late):
            assert r.wait_for(second_chain_ended, timeout=20), f"{len(r.body)} bytes"
        # the title in the new chain's Vorbis comments became the station's now playing,
        # signed by the broadcaster and relayed to the listener's directory
        api = url.split("/stream/")[0] + "/api/stations"
        deadline = time.monotonic() + 10
        titles: list[str] = []
        while time.monotonic() < deadline:
            with urllib.request.urlopen(api, timeout=5) as resp:
                titles = [st["title"] for st in json.loads(resp.read())["stations"]]
            if titles == ["Second"]:
                break
            time.sleep(0.2)  # (polling a status API: no event to wait on from here)
        assert titles == ["Second"], titles
        early_data, late_data = bytes(early.body), bytes(late.body)
        assert late_data != early_data and len(late_data) < len(early_data)
        pages = ogg_pages(late_data)
        assert pages[0][2], "the late joiner's stream does not start with a BOS page"
        for serial in {s for s, _, _, _ in pages}:
            seqs = [q for s, q, _, _ in pages if s == serial]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gap in {serial}"
        for name, data in (("early", early_data), ("late", late_data)):
            decoded = decode_with_ffmpeg(data, "ogg")
            assert decoded.returncode == 0, (name, decoded.errors)
            assert decoded.seconds > (7.0 if name == "early" else 3.5), (name, decoded)
        played = decode_with_mpv(late_data)
        assert played.returncode == 0 and played.seconds > 3.5, played
    finally:
        if ff is not None and ff.poll() is None:
            ff.kill()
            ff.wait()
        for r in readers:
            r.close()
        for p in procs:
            p.stop()
