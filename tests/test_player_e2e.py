"""The internal player and recordings with real node processes on loopback.

- A recording under a relay that is killed and then one that leaves politely is the source's
  audio sample for sample, with no gap (white noise: any gap or repeat breaks the alignment).
- A listener killed with SIGKILL leaves WAV, FLAC and Ogg recordings that soundfile and ffmpeg
  read, and a dump of the stream's bytes.
- ``--player internal`` plays on a (null) sound device; without PortAudio or without a device
  it says so in one line and the node goes on serving and recording.
- In one process: the player of a real listener App decodes what a broadcaster sends.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pytest
import soundfile as sf
from streamerp2p.app import App, NodeOptions
from streamerp2p.overlay.node import NodeConfig
from streamerp2p.overlay.records import StationKey
from streamerp2p.player import NullSink, decode_output
from streamerp2p.plugins import load_plugins
from streamerp2p.procs import NodeProcess, read_status
from streamerp2p.testing import (
    align,
    decode_pcm,
    noise_mp3,
    require_portaudio,
    require_tool,
    window_correlations,
)
from streamerp2p.tone import NOTES, ToneSource, tone_loop
from streamerp2p.types import StationMeta

pytestmark = pytest.mark.e2e

RATE = 44100
COMMON = ["--port", "0", "--bind", "127.0.0.1", "--http", "127.0.0.1:0"]


def node_args(tmp: Path, name: str, *extra: str, cushion: float | None = None) -> list[str]:
    """Arguments of a node with its own state dir (and a shorter playout delay if given)."""
    args = ["--state-dir", str(tmp / name)]
    if cushion is not None:
        config = tmp / f"{name}.toml"
        config.write_text(f"[node]\ncushion_seconds = {cushion}\n")
        args += ["--config", str(config)]
    return [*args, *extra]


def push(ffmpeg: str, src_file: Path, ingest: str, password: str) -> subprocess.Popen[bytes]:
    """ffmpeg sends a file in real time to the node's Icecast ingest."""
    args = [ffmpeg, "-v", "error", "-nostdin", "-re", "-i", str(src_file), "-c", "copy"]
    args += ["-f", "mp3", "-id3v2_version", "0", "-write_xing", "0"]
    args += ["-content_type", "audio/mpeg", f"icecast://source:{password}@{ingest}/live"]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def http_read(url: str, n: int) -> bytes:
    """The first ``n`` bytes of a node's stream for players."""
    with urllib.request.urlopen(url, timeout=15) as resp:  # loopback: our own node
        return resp.read(n)  # type: ignore[no-any-return]


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition on files another process writes (no event to wait on there)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def mp3_frame_offsets(data: bytes) -> set[int]:
    from streamerp2p_mp3.framer import Mp3Framer  # type: ignore[import-not-found]

    offsets, pos = set(), 0
    for frame in Mp3Framer().push(data):
        offsets.add(pos)
        pos += len(frame.data)
    return offsets


def assert_same_audio(ref: np.ndarray, rec: np.ndarray, name: str, to_end: bool) -> int:
    """``rec`` is a contiguous run of ``ref`` (from a frame start); returns its offset."""
    assert len(rec) > 2 * RATE, f"{name}: only {len(rec) / RATE:.1f} s"
    off = align(ref, rec)
    assert off >= 0 and off % 1152 == 0, f"{name}: starts at sample {off}"
    w = window_correlations(ref, rec, off)
    bad = [i for i, c in enumerate(w[1:], 1) if c < 0.99]
    assert not bad, f"{name}: differs from the source at {[i / 4 for i in bad[:5]]} s: {w}"
    if off + len(rec) <= len(ref):  # every whole window was compared
        assert len(w) == len(rec) // 11025, f"{name}: {len(w)} windows compared"
    if to_end:
        assert abs(off + len(rec) - len(ref)) < 3 * 1152, f"{name}: does not reach the end"
    return off


def test_recording_has_no_gap_across_parent_switches(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    src = noise_mp3(12.0, seed=5)
    src_file = tmp_path / "noise.mp3"
    src_file.write_bytes(src)
    ref = decode_pcm(src)
    procs: list[NodeProcess] = []
    ff = None
    try:
        bc = NodeProcess(
            node_args(
                tmp_path,
                "bc",
                "broadcast",
                "--name",
                "Noise",
                "--slots",
                "1",
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
        link = bc.value("link:")
        ingest = bc.value("ingest:").split()[2]
        relays = []
        for name in ("relay_a", "relay_b"):  # a chain: bc -> a -> b -> listener
            r = NodeProcess(
                node_args(tmp_path, name, "listen", link, *COMMON, "--slots", "1"), name=name
            )
            procs.append(r)
            r.wait_line("tuned:")
            relays.append(r)
        relay_a, relay_b = relays
        status = tmp_path / "listener.json"
        rec_wav, rec_flac, dump = (tmp_path / f"rec.{e}" for e in ("wav", "flac", "mp3"))
        lst = NodeProcess(
            node_args(
                tmp_path,
                "listener",
                "listen",
                link,
                *COMMON,
                "--slots",
                "0",
                "--status-file",
                str(status),
                "--record",
                str(rec_wav),
                "--record",
                str(rec_flac),
                "--dump",
                str(dump),
            ),
            name="listener",
        )
        procs.append(lst)
        assert "depth=3" in lst.wait_line("tuned:")
        ff = push(ffmpeg, src_file, ingest, "pw")
        bc.wait_line("source connected:")

        # a few seconds in, the listener's parent is killed
        wait_until(lambda: size(dump) > 2 * 16000, 20, "no audio at the listener")
        mark = len(lst.lines)
        relay_b.kill()
        assert "depth=2" in lst.wait_line("tuned:", timeout=10, start=mark)
        # later its new parent leaves politely
        at = size(dump)
        wait_until(lambda: size(dump) > at + 24000, 20, "no audio after the re-home")
        mark = len(lst.lines)
        relay_a.signal(signal.SIGTERM)
        relay_a.wait_line("left", timeout=15)
        assert "depth=1" in lst.wait_line("tuned:", timeout=10, start=mark)

        assert ff.wait(60) == 0, ff.stderr.read().decode() if ff.stderr else ""
        bc.wait_line("source disconnected:")
        tail = src[-4096:]
        wait_until(lambda: dump.read_bytes().endswith(tail), 15, "the dump did not reach the end")
        st = read_status(status)
        assert st is not None and st["stats"]["skipped_chunks"] == 0, st
        lst.signal(signal.SIGTERM)
        assert lst.proc.wait(15) == 0, lst.output()
        out = lst.output()
        assert f"recorded: {rec_wav}" in out and f"recorded: {rec_flac}" in out, out

        # the dump: the source's bytes from a frame start to the end
        got = dump.read_bytes()
        start = src.find(got[:2048])
        assert start in mp3_frame_offsets(src) and src[start:] == got
        # the recordings: the source's audio, every quarter second of it, to the end
        for path in (rec_wav, rec_flac):
            pcm, rate = sf.read(path, dtype="float32")
            assert rate == RATE and pcm.shape[1] == 2
            assert_same_audio(ref, pcm, path.name, to_end=True)
    finally:
        if ff is not None and ff.poll() is None:
            ff.kill()
            ff.wait()
        for p in procs:
            p.stop()


def test_killed_listener_leaves_valid_recordings(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    own = tmp_path / "own.flac"
    procs: list[NodeProcess] = []
    try:
        bc = NodeProcess(
            node_args(
                tmp_path, "bc", "broadcast", "--name", "Tone", "--tone", "--advertise", "127.0.0.1"
            )
            + COMMON
            + ["--record", str(own)],
            name="broadcaster",
        )
        procs.append(bc)
        link = bc.value("link:")
        files = {e: tmp_path / f"kill.{e}" for e in ("wav", "flac", "ogg", "mp3")}
        args = node_args(tmp_path, "l", "listen", link, *COMMON, cushion=1.0)
        for e in ("wav", "flac", "ogg"):
            args += ["--record", str(files[e])]
        args += ["--dump", str(files["mp3"])]
        lst = NodeProcess(args, name="listener")
        procs.append(lst)
        lst.wait_line("recording:")
        # (6 s: on a loaded machine the FLAC's length, patched twice a second, lags the WAV)
        wait_until(lambda: size(files["wav"]) > 44 + 6 * RATE * 4, 30, "no 6 s recorded")
        lst.kill()
        assert lst.proc.returncode == -signal.SIGKILL
        ref = decode_pcm(ToneSource().read(15.0))
        for ext, path in files.items():
            r = subprocess.run(
                [ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert r.returncode == 0 and not r.stderr.strip(), f"{path.name}: {r.stderr[:300]}"
            pcm = decode_pcm(path.read_bytes()) if ext == "mp3" else sf.read(path)[0]
            least = {"wav": 3.0, "flac": 2.0, "ogg": 1.0, "mp3": 3.0}[ext]
            assert len(pcm) >= least * RATE, f"{path.name}: {len(pcm) / RATE:.1f} s"
            if ext != "ogg":  # (lossy a second time: alignment is checked on the others)
                assert_same_audio(ref, pcm.astype(np.float32), path.name, to_end=False)
        # the broadcaster recorded its own station from its first frame until it stopped
        bc.signal(signal.SIGTERM)
        assert bc.proc.wait(15) == 0
        assert f"recorded: {own}" in bc.output()
        pcm, _ = sf.read(own, dtype="float32")
        assert assert_same_audio(ref, pcm, own.name, to_end=False) == 0
    finally:
        for p in procs:
            p.stop()


def stub_sounddevice(directory: Path, body: str) -> dict[str, str]:
    """An environment whose ``import sounddevice`` runs ``body`` instead of the real module."""
    directory.mkdir()
    (directory / "sounddevice.py").write_text(body)
    return {"PYTHONPATH": str(directory)}


def test_internal_player_and_no_sound_device(tmp_path: Path) -> None:
    null_device: dict[str, str] | None = None
    if sys.platform.startswith("linux"):
        require_portaudio()
        conf = tmp_path / "asound.conf"
        conf.write_text("pcm.!default { type null }\n")  # an ALSA sound device that discards
        null_device = {"ALSA_CONFIG_PATH": str(conf)}
    no_portaudio = stub_sounddevice(
        tmp_path / "no_portaudio", 'raise OSError("PortAudio library not found")\n'
    )
    no_device = stub_sounddevice(
        tmp_path / "no_device",
        "class PortAudioError(Exception):\n    pass\n\n"
        "def query_devices(device=None, kind=None):\n"
        '    raise PortAudioError("Error querying device -1")\n',
    )
    procs: list[NodeProcess] = []
    try:
        bc = NodeProcess(
            node_args(
                tmp_path, "bc", "broadcast", "--name", "Tone", "--tone", "--advertise", "127.0.0.1"
            )
            + COMMON,
            name="broadcaster",
        )
        procs.append(bc)
        link = bc.value("link:")

        def listener(name: str, env: dict[str, str], *extra: str) -> NodeProcess:
            p = NodeProcess(
                node_args(
                    tmp_path,
                    name,
                    "listen",
                    link,
                    *COMMON,
                    "--player",
                    "internal",
                    *extra,
                    cushion=1.0,
                ),
                name=name,
                env=env,
            )
            procs.append(p)
            return p

        quiet = [
            listener(n, env, "--record", str(tmp_path / f"{n}.wav"))
            for n, env in (("no_portaudio", no_portaudio), ("no_device", no_device))
        ]
        player = listener("null", null_device, "--volume", "30") if null_device else None
        assert "PortAudio library not found" in quiet[0].wait_line("no sound device:")
        assert "no output device" in quiet[1].wait_line("no sound device:")
        for p in quiet:  # the node goes on: it serves players and records
            assert len(http_read(p.value("stream:"), 20000)) == 20000, p.output()
            wav = tmp_path / f"{p.name}.wav"
            wait_until(lambda w=wav: size(w) > 44 + RATE * 4, 15, f"{p.name}: not recording")
            assert p.proc.poll() is None
        if player is not None:
            line = player.wait_line("player: internal")
            assert "mp3 on default (ALSA), volume 30 %" in line, line
            # (6 s recorded by the other listener: time enough for 2 s played on a loaded machine)
            wait_until(lambda: size(tmp_path / "no_device.wav") > 44 + 6 * RATE * 4, 30, "slow")
            player.signal(signal.SIGTERM)
            assert player.proc.wait(15) == 0
            played = player.wait_line("player: played")
            seconds = float(played.split()[2])
            assert seconds > 2 and "(0 decode errors" in played, played
        for p in quiet:
            p.signal(signal.SIGTERM)
            assert p.proc.wait(15) == 0, p.output()
    finally:
        for p in procs:
            p.stop()


@pytest.mark.anyio
async def test_player_decodes_what_a_broadcaster_sends(tmp_path: Path) -> None:
    plugins = load_plugins()

    def opts(slots: int) -> NodeOptions:
        return NodeOptions(
            host="127.0.0.1",
            port=0,
            advertise="127.0.0.1",
            http=False,
            overlay=NodeConfig(slots=slots, cushion_seconds=1.0),
        )

    src, leaf = App(opts(1), tmp_path / "src", plugins), App(opts(0), tmp_path / "leaf", plugins)
    key = StationKey.generate()
    full, quiet = NullSink(keep=True), NullSink(keep=True)
    async with anyio.create_task_group() as tg:
        for a in (src, leaf):
            await a.start(tg)
        link = src.start_station(key, StationMeta(name="Tone FM"))
        tg.start_soon(tone_loop, src, key.station_id)
        out = leaf.tune(link)
        tg.start_soon(decode_output, out, plugins, full)
        tg.start_soon(lambda: decode_output(out, plugins, quiet, gain=0.25))
        with anyio.fail_after(20):
            for sink in (full, quiet):
                assert await anyio.to_thread.run_sync(sink.wait_for, 2 * RATE, 20)
        await leaf.leave(3)
        tg.cancel_scope.cancel()
    a, b = full.pcm(), quiet.pcm()
    n = min(len(a), len(b))
    # both players started at the same frame: the same audio, a quarter as loud
    np.testing.assert_allclose(b[:n], a[:n] * 0.25, atol=1e-6)
    # and it is the tune: each second's main frequency is one of its notes
    second = a[RATE // 4 : RATE // 4 + RATE // 2, 0]
    spectrum = np.abs(np.fft.rfft(second * np.hanning(len(second))))
    peak = np.argmax(spectrum) * RATE / len(second)
    assert min(abs(peak - f) for f in NOTES) < 4, peak


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
