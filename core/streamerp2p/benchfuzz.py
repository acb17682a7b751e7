"""``streamer bench fuzz``: long fuzz campaigns of every parser that reads bytes from outside.

Targets (see docs/benchmarks.md, "Fuzzing"):

* ``wire``: :func:`overlay.wire.decode` / :func:`~overlay.wire.decode_data` and the station
  record decoder; only :class:`~overlay.wire.WireError` may escape, and a message that decodes
  must re-encode to bytes that decode to the same message;
* ``node``: :meth:`Node.receive_datagram` of a broadcaster and of a listener in a running
  simulated station (real OFFERs, seals, records and chunks as seeds, sent from peers the node
  knows and from strangers): nothing raises, and a datagram the decoder refuses is counted
  (``bad_datagrams`` or ``unknown_messages``);
* ``icecast``, ``shoutcast``: the ingest plugins' connection handlers (request line, headers,
  password line, x-audiocast and SHOUTcast logins, ``/admin/metadata`` and ``admin.cgi``) on
  an in-memory byte stream; nothing escapes the handler (``stats.errors`` stays 0) and nothing
  hangs;
* ``http-output``: the local player output's request handling (h11, paths, playlists, HEAD,
  ``Icy-MetaData``) on an in-memory stream;
* ``icy``: the ICY metadata block builder and interleaver: blocks parse back to the title,
  metadata is removed to give the audio back;
* ``codec:NAME``: the framer of every codec plugin found through the plugin system: arbitrary
  bytes in arbitrary read sizes; no exception, every byte in a frame or counted as skipped, the
  frames pieces of the input in order, the same frames for any split.

The engine mutates seed inputs (valid messages, real encoded audio, recorded requests of real
broadcast tools) with stacked byte-level mutations and splices, and keeps any input that gives
an outcome (message type, counter, error kind, response) not seen before as a new seed: a cheap
stand-in for coverage guidance. ``--engine atheris`` runs the same targets under atheris
(coverage-guided libFuzzer) when it is installed. Crashes are saved (input and traceback) to
``--crashes DIR``; the figures are one JSON object per target.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .overlay import wire
from .overlay.records import StationKey, StationRecord
from .types import CodecSpec, Frame, StationMeta

# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------

#: A target's check: runs one input, returns an outcome label (new labels make new seeds),
#: raises on a crash (any exception, including a failed invariant).
Check = Callable[[bytes], str]


class Hang(Exception):
    """A handler did not finish within the time limit of one input."""


@dataclass
class Target:
    name: str
    description: str
    seeds: list[bytes]
    check: Check
    tokens: tuple[bytes, ...] = ()  # dictionary: protocol words worth inserting
    max_len: int = wire.MAX_DATAGRAM + 100
    reset: Callable[[], None] | None = None  # fresh state (called every ``reset_every`` inputs)
    reset_every: int = 0
    keep_head: int = 0  # half of the mutants keep the seed's first bytes (the header)

    def check_mutants(self, rng: random.Random, seed: bytes, rounds: int = 10) -> None:
        """Check ``rounds`` mutants of ``seed`` (raises on a crash): the tests' short run."""
        for _ in range(rounds):
            self.check(mutate(rng, seed, tokens=self.tokens, corpus=self.seeds))


def _split(data: bytes) -> Iterator[bytes]:
    """The stream a network target reads: the first byte says how it arrives (one read, or
    reads of a fixed size), the rest is what the peer sent. Reproducible from the input."""
    if not data:
        return
    mode, body = data[0], data[1:]
    if mode >= 0xC0 or not body:
        if body:
            yield body
        return
    size = 1 + (mode % 64) * (1 + mode // 64) ** 2  # 1..64, 2..253, 3..568
    for i in range(0, len(body), size):
        yield body[i : i + size]


# ---- wire -----------------------------------------------------------------------------------


def check_wire(data: bytes) -> str:
    """Decode; the only allowed error is WireError; what decodes re-encodes to the same."""
    if len(data) >= 4 and data[3] == wire.DATA:
        try:
            tag, seq, ts, flags, payload = wire.decode_data(data)
        except wire.WireError as exc:
            return f"data:{exc}"
        again = wire.encode_data(tag, seq, ts, flags, payload)
        if again != data:
            raise AssertionError("DATA does not re-encode to the same bytes")
        return "data"
    try:
        msg = wire.decode(data)
    except wire.WireError as exc:
        return f"error:{str(exc)[:40]}"
    name = type(msg).__name__
    encoded = msg.encode()
    if len(encoded) > wire.MAX_DATAGRAM + 64:
        raise AssertionError(f"{name} re-encodes to {len(encoded)} bytes")
    try:
        again = wire.decode(encoded)
    except wire.WireError as exc:
        raise AssertionError(f"{name} re-encoded does not decode: {exc}") from exc
    if again != msg:
        raise AssertionError(f"{name} re-encoded decodes to another message: {msg} / {again}")
    if isinstance(msg, wire.StationMsg):
        try:
            rec = StationRecord.decode(msg.record)
        except wire.WireError as exc:
            return f"record-error:{str(exc)[:40]}"
        rec.verify()
        return "record"
    return name


def _wire_seeds() -> list[bytes]:
    key = StationKey.from_seed(bytes(range(32)))
    sid = key.station_id
    tag = sid[:4]
    nid = bytes(range(8))
    a4, a6 = ("192.0.2.7", 8466), ("2001:db8::7", 9000)
    anc = wire.ancestor_bits(nid) | wire.ancestor_bits(b"x" * 8)
    dense = (1 << 512) - 1
    host = wire.HostEntry(nid, tag, a4, 3, 12, wire.REACH_OPEN, a6)
    rec = StationRecord(
        key.public, 1234, True, StationMeta(name="Fuzz FM", codec="mp3"), "Title", b"\0" * 16
    ).signed(key)
    msgs: list[Any] = [
        wire.HelloReq(1, nid, tag, wire.HELLO_WANT_STATIONS, 2, wire.REACH_OPEN, a4, a6),
        wire.Hello(2, nid, tag, a4, [host, host], 1, None, a4),
        wire.JoinReq(sid, 3, nid, wire.JOIN_ATTACH, 2, wire.FRESH, 20),
        wire.Offer(sid, 4, nid, 1, 1, 3, 2, 99, anc, [a4, a6], 1, 128, 1, b"tokentok"),
        wire.Offer(sid, 4, nid, 1, 1, 3, 2, 99, dense, [], 1, 128, 1, b"tokentok"),
        wire.Attach(sid, nid, 7, 2, wire.ATTACH_PREEMPT, b"tokentok"),
        wire.AttachOk(sid, nid, 2, 100, 90, anc, 5),
        wire.AttachNo(sid, wire.NO_FULL, [a4]),
        wire.Seal(tag, 10, [b"h" * 16] * 3, b"s" * 64),
        wire.Nack(tag, [(1, 3), (10, 0)]),
        wire.PStat(tag, 2, 100, anc, a6, 1),
        wire.CStat(tag, nid, 1, 2, 100, 0),
        wire.Leave(tag, 500, [a4, a6]),
        wire.Detach(tag, nid),
        wire.Report(tag, nid, nid[::-1]),
        wire.StationMsg(rec.encode()),
        wire.StationReq(sid),
        wire.CodecHdrReq(tag, b"h" * 16, 0),
        wire.CodecHdr(tag, b"h" * 16, 2000, 1024, b"c" * 100),
        wire.ReachReq(5),
        wire.ReachFwd(6, a6),
        wire.ReachProbe(7),
        wire.ProxyReq(nid, a4),
        wire.ProxyOk(1),
        wire.Via(a4, wire.Punch(nid).encode()),
        wire.Fwd(a6, wire.ReachProbe(1).encode()),
        wire.Punch(nid),
        wire.BwTrain(1, 0, 24, b"x" * 50),
        wire.BwReport(1, 20, 20000, 5000),
        wire.Challenge(b"12345678"),
        wire.Response(b"12345678"),
    ]
    seeds = [m.encode() for m in msgs]
    seeds.append(wire.encode_data(tag, 42, 1000, wire.DATA_FRAME_START, b"\xff\xfb" + b"a" * 400))
    return seeds


def wire_target() -> Target:
    return Target(
        "wire",
        "overlay wire decoder (every message type, DATA, station records): only WireError, "
        "decoded messages re-encode to themselves",
        _wire_seeds(),
        check_wire,
        tokens=(wire.MAGIC + bytes([wire.VERSION]), b"\x04", b"\x06", b"\xff", b"\x80\x40"),
        keep_head=4,
    )


# ---- links -----------------------------------------------------------------------------------


def check_link(data: bytes) -> str:
    """``streamerp2p://`` links (they come from web pages through ``streamer open``): only
    ValueError, and a parsed link prints to a link that parses to the same."""
    from .link import Link

    text = data.decode("utf-8", errors="replace")
    try:
        link = Link.parse(text)
    except ValueError as exc:
        return "error:" + str(exc).split("'")[0][:12]  # (messages quote the input)
    again = Link.parse(str(link))
    if again != link:
        raise AssertionError(f"{link} prints to a link that parses to {again}")
    return f"ok:{bool(link.name)}:{len(link.seeds)}"


def link_target() -> Target:
    from .link import Link

    sid = StationKey.from_seed(bytes(range(32))).station_id
    links = [
        Link(sid, "Fuzz FM \u00e9 & co", (("192.0.2.1", 8466), ("2001:db8::1", 9000))),
        Link(sid),
        Link(sid, "", (("radio.example.org", 1),)),
    ]
    seeds = [str(x).encode() for x in links] + [b"  " + str(links[0]).encode()[12:]]
    return Target(
        "link",
        "streamerp2p:// links and bare station ids (what `streamer open` gets from a browser): "
        "only ValueError, a parsed link prints to itself",
        seeds,
        check_link,
        tokens=(b"streamerp2p://", b"?", b"&seed=", b"&name=", b"[", b"]", b":", b"%", b"%5D"),
        max_len=600,
    )


# ---- node -----------------------------------------------------------------------------------


class NodeHarness:
    """A broadcaster and listeners in a simulated station, with every datagram recorded; the
    fuzz inputs then go straight into two of its nodes' ``receive_datagram``."""

    STRANGER = ("203.0.113.9", 4000)

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.recorded: list[tuple[bytes, tuple[str, int]]] = []
        self.reset()

    def reset(self) -> None:
        from .overlay.node import Node, NodeConfig
        from .sim import Link, Simulator

        sim = Simulator(self.seed)
        recorded: list[tuple[bytes, tuple[str, int]]] = []

        def record(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> bool:
            if len(recorded) < 5000:
                recorded.append((data, src))
            return False

        sim.drop = record
        sim.keep_events = False
        key = StationKey.from_seed(bytes(range(32)))
        sid = key.station_id
        addrs = [(f"10.0.0.{i + 1}", 8466) for i in range(4)]
        cfg = {"bandwidth_test": False}
        nodes = []
        for i, a in enumerate(addrs):
            node = Node(NodeConfig(slots=2, **cfg), rng=random.Random(self.seed * 10 + i))  # type: ignore[arg-type]
            sim.add(node, a, Link(delay=0.01))
            nodes.append(node)
        meta = StationMeta(name="Fuzz FM", bitrate=128, codec="mp3", content_type="audio/mpeg")
        sim.call(addrs[0], lambda n, t: n.start_broadcast(key, meta, t))
        for a in addrs[1:]:
            sim.call(a, lambda n, t: n.tune(sid, [addrs[0]], t))
        sent = 0
        dt = 1152 / 44100
        while sim.now < 3.0:
            t = sim.now + 0.05
            due = int(t / dt) - sent
            if due > 0:
                frames = [
                    Frame(struct.pack("!I", sent + k) * 104 + b"\0\0", True) for k in range(due)
                ]
                sent += due
                sim.call(addrs[0], lambda n, tt, f=frames: n.broadcast_frames(sid, f, tt))
            sim.run_until(t)
        self.sim = sim
        self.nodes = [nodes[0], nodes[1]]  # the broadcaster and a listener
        self.addrs = addrs
        self.now = sim.now
        if not self.recorded:
            self.recorded = recorded

    def seeds(self) -> list[bytes]:
        seen: set[bytes] = set()
        out: list[bytes] = []
        by_type: dict[int, int] = {}
        for data, _src in self.recorded:
            kind = data[3]
            if data in seen or by_type.get(kind, 0) >= 12:
                continue
            by_type[kind] = by_type.get(kind, 0) + 1
            seen.add(data)
            out.append(data)
        return out + _wire_seeds()

    def check(self, data: bytes) -> str:
        if not data:
            return "empty"
        # the last byte picks the node and the sender (a peer it knows, or a stranger)
        pick = data[-1]
        node = self.nodes[pick & 1]
        src = self.STRANGER if pick & 6 == 6 else self.addrs[(pick >> 1) % len(self.addrs)]
        self.now += 0.002
        st = node.stats
        before = (st.bad_datagrams, st.unknown_messages, st.banned_dropped)
        node.receive_datagram(data, src, self.now)
        refused = False
        if len(data) >= 4 and data[3] == wire.DATA:
            try:
                wire.decode_data(data)
            except wire.WireError:
                refused = True
        else:
            try:
                wire.decode(data)
            except wire.WireError:
                refused = True
        after = (st.bad_datagrams, st.unknown_messages, st.banned_dropped)
        if refused and sum(after) != sum(before) + 1:
            raise AssertionError(f"refused datagram not counted: {before} -> {after}")
        if self.now >= node.get_timer():
            node.handle_timer(self.now)
        node.datagrams_to_send()
        node.side_datagrams_to_send()
        node.events()
        kind = data[3] if len(data) >= 4 else -1
        return f"{pick & 1}:{kind}:{'refused' if refused else 'ok'}"


def node_target() -> Target:
    harness = NodeHarness()
    return Target(
        "node",
        "Node.receive_datagram of a broadcaster and a listener in a running simulated station "
        "(recorded real traffic as seeds): never raises, refused datagrams are counted",
        harness.seeds(),
        harness.check,
        tokens=(wire.MAGIC + bytes([wire.VERSION]), b"\x04", b"\x06", b"\xff"),
        reset=harness.reset,
        reset_every=10000,
        keep_head=4,
    )


# ---- in-memory streams (ingest servers, player output) ---------------------------------------


class MemoryStream:
    """What a connection handler reads (the input, in the reads :func:`_split` makes) and what
    it writes; the far end closes once everything was read."""

    def __init__(self, data: bytes) -> None:
        self._reads = list(_split(data))
        self._reads.reverse()
        self.sent = bytearray()
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._reads:
            raise anyio.EndOfStream
        chunk = self._reads.pop()
        if len(chunk) > max_bytes:
            self._reads.append(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        self.sent += data

    async def send_eof(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True

    def extra(self, attribute: Any, default: Any = None) -> Any:
        return ("198.51.100.4", 50000)


class AsyncRunner:
    """Runs one coroutine per input on one event loop (a loop per input would cost more than
    the parsing), with a time limit that turns a hang into a crash."""

    def __init__(self, limit: float = 5.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.limit = limit

    def run(self, coro_fn: Callable[[], Any]) -> None:
        async def guarded() -> None:
            with anyio.move_on_after(self.limit) as scope:
                await coro_fn()
            if scope.cancelled_caught:
                raise Hang(f"no answer within {self.limit} s")

        self.loop.run_until_complete(guarded())


def _plugin_ingest(name: str) -> Any:
    """The ingest plugin's server class, found through the plugin system."""
    from .plugins import INGEST_GROUP, load_plugins

    host = load_plugins(groups=[INGEST_GROUP])
    spec = host.ingest(name)
    module = sys.modules[spec.serve.__module__]
    server_module = sys.modules.get(module.__name__.rsplit(".", 1)[0] + ".server")
    if server_module is None:
        raise LookupError(f"ingest plugin {name!r} has no server module")
    return server_module


PASSWORD = "hackme"


class IngestHarness:
    def __init__(self, name: str) -> None:
        from .types import IngestContext

        self.module = _plugin_ingest(name)
        self.titles: list[tuple[str, str]] = []
        self.runner = AsyncRunner()

        async def on_source(source: Any) -> None:
            total = 0
            async for chunk in source:
                total += len(chunk)
                if total > 1 << 16:
                    break

        def on_title(mount: str, title: str) -> None:
            self.titles.append((mount, title))
            del self.titles[:-10]

        self.ctx = IngestContext(
            host="127.0.0.1",
            port=0,
            check_password=lambda user, pw: pw == PASSWORD and user in ("source", "admin", ""),
            on_source=on_source,
            on_title=on_title,
            options={"answer_wait": 0.0, "head_timeout": 2.0, "source_timeout": 2.0},
        )
        cls = getattr(self.module, "IcecastServer", None) or self.module.ShoutcastServer
        self.server = cls(self.ctx)
        # (they log every refused connection: a campaign would drown in its own log)
        logging.getLogger(self.module.log.name).setLevel(logging.CRITICAL)

    def _handler(self, data: bytes) -> Callable[[MemoryStream], Any]:
        srv = self.server
        if hasattr(srv, "_handle"):
            return srv._handle  # type: ignore[no-any-return]
        # SHOUTcast: bit 7 of the last byte picks the port (title updates or sources)
        if data and data[-1] & 0x80:
            return srv._handle_base  # type: ignore[no-any-return]
        return srv._handle_source_port  # type: ignore[no-any-return]

    def check(self, data: bytes) -> str:
        stream = MemoryStream(data)
        handler = self._handler(data)
        srv = self.server
        before = dict(vars_of(srv.stats))
        self.runner.run(lambda: handler(stream))
        srv.active_mounts.clear()
        after = vars_of(srv.stats)
        if after["errors"] != before["errors"]:
            raise AssertionError("handler counted an unexpected error")
        changed = sorted(k for k in after if after[k] != before[k])
        return f"{','.join(changed)}:{bytes(stream.sent[:14])!r}"


def vars_of(stats: Any) -> dict[str, int]:
    return {name: getattr(stats, name) for name in stats.__slots__}


# Requests real tools send (the ingest plugins' tests and docs list where they come from).
_AUTH = "Basic " + __import__("base64").b64encode(f"source:{PASSWORD}".encode()).decode()
_ICECAST_SEEDS = [
    (
        "PUT /live HTTP/1.1\r\nHost: localhost:8000\r\nAuthorization: {auth}\r\n"
        "Content-Type: audio/mpeg\r\nIce-Public: 0\r\nIce-Name: Fuzz\r\nIce-Description: d\r\n"
        "Ice-Audio-Info: ice-samplerate=44100;ice-bitrate=128;ice-channels=2\r\n"
        "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n\xff\xfb\x90\x00\x00\r\n"
        "0\r\n\r\n"
    ),
    (
        "SOURCE /stream.ogg HTTP/1.0\r\nAuthorization: {auth}\r\nUser-Agent: libshout/2.4.6\r\n"
        "Content-Type: application/ogg\r\nice-name: n\r\nice-url: http://x/\r\nice-genre: g\r\n"
        "ice-bitrate: 128\r\nice-private: 0\r\n\r\nOggS\x00\x02"
    ),
    (
        "PUT /live.mp3 HTTP/1.1\r\nAuthorization: {auth}\r\nContent-Length: 10\r\n"
        "Content-Type: audio/mpeg\r\n\r\n0123456789"
    ),
    "SOURCE /live ICE/1.0\r\nAuthorization: {auth}\r\nicy-name: Mixxx\r\nicy-pub: 1\r\n\r\nabc",
    "SOURCE hackme /live\r\nx-audiocast-name: darkice\r\nx-audiocast-bitrate: 64\r\n\r\n\xff\xfb",
    "PUT /live HTTP/1.1\r\nHost: x\r\nContent-Type: audio/mpeg\r\n\r\n",
    "PUT /live HTTP/1.1\r\nAuthorization: Basic c291cmNlOndyb25n\r\n\r\n",
    "GET /admin/metadata?mount=/live&mode=updinfo&song=Artist%20-%20T%C3%ADtle HTTP/1.0\r\n"
    "Authorization: {auth}\r\nUser-Agent: ezstream\r\n\r\n",
    "GET /admin/metadata.xsl?mode=updinfo&mount=%2Flive&artist=A&title=B&charset=ISO-8859-1 "
    "HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n",
    "GET /admin.cgi?pass=hackme&mode=updinfo&mount=/live&song=Hi HTTP/1.0\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n",
    "GET /status.xsl HTTP/1.0\r\n\r\n",
    "DELETE /live HTTP/1.0\r\n\r\n",
]
_ICECAST_TOKENS = tuple(
    t.encode()
    for t in (
        "\r\n",
        "\r\n\r\n",
        ": ",
        "HTTP/1.1",
        "ICE/1.0",
        "SOURCE ",
        "PUT ",
        "GET ",
        "Authorization: ",
        _AUTH,
        "Transfer-Encoding: chunked\r\n",
        "Content-Length: ",
        "Expect: 100-continue\r\n",
        "Host: ",
        "/admin/metadata?",
        "/admin.cgi?",
        "mode=updinfo",
        "&song=",
        "&charset=",
        "utf-8",
        "idna",
        "undefined",
        "utf-16",
        "&mount=",
        "%",
        "%ff",
        "ice-audio-info: ",
        ";",
        "=",
        "ffffffff\r\n",
        "\n",
        " ",
        "http://",
        "[",
        "]",
        "[::1]",
    )
)

_SHOUTCAST_SEEDS = [
    "hackme\r\nicy-name:Fuzz\r\nicy-genre:Jazz\r\nicy-pub:1\r\nicy-br:128\r\n"
    "content-type:audio/mpeg\r\n\r\n\xff\xfb\x90\x00",
    "hackme:#2\nicy-name:DNAS2\nicy-url:http://x\n\n\xff\xfb",
    "source:hackme\r\ncontent-type: audio/aacp\r\n\r\n\xff\xf1",
    "SOURCE hackme\n /live\nicy-name:darkice\n\n",
    "SOURCE hackme /mount ICY\r\n\r\n",
    "!POKE\r\n",
    "wrong\r\n\r\n",
    "hackme\r\n\xff\xfb\x90\x00\x00\x00 audio without a blank line",
    "GET /admin.cgi?mode=updinfo&pass=hackme&song=Artist+-+Title HTTP/1.0\r\n"
    "User-Agent: Mozilla\r\n\r\n\x80",
    "GET /admin.cgi?pass=admin:hackme&mode=updinfo&artist=A&title=T&charset=latin1 "
    "HTTP/1.1\r\nHost: x\r\n\r\n\x80",
    "GET /admin.cgi?pass=hackme:%232&mode=updinfo&song=x&sid=3 HTTP/1.0\r\n\r\n\x80",
    "GET /index.html HTTP/1.0\r\n\r\n\x80",
    "POST /admin.cgi HTTP/1.0\r\n\r\n\x80",
    "hackme\r\nicy-name:base port login\r\n\r\n\x80",
]
_SHOUTCAST_TOKENS = _ICECAST_TOKENS + tuple(
    t.encode() for t in ("hackme", ":#", "!POKE", "icy-name:", "icy-br:", "pass=", "sid=", "\x80")
)


def _text_seeds(texts: list[str]) -> list[bytes]:
    out = []
    for text in texts:
        raw = text.replace("{auth}", _AUTH).encode("latin-1")
        out += [b"\xc0" + raw, b"\x05" + raw, b"\x45" + raw]  # one read; 6-byte; 10-byte reads
    return out


def icecast_target() -> Target:
    h = IngestHarness("icecast")
    return Target(
        "icecast",
        "Icecast source server handler (PUT/SOURCE, Basic auth, chunked/length/raw bodies, "
        "x-audiocast login, /admin/metadata, admin.cgi) on an in-memory stream",
        _text_seeds(_ICECAST_SEEDS),
        h.check,
        tokens=_ICECAST_TOKENS,
        max_len=4096,
    )


def shoutcast_target() -> Target:
    h = IngestHarness("shoutcast")
    return Target(
        "shoutcast",
        "SHOUTcast v1 source server: password line, ICY headers, darkice/DNAS 2 logins on the "
        "source port; admin.cgi title updates and logins on the base port",
        _text_seeds(_SHOUTCAST_SEEDS),
        h.check,
        tokens=_SHOUTCAST_TOKENS,
        max_len=4096,
    )


# ---- player output -------------------------------------------------------------------------


class HttpHarness:
    STATION = "abcdefghijklmnopqrstuvwxyz"

    def __init__(self) -> None:
        from .http_output import HttpOutputServer
        from .output import StationOutput

        self.runner = AsyncRunner()
        self.server = HttpOutputServer(metaint=100, head_timeout=2.0, send_timeout=2.0)
        self.server.port = 8467
        self.server.directory = lambda: [{"station": self.STATION}]
        meta = StationMeta(
            name="Fuzz FM",
            genre="g",
            url="http://x/",
            content_type="audio/mpeg",
            bitrate=128,
            sample_rate=44100,
            channels=2,
        )
        out = StationOutput(self.STATION, meta, burst_bytes=1000, buffer_bytes=4000)
        for i in range(10):
            out.feed(bytes([i]) * 300, True)
        out.set_title("Artist - It's a 'title';")
        self.server.add(out)
        logging.getLogger("streamerp2p.http_output").setLevel(logging.CRITICAL)

    def check(self, data: bytes) -> str:
        stream = MemoryStream(data)
        srv = self.server
        before = dict(vars_of(srv.stats))
        self.runner.run(lambda: srv._handle_safely(stream))
        after = vars_of(srv.stats)
        if after["errors"] != before["errors"]:
            raise AssertionError("handler counted an unexpected error")
        if not stream.sent.startswith(b"HTTP/1.0 "):
            raise AssertionError(f"no HTTP answer: {bytes(stream.sent[:40])!r}")
        return bytes(stream.sent[:12]).decode("latin-1") + str(b"icy-metaint" in stream.sent)


_HTTP_SEEDS = [
    f"GET /stream/{HttpHarness.STATION}.mp3 HTTP/1.1\r\nHost: 127.0.0.1:8467\r\n"
    "Icy-MetaData: 1\r\nUser-Agent: mpv\r\nRange: bytes=0-\r\n\r\n",
    f"GET /stream/{HttpHarness.STATION} HTTP/1.0\r\nIcy-MetaData:1\r\n\r\n",
    f"HEAD /stream/{HttpHarness.STATION}.ogg HTTP/1.1\r\nHost: [::1]:8467\r\n\r\n",
    f"GET /{HttpHarness.STATION}.pls HTTP/1.1\r\nHost: example.org:80\r\n\r\n",
    f"GET /{HttpHarness.STATION}.m3u HTTP/1.1\r\nHost: evil\r\n host\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /api/stations HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "GET /stream/%41%ff%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "GET http://x/stream/y HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
]


def http_output_target() -> Target:
    h = HttpHarness()
    return Target(
        "http-output",
        "local player output: request head (h11), paths, .pls/.m3u, HEAD, Icy-MetaData, Host, "
        "on an in-memory stream; always an HTTP answer, no unexpected error",
        _text_seeds(_HTTP_SEEDS),
        h.check,
        tokens=(*_ICECAST_TOKENS, b"Icy-MetaData: 1\r\n", b"/stream/", b".pls", b"Range: "),
        max_len=4096,
    )


def check_icy(data: bytes) -> str:
    """ICY metadata: a block is what players parse; the interleaver's output minus its blocks
    is the audio."""
    from .http_output import ICY_MAX_PAYLOAD, IcyInterleaver, icy_metadata_block

    text = data.decode("utf-8", errors="replace")
    title, _, rest = text.partition("\n")
    url, _, audio_text = rest.partition("\n")
    block = icy_metadata_block(title, url)
    n = block[0]
    if len(block) != 1 + 16 * n or 16 * n > ICY_MAX_PAYLOAD:
        raise AssertionError(f"block length {len(block)} for N={n}")
    payload = block[1:].rstrip(b"\0").decode("utf-8")  # (must be valid UTF-8)
    if not payload.startswith("StreamTitle='"):
        raise AssertionError("no StreamTitle")
    value = payload[len("StreamTitle='") :].split("';", 1)
    if len(value) != 2:
        raise AssertionError("StreamTitle not closed")
    got = value[0]
    tail = value[1]
    if url and not tail.startswith("StreamUrl='"):
        raise AssertionError("StreamUrl missing")
    if not url and tail:
        raise AssertionError(f"junk after the title: {tail!r}")
    clean = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in title).replace("';", "' ;")
    if not clean.startswith(got):
        raise AssertionError(f"title {title!r} came back as {got!r}")
    # the interleaver: any metaint and read sizes; removing the blocks gives the audio back
    audio = (audio_text.encode("utf-8", errors="replace") * 3)[:700]
    metaint = 1 + (data[0] if data else 0) % 50
    titles = [title, url, title]
    inter = IcyInterleaver(metaint, lambda: (titles[inter.blocks_sent % 3], ""))
    step = 1 + (data[-1] if data else 0) % 97
    out = b"".join(inter.process(audio[i : i + step]) for i in range(0, len(audio), step))
    pos, back = 0, bytearray()
    while pos < len(out):
        take = out[pos : pos + metaint]
        back += take
        pos += len(take)
        if len(take) < metaint:
            break
        if pos >= len(out):
            raise AssertionError("no metadata after metaint bytes of audio")
        pos += 1 + 16 * out[pos]
    if bytes(back) != audio:
        raise AssertionError("interleaved stream minus metadata is not the audio")
    return f"{n > 0}:{bool(url)}:{got == clean}"


def icy_target() -> Target:
    seeds = [
        b"Artist - Title\nhttp://example.org/\n\xff\xfb\x90\x00" * 2,
        "Ünïcödé ';' \u2013 🎵\n\n".encode() + bytes(range(256)),
        b"x" * 5000 + b"\n" + b"u" * 600 + b"\n" + b"a" * 100,
        b"'" * 4090 + b"\n\nabc",
    ]
    return Target(
        "icy",
        "ICY metadata block builder and interleaver: blocks parse back, metadata can be "
        "removed to get the audio back",
        seeds,
        check_icy,
        tokens=(b"';", b"'", b"\n", "é".encode(), b"\xff", "🎵".encode()),
        max_len=5000,
    )


# ---- codec framers --------------------------------------------------------------------------


def codec_seeds(codec: CodecSpec) -> tuple[list[bytes], list[bytes]]:
    """(seeds in this codec's format, other formats' streams): the conformance suite's
    fixtures (PyAV encodes) when it can be imported, else the tone generator's mp3."""
    own: list[bytes] = []
    foreign: list[bytes] = []
    try:
        from .codec_conformance import FIXTURE_KINDS, fixture

        streams = []
        for kind in FIXTURE_KINDS:
            if kind == "vorbis-libvorbis":
                continue  # (needs the ffmpeg program)
            fix = fixture(kind)
            streams.append((fix.data, fix.content_type))
    except ImportError:
        from .tone import ToneSource

        streams = [(ToneSource().read(3.0), "audio/mpeg")]
    for data, ctype in streams:
        mine = codec.sniff(data[:4096], ctype) >= 0.9 and (
            not codec.passthrough or ctype in codec.content_types
        )
        (own if mine else foreign).append(data)
    return own, foreign


class FramerHarness:
    def __init__(self, codec: CodecSpec) -> None:
        self.codec = codec

    def check(self, data: bytes) -> str:
        return check_framer(self.codec, data)


def check_framer(codec: CodecSpec, data: bytes) -> str:
    """One stream through a fresh framer in the reads the first byte says, and whole: no
    exception, every byte accounted for, frames are pieces of the input in order, the same
    frames and counters for both splits."""
    from .types import framer_title

    body = data[1:]
    framer = codec.framer()
    frames: list[Frame] = []
    for piece in _split(data):
        frames += framer.push(piece)
    frames += framer.flush()
    s = framer.stats
    if s.frames != len(frames):
        raise AssertionError(f"stats.frames {s.frames} but {len(frames)} frames")
    framed = sum(len(f.data) for f in frames)
    if s.bytes_in != len(body) or s.bytes_in != framed + s.skipped_bytes:
        raise AssertionError(
            f"bytes not accounted for: in {s.bytes_in}/{len(body)}, framed {framed}, "
            f"skipped {s.skipped_bytes}"
        )
    pos = 0
    for i, f in enumerate(frames):
        at = body.find(f.data, pos)
        if at < 0:
            raise AssertionError(f"frame {i} is not a piece of the input after frame {i - 1}")
        pos = at + len(f.data)
    whole = codec.framer()
    again = whole.push(body) + whole.flush()
    if again != frames or whole.stats != framer.stats:
        raise AssertionError("other frames or counters when the same bytes come in one read")
    framer.headers()
    fmt = framer.format()
    framer_title(framer)
    if codec.rejoin is not None:
        # the per-player rewriter of the local output: what a player gets must not depend on
        # how the bytes came (it is fed the stream split anywhere)
        split, whole = codec.rejoin(), codec.rejoin()
        out = b"".join(split(piece) for piece in _split(data))
        if out != whole(body):
            raise AssertionError("the rejoin rewriter gives other bytes for other read sizes")
    return f"{len(frames) > 0}:{s.skipped_bytes > 0}:{sorted(s.reasons)}:{fmt is not None}"


def codec_targets(names: set[str] | None = None) -> list[Target]:
    """One target per codec plugin (through the plugin system, as the node finds them)."""
    from .plugins import CODECS_GROUP, load_plugins

    host = load_plugins(groups=[CODECS_GROUP])
    out = []
    for codec in host.codecs():
        name = f"codec:{codec.name}"
        if names is not None and name not in names:
            continue
        own, foreign = codec_seeds(codec)
        seeds = []
        rng = random.Random(codec.name)
        for data in own:
            # the start (headers), and windows from the middle, in whole and in small reads
            for start in (0, len(data) // 3, rng.randrange(len(data))):
                piece = data[start : start + 2500]
                seeds += [b"\xc0" + piece, bytes([rng.randrange(0xC0)]) + piece]
        for data in foreign[:3]:
            seeds.append(b"\x83" + data[:3000])
        out.append(
            Target(
                name,
                f"{codec.name} framer ({codec.description or codec.name}) and rejoin rewriter: "
                "arbitrary bytes in arbitrary read sizes; no exception, every byte framed or "
                "counted as skipped, the same output for any read sizes",
                seeds,
                FramerHarness(codec).check,
                tokens=(b"OggS\x00", b"\xff\xfb", b"\xff\xf1", b"ID3\x04\x00", b"TAG", b"\x00"),
                max_len=4000,
            )
        )
    return out


def all_targets(names: set[str] | None = None) -> list[Target]:
    """The targets named (all when None); codec targets are ``codec:NAME``."""
    makers: dict[str, Callable[[], Target]] = {
        "wire": wire_target,
        "node": node_target,
        "icecast": icecast_target,
        "shoutcast": shoutcast_target,
        "http-output": http_output_target,
        "icy": icy_target,
        "link": link_target,
    }
    out = []
    for name, make in makers.items():
        if names is None or name in names:
            out.append(make())
    if names is None or any(n.startswith("codec:") or n == "codecs" for n in names):
        wanted = None if names is None or "codecs" in names else names
        out += codec_targets(wanted)
    return out


def target_names() -> list[str]:
    from .plugins import CODECS_GROUP, load_plugins

    host = load_plugins(groups=[CODECS_GROUP])
    base = ["wire", "node", "icecast", "shoutcast", "http-output", "icy", "link"]
    return base + [f"codec:{c.name}" for c in host.codecs()]


# --------------------------------------------------------------------------------------------
# The mutation engine
# --------------------------------------------------------------------------------------------

_INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x40, 0x3F)
_INTERESTING_16 = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x0100, 0x0400, 0x00FF)
_INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000)


def _expo(rng: random.Random, mean: float, cap: int) -> int:
    """A small random size: exponential with ``mean``, at most ``cap``."""
    x = rng.expovariate(1 / mean)
    return cap if x >= cap else int(x)


def mutate(
    rng: random.Random,
    data: bytes,
    *,
    tokens: tuple[bytes, ...] = (),
    corpus: list[bytes] | None = None,
    max_len: int = 4096,
) -> bytes:
    """``data`` with 1 to 8 stacked mutations (bit flips, interesting values, inserted and
    removed ranges, repeats, dictionary words, splices with another corpus entry)."""
    out = bytearray(data)
    for _ in range(1 + _expo(rng, 1.6, 7)):
        n = len(out)
        op = rng.randrange(14)
        at = rng.randrange(n + 1)
        if op == 0 and n:  # flip a bit
            i = min(at, n - 1)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # a random byte
            out[min(at, n - 1)] = rng.randrange(256)
        elif op == 2 and n:
            out[min(at, n - 1)] = rng.choice(_INTERESTING_8)
        elif op == 3 and n >= 2:
            i = min(at, n - 2)
            out[i : i + 2] = struct.pack("!H", rng.choice(_INTERESTING_16))
        elif op == 4 and n >= 4:
            i = min(at, n - 4)
            out[i : i + 4] = struct.pack("!I", rng.choice(_INTERESTING_32))
        elif op == 5 and n:  # small arithmetic on a byte (lengths, counts)
            i = min(at, n - 1)
            out[i] = (out[i] + rng.choice((-2, -1, 1, 2, 16, -16))) & 0xFF
        elif op == 6:  # insert random bytes
            out[at:at] = rng.randbytes(1 + _expo(rng, 10, 512))
        elif op == 7 and n:  # delete a range
            del out[at : at + 1 + _expo(rng, 20, 4096)]
        elif op == 8 and n:  # repeat a range
            start = rng.randrange(n)
            piece = out[start : start + 1 + _expo(rng, 50, 4096)]
            out[at:at] = piece * rng.choice((1, 1, 2, 8))
        elif op in (9, 10) and tokens:  # insert or overwrite a dictionary word
            word = rng.choice(tokens)
            if op == 9:
                out[at:at] = word
            else:
                out[at : at + len(word)] = word
        elif op == 11 and corpus:  # splice with another entry
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            out = out[:at] + other[cut : cut + rng.randrange(1, 2000)]
        elif op == 12 and n:  # truncate
            del out[at:]
        elif op == 13 and n:  # a digit run to a big or odd number (text protocols)
            i = min(at, n - 1)
            out[i : i + 1] = rng.choice((b"0", b"-1", b"99999999999999999999", b" ", b"\t"))
    if len(out) > max_len:
        del out[max_len:]
    return bytes(out)


@dataclass
class Crash:
    input: bytes
    error: str
    trace: str


@dataclass
class Campaign:
    target: str
    inputs: int = 0
    crashes: int = 0
    distinct_crashes: int = 0
    seconds: float = 0.0
    corpus: int = 0
    outcomes: int = 0
    saved: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "inputs": self.inputs,
            "crashes": self.crashes,
            "distinct_crashes": self.distinct_crashes,
            "inputs_per_s": round(self.inputs / self.seconds) if self.seconds else 0,
            "wall_s": round(self.seconds, 1),
            "corpus": self.corpus,
            "outcomes": self.outcomes,
            "reproducers": self.saved,
        }


def _signature(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    return f"{type(exc).__name__}@{where}"


def run_campaign(
    target: Target,
    *,
    inputs: int,
    seconds: float | None = None,
    seed: int = 1,
    crash_dir: Path | None = None,
    keep: int = 5,
    progress: Callable[[Campaign], None] | None = None,
) -> Campaign:
    """Run ``inputs`` inputs (or until ``seconds``) on ``target``: the seeds first, then
    mutations. The first ``keep`` distinct crashes are saved to ``crash_dir``."""
    rng = random.Random(seed)
    corpus = [s for s in target.seeds if len(s) <= target.max_len] or [b""]
    seen: set[str] = set()
    crash_kinds: set[str] = set()
    camp = Campaign(target.name)
    start = time.perf_counter()
    deadline = None if seconds is None else start + seconds
    check = target.check
    pending = list(corpus)
    i = 0
    while i < inputs:
        if pending:
            data = pending.pop()
        else:
            if rng.random() < 0.3:  # the newest entries (new outcomes) more often
                base = corpus[-1 - _expo(rng, 50, len(corpus) - 1)]
            else:
                base = rng.choice(corpus)
            data = mutate(rng, base, tokens=target.tokens, corpus=corpus, max_len=target.max_len)
            head = target.keep_head
            if head and len(data) >= head and rng.random() < 0.5:
                data = base[:head] + data[head:]
        i += 1
        try:
            outcome = check(data)
        except Exception as exc:  # (a crash: anything the target let through)
            camp.crashes += 1
            kind = _signature(exc)
            if kind not in crash_kinds:
                crash_kinds.add(kind)
                if crash_dir is not None and len(camp.saved) < keep:
                    camp.saved.append(_save(crash_dir, target.name, data, exc))
            outcome = "crash:" + kind
        if outcome not in seen:
            seen.add(outcome)
            if len(corpus) < 4000:
                corpus.append(data)
        if target.reset is not None and target.reset_every and i % target.reset_every == 0:
            target.reset()
        if i % 1000 == 0:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            if progress is not None and i % 100_000 == 0:
                camp.inputs, camp.seconds = i, time.perf_counter() - start
                progress(camp)
    camp.inputs = i
    camp.seconds = time.perf_counter() - start
    camp.distinct_crashes = len(crash_kinds)
    camp.corpus = len(corpus)
    camp.outcomes = len(seen)
    return camp


def _save(crash_dir: Path, target: str, data: bytes, exc: BaseException) -> str:
    folder = crash_dir / target.replace(":", "-")
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    (folder / f"{name}.bin").write_bytes(data)
    text = "".join(traceback.format_exception(exc))
    (folder / f"{name}.txt").write_text(f"target: {target}\ninput: {data!r}\n\n{text}")
    return str(folder / f"{name}.bin")


def replay(target: Target, path: Path) -> str:
    """Run one saved input (raises what the target raises)."""
    return target.check(path.read_bytes())


# --------------------------------------------------------------------------------------------
# atheris (coverage-guided) engine: one child process per target
# --------------------------------------------------------------------------------------------


_ATHERIS_CHILD = """
import importlib.metadata as md, sys
import atheris
# instrument (coverage) the kernel and the plugins only: not the standard library or h11
tops = {"streamerp2p"} | {
    ep.module.split(".")[0]
    for group in ("streamerp2p.codecs", "streamerp2p.ingest")
    for ep in md.entry_points(group=group)
}
with atheris.instrument_imports(include=sorted(tops)):
    from streamerp2p import benchfuzz
    target = benchfuzz.all_targets({NAME})[0]
benchfuzz._atheris_fuzz(target, RUNS, SECONDS, CRASHES)
"""


def _atheris_fuzz(target: Target, runs: int, seconds: float | None, crash_dir: str) -> None:
    """(In the child process) libFuzzer on ``target.check``, from the target's seeds."""
    import atheris  # type: ignore[import-not-found]

    corpus_dir = Path(crash_dir) / "corpus" / target.name.replace(":", "-")
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for seed in target.seeds:
        (corpus_dir / hashlib.sha1(seed).hexdigest()[:16]).write_bytes(seed)
    count = 0

    def one(data: bytes) -> None:
        nonlocal count
        count += 1
        target.check(data[: target.max_len])
        if target.reset is not None and target.reset_every and count % target.reset_every == 0:
            target.reset()

    args = [
        "fuzz",
        f"-runs={runs}",
        f"-max_len={target.max_len}",
        f"-artifact_prefix={crash_dir}/{target.name.replace(':', '-')}-",
        "-print_final_stats=1",
        str(corpus_dir),
    ]
    if seconds:
        args.insert(2, f"-max_total_time={int(seconds)}")
    atheris.Setup(args, one)
    atheris.Fuzz()


def _atheris_run(name: str, runs: int, seconds: float | None, crash_dir: Path) -> dict[str, Any]:
    """One target under atheris in a child process; its figures from libFuzzer's stats."""
    import re
    import subprocess

    crash_dir.mkdir(parents=True, exist_ok=True)
    code = (
        _ATHERIS_CHILD.replace("NAME", repr(name))
        .replace("RUNS", str(runs))
        .replace("SECONDS", repr(seconds))
        .replace("CRASHES", repr(str(crash_dir)))
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    log = proc.stderr

    def stat(key: str) -> int:
        m = re.search(rf"stat::{key}:\s+(\d+)", log)
        return int(m.group(1)) if m else 0

    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    crashed = proc.returncode != 0
    figures: dict[str, Any] = {
        "target": name,
        "engine": "atheris",
        "inputs": stat("number_of_executed_units") or (int(done.group(1)) if done else 0),
        "crashes": int(crashed),  # libFuzzer stops at the first one
        "inputs_per_s": stat("average_exec_per_sec")
        or (round(int(done.group(1)) / max(1, int(done.group(2)))) if done else 0),
        "wall_s": round(time.perf_counter() - t0, 1),
        "new_units": stat("new_units_added"),
        "reproducers": re.findall(r"Test unit written to (\S+)", log),
    }
    if crashed:
        figures["log_tail"] = log.strip().splitlines()[-30:]
    return figures


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def run_fuzz_bench(
    *,
    targets: list[str],
    inputs: int,
    seconds: float | None,
    as_json: bool,
    crash_dir: Path,
    seed: int = 1,
    engine: str = "mutate",
) -> list[dict[str, Any]]:
    wanted = None if targets == ["all"] else set(targets)
    if wanted is not None:
        unknown = wanted - set(target_names()) - {"codecs"}
        if unknown:
            raise ValueError(f"unknown fuzz target(s): {', '.join(sorted(unknown))}")
    results = []
    if engine == "atheris":
        names = [
            n
            for n in target_names()
            if wanted is None or n in wanted or ("codecs" in wanted and n.startswith("codec:"))
        ]
        for name in names:
            figures = _atheris_run(name, inputs, seconds, crash_dir)
            results.append(figures)
            print(json.dumps(figures), flush=True)
        return results
    for target in all_targets(wanted):
        if not as_json:
            print(f"fuzzing {target.name}: {target.description}", file=sys.stderr, flush=True)

        def progress(c: Campaign) -> None:
            if not as_json:
                print(
                    f"  {c.target}: {c.inputs} inputs, {c.crashes} crashes, "
                    f"{c.inputs / c.seconds:.0f}/s",
                    file=sys.stderr,
                    flush=True,
                )

        camp = run_campaign(
            target,
            inputs=inputs,
            seconds=seconds,
            seed=seed,
            crash_dir=crash_dir,
            progress=progress,
        )
        figures = camp.figures()
        results.append(figures)
        print(json.dumps(figures), flush=True)
    return results


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        run_fuzz_bench(
            targets=sys.argv[1:] or ["all"],
            inputs=int(os.environ.get("FUZZ_INPUTS", "10000")),
            seconds=None,
            as_json=True,
            crash_dir=Path("fuzz-crashes"),
        )
