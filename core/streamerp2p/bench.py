"""``streamer bench relay``: relay cost per child and tune-in time, on loopback, as JSON.

Set-up: a broadcaster process of generated 128 kbit/s mp3 with one slot; a relay process (the
measured one) that is its only child; K child nodes (in this process, zero slots) that the
broadcaster refers to the relay. The relay reports its own CPU time in its status file, so the
figure is the relay process's whole cost (receive, verify, send to K children, its HTTP output).
Tune-in: a fresh node tunes to the station N times; the time from ``tune`` to the first audio
byte read by an HTTP client from the node's local output (the client connects first, as a
player started with the node would).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from .app import App, NodeOptions
from .link import Link
from .overlay.node import NodeConfig
from .plugins import load_plugins
from .procs import NodeProcess, read_status
from .simrun import _HONEST_COUNTS


def _loopback_net(i: int) -> str:
    """A loopback address in a /24 of its own for the ``i``-th listener on Linux (the whole of
    127/8 is loopback there; a node counts peers by network, e.g. reports against a relay
    need several), else 127.0.0.1."""
    if not sys.platform.startswith("linux"):
        return "127.0.0.1"
    return f"127.{1 + i // 250}.{1 + i % 250}.1"


def _listen_args(
    tmp: Path, name: str, link: object, slots: int, status: Path, bind: str = "127.0.0.1"
) -> list[str]:
    """``streamer listen`` on loopback with its own state dir, any ports and a status file."""
    return [
        "--state-dir",
        str(tmp / name),
        "listen",
        str(link),
        "--port",
        "0",
        "--bind",
        bind,
        "--http",
        "127.0.0.1:0",
        "--slots",
        str(slots),
        "--status-file",
        str(status),
    ]


def tone_broadcaster(
    tmp: Path, name: str, *, slots: int, status: Path | None = None, chunk_log: Path | None = None
) -> NodeProcess:
    """A broadcasting node process of generated audio on loopback (state in ``tmp/src``)."""
    args = [
        "--state-dir",
        str(tmp / "src"),
        "broadcast",
        "--tone",
        "--name",
        name,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--advertise",
        "127.0.0.1",
        "--slots",
        str(slots),
        "--http",
        "127.0.0.1:0",
    ]
    if status is not None:
        args += ["--status-file", str(status)]
    if chunk_log is not None:
        args += ["--chunk-log", str(chunk_log)]
    return NodeProcess(args, name="broadcaster")


def _wait_status(path: Path, cond: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = read_status(path)
        if st is not None and cond(st):
            return st
        time.sleep(0.1)
    raise TimeoutError(f"status condition not met: {read_status(path)}")


def _wait_playing(tmp: Path, names: list[str], timeout: float) -> None:
    """Until every listener ``names`` has played audio (its status file says so), or
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            st = read_status(tmp / f"{name}.json")
            if st is not None and any(s["first_audio_s"] is not None for s in st["sessions"]):
                waiting.discard(name)
        if waiting:
            time.sleep(0.1)


async def _first_byte(app: App, station_id: bytes, link: Link) -> float:
    """Seconds from tune() to the first audio byte at the node's HTTP output."""
    t0 = time.perf_counter()
    app.tune(link)
    assert app.http is not None
    stream = await anyio.connect_tcp("127.0.0.1", app.http.port)
    async with stream:
        path = app.stream_url(station_id).split(str(app.http.port), 1)[1]
        await stream.send(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += await stream.receive()
        body = buf.split(b"\r\n\r\n", 1)[1]
        while not body:
            body = await stream.receive()
    return time.perf_counter() - t0


def run_relay_bench(*, children: int, seconds: float, tunes: int, as_json: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="streamer-bench-"))
    procs: list[NodeProcess] = []

    def say(msg: str) -> None:
        if not as_json:
            print(msg, flush=True)

    try:
        src = tone_broadcaster(tmp, "bench", slots=1)
        procs.append(src)
        link = Link.parse(src.value("link:"))
        status = tmp / "relay.json"
        relay = NodeProcess(_listen_args(tmp, "relay", link, children + 1, status), name="relay")
        procs.append(relay)
        relay.wait_line("tuned:")
        base_s = min(5.0, seconds)
        st0 = _wait_status(status, lambda s: True, 10)
        time.sleep(base_s)
        st1 = read_status(status) or st0
        base_cpu_per_s = (st1["cpu"] - st0["cpu"]) / max(1e-9, st1["time"] - st0["time"])
        say(f"relay alone: {base_cpu_per_s * 1000:.2f} ms CPU per second")
        result = anyio.run(_children_and_tunes, link, status, children, seconds, tunes, tmp, say)
        result["relay_cpu_ms_per_s_no_children"] = round(base_cpu_per_s * 1000, 3)
        marginal = (result["relay_cpu_ms_per_s"] - base_cpu_per_s * 1000) / children
        result["relay_cpu_ms_per_child_second_marginal"] = round(marginal, 4)
        print(json.dumps(result, indent=None if as_json else 2), flush=True)
        return result
    finally:
        for p in procs:
            p.stop()


async def _children_and_tunes(
    link: Link, status: Path, k: int, seconds: float, tunes: int, tmp: Path, say: Any
) -> dict[str, Any]:
    plugins = load_plugins()
    apps: list[App] = []
    result: dict[str, Any] = {"children": k, "seconds": seconds, "bitrate_kbps": 128}
    async with anyio.create_task_group() as tg:
        for i in range(k):
            opts = NodeOptions(host="127.0.0.1", port=0, http=False, overlay=NodeConfig(slots=0))
            app = App(opts, tmp / f"child{i}", plugins)
            await app.start(tg)
            app.tune(link)
            apps.append(app)
        deadline = anyio.current_time() + 30
        while anyio.current_time() < deadline:
            st = read_status(status)
            if st and st["sessions"] and len(st["sessions"][0]["children"]) >= k:
                break
            await anyio.sleep(0.1)
        else:
            raise TimeoutError("children did not all attach to the relay")
        await anyio.sleep(1.0)
        st0 = read_status(status)
        await anyio.sleep(seconds)
        st1 = read_status(status)
        assert st0 is not None and st1 is not None
        dt = st1["time"] - st0["time"]
        cpu = st1["cpu"] - st0["cpu"]
        dg = st1["stats"]["datagrams_out"] - st0["stats"]["datagrams_out"]
        result["relay_cpu_ms_per_s"] = round(cpu * 1000 / dt, 3)
        result["relay_cpu_ms_per_child_second"] = round(cpu * 1000 / (dt * k), 4)
        result["relay_datagrams_out_per_s"] = round(dg / dt, 1)
        result["relay_bytes_out_per_s"] = round(
            (st1["stats"]["bytes_out"] - st0["stats"]["bytes_out"]) / dt, 1
        )
        say(
            f"relay with {k} children: "
            f"{result['relay_cpu_ms_per_child_second']} ms per child-second"
        )
        for app in apps:
            tg.start_soon(app.leave, 2.0)
        await anyio.sleep(0.5)
        # tune-in times
        times: list[float] = []
        for i in range(tunes):
            opts = NodeOptions(
                host="127.0.0.1",
                port=0,
                http_host="127.0.0.1",
                http_port=0,
                overlay=NodeConfig(slots=0),
            )
            app = App(opts, tmp / f"tuner{i}", plugins)
            async with anyio.create_task_group() as tg2:
                await app.start(tg2)
                sid = link.station_id
                with anyio.fail_after(10):
                    times.append(await _first_byte(app, sid, link))
                await app.leave(1.0)
                tg2.cancel_scope.cancel()
            if app.runtime.sock is not None:
                app.runtime.sock.close()
        times.sort()
        result["tunes"] = len(times)
        result["tune_in_p50_s"] = round(statistics.median(times), 4)
        result["tune_in_p95_s"] = round(times[max(0, round(0.95 * len(times)) - 1)], 4)
        result["tune_in_max_s"] = round(times[-1], 4)
        tg.cancel_scope.cancel()
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_swarm_bench(**kw: Any) -> dict[str, Any]:
    """See :func:`_run_swarm_bench` (SIGTERM ends it as Ctrl-C does, killing the nodes)."""
    with _exit_on_sigterm():
        return _run_swarm_bench(**kw)


def _run_swarm_bench(
    *,
    peers: int,
    seconds: float,
    kill_share: float,
    as_json: bool,
    seed: int = 1,
    malicious: float = 0.0,
    malicious_kind: str = "mix",
    crash_at: float | None = None,
    crash_share: float = 0.3,
) -> dict[str, Any]:
    """Real node processes on loopback: a broadcaster of generated audio and ``peers`` listeners
    (random slots 0-3); during the run a share of them crash (SIGKILL) or leave (SIGTERM) and
    as many new ones join. Figures come from the nodes' own status files.

    ``malicious``: that share of the listeners (first ones and replacements alike) runs an
    adversary (``streamer listen --adversary KIND``, see streamerp2p.adversary; ``mix`` takes
    the kinds in turn). ``crash_at``: that many seconds into the churn phase ``crash_share``
    of the live listeners (honest and malicious) are killed at once, without replacement.
    Every node logs the chunks it plays (seq, length, SHA-256); ``bad_bytes_delivered`` is
    the audio bytes honest listeners played that differ from the broadcaster's chunk of that
    seq (must be 0)."""
    import random as _random
    import signal as _signal

    from .adversary import KINDS

    if malicious_kind != "mix" and malicious_kind not in KINDS:
        raise ValueError(f"malicious kind must be mix or one of {', '.join(KINDS)}")
    rng = _random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="streamer-swarm-"))
    procs: dict[str, NodeProcess] = {}
    spawned: dict[str, float] = {}
    kinds: dict[str, str] = {}  # malicious listeners: their kind
    gone: set[str] = set()
    ended: dict[str, float] = {}  # listeners gone: when (wall clock)
    crashed: list[str] = []

    def say(msg: str) -> None:
        if not as_json:
            print(msg, flush=True)

    def spawn(name: str, link: Link) -> None:
        slots = rng.choice([0, 1, 2, 3])
        args = _listen_args(tmp, name, link, slots, tmp / f"{name}.json", _loopback_net(len(procs)))
        args += ["--chunk-log", str(tmp / f"{name}.chunks")]
        live = [k for k in procs if k not in gone]
        bad = sum(1 for k in live if k in kinds)
        if malicious > 0 and bad < malicious * (len(live) + 1) - 1e-9:
            n_bad = len(kinds)
            kind = KINDS[n_bad % len(KINDS)] if malicious_kind == "mix" else malicious_kind
            kinds[name] = kind
            args += ["--adversary", kind]
        procs[name] = NodeProcess(args, name=name)
        spawned[name] = time.monotonic()

    wall0 = time.monotonic()
    try:
        src = tone_broadcaster(
            tmp, "swarm", slots=2, status=tmp / "src.json", chunk_log=tmp / "src.chunks"
        )
        link = Link.parse(src.value("link:"))
        for i in range(peers):
            spawn(f"p{i}", link)
            time.sleep(0.05)
        _wait_status(tmp / "src.json", lambda s: True, 15)
        # churn begins once every listener plays (a loaded machine starts ten Python
        # processes slowly: a fixed wait measured a CI run's start-up, not its churn)
        _wait_playing(tmp, list(procs), timeout=30.0)
        time.sleep(min(2.0, seconds / 8))
        say(f"{peers} listeners started ({len(kinds)} malicious); churn begins")
        t0 = time.monotonic()
        t_end = t0 + seconds
        changes = max(1, int(peers * kill_share)) if kill_share > 0 else 0
        interval = seconds / (changes + 1)
        next_change = t0 + interval if changes else _INF
        crash_due = t0 + crash_at if crash_at is not None else _INF
        n = peers
        st_src0 = read_status(tmp / "src.json")
        t_measure = time.monotonic()
        while True:
            now = time.monotonic()
            wake = min(next_change, crash_due, t_end)
            if now < wake:
                time.sleep(wake - now)
                continue
            if now >= t_end:
                break
            live = [k for k in procs if k not in gone]
            if now >= crash_due:
                crash_due = _INF
                victims = rng.sample(live, round(crash_share * len(live)))
                for v in victims:
                    procs[v].kill()
                    gone.add(v)
                    ended[v] = time.time()
                crashed.extend(victims)
                say(f"crash: {len(victims)} of {len(live)} listeners killed at once")
                continue
            next_change += interval
            victim = rng.choice(live)
            if rng.random() < 0.5:
                procs[victim].kill()
            else:
                procs[victim].signal(_signal.SIGTERM)
            gone.add(victim)
            ended[victim] = time.time()
            spawn(f"p{n}", link)
            n += 1
        st_src1 = read_status(tmp / "src.json")
        time.sleep(1.0)
        figures = _swarm_figures(
            tmp, procs, spawned, gone, st_src0, st_src1, time.monotonic() - t_measure
        )
        if malicious > 0 or crash_at is not None:
            honest = {k: p for k, p in procs.items() if k not in kinds}
            hf = _swarm_figures(tmp, honest, spawned, gone, None, None, 1.0)
            figures.update(
                {
                    "honest_continuity": hf["continuity"],
                    "honest_never_started": hf["never_started"],
                    "malicious": malicious,
                    "malicious_kind": malicious_kind,
                    "malicious_peers": len(kinds),
                    "crashed": len(crashed),
                    "honest_nodes": _honest_stats(tmp, honest),
                }
            )
        bad, checked = _bad_bytes(tmp, [k for k in procs if k not in kinds])
        # continuity by the clock, as the simulator's: a stalled player skips nothing, and
        # "1 - skipped / (played + skipped)" (continuity_played) does not see it
        t_read = time.time() - ON_TIME_SLACK
        ends = {k: ended.get(k, t_read) for k in procs}
        figures["continuity_played"] = figures["continuity"]
        ok, due = _on_time(tmp, list(procs), ends)
        figures["continuity"] = round(ok / due, 5) if due else None
        if "honest_continuity" in figures:
            figures["honest_continuity_played"] = figures["honest_continuity"]
            ok, due = _on_time(tmp, [k for k in procs if k not in kinds], ends)
            figures["honest_continuity"] = round(ok / due, 5) if due else None
        figures["bad_bytes_delivered"] = bad
        figures["chunks_checked"] = checked  # (played by honest listeners, against the source)
        figures.update(
            {
                "peers": peers,
                "peers_total": n,
                "seconds": seconds,
                "crashed_or_left": len(gone),
                "wall_s": round(time.monotonic() - wall0, 1),
            }
        )
        print(json.dumps(figures, indent=None if as_json else 2), flush=True)
        return figures
    finally:
        for p in procs.values():
            p.kill()
        if "src" in locals():
            src.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the bench as Ctrl-C does: its ``finally`` kills the node processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


_INF = float("inf")


def _honest_stats(tmp: Path, procs: dict[str, NodeProcess]) -> dict[str, int]:
    """Summed over honest listeners' last status: what they caught and did about it."""
    total = dict.fromkeys(_HONEST_COUNTS, 0)
    for name in procs:
        st = read_status(tmp / f"{name}.json")
        if st is not None:
            for k in _HONEST_COUNTS:
                total[k] += int(st["stats"].get(k, 0))
    return total


def _read_chunks(path: Path) -> list[tuple[int, int, str, int, float]]:
    """A node's chunk log: (seq, length, digest, broadcaster's ms clock, wall time handed
    to the player)."""
    out = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5:  # (a process killed mid-line leaves a short last line)
            out.append((int(parts[0]), int(parts[1]), parts[2], int(parts[3]), float(parts[4])))
    return out


# a chunk handed to the player this much after its deadline still counts as on time: the
# wall clock of one process's event loop against another's, on a loaded machine
ON_TIME_SLACK = 0.5


def _on_time(tmp: Path, names: list[str], ends: dict[str, float]) -> tuple[int, int]:
    """Chunks the listeners ``names`` had at their playout deadline, and the chunks due,
    from the chunk logs: a listener's clock starts with its first chunk (deadline = that
    wall time + the chunk's stream time since); due is every chunk the broadcaster made from
    that one on whose deadline came before the listener ended (killed, or the bench read
    the logs). A chunk skipped, late, or never come (a stalled player) is not on time."""
    src = {seq: ts for seq, _, _, ts, _ in _read_chunks(tmp / "src.chunks")}
    on_time = due = 0
    for name in names:
        chunks = _read_chunks(tmp / f"{name}.chunks")
        if not chunks:
            continue
        seq0, _, _, ts0, w0 = chunks[0]
        end = ends.get(name, time.time())
        deadline = {
            seq: w0 + ((ts - ts0) & 0xFFFFFFFF) / 1000
            for seq, ts in src.items()
            if seq >= seq0 and ((ts - ts0) & 0xFFFFFFFF) < 0x80000000
        }
        due_here = {seq for seq, d in deadline.items() if d <= end}
        due += len(due_here)
        seen: set[int] = set()
        for seq, _, _, _, w in chunks:
            if seq in due_here and seq not in seen and w <= deadline[seq] + ON_TIME_SLACK:
                seen.add(seq)
        on_time += len(seen)
    return on_time, due


def _bad_bytes(tmp: Path, names: list[str], wait: float = 5.0) -> tuple[int, int]:
    """Audio bytes the listeners ``names`` played that the broadcaster never sent as that
    chunk (another payload, or a seq it did not produce), and the chunks checked."""
    played = [_read_chunks(tmp / f"{name}.chunks") for name in names]
    newest = max((c[-1][0] for c in played if c), default=-1)
    # the broadcaster's log is read after the listeners' (it is written as its chunks are
    # sealed, a moment after they go out: a listener may log a chunk first), and once it
    # reaches the newest chunk a listener played (or after a few seconds)
    deadline = time.monotonic() + wait
    while True:
        src = _read_chunks(tmp / "src.chunks")
        if (src and src[-1][0] >= newest) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    truth = {seq: digest for seq, _, digest, _, _ in src}
    bad = checked = 0
    for chunks in played:
        for seq, length, digest, _, _ in chunks:
            checked += 1
            if truth.get(seq) != digest:
                bad += length
    return bad, checked


def _swarm_figures(
    tmp: Path,
    procs: dict[str, NodeProcess],
    spawned: dict[str, float],
    gone: set[str],
    st0: dict[str, Any] | None,
    st1: dict[str, Any] | None,
    dt: float,
) -> dict[str, Any]:
    played = skipped = data_out = bytes_out = repairs = 0
    startups: list[float] = []
    depths: list[int] = []
    never = 0
    for name in procs:
        st = read_status(tmp / f"{name}.json")
        if st is None or not st["sessions"]:
            never += name not in gone
            continue
        sess = st["sessions"][0]
        if sess["first_audio_s"] is None:
            never += name not in gone
        else:
            startups.append(sess["first_audio_s"])
        s = st["stats"]
        skipped += s["skipped_chunks"]
        played += sess["chunks_played"]
        data_out += s["data_bytes_out"]
        bytes_out += s["bytes_out"]
        repairs += s["repairs_requested"]
        if name not in gone and sess["parent"]:
            depths.append(sess["depth"])
    startups.sort()
    src_ratio = None
    if st0 and st1:
        src_ratio = round(
            (st1["stats"]["bytes_out"] - st0["stats"]["bytes_out"]) * 8 / (128_000 * dt), 3
        )
    return {
        "continuity": round(1 - skipped / max(1, played + skipped), 5),
        "chunks_played": played,
        "skipped_chunks": skipped,
        "never_started": never,
        "startup_p50_s": round(statistics.median(startups), 3) if startups else None,
        "startup_p95_s": round(startups[max(0, round(0.95 * len(startups)) - 1)], 3)
        if startups
        else None,
        "depth_mean": round(statistics.fmean(depths), 2) if depths else None,
        "depth_max": max(depths) if depths else None,
        "source_upload_ratio": src_ratio,
        "control_overhead": round((bytes_out - data_out) / max(1, data_out), 4),
        "repairs": repairs,
    }
