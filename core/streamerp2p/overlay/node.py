"""The overlay node: a sans-I/O state machine (in the style of aioquic's QuicConnection).

Feed it datagrams with :meth:`Node.receive_datagram` and timer ticks with
:meth:`Node.handle_timer`; collect what to send with :meth:`Node.datagrams_to_send` and what
happened with :meth:`Node.events`; :meth:`Node.get_timer` says when it wants the next tick.
It never reads a clock, opens a socket or sleeps: the anyio runtime and the deterministic
simulator drive the same code.

A node keeps one :class:`Session` per station it broadcasts or receives. Within a session it
has at most one parent and up to ``slots`` children; DATA chunks are verified against
station-signed seals before they are stored, relayed or played.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import secrets
import struct
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import filterfalse
from typing import Any

from ..types import Frame, StationMeta
from . import wire
from .bwtest import BandwidthTest
from .events import (
    AudioData,
    ChildJoined,
    ChildLeft,
    CodecHeaders,
    Event,
    LeaveComplete,
    ParentLost,
    Skipped,
    StationUpdated,
    Tuned,
)
from .hosts import HostList, HostRec, prefix
from .nat import Nat
from .packer import Packer
from .records import StationKey, StationRecord, Verifier, chunk_hash, tag_of
from .wire import Addr

_SEQ_TS = struct.Struct("!II")
_DATA_TS = struct.Struct("!I")
_NO_TAG = b"\x00\x00\x00\x00"
_EMPTY_HASH = b"\x00" * wire.HASH_LEN
MAX_DEPTH = 200  # deeper than any real tree: a parent this deep is in a loop
_INF = float("inf")
_MAX_DATAGRAM = wire.MAX_DATAGRAM
_MAGIC = wire.MAGIC
_DATA = wire.DATA
_DATA_HEADER_LEN = wire.DATA_HEADER_LEN
_decode = wire.decode
_FRAME_START = wire.DATA_FRAME_START
_NOT_ASKED = (0.0, 0)  # (retry at, tries) of a chunk never requested
_HDR_BURST = 16  # CODEC_HDR fragments sent per request (16 KiB); the child asks for the rest
# Address validation (no amplification): requests whose answers are bigger than they are, from
# an address that has not echoed one of our tokens, get a CHALLENGE instead; the request is
# kept and answered when the RESPONSE comes.
_CHALLENGED = frozenset(
    {
        wire.HelloReq,
        wire.JoinReq,
        wire.Attach,
        wire.Nack,
        wire.StationReq,
        wire.CodecHdrReq,
        wire.ProxyReq,
        wire.Report,
    }
)
VALID_FOR = 1800.0  # seconds an address stays validated (then it is challenged again)
MAX_VALID = 16384  # validated addresses remembered (least recently used go first)
MAX_STASHED = 1024  # addresses with requests waiting for their RESPONSE
STASH_PER_ADDR = 4
JOIN_PAD = 320  # a JOIN_REQ to a node that may not know us is padded to this: room for its OFFER
JOIN_PADDED = 2  # padded JOIN_REQs per join round (a slow uplink would choke on more)
# Misbehaving peers: every forged chunk, seal, record or header set a peer sends is a strike (an
# honest node verifies before it relays, so it never sends one). A peer with a strike is no
# longer a candidate parent or repair helper; at STRIKES_TO_BAN it is ignored for BAN_SECONDS.
STRIKES_TO_BAN = 3
BAN_SECONDS = 600.0
MAX_BANNED = 4096
# Request rate limits (token buckets): per sending address and for the whole node. Requests are
# the messages that make a node work or answer (_CHALLENGED); beyond the limits they are dropped
# and counted. Generous for honest peers: gossip ~2/s, joins a few per round, repairs in bursts.
PEER_RATE = 30.0  # requests per second from one address...
PEER_BURST = 60.0  # ... with this burst
NODE_RATE = 2000.0  # requests per second in all
NODE_BURST = 4000.0
MAX_BUCKETS = 8192
# Chunks a node sends as a helper (repairs for peers that are not its children) per requesting
# address: a re-homed node asks three helpers for a gap of a few dozen chunks at most, while
# one peer asking for everything would take all the spare upload honest repairs need
HELP_RATE = 4.0  # chunks per second to one address...
HELP_BURST = 64.0  # ... with this burst (a new listener's cushion, ~45 chunks at 128 kbit/s)
MAX_TOKENS = 1024  # tokens others gave us in OFFERs (echoed in ATTACH)
# A parent that starves us (see NodeConfig.starve_periods) is avoided this long, doubling on
# each new offence, up to STARVE_MAX_AVOID.
STARVE_AVOID = 60.0
STARVE_MAX_AVOID = 1200.0
# A child reported by NodeConfig.expel_reports children of its own (from different networks:
# IPv4 /24, IPv6 /48) within REPORT_WINDOW s for starving them is cut off and refused as a child
# for EXPEL_SECONDS: the bad relay is dropped from the tree instead of found out by each of its
# children in turn (see _on_report)
REPORT_WINDOW = 60.0
EXPEL_SECONDS = 600.0
# a node without a parent this long, its buffer run dry, having banned a forger, tells its
# children to find their own (LEAVE with this grace: it feeds them on if it gets back in first)
ORPHAN_RELEASE = 4.0
ORPHAN_GRACE = 10.0
# a forger is reported to the broadcaster at most this often (a report about a peer that is
# not its child yet is ignored: it may be by the next time)
FORGER_REPORT_EVERY = 10.0
# the promise rule (NodeConfig.promise_wait) waits until the parent's PSTAT head has moved
# this many chunks past its ATTACH_OK head
PROMISE_MOVED = 8
# a re-homing node asks the broadcaster only in its join rounds after this many (see _join_round)
SOURCE_ASK_ROUNDS = 3
SOURCE_SKIP_AUDIENCE = 300  # ... when it knows this many hosts tuned to the station


def _depth(depth: int, ancestors: int) -> int:
    """A claimed depth, at least what the ancestor filter shows: a node at depth d is in a
    filter of d + 1 nodes with 3 bits each, so more than 3 (d + 1) bits set means deeper (a
    liar saying "depth 0" to draw joiners, with its real filter)."""
    return max(depth, ancestors.bit_count() // 3 - 1)


def headers_hash(headers: bytes) -> bytes:
    """The hash a station record carries for its codec headers (zeros: none)."""
    if not headers:
        return _EMPTY_HASH
    return hashlib.blake2b(headers, digest_size=wire.HASH_LEN).digest()


@dataclass(slots=True)
class NodeConfig:
    slots: int = 4  # children per station when the upload capacity is unknown
    upload_kbps: float = 0.0  # measured/configured upload; > 0: slots = upload * headroom / bitrate
    slot_headroom: float = 0.925  # a slot costs bitrate / headroom (~1.08x: headers, seals)
    # upload kept for control traffic whatever the bitrate (gossip ~1.6 kbit/s, status,
    # offers, station records): not counted toward slots. At 32 kbit/s it is ~8 % of a stream
    control_kbps: float = 2.4
    max_slots: int = 64  # cap for slots derived from upload capacity
    history_seconds: float = 30.0
    cushion_seconds: float = 4.0
    parent_timeout: float = 1.0
    child_timeout: float = 5.0
    leave_grace: float = 3.0
    tick: float = 0.25  # housekeeping period
    fast_tick: float = 0.05  # while joining, attaching or repairing
    status_interval: float = 1.0  # CSTAT (child -> parent)
    pstat_interval: float = 1.0  # PSTAT when nothing changed (data flowing keeps the parent alive)
    hello_hosts: int = 3  # hosts in a gossip answer
    gossip_interval: float = 0.5
    host_expiry: float = 300.0
    max_hosts: int = 1000
    seal_max_chunks: int = 8
    seal_max_delay: float = 0.5  # seal a batch this old once it holds seal_min_bytes...
    seal_min_bytes: int = 2400  # ...(keeps signatures under 5 % of data at low bitrates)
    chunk_max_delay: float = 0.5
    offer_window: float = 0.1
    attach_timeout: float = 0.5
    join_retry: float = 0.5
    refresh_interval: float = 10.0  # ask a few tree members for offers (backups, reshuffle)
    reshuffle: bool = True  # move up when a shallower node has room or a weaker child
    attach_fanout: int = 1  # JOIN_REQs with "attach me if you have room" per join round
    station_expiry: float = 7200.0  # offline stations leave the directory after 2 hours
    loss_periods: int = 3  # status periods of loss reported by children before shedding a slot
    # a parent that starves us (delivers under half of what reaches us, or lets the live edge
    # come within starve_in_hand s of the playout clock) this many status periods in a row is
    # left and avoided (see _check_parent)
    starve_periods: int = 4
    starve_in_hand: float = 1.5
    starve_grace: float = 3.0  # after attaching (the cushion comes from helpers too)
    # a new parent whose ATTACH_OK said it holds our start but that sent no chunk at all this
    # long, while its PSTATs say newer chunks reached it (an honest one pushes the first ones
    # right after its ATTACH_OK), is left and avoided as a starver without waiting for
    # starve_periods: a dropper, found out in about two seconds
    promise_wait: float = 1.5
    # children of ours reported (REPORT) by this many networks' worth of their own children
    # for starving them are cut off (see _on_report; 0: reports are ignored)
    expel_reports: int = 2
    max_pending: int = 512
    max_backlog: float = 0.5  # seconds of queued upload beyond which repairs wait
    max_round_asks: int = 12  # JOIN_REQs per join round, referrals included
    redirect_grace: float = 2.0  # a displaced child is fed this long while it moves
    reserve_last_slot: bool = True  # the last free slot only for a child that can relay
    hard_preempt: bool = True  # a joiner may displace a child at once (its cushion covers it)
    repair_batch: int = 64
    bulk_backlog: float = 0.05  # repairs and cushions go out only while the uplink queue is shorter
    bulk_expiry: float = 2.0  # ... and are dropped if they waited longer (the requester asks again)
    max_bulk: int = 512  # datagrams waiting behind live data
    push_chunks: int = 4  # a new child's first chunks are pushed at once; it fetches the rest
    start_ahead: float = 0.2  # ... and once this much audio is in hand (the first chunks in
    # flight are not yet exposed to loss)
    late_drop: float = 0.5  # a chunk this late at its playout time is dropped (keeps the delay)
    reanchor: float = 5.0  # nothing on time this long: restart the playout clock (more delay)
    seal_wait: float = 1.0  # chunks without their seal this long: ask for the seal alone
    max_helpers: int = 3  # peers with spare upload asked for repairs besides the parent
    busy_backlog: float = 1.0  # uplink queue (s) beyond which gossip and offers go unanswered
    max_proxy_clients: int = 16  # NATed nodes this node forwards first datagrams for (when open)
    bandwidth_test: bool = True  # measure the upload (packet trains) when upload_kbps is 0


@dataclass(slots=True)
class Stats:
    datagrams_in: int = 0
    datagrams_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    data_bytes_out: int = 0
    bad_datagrams: int = 0
    unknown_messages: int = 0
    bad_chunks: int = 0
    bad_seals: int = 0
    bad_records: int = 0
    banned: int = 0  # peers ignored for sending forged data (see STRIKES_TO_BAN)
    rate_limited: int = 0  # requests dropped over the per-peer or the node's rate limit
    banned_dropped: int = 0  # datagrams from them, dropped
    bad_headers: int = 0  # codec headers that did not match the station record's hash
    challenges: int = 0  # requests from unvalidated addresses answered with a CHALLENGE
    bad_tokens: int = 0  # RESPONSEs with a token we did not give that address
    requests_dropped: int = 0  # requests that waited for a RESPONSE that never came
    amp_refused: int = 0  # answers not sent: more bytes than an unproven address sent us
    dup_chunks: int = 0
    unexpected: int = 0
    repairs_requested: int = 0
    repairs_served: int = 0
    skipped_chunks: int = 0
    rehomes: int = 0
    bulk_dropped: int = 0  # repairs that waited too long behind live data
    busy_dropped: int = 0  # gossip and join requests left unanswered while the uplink was full
    lost_attach_ok: int = 0  # a parent's ATTACH_OK lost (its data came first): asked again
    reanchors: int = 0  # playout fell behind for good and took a longer delay (a rebuffer)
    nat_via: int = 0  # datagrams sent through a NATed host's proxy (no open path yet)
    nat_forwarded: int = 0  # datagrams passed on to a node we proxy for
    nat_refused: int = 0  # VIA for a node we do not proxy for, or FWD not from our proxy
    nat_unreachable: int = 0  # not sent: a NATed host we cannot punch through to (symmetric)
    nat_punch_failed: int = 0  # punches that never opened a path (the pair is avoided a while)
    bw_trains: int = 0  # packet trains sent to measure our upload
    starved: int = 0  # parents left because they delivered too little (droppers, liars)
    reports_sent: int = 0  # ... and told their parent (our grandparent) so
    reports_ignored: int = 0  # reports about a node that is not our child
    expelled: int = 0  # children cut off because several of their children reported them
    orphan_releases: int = 0  # times we had no parent for long and told our children to move


@dataclass(slots=True)
class Child:
    node_id: bytes
    last_heard: float
    free: int = 0
    slots: int = 0
    leaving: bool = False  # leaving politely or redirected: its slot is free for another
    loss: int = 0  # chunks it re-requested in its last status period
    since: float = 0.0  # when it started leaving


@dataclass(slots=True)
class Candidate:
    addr: Addr
    node_id: bytes
    free: int
    depth: int
    ancestors: int  # its ancestor filter (root .. it)
    heard: float
    rtt: float
    weakest: int = 255
    spare: int = 0  # spare upload in 1/16 of the bitrate (from its offer)


@dataclass(slots=True)
class DirEntry:
    """A station in the directory (learned passively from gossip)."""

    record: StationRecord
    raw: bytes
    last_alive: float  # last time a host was known to be tuned to it (or we were)


@dataclass(slots=True)
class Session:
    station_id: bytes
    tag: bytes
    key: StationKey | None = None  # set on the broadcasting node
    verifier: Verifier | None = None
    record: StationRecord | None = None
    record_raw: bytes = b""
    # tree position
    parent: Addr | None = None
    parent_id: bytes = b""
    parent_last: float = 0.0
    parent_leaving: bool = False
    backup: Addr | None = None
    source: Addr | None = None  # the broadcaster (its OFFER said so): see _join_round
    depth: int = 0
    ancestors: int = 0  # Bloom filter of root .. this node (wire.ancestor_bits)
    children: dict[Addr, Child] = field(default_factory=dict)
    leaving: bool = False
    leave_deadline: float = 0.0
    # seeking a parent
    seeking: bool = False
    hosts: list[Addr] = field(default_factory=list)  # hosts given when tuning (link, seeds)
    asked: dict[Addr, float] = field(default_factory=dict)  # JOIN_REQ sent, no answer yet
    answered: dict[Addr, float] = field(default_factory=dict)  # answered (time)
    candidates: dict[Addr, Candidate] = field(default_factory=dict)
    dead: dict[Addr, float] = field(default_factory=dict)  # addr -> until
    attaching: Addr | None = None
    attach_sent: float = 0.0
    intents: dict[Addr, float] = field(default_factory=dict)  # JOIN_ATTACH sent while seeking
    # ATTACH sent lately: data from one of these without its ATTACH_OK means the answer was lost
    attach_targets: dict[Addr, float] = field(default_factory=dict)
    next_reshuffle: float = 0.0
    slot_penalty: int = 0  # slots shed because children reported loss
    loss_streak: int = 0
    last_penalty: float = 0.0
    nacked: int = 0  # chunks requested since the last CSTAT
    # parent accounting (see _check_parent): new chunks this status period from anyone, from
    # the parent, and from the parent since we attached; bad periods in a row; audio in hand
    got: int = 0
    got_parent: int = 0
    parent_got: int = 0
    parent_since: float = 0.0
    parent_promised: bool = False  # its ATTACH_OK said it holds chunks from our start on
    parent_data: bool = False  # ... and it sent us a chunk since (one we had too counts)
    promised_head: int = -1  # its head seq in that ATTACH_OK
    parent_head: int = -1  # its head seq in its latest PSTAT
    check_at: float = -1.0  # when _check_parent last ran (for the stream's rate since)
    check_parent_head: int = -1  # parent_head then
    starve_streak: int = 0
    in_hand: float = 0.0
    window_end: float | None = None
    next_round: float = 0.0
    rounds: int = 0  # join rounds without success (backoff)
    bitrate_hint: int = 0  # from offers, before the station record arrives
    round_asks: int = 0  # JOIN_REQs sent in this round (referrals included), capped
    padded: int = 0  # ... of them padded (see JOIN_PAD)
    next_refresh: float = 0.0
    rtt: float = 0.1
    orphan_until: float = 0.0  # our parent went silent: say so when asking for a slot
    orphaned_at: float = _INF  # without a parent since (children released after ORPHAN_RELEASE)
    displaced_until: float = 0.0  # told to move: may take a last free slot until then
    vacated: Addr | None = None  # the parent we left when we moved (it has a free slot)
    vacated_at: float = 0.0
    parent_spare: int = 4  # the parent's spare upload (1/16 bitrate), from PSTAT
    repair_top: int = -1  # highest seq the last repair scan looked at
    repair_due: float = 0.0  # the next time a missing chunk may be asked for again
    # the seqs not held in [scan_from, scan_to] at the last repair scan (the next scan checks
    # only these and the newer ones: chunks from low on only ever arrive, except when the
    # stream restarts, which resets this)
    scan_missing: list[int] = field(default_factory=list)
    scan_from: int = 0
    scan_to: int = -1
    # data
    history: dict[int, bytes] = field(default_factory=dict)
    low: int = 0  # oldest seq kept / wanted
    head: int = -1  # newest seq held
    head_ts: int = 0
    known_head: int = -1  # newest seq known to exist
    settling_head: int = -1  # known_head as of the last settle step
    settled_head: int = -1  # ... and the step before: safe to ask for what is missing below
    settled_at: float = 0.0
    gap_seq: int = -1  # the newest chunk found missing below a newer one (see _wake_at)
    contig: int = 0  # first seq >= low not held
    hashes: dict[int, bytes] = field(default_factory=dict)
    seal_of: dict[int, int] = field(default_factory=dict)
    seals: dict[int, bytes] = field(default_factory=dict)
    pending: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    pending_seals: list[bytes] = field(default_factory=list)
    requested: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq: (retry at, n)
    started: bool = False  # has a start seq
    # playout
    playing: bool = False  # playout started (with a full cushion)
    attached_at: float = 0.0
    play_next: int = 0
    waiting_since: float | None = None  # before playout starts: the first chunk is missing
    play_t0: float = 0.0  # playout clock: chunk ts plays at play_t0 + (ts - play_ts0) / 1000
    play_ts0: int = 0
    fill_tokens: float = 0.0  # spare upload for gap-filling chunks at once (see _fill_allowed)
    # live chunks children asked for before we had them: sent the moment they arrive
    child_wants: dict[int, tuple[list[Addr], float]] = field(default_factory=dict)
    fill_at: float = 0.0
    skip_at: float = 0.0  # when the audio after a gap is due (see _skip_due)
    late_since: float | None = None  # dropping chunks that came too late since then
    first_at: float | None = None  # when the first chunk to play arrived (playout not started)
    # status timers
    next_pstat: float = 0.0
    next_cstat: float = 0.0
    last_data_out: float = 0.0
    # broadcasting
    packer: Packer | None = None
    next_seq: int = 0
    ts0: float = 0.0
    batch: list[tuple[int, bytes]] = field(default_factory=list)  # (seq, hash) to seal
    batch_data: list[tuple[int, bytes, float]] = field(default_factory=list)  # (seq, data, t)
    paced: deque[tuple[float, int, bytes]] = field(default_factory=deque)  # sealed, to send
    batch_started: float = 0.0
    batch_bytes: int = 0
    wall_offset: int = 0  # wall clock minus driver clock, ms (record versions)
    next_restart_attach: float = 0.0
    next_station_req: float = 0.0
    # codec headers a late joiner needs before any audio (Ogg), checked against the record
    codec_headers: bytes = b""
    codec_hash: bytes = _EMPTY_HASH
    hdr_parts: dict[int, bytes] = field(default_factory=dict)  # offset: fragment, being fetched
    hdr_fetching: bytes = _EMPTY_HASH  # the hash the fragments are for
    next_hdr_req: float = 0.0

    def needs_headers(self) -> bool:
        """The record names codec headers this node does not hold (yet)."""
        rec = self.record
        return rec is not None and rec.headers_hash != self.codec_hash

    @property
    def is_source(self) -> bool:
        return self.key is not None

    @property
    def in_tree(self) -> bool:
        return self.is_source or self.parent is not None

    def active_children(self) -> int:
        return sum(1 for c in self.children.values() if not c.leaving)

    def free_slots(self, slots: int) -> int:
        if self.leaving or not self.in_tree:
            return 0
        return max(0, slots - self.active_children())


class Node:
    """One overlay node. See the module docstring for the I/O contract."""

    def __init__(
        self,
        config: NodeConfig | None = None,
        *,
        node_id: bytes | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config or NodeConfig()
        # the token secret: from the seeded generator in simulations (reproducible runs),
        # from the OS's cryptographic source otherwise
        self._secret = rng.randbytes(32) if rng is not None else secrets.token_bytes(32)
        self.rng = rng or random.Random()
        self._valid: OrderedDict[Addr, float] = OrderedDict()  # address -> validated at
        self._stash: OrderedDict[Addr, list[bytes]] = OrderedDict()  # requests awaiting RESPONSE
        self._tokens: OrderedDict[Addr, bytes] = OrderedDict()  # from OFFERs, for our ATTACH
        self._budget: list[Any] | None = None  # [addr, bytes left]: answering an unproven address
        self._countered: dict[Addr, float] = {}  # CHALLENGEs we sent back (once per 10 s)
        self._strikes: dict[Addr, int] = {}  # forged data received, by sender
        self._starvers: OrderedDict[Addr, int] = OrderedDict()  # parents left for starving us
        # reports against our children: child addr -> {reporter's network: when}; and node ids
        # of children we cut off for them (refused as children until then)
        self._reports: dict[Addr, dict[str, float]] = {}
        self._forgers_told: OrderedDict[tuple[Addr, Addr], float] = OrderedDict()  # (to, whom)
        self._expelled: OrderedDict[bytes, float] = OrderedDict()
        self._banned: OrderedDict[Addr, float] = OrderedDict()  # sender -> ignored until
        self._buckets: OrderedDict[Addr, list[float]] = OrderedDict()  # [tokens, at]
        self._help_buckets: OrderedDict[Addr, list[float]] = OrderedDict()  # [chunks, at]
        self._node_bucket = [NODE_BURST, now]
        self.node_id = node_id or self.rng.randbytes(wire.ID_LEN)
        self._anc_bits = wire.ancestor_bits(self.node_id)
        self.stats = Stats()
        self.sessions: dict[bytes, Session] = {}
        self.hosts = HostList(self.config.max_hosts, self.rng)
        self._tx_rate = self.config.upload_kbps * 125.0  # bytes/s, 0 = unknown
        self._tx_free_at = 0.0
        # repairs and cushions, after live data: a heap by (deadline, arrival order)
        self._bulk: list[tuple[float, int, bytes, Addr, float]] = []
        self._bulk_bytes = 0
        self._bulk_seq = 0
        self.directory: dict[bytes, DirEntry] = {}  # station id -> record, last seen alive
        self.tag_station: dict[bytes, bytes] = {}  # tag -> station id, for the directory
        self.expired: dict[bytes, float] = {}  # station id -> until (no comeback by gossip)
        self._hello_count = 0
        self.seeds: list[Addr] = []
        self.observed: Addr | None = None  # our address as others see it
        self.nat = Nat(self)
        self.bw = BandwidthTest(self)
        self._out: list[tuple[bytes, Addr]] = []
        self._side_out: list[tuple[bytes, Addr]] = []  # from a second local port (see nat.py)
        self._events: list[Event] = []
        self._now = now
        self._next_tick = now
        self._next_gossip = now
        self._req_id = 0
        self._leaving = False
        self._handlers = {
            wire.HelloReq: self._on_hello_req,
            wire.Hello: self._on_hello,
            wire.JoinReq: self._on_join_req,
            wire.Offer: self._on_offer,
            wire.Attach: self._on_attach,
            wire.AttachOk: self._on_attach_ok,
            wire.AttachNo: self._on_attach_no,
            wire.Seal: self._on_seal,
            wire.Nack: self._on_nack,
            wire.PStat: self._on_pstat,
            wire.CStat: self._on_cstat,
            wire.Leave: self._on_leave,
            wire.Detach: self._on_detach,
            wire.Report: self._on_report,
            wire.StationMsg: self._on_station,
            wire.StationReq: self._on_station_req,
            wire.CodecHdrReq: self._on_codec_hdr_req,
            wire.CodecHdr: self._on_codec_hdr,
            wire.ReachReq: self.nat.on_reach_req,
            wire.ReachFwd: self.nat.on_reach_fwd,
            wire.ReachProbe: self.nat.on_reach_probe,
            wire.ProxyReq: self.nat.on_proxy_req,
            wire.ProxyOk: self.nat.on_proxy_ok,
            wire.Via: self.nat.on_via,
            wire.Fwd: self.nat.on_fwd,
            wire.Punch: self.nat.on_punch,
            wire.BwTrain: self.bw.on_train,
            wire.BwReport: self.bw.on_report,
            wire.Challenge: self._on_challenge,
            wire.Response: self._on_response,
        }

    # ------------------------------------------------------------------ I/O contract

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def side_datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Datagrams to send from a second local port of ours (any free one, never the node's
        own): reachability probes, which must come from an address the target never wrote to.
        Drivers without a second socket may send them from the node's port (they then prove
        less: see overlay/nat.py)."""
        out, self._side_out = self._side_out, []
        return out

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def get_timer(self) -> float:
        return self._next_tick

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        self._now = now
        st = self.stats
        size = len(data)
        st.datagrams_in += 1
        st.bytes_in += size
        if size < 4 or size > _MAX_DATAGRAM or data[0:2] != _MAGIC or data[2] != 1:
            st.bad_datagrams += 1
            return
        if self._banned and addr in self._banned:
            if now < self._banned[addr]:
                st.banned_dropped += 1
                return
            del self._banned[addr]
            self._strikes.pop(addr, None)
        if data[3] == _DATA:
            self._on_data(data, addr, now)
            return
        try:
            msg = _decode(data)
        except wire.UnknownMessage:
            st.unknown_messages += 1
            return
        except wire.WireError:
            st.bad_datagrams += 1
            return
        mtype = type(msg)
        if mtype in _CHALLENGED and not self._gate(data, msg, addr, now):
            return
        self._handlers[mtype](msg, addr, now)  # type: ignore[operator]
        self.nat.heard(addr, now)  # (after: a reachability probe asks whether we had before)
        if self._bulk:
            self._pump_bulk(now)

    def _gate(self, data: bytes, msg: wire.Message, addr: Addr, now: float) -> bool:
        """A request: rate limits, then address validation (see _CHALLENGED). True: handle it
        as usual; False: dropped, challenged or already answered within what it carried."""
        if not self._allow_request(addr, now):
            self.stats.rate_limited += 1
            return False
        mtype = type(msg)
        size = len(data)
        if not self._is_valid(addr, now):
            if mtype is wire.Attach and self._token_ok(addr, msg.token, now):  # type: ignore[union-attr]
                self.validate(addr, now)  # it echoed the token of our OFFER
            elif mtype is wire.JoinReq and size >= JOIN_PAD:
                # padded: answer within what came (an OFFER with a token, never a slot yet)
                msg.flags &= ~wire.JOIN_ATTACH  # type: ignore[union-attr]
                self._budget = [addr, size]
                refused = self.stats.amp_refused
                try:
                    self._on_join_req(msg, addr, now)  # type: ignore[arg-type]
                    if self.stats.amp_refused > refused:
                        self._challenge(data, addr, now)  # too big an answer: prove it first
                    else:
                        self._counter_challenge(addr, now)
                finally:
                    self._budget = None
                self.nat.heard(addr, now)
                return False
            else:
                self._challenge(data, addr, now)
                self.nat.heard(addr, now)
                return False
        return True

    def handle_timer(self, now: float) -> None:
        self._now = now
        cfg = self.config
        wake = now + cfg.tick
        sessions = self.sessions
        for sess in list(sessions.values()):
            self._tick_session(sess, now)
            if sess.key is None and sess.tag in sessions:  # (a listener, still tuned)
                w = self._wake_at(sess, now)
                if w < wake:
                    wake = w
        if now >= self._next_gossip:
            self._next_gossip = now + cfg.gossip_interval * (0.5 + self.rng.random())
            self._gossip(now)
        if self._leaving and not sessions:
            self._leaving = False
            self._events.append(LeaveComplete())
        nat = self.nat
        bw = self.bw
        nat.tick(now)
        bw.tick(now)
        w = nat.wake_at()
        if w < wake:
            wake = w
        w = bw.wake_at()
        if w < wake:
            wake = w
        nxt = now + 0.001
        if wake > nxt:
            nxt = wake
        for sess in sessions.values():
            if sess.paced:
                t = sess.paced[0][0]
                if t < nxt:
                    nxt = t
            if sess.batch:  # seal it on time (see _tick_session)
                full = sess.batch_bytes >= cfg.seal_min_bytes
                age = cfg.seal_max_delay * (1 if full else 3)
                nxt = min(nxt, max(now + 0.001, sess.batch_started + age))
        self._next_tick = nxt
        if self._bulk:
            self._pump_bulk(now)

    # ------------------------------------------------------------------ commands

    def add_seeds(self, seeds: Iterable[Addr]) -> None:
        for s in seeds:
            if s not in self.seeds:
                self.seeds.append(s)

    def tune(self, station_id: bytes, hosts: Iterable[Addr], now: float) -> None:
        """Start receiving a station; ``hosts`` are worth asking first (from a link)."""
        tag = tag_of(station_id)
        old = self.sessions.get(tag)
        if old is not None:
            if old.leaving and not old.is_source:
                # stopped a moment ago and still leaving politely: stay. The parent marked us
                # as leaving: attaching again keeps our slot (see _accept_child; its answer is
                # a repeated one). Our children, told to go, are fed until they have moved.
                old.leaving = False
                if old.parent is not None:  # (not _send_attach: no new parent to wait for)
                    from_seq = old.contig if old.started else wire.FRESH
                    token = self._tokens.get(old.parent, b"")
                    slots = self._slots(old)
                    att = wire.Attach(station_id, self.node_id, from_seq, slots, 0, token)
                    self._send(att.encode(), old.parent)
            return
        sess = Session(station_id=station_id, tag=tag, seeking=True)
        sess.hosts = list(dict.fromkeys(hosts))
        sess.ancestors = self._anc_bits
        self.sessions[tag] = sess
        self._join_round(sess, now)
        self._next_tick = min(self._next_tick, now)

    def untune(self, station_id: bytes, now: float) -> None:
        sess = self.sessions.get(tag_of(station_id))
        if sess is not None and not sess.is_source:
            self._start_leave(sess, now)
            self._next_tick = min(self._next_tick, now)  # (done on the next tick if childless)

    def start_broadcast(
        self, key: StationKey, meta: StationMeta, now: float, *, wall_ms: int | None = None
    ) -> StationRecord:
        """Start broadcasting. ``wall_ms`` (the wall clock, from the driver) keeps record
        versions increasing across restarts and marks a new stream epoch."""
        tag = tag_of(key.station_id)
        sess = Session(station_id=key.station_id, tag=tag, key=key)
        sess.verifier = Verifier(key.public)
        sess.ancestors = self._anc_bits
        sess.packer = Packer(wire.MAX_PAYLOAD, self.config.chunk_max_delay)
        sess.ts0 = now
        sess.started = True
        sess.playing = True
        self.sessions[tag] = sess
        wall = int(now * 1000) if wall_ms is None else wall_ms
        sess.wall_offset = wall - int(now * 1000)
        epoch = (wall // 1000) & 0xFFFFFFFF
        rec = StationRecord(key.public, wall, True, meta, "", _EMPTY_HASH, epoch)
        self._set_record(sess, rec.signed(key))
        return sess.record  # type: ignore[return-value]

    def update_station(
        self,
        station_id: bytes,
        now: float,
        *,
        meta: StationMeta | None = None,
        title: str | None = None,
    ) -> None:
        """Broadcaster: change station info or the now-playing title (signed, relayed)."""
        sess = self.sessions[tag_of(station_id)]
        assert sess.key is not None and sess.record is not None
        rec = sess.record
        version = max(rec.version + 1, int(now * 1000) + sess.wall_offset)
        rec = replace(
            rec, version=version, meta=meta or rec.meta, title=rec.title if title is None else title
        )
        self._set_record(sess, rec.signed(sess.key))

    def set_headers(self, station_id: bytes, headers: bytes, now: float) -> None:
        """Broadcaster: the codec headers a late joiner needs before any audio (e.g. Ogg
        Vorbis identification, comment and setup pages; b"" for none). Their hash goes into the
        signed station record; listeners fetch the bytes from their parent and check them."""
        sess = self.sessions[tag_of(station_id)]
        assert sess.key is not None and sess.record is not None
        headers = bytes(headers)
        if len(headers) > wire.MAX_CODEC_HEADERS:
            raise ValueError(f"codec headers over {wire.MAX_CODEC_HEADERS} bytes")
        h = headers_hash(headers)
        if h == sess.codec_hash:
            return
        self._now = now
        sess.codec_headers = headers
        sess.codec_hash = h
        self._events.append(CodecHeaders(sess.station_id, headers))
        rec = sess.record
        version = max(rec.version + 1, int(now * 1000) + sess.wall_offset)
        self._set_record(sess, replace(rec, version=version, headers_hash=h).signed(sess.key))

    def set_on_air(self, station_id: bytes, on_air: bool, now: float) -> None:
        """Broadcaster: the source stopped (``False``) or came back (``True``). The tree stays
        up while the station is off air, so listeners resume without tuning in again; the
        signed record tells them. Chunk timestamps follow the wall clock through the pause, so
        listeners' playout clocks need no reset: the first new chunk is simply on time."""
        sess = self.sessions[tag_of(station_id)]
        assert sess.key is not None and sess.record is not None
        if sess.record.on_air == on_air:
            return
        self._now = now
        if not on_air:
            assert sess.packer is not None
            for payload, start in sess.packer.flush():
                self._emit_chunk(sess, payload, start, now)
            self._seal(sess, now)
            self._release_paced(sess, now, all_=True)
        rec = sess.record
        version = max(rec.version + 1, int(now * 1000) + sess.wall_offset)
        self._set_record(sess, replace(rec, version=version, on_air=on_air).signed(sess.key))

    def broadcast_frames(self, station_id: bytes, frames: list[Frame], now: float) -> None:
        sess = self.sessions[tag_of(station_id)]
        assert sess.packer is not None
        self._now = now
        for payload, start in sess.packer.push(frames, now):
            self._emit_chunk(sess, payload, start, now)

    def stop_broadcast(self, station_id: bytes, now: float) -> None:
        sess = self.sessions.get(tag_of(station_id))
        if sess is None or sess.key is None:
            return
        assert sess.packer is not None and sess.record is not None
        for payload, start in sess.packer.flush():
            self._emit_chunk(sess, payload, start, now)
        self._seal(sess, now)
        self._release_paced(sess, now, all_=True)
        rec = replace(
            sess.record,
            on_air=False,
            version=max(sess.record.version + 1, int(now * 1000) + sess.wall_offset),
        )
        self._set_record(sess, rec.signed(sess.key))
        self._start_leave(sess, now)

    def leave(self, now: float) -> None:
        """Leave politely: children re-home first; LeaveComplete is reported when done."""
        self._leaving = True
        for sess in list(self.sessions.values()):
            if sess.is_source:
                self.stop_broadcast(sess.station_id, now)
            else:
                self._start_leave(sess, now)
        self._next_tick = min(self._next_tick, now)

    # ------------------------------------------------------------------ address validation

    def _token(self, addr: Addr, minute: int) -> bytes:
        ip, port = addr
        data = f"{ip}|{port}|{minute}".encode()
        return hashlib.blake2b(data, key=self._secret, digest_size=8).digest()

    def _is_valid(self, addr: Addr, now: float) -> bool:
        t = self._valid.get(addr)
        if t is None or now - t > VALID_FOR:
            return False
        self._valid.move_to_end(addr)
        return True

    def validate(self, addr: Addr, now: float) -> None:
        """Count ``addr`` as proven to receive our datagrams (a RESPONSE with our token)."""
        self._valid[addr] = now
        self._valid.move_to_end(addr)
        while len(self._valid) > MAX_VALID:
            self._valid.popitem(last=False)

    def _challenge(self, data: bytes, addr: Addr, now: float) -> None:
        stash = self._stash.get(addr)
        if stash is None:
            stash = self._stash[addr] = []
            while len(self._stash) > MAX_STASHED:
                self._stash.popitem(last=False)
                self.stats.requests_dropped += 1
        else:
            self._stash.move_to_end(addr)
        # one request of a kind per address: a retry replaces the request it repeats
        stash[:] = [d for d in stash if d[3] != data[3]]
        stash.append(bytes(data))
        if len(stash) > STASH_PER_ADDR:
            del stash[0]
            self.stats.requests_dropped += 1
        self.stats.challenges += 1
        self._send(wire.Challenge(self._token(addr, int(now // 60))).encode(), addr)

    def _token_ok(self, addr: Addr, token: bytes, now: float) -> bool:
        if len(token) != 8:
            return False
        minute = int(now // 60)
        return token in (self._token(addr, minute), self._token(addr, minute - 1))

    def _counter_challenge(self, addr: Addr, now: float) -> None:
        """Validation both ways in one exchange: challenge back an address whose padded request
        we answered (within what it sent) if we have not validated it yet."""
        if self._is_valid(addr, now) or now - self._countered.get(addr, -1e9) < 10.0:
            return
        if len(self._countered) > 4096:
            self._countered = {a: t for a, t in self._countered.items() if now - t < 10.0}
        self._countered[addr] = now
        self.stats.challenges += 1
        self._send(wire.Challenge(self._token(addr, int(now // 60))).encode(), addr)

    def _on_challenge(self, msg: wire.Challenge, addr: Addr, now: float) -> None:
        # as small as what came (no challenge back: that would double a spoofed CHALLENGE)
        self._send(wire.Response(msg.token).encode(), addr)
        for sess in self.sessions.values():
            # it is alive and will answer once it has our RESPONSE: wait for that
            if sess.attaching == addr:
                sess.attach_sent = now
            if addr in sess.asked:
                sess.asked[addr] = now

    def _on_response(self, msg: wire.Response, addr: Addr, now: float) -> None:
        if not self._token_ok(addr, msg.token, now):
            self.stats.bad_tokens += 1
            return
        self.validate(addr, now)
        for data in self._stash.pop(addr, ()):
            self.receive_datagram(data, addr, now)

    # ------------------------------------------------------------------ rate limits

    def _allow_request(self, addr: Addr, now: float) -> bool:
        nb = self._node_bucket
        nb[0] = min(NODE_BURST, nb[0] + (now - nb[1]) * NODE_RATE)
        nb[1] = now
        b = self._buckets.get(addr)
        if b is None:
            b = self._buckets[addr] = [PEER_BURST, now]
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)  # (an old, idle one: it starts full again)
        else:
            self._buckets.move_to_end(addr)
            b[0] = min(PEER_BURST, b[0] + (now - b[1]) * PEER_RATE)
            b[1] = now
        if b[0] < 1.0 or nb[0] < 1.0:
            return False
        b[0] -= 1.0
        nb[0] -= 1.0
        return True

    # ------------------------------------------------------------------ misbehaving peers

    def _strike(self, addr: Addr | None, now: float) -> None:
        """``addr`` sent forged data: deprioritise it, then ignore it."""
        if addr is None:
            return
        n = self._strikes.get(addr, 0) + 1
        if len(self._strikes) > 4 * MAX_BANNED:
            self._strikes.clear()
        self._strikes[addr] = n
        for sess in self.sessions.values():
            sess.candidates.pop(addr, None)  # no parent, no helper
        if n < STRIKES_TO_BAN:
            return
        self.stats.banned += 1
        self._banned[addr] = now + BAN_SECONDS
        while len(self._banned) > MAX_BANNED:
            self._banned.popitem(last=False)
        self._valid.pop(addr, None)
        for sess in list(self.sessions.values()):
            if sess.parent == addr:
                self._lose_parent(sess, now, "forged data")
            sess.dead[addr] = now + BAN_SECONDS
            c = sess.children.pop(addr, None)
            if c is not None:
                self._events.append(ChildLeft(sess.station_id, addr, c.node_id, "forged data"))

    # ------------------------------------------------------------------ helpers

    def _send(self, data: bytes, addr: Addr) -> None:
        budget = self._budget
        if budget is not None and addr == budget[0]:
            if len(data) > budget[1]:
                self.stats.amp_refused += 1  # more than the unproven address sent us
                return
            budget[1] -= len(data)
        if self.nat.route(data, addr):
            return  # through its proxy (and a punch): no path to it is open yet
        self._out.append((data, addr))
        st = self.stats
        size = len(data)
        st.datagrams_out += 1
        st.bytes_out += size
        rate = self._tx_rate
        if rate:
            now = self._now
            free = self._tx_free_at
            self._tx_free_at = (now if now >= free else free) + size / rate

    def _send_bulk(self, data: bytes, addr: Addr) -> None:
        """Queue a repair or cushion datagram: it goes out only while the uplink is idle enough,
        so live data (what every child needs next) never waits behind it."""
        if not self._tx_rate:
            self._send(data, addr)
            return
        # earliest deadline first: every listener plays a few seconds behind the broadcaster,
        # so a chunk is due about when the newest chunk we hold is, plus the cushion, minus its
        # age. Key: that time less the cushion (station-neutral, wraps of ts harmless); control
        # datagrams (seals) go first
        key = -_INF
        if data[3] == _DATA:
            sess = self.sessions.get(data[4:8])
            if sess is not None:
                ts = _DATA_TS.unpack_from(data, 12)[0]
                if sess.key is not None:  # our own stream: ts counts from ts0
                    key = sess.ts0 + ts / 1000
                else:
                    age = ((sess.head_ts - ts) & 0xFFFFFFFF) / 1000
                    key = self._now - (age if age < 1e6 else 0.0)
        self._bulk_seq += 1
        heap = self._bulk
        heapq.heappush(heap, (key, self._bulk_seq, data, addr, self._now))
        self._bulk_bytes += len(data)
        if len(heap) > self.config.max_bulk:
            old = max(heap)  # the least urgent goes (its requester asks again elsewhere)
            heap.remove(old)
            heapq.heapify(heap)
            self._bulk_bytes -= len(old[2])
            self.stats.bulk_dropped += 1

    def _pump_bulk(self, now: float) -> None:
        cfg = self.config
        bulk = self._bulk
        limit = now + cfg.bulk_backlog
        while bulk and self._tx_free_at < limit:
            _, _, data, addr, t = heapq.heappop(bulk)
            self._bulk_bytes -= len(data)
            if now - t > cfg.bulk_expiry:
                self.stats.bulk_dropped += 1
                continue
            self._send(data, addr)
        if bulk:  # (never now again: the timer would spin on the same instant)
            wake = max(now + 0.002, self._tx_free_at - cfg.bulk_backlog)
            self._next_tick = min(self._next_tick, wake)

    def _fill_allowed(self, sess: Session, cost: int, now: float) -> bool:
        """Token bucket of spare upload for gap-filling chunks sent with live priority: a
        lost chunk passed on (or resent) at once costs little, a burst does not fit."""
        bitrate = self._bitrate(sess) or 128
        floor = 0.03 * bitrate * 125  # the slot headroom (~3 % of the stream) at least
        rate = max(floor, self._spare16(sess) * bitrate * 125 / 16)
        cap = rate + 2 * wire.MAX_DATAGRAM * max(1, len(sess.children))
        sess.fill_tokens = min(cap, sess.fill_tokens + (now - sess.fill_at) * rate)
        sess.fill_at = now
        if sess.fill_tokens < cost:
            return False
        sess.fill_tokens -= cost
        return True

    def _upload(self) -> float:
        """Upload capacity in kbit/s: configured, else measured, else 0 (unknown)."""
        return self.config.upload_kbps or self.bw.measured_kbps

    def _set_measured_upload(self, kbps: float) -> None:
        if self.config.upload_kbps > 0:
            return
        self._tx_rate = kbps * 125.0
        for sess in self.sessions.values():
            # more children than the link carries: the weakest move (fed while they do)
            while sess.active_children() > self._slots(sess) and self._shed_weakest(sess):
                pass

    def _bitrate(self, sess: Session) -> int:
        rec = sess.record
        return rec.meta.bitrate if rec is not None else sess.bitrate_hint

    def _spare16(self, sess: Session) -> int:
        """Spare upload for repairs and cushions, in 1/16 of the stream's bitrate (255: plenty
        or unknown). Live data to every child (leaving ones too) comes first."""
        bitrate = self._bitrate(sess)
        if not self._tx_rate or not bitrate:
            return 255
        cfg = self.config
        used = len(sess.children) * bitrate / cfg.slot_headroom
        queued = self._bulk_bytes * 8 / 1000 / cfg.bulk_expiry  # kbit/s already promised
        spare = self._upload() * 0.97 - used - queued
        return max(0, min(254, int(16 * spare / bitrate)))

    def _busy(self) -> bool:
        """Our uplink queue is long: answer only what live data needs."""
        return self.backlog() > self.config.busy_backlog

    def backlog(self) -> float:
        """Seconds of data queued in our uplink, estimated from the known upload capacity."""
        return max(0.0, self._tx_free_at - self._now) if self._tx_rate else 0.0

    def _learn(
        self, addr: Addr, node_id: bytes, tag: bytes | None, now: float, slots: int | None = None
    ) -> HostRec:
        """We heard from ``addr`` directly."""
        hosts = self.hosts
        rec = hosts.get(addr)
        if rec is None:
            rec = hosts.add(addr, HostRec(node_id, tag or _NO_TAG, now))
            assert rec is not None  # (first-hand entries are always taken)
        else:
            rec.node_id = node_id
            rec.last_heard = now
            hosts.heard(addr, rec)
            if tag is not None:
                hosts.set_tag(addr, tag)
        rec.asked = None
        if slots is not None:
            rec.slots = slots
        if rec.tag != _NO_TAG:
            sid = self.tag_station.get(rec.tag)
            if sid is not None:
                self.directory[sid].last_alive = now
        return rec

    def _my_tag(self) -> bytes:
        for tag, sess in self.sessions.items():
            if sess.in_tree and not sess.leaving:
                return tag
        return _NO_TAG

    def _set_record(self, sess: Session, rec: StationRecord) -> None:
        old = sess.record
        sess.record = rec
        sess.record_raw = rec.encode()
        if sess.verifier is None:
            sess.verifier = Verifier(rec.public_key)
        raw = wire.StationMsg(sess.record_raw).encode()
        for caddr in sess.children:
            self._send(raw, caddr)
        self._directory_put(rec, sess.record_raw, self._now)
        self._events.append(StationUpdated(rec, old is None or old.title != rec.title))
        if sess.needs_headers() and sess.parent is not None:
            self._request_headers(sess, self._now)
        pend, sess.pending_seals = sess.pending_seals, []
        for seal in pend:
            self._on_seal(wire.decode(seal), None, self._now)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ discovery

    def _gossip(self, now: float) -> None:
        """About twice a second: ask a random host for more hosts (and now and then stations)."""
        cfg = self.config
        addr = None
        for _ in range(4):
            addr = self.hosts.random()
            if addr is None:
                break
            h = self.hosts.get(addr)
            assert h is not None
            silent = h.asked is not None and now - h.asked > 10.0
            if silent or now - h.last_heard > cfg.host_expiry:
                self.hosts.remove(addr)  # stopped answering
                addr = None
                continue
            break
        if addr is None:
            if not self.seeds:
                return
            addr = self.rng.choice(self.seeds)
        else:
            h = self.hosts.get(addr)
            if h is not None and h.asked is None:
                h.asked = now
        self._req_id += 1
        self._hello_count += 1
        # station info every 8th request (every 4 s; every other one in our first 10 s): the
        # records are the largest gossip, and on a nearly full uplink every byte counts
        n = self._hello_count
        want = n % 8 == 1 or (n % 2 == 1 and n < 20)
        flags = wire.HELLO_WANT_STATIONS if want else 0
        tag = self._my_tag()
        sess = self.sessions.get(tag)
        if sess is not None and sess.is_source:
            flags |= wire.HELLO_SOURCE
        self._send(self._hello_req(tag, flags), addr)
        # the directory: drop stations offline for too long
        for sid in [s for s, until in self.expired.items() if until < now]:
            del self.expired[sid]
        for sid in [
            s for s, e in self.directory.items() if now - e.last_alive > cfg.station_expiry
        ]:
            self.expired[sid] = now + cfg.station_expiry  # gossip must not bring it back
            entry = self.directory.pop(sid)
            self.tag_station.pop(entry.record.station_id[:4], None)

    def _hello_req(self, tag: bytes, flags: int) -> bytes:
        """A gossip request (``self._req_id`` already advanced), telling about us."""
        nat = self.nat
        req = wire.HelloReq(
            self._req_id, self.node_id, tag, flags, self._capacity(), nat.reach,
            nat.advertised_proxy, nat.lan,
        )  # fmt: skip
        return req.encode()

    def _hello(self, req_id: int, addr: Addr, hosts: list[wire.HostEntry]) -> bytes:
        """A gossip answer to ``addr`` (0: unasked, introducing hosts behind NATs)."""
        nat = self.nat
        tag = self._my_tag()
        hello = wire.Hello(
            req_id, self.node_id, tag, addr, hosts, nat.reach, nat.advertised_proxy, nat.lan
        )
        return hello.encode()

    @staticmethod
    def _host_entry(addr: Addr, h: HostRec, age: int) -> wire.HostEntry:
        return wire.HostEntry(h.node_id, h.tag, addr, h.slots, age, h.reach, h.proxy, h.lan)

    def _on_hello_req(self, msg: wire.HelloReq, addr: Addr, now: float) -> None:
        if msg.node_id == self.node_id:
            return  # ourselves (a link or seed naming our own address)
        rec = self._learn(addr, msg.node_id, msg.tag, now, msg.slots)
        rec.source = bool(msg.flags & wire.HELLO_SOURCE)
        rec.reach, rec.proxy, rec.lan = msg.reach, msg.proxy, msg.lan
        self.nat.consider_lan(addr, rec, now)
        if self._busy():
            self.stats.busy_dropped += 1  # gossip can wait while live data is backed up
            return
        hosts: list[wire.HostEntry] = []
        seen = {addr}
        for a in self.nat.neighbours(addr):  # its LAN neighbours first: it feeds on its LAN
            h = self.hosts.get(a)
            if h is not None and now - h.last_heard < self.config.host_expiry:
                seen.add(a)
                hosts.append(self._host_entry(a, h, int(now - h.last_heard)))
        for _ in range(14):
            a = self.hosts.random()
            if a is None or len(hosts) >= self.config.hello_hosts:
                break
            if a in seen:
                continue
            seen.add(a)
            h = self.hosts.get(a)
            assert h is not None
            age = int(now - h.last_heard)
            if age < self.config.host_expiry:
                hosts.append(self._host_entry(a, h, age))
        self._send(self._hello(msg.req_id, addr, hosts), addr)
        if msg.flags & wire.HELLO_WANT_STATIONS and self.directory:
            entries = list(self.directory.values())
            for entry in self.rng.sample(entries, min(1, len(entries))):
                self._send(wire.StationMsg(entry.raw).encode(), addr)

    def _on_hello(self, msg: wire.Hello, addr: Addr, now: float) -> None:
        if msg.node_id == self.node_id:
            return  # ourselves
        rec = self._learn(addr, msg.node_id, msg.tag, now)
        rec.reach, rec.proxy, rec.lan = msg.reach, msg.proxy, msg.lan
        self.nat.consider_lan(addr, rec, now)
        if addr not in self.nat.lan_peers:  # (a LAN neighbour sees our LAN address)
            self.observed = msg.observed
            self.nat.observed(addr, msg.observed)
            self.nat.consider_lan(addr, rec, now)  # (again: our public address may be new)
        for h in msg.hosts:
            if h.node_id == self.node_id:
                continue
            known = self.hosts.get(h.addr)
            if known is None:
                # second-hand: as old as the sender says, so dead hosts do not live on in gossip
                heard = now - max(h.age, 0) - 1.0
                if now - heard < self.config.host_expiry:
                    rec = HostRec(h.node_id, h.tag, heard, h.slots, direct=False)
                    rec.reach, rec.proxy, rec.lan = h.reach, h.proxy, h.lan
                    if self.hosts.add(h.addr, rec) is None:
                        continue  # (refused: see HostList)
                    self.nat.consider_lan(h.addr, rec, now)
            elif h.proxy is not None and known.proxy != h.proxy and h.age < now - known.last_heard:
                known.proxy, known.reach = h.proxy, h.reach  # fresher news of its proxy
            else:
                continue
            if h.proxy is not None:
                # a request sent straight to it was dropped by its router: ask again, via proxy
                for sess in self.sessions.values():
                    if sess.asked.pop(h.addr, None) is not None and sess.seeking:
                        sess.next_round = min(sess.next_round, now)

    # ------------------------------------------------------------------ joining (child side)

    def _join_round(self, sess: Session, now: float) -> None:
        """Ask hosts likely to be in the station's tree for offers (the first few: attach me)."""
        cfg = self.config
        sess.next_round = now + min(2.0, cfg.join_retry * 2 ** min(sess.rounds, 4))
        sess.rounds += 1
        sess.round_asks = 0
        sess.padded = 0
        self._forget_old_asks(sess, now)
        tuned = self.hosts.tuned(sess.tag)
        self.rng.shuffle(tuned)
        likely: list[Addr] = [a for a in tuned if a in self.nat.lan_peers]  # our LAN first
        if sess.backup:
            likely.append(sess.backup)
        likely += sess.hosts
        likely += tuned
        others = [*self.seeds]
        for _ in range(4):
            a = self.hosts.random()
            if a is not None:
                others.append(a)
        # re-homing: not the broadcaster (unless it is our grandparent, or nobody else had
        # room for a while). Its one slot is taken; it is in every listener's link, and its
        # OFFERs to every re-homing node would take the spare upload its repairs need (at
        # 2,000 listeners, about a third of the stream's rate)
        skip = self._source_skip(sess)
        sent = 0
        for a in dict.fromkeys(likely + others):
            if a == sess.parent or a == skip or self._is_dead(sess, a, now):
                continue
            if now - sess.asked.get(a, -1e9) < 1.0:
                continue  # asked just now (one unanswered a second ago is asked again: lost)
            if not self.nat.can_reach(a):
                continue
            attach = sess.parent is None and sent < cfg.attach_fanout and a in likely
            self._ask(sess, a, now, attach=attach)
            sent += 1
            if sent >= 8:
                break

    def _source_skip(self, sess: Session) -> Addr | None:
        """The broadcaster's address while a re-homing node should not ask it (see
        _join_round), else None. Only in a large audience: in a small one its OFFERs cost
        little, and it is the one node sure to hold every chunk and to be honest."""
        if (
            sess.source is None
            or not sess.started
            or sess.rounds > SOURCE_ASK_ROUNDS
            or sess.source == sess.backup
        ):
            return None
        if self.hosts.tuned_count(sess.tag) < SOURCE_SKIP_AUDIENCE:
            return None
        return sess.source

    def _lan_found(self, lan: Addr, now: float) -> None:
        """A new LAN neighbour (at ``lan``): if it is on a station we are fed from outside the
        LAN, ask it for an offer (see _on_offer: we may move under it)."""
        rec = self.hosts.get(lan)
        sess = self.sessions.get(rec.tag) if rec is not None else None
        if sess is None or sess.is_source or sess.leaving or sess.parent in self.nat.lan_peers:
            return
        if lan == sess.parent or lan in sess.children or lan in sess.asked:
            return
        self._ask(sess, lan, now, attach=sess.parent is None)

    def _lan_move(self, sess: Session, c: Candidate, now: float) -> None:
        """Fed from outside the LAN, offered a place by a LAN neighbour: move under it (the
        station's traffic then enters the LAN once). Of two neighbours the one nearer the
        broadcaster (then the lower node id) feeds the other, so they never both move; one
        that cannot relay moves under one that can."""
        if sess.parent is None or sess.parent in self.nat.lan_peers or sess.attaching:
            return
        if c.free <= 0 or c.depth + 1 >= MAX_DEPTH:
            return
        if self._slots(sess) > 0 and (c.depth, c.node_id) >= (sess.depth, self.node_id):
            return  # (one that cannot relay moves whatever the depths: its peer cannot)
        self._send_attach(sess, c.addr, now)

    @staticmethod
    def _forget_old_asks(sess: Session, now: float) -> None:
        for d in (sess.asked, sess.answered):  # bounded memory
            for a in [a for a, t in d.items() if now - t > 10.0]:
                del d[a]

    def _ask(self, sess: Session, addr: Addr, now: float, *, attach: bool = False) -> None:
        sess.round_asks += 1
        self._req_id += 1
        sess.asked[addr] = now
        # after a few rounds, or when we were displaced to make room: a last free slot too
        last = sess.rounds >= 2 or now < sess.displaced_until
        flags = wire.ATTACH_LAST if last else 0
        if now < sess.orphan_until:
            flags |= wire.ATTACH_ORPHAN
        if attach:
            flags |= wire.JOIN_ATTACH
            sess.intents[addr] = now
        from_seq = sess.contig if sess.started else wire.FRESH
        req = wire.JoinReq(
            sess.station_id, self._req_id, self.node_id, flags, self._slots(sess), from_seq
        )
        if sess.seeking and sess.padded < JOIN_PADDED and not self._is_valid(addr, now):
            sess.padded += 1
            # tuning in or re-homing (time counts), to a node that may not know us: room for
            # its OFFER, or it could only answer with a CHALLENGE (a round trip more). Other
            # asks (refreshing backups) are not in a hurry: they take the round trip.
            req.pad = JOIN_PAD - 38
        self._send(req.encode(), addr)
        h = self.hosts.get(addr)
        if h is not None and h.asked is None:
            h.asked = now

    def _is_dead(self, sess: Session, addr: Addr, now: float) -> bool:
        until = sess.dead.get(addr)
        if until is None:
            return False
        if until < now:
            del sess.dead[addr]
            return False
        return True

    def _on_offer(self, msg: wire.Offer, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.station_id[:4])
        if sess is None or sess.station_id != msg.station_id or sess.is_source:
            return
        asked = sess.asked.pop(addr, None)
        if asked is None:
            self.stats.unexpected += 1  # we did not ask (or it answered twice)
            return
        sess.answered[addr] = now
        if len(msg.token) == 8:
            self._tokens[addr] = msg.token
            self._tokens.move_to_end(addr)
            if len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        in_tree = bool(msg.flags & wire.OFFER_IN_TREE)
        if msg.flags & wire.OFFER_SOURCE and in_tree:
            sess.source = addr
        if msg.bitrate and not sess.bitrate_hint:
            sess.bitrate_hint = msg.bitrate
        self._learn(addr, msg.node_id, sess.tag if in_tree else None, now, msg.slots)
        rtt = now - asked if asked is not None else 1.0
        if in_tree and not self._below(msg.ancestors):
            sess.candidates[addr] = Candidate(
                addr,
                msg.node_id,
                msg.free,
                _depth(msg.depth, msg.ancestors),
                msg.ancestors,
                now,
                rtt,
                msg.weakest,
                msg.spare,
            )
            if addr in self.nat.lan_peers:
                self._lan_move(sess, sess.candidates[addr], now)
            mine = self._slots(sess)
            usable = msg.free > 0 or (mine > 0 and msg.weakest < mine)
            if sess.seeking and usable and sess.window_end is None:
                sess.window_end = now + self.config.offer_window
        if sess.seeking:
            self._report_referred_forgers(sess, msg.referrals, addr, now)
            skip = self._source_skip(sess)
            for ref in msg.referrals:
                if sess.round_asks >= self.config.max_round_asks:
                    break  # enough for this round: the next one comes after a backoff
                fresh = now - sess.answered.get(ref, -1e9) < 2.0
                if (
                    ref not in sess.asked
                    and not fresh
                    and ref != sess.parent
                    and ref != skip
                    and not self._is_dead(sess, ref, now)
                    and self.nat.can_reach(ref)
                ):
                    self._ask(sess, ref, now, attach=sess.parent is None)
            # everyone asked recently has answered: no need to wait for the window
            waiting = any(now - t < 0.5 for t in sess.asked.values())
            if sess.window_end is not None and sess.attaching is None and not waiting:
                self._attach_best(sess, now)
        self._next_tick = min(self._next_tick, sess.window_end or self._next_tick)

    def _attach_best(self, sess: Session, now: float) -> bool:
        """Attach to the best fresh candidate with room, else displace a weaker child."""
        sess.window_end = None
        mine = self._slots(sess)
        best: Candidate | None = None
        best_key: tuple[int, int, int, int, float] | None = None
        lan = self.nat.lan_peers
        for c in sess.candidates.values():
            if c.addr == sess.parent or self._is_dead(sess, c.addr, now):
                continue
            if now - c.heard > 30.0 or self._below(c.ancestors) or c.depth >= MAX_DEPTH:
                continue
            # a node on our LAN first (the station's traffic enters the LAN once), then the
            # shallowest place: a free slot, or a weaker child we may displace
            far = 0 if c.addr in lan else 1
            if c.free > 0:
                key = (far, c.depth, 0, -c.free, c.rtt)
            elif mine > 0 and c.weakest < mine:
                key = (far, c.depth, 1, c.weakest, c.rtt)
            else:
                continue
            if best_key is None or key < best_key:
                best, best_key = c, key
        if best is None or best_key is None:
            return False
        self._send_attach(sess, best.addr, now, wire.ATTACH_PREEMPT if best_key[2] else 0)
        return True

    def _on_attach_ok(self, msg: wire.AttachOk, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.station_id[:4])
        if sess is None or sess.station_id != msg.station_id or sess.is_source:
            return
        wanted = addr == sess.attaching or (
            addr in sess.intents and (sess.parent is None or sess.parent_leaving)
        )
        if addr == sess.parent and (sess.started or addr != sess.attaching):
            return  # a repeated answer
        loop = self._below(msg.ancestors) or msg.depth >= MAX_DEPTH
        if not wanted or loop:
            # an answer we no longer want (or a loop): tell it so it frees the slot
            self._send(wire.Detach(sess.tag, self.node_id).encode(), addr)
            sess.attach_targets.pop(addr, None)
            if loop:
                sess.dead[addr] = now + 10.0
            if addr == sess.attaching:
                sess.attaching = None
            return
        rehome = sess.started
        old = sess.parent
        if old is not None and old != addr:
            self._send(wire.Detach(sess.tag, self.node_id).encode(), old)
            if not sess.parent_leaving:
                # we moved: our old parent has a slot now, for whoever we displaced
                sess.vacated = old
                sess.vacated_at = now
        if addr == sess.attaching:
            sess.rtt = max(0.001, now - sess.attach_sent)
        elif addr in sess.intents:
            sess.rtt = max(0.001, now - sess.intents[addr])
        sess.attaching = None
        sess.intents.clear()
        sess.attach_targets.pop(addr, None)
        sess.seeking = False
        sess.rounds = 0
        sess.window_end = None
        sess.parent = addr
        sess.orphaned_at = _INF
        sess.parent_id = msg.node_id
        sess.parent_last = now
        sess.parent_leaving = False
        sess.parent_since = now
        sess.parent_got = sess.got = sess.got_parent = 0
        # (not the broadcaster: it is never a dropper of its own station, and leaving it may
        # leave us nobody to listen to)
        sess.parent_promised = (
            msg.head_seq != wire.FRESH and msg.head_seq >= msg.start_seq and msg.depth > 0
        )
        sess.check_at = -1.0
        sess.check_parent_head = -1
        sess.parent_data = False
        sess.promised_head = sess.parent_head = msg.head_seq if sess.parent_promised else -1
        sess.starve_streak = 0
        sess.depth = _depth(msg.depth, msg.ancestors) + 1
        sess.ancestors = msg.ancestors | self._anc_bits
        sess.candidates.pop(addr, None)
        sess.next_cstat = now
        sess.next_refresh = now + self.config.refresh_interval * (0.5 + self.rng.random())
        sess.next_reshuffle = now + self.config.refresh_interval * (1 + self.rng.random())
        if sess.record is not None and msg.epoch != sess.record.epoch:
            # the parent still relays the stream before a restart (it will hear of it soon):
            # keep it as parent, start when it is on the new stream (we ask again)
            sess.next_restart_attach = now + 0.5
        elif not sess.started:
            sess.started = True
            sess.attached_at = now
            sess.low = sess.contig = sess.play_next = msg.start_seq
            sess.head = msg.start_seq - 1
        if msg.head_seq != wire.FRESH and msg.head_seq >= sess.known_head:
            sess.known_head = msg.head_seq
        # the parent pushes the first chunks at once; the rest (cushion or gap, up to its
        # head) we fetch now, from it and from peers with spare upload
        sess.parent_spare = 4
        sess.requested.clear()  # asked of others before: a new parent, a new start
        sess.repair_top = -1
        sess.repair_due = 0.0
        if msg.head_seq != wire.FRESH:
            top = min(msg.head_seq, msg.start_seq + self.config.push_chunks - 1)
            for seq in range(max(msg.start_seq, sess.contig), top + 1):
                if seq not in sess.history:
                    sess.requested[seq] = (now + max(0.3, 3 * sess.rtt), 0)
            sess.settled_head = sess.settling_head = max(sess.settled_head, msg.head_seq)
            sess.settled_at = now
        if rehome:
            self.stats.rehomes += 1
        self._send_pstat(sess, now)
        self._learn(addr, msg.node_id, sess.tag, now)
        self._events.append(Tuned(sess.station_id, addr, msg.node_id, sess.depth, rehome))
        if sess.needs_headers():
            self._request_headers(sess, now)
        if sess.started:
            self._request_repairs(sess, now)

    def _lost_attach_ok(self, sess: Session, addr: Addr, now: float) -> None:
        """Data from a node we asked to take us, without its ATTACH_OK: the answer was lost
        (or is late). Still looking for a parent: ask it again, it answers at once (a child
        asking again gets ATTACH_OK again). Found one meanwhile: free its slot."""
        if now < sess.attach_targets.get(addr, now):
            return  # we asked again: data it sent before our ask reached it is still coming
        seeking = sess.parent is None or sess.parent_leaving
        if seeking and sess.attaching not in (None, addr):
            return  # waiting for another answer: decide when it comes
        sess.intents.pop(addr, None)
        if seeking:
            self.stats.lost_attach_ok += 1
            sess.dead.pop(addr, None)
            # (our ask to its first data: a round trip, and then some)
            rtt = now - sess.attach_sent if sess.attaching == addr else 0.3
            self._send_attach(sess, addr, now)
            sess.attach_targets[addr] = now + 1.5 * max(rtt, 0.05)
        else:
            sess.attach_targets.pop(addr, None)
            self._send(wire.Detach(sess.tag, self.node_id).encode(), addr)

    def _on_attach_no(self, msg: wire.AttachNo, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.station_id[:4])
        if sess is None or sess.station_id != msg.station_id:
            return
        sess.attach_targets.pop(addr, None)
        if addr != sess.attaching:
            return
        sess.attaching = None
        sess.candidates.pop(addr, None)
        if msg.reason in (wire.NO_LOOP, wire.NO_LEAVING, wire.NO_NOT_IN_TREE):
            sess.dead[addr] = now + 10.0
        if not sess.seeking:
            return  # a reshuffle attempt that did not work out: stay where we are
        self._report_referred_forgers(sess, msg.referrals, addr, now)
        skip = self._source_skip(sess)
        for ref in msg.referrals:
            if ref != sess.parent and ref != skip and not self._is_dead(sess, ref, now):
                self._ask(sess, ref, now)
        if not self._attach_best(sess, now):
            sess.next_round = min(sess.next_round, now + 0.05)

    # ------------------------------------------------------------------ parent side

    def _referrals(self, sess: Session, exclude: Addr | None = None) -> list[Addr]:
        kids = sorted(sess.children.items(), key=lambda kv: -kv[1].free)
        refs = [a for a, c in kids if a != exclude and not c.leaving]
        if sess.vacated is not None and self._now - sess.vacated_at < 5.0:
            refs.insert(0, sess.vacated)  # the slot we left when we moved up
        if len(refs) < wire.MAX_REFERRALS:
            tuned = self.hosts.tuned(sess.tag)
            if len(tuned) > wire.MAX_REFERRALS:
                tuned = self.rng.sample(tuned, wire.MAX_REFERRALS)
            refs += [a for a in tuned if a not in refs and a != exclude]
        return refs[: wire.MAX_REFERRALS]

    def _on_join_req(self, msg: wire.JoinReq, addr: Addr, now: float) -> None:
        if msg.node_id == self.node_id:
            return  # ourselves
        self._learn(addr, msg.node_id, None, now, msg.slots)
        sess = self.sessions.get(msg.station_id[:4])
        ok = sess is not None and sess.station_id == msg.station_id and sess.in_tree
        if ok and sess is not None and not sess.leaving:
            # "attach me if you have room": a free slot only, never displacing a child for a
            # joiner that may well choose another parent
            intent = msg.flags & wire.JOIN_ATTACH
            lo_flags = msg.flags & (wire.ATTACH_LAST | wire.ATTACH_ORPHAN)
            if intent and self._admit(sess, addr, msg.node_id, msg.slots, lo_flags):
                self._accept_child(sess, addr, msg.node_id, msg.slots, msg.from_seq, now)
                return
            if self._busy() and addr not in sess.children:
                # our uplink is backed up (a flash crowd asking the broadcaster in its link):
                # live data first; the joiner has asked others as well
                self.stats.busy_dropped += 1
                return
            self._drop_silent(sess, now, bool(msg.flags & wire.ATTACH_ORPHAN))
            slots = self._slots(sess)
            free = sess.free_slots(slots)
            last_ok = msg.flags & wire.ATTACH_LAST
            if free == 1 and msg.slots == 0 and self.config.reserve_last_slot and not last_ok:
                free = 0  # our last slot is for a joiner that can relay
            weak = self._weakest(sess)
            weakest = weak[1].slots if weak is not None and free == 0 else 255
            offer = wire.Offer(
                msg.station_id,
                msg.req_id,
                self.node_id,
                wire.OFFER_IN_TREE | (wire.OFFER_SOURCE if sess.is_source else 0),
                free,
                slots,
                sess.depth,
                max(sess.head, 0),
                sess.ancestors,
                self._referrals(sess, addr),
                weakest,
                sess.record.meta.bitrate if sess.record is not None else 0,
                self._spare16(sess),
                self._token(addr, int(now // 60)),
            )
        else:
            refs = self.hosts.tuned(msg.station_id[:4])
            refs = [a for a in refs if a != addr]
            if len(refs) > wire.MAX_REFERRALS:
                refs = self.rng.sample(refs, wire.MAX_REFERRALS)
            offer = wire.Offer(
                msg.station_id, msg.req_id, self.node_id, 0, 0, 0, 255, 0, 0, refs,
                token=self._token(addr, int(now // 60)),
            )  # fmt: skip
        self._introduce(addr, offer.referrals)
        self._send(offer.encode(), addr)

    def _introduce(self, addr: Addr, refs: list[Addr]) -> None:
        """Before referring ``addr`` to hosts behind NATs: tell it their proxies (a HELLO), or
        its first datagrams to them would be dropped by their routers."""
        entries = []
        for a in refs:
            h = self.hosts.get(a)
            if h is not None and (h.proxy is not None or h.lan is not None):
                entries.append(self._host_entry(a, h, int(self._now - h.last_heard)))
        if entries:
            self._send(self._hello(0, addr, entries), addr)

    def _on_attach(self, msg: wire.Attach, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.station_id[:4])
        if sess is None or sess.station_id != msg.station_id or not sess.in_tree:
            refs = [a for a in self.hosts.tuned(msg.station_id[:4]) if a != addr]
            refs = refs[: wire.MAX_REFERRALS]
            self._introduce(addr, refs)
            self._send(wire.AttachNo(msg.station_id, wire.NO_NOT_IN_TREE, refs).encode(), addr)
            return
        if sess.leaving:
            refs = self._referrals(sess, addr)
            self._introduce(addr, refs)
            self._send(wire.AttachNo(msg.station_id, wire.NO_LEAVING, refs).encode(), addr)
            return
        if self._above(sess, msg.node_id) or addr == sess.parent:
            self._send(wire.AttachNo(msg.station_id, wire.NO_LOOP, []).encode(), addr)
            return
        if not self._admit(sess, addr, msg.node_id, msg.slots, msg.flags):
            refs = self._referrals(sess, addr)
            self._introduce(addr, refs)
            self._send(wire.AttachNo(msg.station_id, wire.NO_FULL, refs).encode(), addr)
            return
        self._accept_child(sess, addr, msg.node_id, msg.slots, msg.from_seq, now)

    def _start_seq(self, sess: Session, from_seq: int) -> int:
        hist = sess.history
        if sess.head < 0 or not hist:
            return (
                sess.head + 1
                if sess.head >= 0
                else (sess.next_seq if sess.is_source else sess.contig)
            )
        if from_seq == wire.FRESH:
            target = (sess.head_ts - int(self.config.cushion_seconds * 1000)) & 0xFFFFFFFF
            seq = sess.head
            best = sess.head
            while seq >= sess.low:
                d = hist.get(seq)
                if d is not None and d[16] & wire.DATA_FRAME_START:
                    best = seq
                    ts = _SEQ_TS.unpack_from(d, 8)[1]
                    if (ts - target) & 0x80000000:  # ts < target
                        break
                seq -= 1
            return best
        if from_seq < sess.low:
            seq = sess.low
            while seq <= sess.head:
                d = hist.get(seq)
                if d is not None and d[16] & wire.DATA_FRAME_START:
                    return seq
                seq += 1
            return sess.head + 1
        return from_seq

    def _on_cstat(self, msg: wire.CStat, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None:
            return
        child = sess.children.get(addr)
        if child is None or child.node_id != msg.node_id:
            self.stats.unexpected += 1
            return
        child.last_heard = now
        child.free = msg.free
        child.slots = msg.slots
        child.loss = msg.loss

    def _on_detach(self, msg: wire.Detach, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None:
            return
        child = sess.children.get(addr)
        if child is not None and child.node_id == msg.node_id:
            del sess.children[addr]
            self._events.append(ChildLeft(sess.station_id, addr, child.node_id, "detach"))

    def _report_forger(
        self, sess: Session, forger: Addr, to: Addr | None, now: float, accused: bytes = b""
    ) -> None:
        """Tell ``to`` (the forger's parent, or a peer that referred us to the forger) that
        ``forger`` (node id ``accused``, else as our host list knows it) sent us forged data;
        once per pair per FORGER_REPORT_EVERY s."""
        if to is None or to == forger or sess.is_source:
            return
        if sess.source is not None and to != sess.source:
            return  # (only the broadcaster acts on these: see _on_report)
        if not accused:
            rec = self.hosts.get(forger)
            accused = rec.node_id if rec is not None else b""
        if len(accused) != 8:
            return
        told = self._forgers_told
        if now - told.get((to, forger), -1e9) < FORGER_REPORT_EVERY:
            return
        told[(to, forger)] = now
        told.move_to_end((to, forger))
        while len(told) > MAX_BANNED:
            told.popitem(last=False)
        self._send(wire.Report(sess.tag, self.node_id, accused, wire.REPORT_FORGED).encode(), to)
        self.stats.reports_sent += 1

    def _report_referred_forgers(
        self, sess: Session, referrals: list[Addr], addr: Addr, now: float
    ) -> None:
        """``addr`` referred us to peers; those we banned for forged data may be its children
        (a forger in the broadcaster's slot cuts off everyone): tell it."""
        if self._banned:
            for ref in referrals:
                if self._banned.get(ref, 0.0) > now:
                    self._report_forger(sess, ref, addr, now)

    def _on_report(self, msg: wire.Report, addr: Addr, now: float) -> None:
        """A grandchild left its parent, our child, for starving it (or banned it for forged
        data; or a peer we referred to our child found it forging). Reports from
        ``expel_reports`` networks within REPORT_WINDOW s: cut that child off (LEAVE with no
        grace) and refuse it as a child for EXPEL_SECONDS. A false report costs an honest
        child one re-homing; it takes reporters in several networks (validated addresses:
        reports are challenged like requests), and only ever about our own children."""
        sess = self.sessions.get(msg.tag)
        caddr = None
        # forged data: only the broadcaster cuts a forger off. Elsewhere a forger its children
        # left harms nobody where it is, and cut off it roams and takes new children to
        # forge to (200 peers, 20 % tamperers: honest continuity 0.768 -> 0.685 when every
        # parent did); in the broadcaster's slots it cuts everyone off
        forged_ok = msg.reason == wire.REPORT_FORGED and sess is not None and sess.is_source
        if (
            sess is not None
            and (msg.reason == wire.REPORT_STARVING or forged_ok)
            and self.config.expel_reports
        ):
            for a, c in sess.children.items():
                if c.node_id == msg.accused and a != addr:
                    caddr = a
                    break
        if sess is None or caddr is None:
            self.stats.reports_ignored += 1
            return
        for a in [a for a in self._reports if a not in sess.children]:
            del self._reports[a]
        seen = self._reports.setdefault(caddr, {})
        for net in [n for n, t in seen.items() if now - t > REPORT_WINDOW]:
            del seen[net]
        seen[prefix(addr)] = now
        need = self.config.expel_reports
        child = sess.children[caddr]
        if msg.reason == wire.REPORT_FORGED and child.free >= child.slots:
            # a forger nobody stays with, in the broadcaster's slot: one network's word is
            # enough (a false report costs that one childless node a re-homing, where two
            # tamperers in a 2-slot broadcaster cut everyone off for 5-10 s until a second
            # network had found each out)
            need = 1
        if len(seen) < need:
            return
        del self._reports[caddr]
        del sess.children[caddr]
        self._send(wire.Leave(sess.tag, 0, []).encode(), caddr)
        self._events.append(ChildLeft(sess.station_id, caddr, child.node_id, "reported"))
        self.stats.expelled += 1
        self._expelled[child.node_id] = now + EXPEL_SECONDS
        self._expelled.move_to_end(child.node_id)
        while len(self._expelled) > MAX_BANNED:
            self._expelled.popitem(last=False)

    def _on_nack(self, msg: wire.Nack, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None:
            return
        child = sess.children.get(addr)
        if child is not None:
            child.last_heard = now
            if not msg.ranges:
                return  # asks for nothing (found by bench fuzz: msg.ranges[0] raised)
            wanted = sum(c for _, c in msg.ranges)
            if wanted == 0 and msg.ranges:
                self._serve(sess, addr, msg.ranges, push=1)  # seals only: small, needed now
            elif wanted <= 2 and sess.head - msg.ranges[0][0] < 128:
                # a chunk or two of the live stream lost on the way: resend at once (tiny);
                # lost above us too: pass it on the moment our own repair brings it
                self._serve(sess, addr, msg.ranges, push=wanted)
                self._remember_wants(sess, addr, msg.ranges, now)
            elif self._tx_rate and self._fill_allowed(sess, wanted * 1300, now):
                self._serve(sess, addr, msg.ranges, push=wanted)  # our spare allows it now
            else:
                self._serve(sess, addr, msg.ranges)
        elif addr in self.hosts:
            # a helper request from a known host: only from spare upload, fewer chunks, and
            # no more than HELP_RATE per second to one address
            b = self._help_buckets.get(addr)
            if b is None:
                b = self._help_buckets[addr] = [HELP_BURST, now]
                if len(self._help_buckets) > MAX_BUCKETS:
                    self._help_buckets.popitem(last=False)
            else:
                self._help_buckets.move_to_end(addr)
                b[0] = min(HELP_BURST, b[0] + (now - b[1]) * HELP_RATE)
                b[1] = now
            if b[0] < 1.0:
                self.stats.rate_limited += 1
                return
            served = self.stats.repairs_served
            self._serve(sess, addr, msg.ranges, helper=True, limit=int(b[0]))
            b[0] -= self.stats.repairs_served - served
        else:
            self.stats.unexpected += 1

    def _remember_wants(
        self, sess: Session, addr: Addr, ranges: list[tuple[int, int]], now: float
    ) -> None:
        wants = sess.child_wants
        if len(wants) > 256:
            for seq in [q for q, (_, t) in wants.items() if now - t > 3.0]:
                del wants[seq]
            if len(wants) > 256:
                return
        for first, count in ranges:
            for seq in range(first, first + count):
                if seq in sess.history or seq < sess.low:
                    continue
                entry = wants.get(seq)
                if entry is None:
                    wants[seq] = ([addr], now)
                elif addr not in entry[0]:
                    entry[0].append(addr)

    # ------------------------------------------------------------------ child side: status, leave

    def _on_pstat(self, msg: wire.PStat, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None or addr != sess.parent:
            return
        sess.parent_last = now
        # in a loop the filter coming round holds us and the depth grows with every round; a
        # false positive of the filter alone (rare) is not enough to leave a good parent
        depth = _depth(msg.depth, msg.ancestors)
        grows = depth + 1 > sess.depth
        if (grows and self._below(msg.ancestors)) or depth >= MAX_DEPTH:
            self._lose_parent(sess, now, "loop")
            return
        ancestors = msg.ancestors | self._anc_bits
        changed = ancestors != sess.ancestors
        sess.depth = depth + 1
        sess.ancestors = ancestors
        sess.backup = msg.backup
        if msg.head_seq != wire.FRESH:
            sess.parent_head = msg.head_seq
        sess.parent_spare = msg.spare
        if msg.head_seq != wire.FRESH and msg.head_seq > sess.known_head:
            sess.known_head = msg.head_seq
        if changed:
            self._send_pstat(sess, now)  # positions travel down at once: loops are caught early

    def _send_pstat(self, sess: Session, now: float) -> None:
        if not sess.children:
            return
        sess.next_pstat = now + self.config.pstat_interval
        sess.last_data_out = now
        head = sess.head if sess.head >= 0 else wire.FRESH
        pstat = wire.PStat(
            sess.tag, sess.depth, head, sess.ancestors, sess.parent, self._spare16(sess)
        )
        raw = pstat.encode()
        for caddr in sess.children:
            self._send(raw, caddr)

    def _on_leave(self, msg: wire.Leave, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None:
            return
        child = sess.children.get(addr)
        if child is not None:
            # a child leaving politely: one of its children will take its slot
            child.leaving = True
            child.since = now
            return
        if addr != sess.parent:
            return
        sess.parent_leaving = True
        sess.dead[addr] = now + 30.0
        sess.seeking = True
        sess.displaced_until = now + 5.0
        # the old parent keeps feeding us: ask the hosts it named (its parent, or a sibling
        # it chose as successor) and attach to the best fresh offer, not to stale ones
        sess.candidates.clear()
        sess.window_end = None
        self._events.append(ParentLost(sess.station_id, addr, "leave"))
        if msg.grace_ms == 0:
            sess.parent = None  # cut at once: our cushion covers the move
            sess.orphaned_at = now
            sess.parent_leaving = False
        # the named hosts have room for us (a successor, the newcomer that displaced us)
        for ref in msg.referrals[:2]:
            if ref != addr:
                self._ask(sess, ref, now, attach=True)
        for ref in msg.referrals[2:]:
            if ref != addr:
                self._ask(sess, ref, now)
        sess.next_round = now + self.config.join_retry

    def _release_children(self, sess: Session, now: float) -> None:
        """No parent for ORPHAN_RELEASE s, nothing left to play, and forgers about (we
        banned one): our children look for parents of their own (a polite LEAVE; we feed them
        on if we find one first). A subtree whose root cannot get back in because forgers
        hold the slots above must not wait on it: every child asking for itself reports the
        forgers it is referred to (see _report_referred_forgers), so they are cut off sooner.
        Only then: releasing every subtree whose root was without a parent for 4 s wrecked
        2,000 honest peers (continuity 0.888 -> 0.220), and so did releasing only those whose
        root's buffer had run dry too (0.144): each release turns a subtree into seekers at
        once, and some of them release theirs in turn."""
        sess.orphaned_at = _INF
        leave = wire.Leave(sess.tag, int(ORPHAN_GRACE * 1000), []).encode()
        for caddr in sess.children:
            self._send(leave, caddr)
        self.stats.orphan_releases += 1

    def _lose_parent(self, sess: Session, now: float, reason: str) -> None:
        old = sess.parent
        if old is None:
            return
        if reason == "loop":
            self._send(wire.Detach(sess.tag, self.node_id).encode(), old)
        sess.parent = None
        sess.orphaned_at = now
        sess.parent_leaving = False
        sess.seeking = True
        # silent soon after it took us, having sent next to nothing: a dropper as likely as a
        # crash (a crashed node does not come back to take us again): avoided as a starver
        silent = (
            reason == "timeout"
            and now - sess.parent_since < 10.0
            and sess.parent_got + sess.got_parent < 16
        )
        if reason == "forged data":
            self._report_forger(sess, old, sess.backup, now, sess.parent_id)
        if reason == "starving" or silent:
            if reason == "starving":
                self._send(wire.Detach(sess.tag, self.node_id).encode(), old)
                self.stats.starved += 1
                if sess.backup is not None and sess.backup != old and sess.parent_id:
                    # its parent feeds it: a few such reports and it drops it from the tree
                    report = wire.Report(sess.tag, self.node_id, sess.parent_id)
                    self._send(report.encode(), sess.backup)
                    self.stats.reports_sent += 1
            n = self._starvers.get(old, 0) + 1
            self._starvers[old] = n
            self._starvers.move_to_end(old)
            while len(self._starvers) > MAX_BANNED:
                self._starvers.popitem(last=False)
            # avoided a while, doubling on each new offence (an honest parent that had a bad
            # minute comes back; a dropper or a liar about its capacity does not, for long)
            sess.dead[old] = now + min(STARVE_MAX_AVOID, STARVE_AVOID * 2 ** (n - 1))
        else:
            # not long after a silence: it may be a burst of loss, or a restart at that address
            sess.dead[old] = now + {"timeout": 3.0, "loop": 5.0}.get(reason, 30.0)
        sess.candidates.pop(old, None)
        self._events.append(ParentLost(sess.station_id, old, reason))
        if reason == "timeout":
            sess.orphan_until = now + 3.0
        if sess.backup and sess.backup not in sess.candidates:
            # our grandparent: its slot of our silent parent is ours if it has noticed
            self._ask(sess, sess.backup, now, attach=True)
        if not self._attach_best(sess, now):
            self._join_round(sess, now)

    def _start_leave(self, sess: Session, now: float) -> None:
        if sess.leaving:
            return
        sess.leaving = True
        grace = 0.0 if sess.is_source else self.config.leave_grace
        sess.leave_deadline = now + grace
        grace_ms = int(grace * 1000)
        if sess.parent is not None:
            self._send(wire.Leave(sess.tag, grace_ms, []).encode(), sess.parent)
        # the child with most spare slots succeeds us under our parent; its siblings go to it
        kids = sorted(sess.children.items(), key=lambda kv: -kv[1].free)
        if not kids:
            return
        successor = kids[0][0]
        up = [sess.parent] if sess.parent else []
        self._send(wire.Leave(sess.tag, grace_ms, up).encode(), successor)
        for caddr, _ in kids[1:]:
            self._send(wire.Leave(sess.tag, grace_ms, [successor, *up]).encode(), caddr)

    def _end_session(self, sess: Session) -> None:
        if sess.parent is not None:
            self._send(wire.Detach(sess.tag, self.node_id).encode(), sess.parent)
        self.sessions.pop(sess.tag, None)

    # ------------------------------------------------------------------ station records

    def _on_station(self, msg: wire.StationMsg, addr: Addr, now: float) -> None:
        raw = msg.record
        try:
            rec = StationRecord.decode(raw)
        except wire.WireError:
            self.stats.bad_records += 1
            return
        sid = rec.station_id
        sess = self.sessions.get(sid[:4])
        if sess is not None and sess.station_id == sid:
            if sess.is_source or (sess.record is not None and rec.version <= sess.record.version):
                return
            verifier = sess.verifier or Verifier(rec.public_key)
            if not rec.verify(verifier):
                self.stats.bad_records += 1
                self._strike(addr, now)
                return
            sess.verifier = verifier
            restarted = sess.record is not None and sess.record.epoch != rec.epoch
            self._set_record(sess, rec)
            if restarted:
                self._restart_stream(sess, now)
            return
        # a station we do not receive: the directory (verify only what is new)
        if sid in self.expired and not self.hosts.tuned_count(sid[:4]):
            return  # it expired here; only a host tuned to it brings it back
        self.expired.pop(sid, None)
        entry = self.directory.get(sid)
        if entry is not None and (entry.raw == raw or rec.version <= entry.record.version):
            return
        if not rec.verify():
            self.stats.bad_records += 1
            self._strike(addr, now)
            return
        self._directory_put(rec, raw, now)
        self._events.append(StationUpdated(rec, entry is None or entry.record.title != rec.title))

    def _on_station_req(self, msg: wire.StationReq, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.station_id[:4])
        if sess is not None and sess.station_id == msg.station_id and sess.record_raw:
            self._send(wire.StationMsg(sess.record_raw).encode(), addr)

    # ------------------------------------------------------------------ codec headers

    def _request_headers(self, sess: Session, now: float) -> None:
        rec = sess.record
        if rec is None or sess.parent is None:
            return
        want = rec.headers_hash
        if sess.hdr_fetching != want:
            sess.hdr_parts.clear()
            sess.hdr_fetching = want
        offset = 0
        parts = sess.hdr_parts
        while offset in parts:
            offset += len(parts[offset])
        sess.next_hdr_req = now + max(0.3, 3 * sess.rtt)
        self._send(wire.CodecHdrReq(sess.tag, want, offset).encode(), sess.parent)

    def _on_codec_hdr_req(self, msg: wire.CodecHdrReq, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        # only for our children (they proved their address by attaching: no amplification)
        if sess is None or addr not in sess.children or msg.hash != sess.codec_hash:
            return
        data = sess.codec_headers
        total = len(data)
        off = msg.offset
        frag = wire.HDR_FRAGMENT
        for _ in range(_HDR_BURST):
            if off >= total:
                break
            part = data[off : off + frag]
            self._send(wire.CodecHdr(sess.tag, msg.hash, total, off, part).encode(), addr)
            off += len(part)

    def _on_codec_hdr(self, msg: wire.CodecHdr, addr: Addr, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None or sess.is_source or not sess.needs_headers():
            return
        if msg.hash != sess.hdr_fetching or addr != sess.parent:
            return
        if not msg.data or msg.offset in sess.hdr_parts:
            return
        parts = sess.hdr_parts
        parts[msg.offset] = msg.data
        have = 0
        while have in parts:
            have += len(parts[have])
        if have < msg.total:
            if msg.offset + len(msg.data) >= min(msg.total, have + _HDR_BURST * wire.HDR_FRAGMENT):
                self._request_headers(sess, now)  # the burst is in: ask for what follows
            return
        data = b"".join(parts[o] for o in sorted(parts))[: msg.total]
        parts.clear()
        if len(data) != msg.total or headers_hash(data) != msg.hash:
            self.stats.bad_headers += 1
            sess.next_hdr_req = now + 1.0
            self._strike(addr, now)
            return
        sess.codec_headers = data
        sess.codec_hash = msg.hash
        self._events.append(CodecHeaders(sess.station_id, data))
        if sess.started and not sess.playing:
            self._play(sess, now)

    # ------------------------------------------------------------------ data plane

    def _emit_chunk(self, sess: Session, payload: bytes, start: bool, now: float) -> None:
        seq = sess.next_seq
        sess.next_seq += 1
        ts = int((now - sess.ts0) * 1000)
        data = wire.encode_data(sess.tag, seq, ts, wire.DATA_FRAME_START if start else 0, payload)
        if not sess.batch:
            sess.batch_started = now
            sess.batch_bytes = 0
        sess.batch.append((seq, chunk_hash(data)))
        sess.batch_data.append((seq, data, now))
        sess.batch_bytes += len(payload)
        if len(sess.batch) >= self.config.seal_max_chunks:
            self._seal(sess, now)

    def _seal(self, sess: Session, now: float) -> None:
        if not sess.batch or sess.key is None:
            return
        first = sess.batch[0][0]
        hashes = [h for _, h in sess.batch]
        sig = sess.key.sign(wire.Seal.signed_bytes(sess.station_id, first, hashes))
        raw = wire.Seal(sess.tag, first, hashes, sig).encode()
        sess.seals[first] = raw
        for seq, h in sess.batch:
            sess.seal_of[seq] = first
            sess.hashes[seq] = h
        sess.batch = []
        for caddr in sess.children:
            self._send(raw, caddr)
        # the chunks follow their seal, each a fixed delay after it was produced (the longest a
        # batch may wait for its seal): every relay can check and forward each chunk as it
        # arrives, and the stream flows as evenly as it was produced instead of in a burst
        # per seal (a constant delay: the playout clocks below never see it)
        delay = 3 * self.config.seal_max_delay
        for seq, data, t in sess.batch_data:
            sess.paced.append((max(now, t + delay), seq, data))
        sess.batch_data = []
        self._release_paced(sess, now)

    def _release_paced(self, sess: Session, now: float, *, all_: bool = False) -> None:
        paced = sess.paced
        while paced and (all_ or paced[0][0] <= now + 1e-9):
            _, seq, data = paced.popleft()
            self._accept(sess, seq, data, now)
        if paced:
            self._next_tick = min(self._next_tick, paced[0][0])

    def _on_seal(self, msg: wire.Seal, addr: Addr | None, now: float) -> None:
        sess = self.sessions.get(msg.tag)
        if sess is None or sess.is_source or not sess.started:
            return
        if msg.first_seq in sess.seals:
            return
        if msg.first_seq + len(msg.hashes) <= sess.low:
            return
        if sess.verifier is None:
            if len(sess.pending_seals) < 16:
                sess.pending_seals.append(msg.encode())
                if sess.parent and len(sess.pending_seals) == 1:
                    self._send(wire.StationReq(sess.station_id).encode(), sess.parent)
            return
        if not sess.verifier.verify(
            msg.signature, wire.Seal.signed_bytes(sess.station_id, msg.first_seq, msg.hashes)
        ):
            self.stats.bad_seals += 1
            self._strike(addr, now)
            return
        raw = msg.encode()
        first = msg.first_seq
        sess.seals[first] = raw
        for i, h in enumerate(msg.hashes):
            if first + i >= sess.low:
                sess.hashes[first + i] = h
                sess.seal_of[first + i] = first
        for caddr in sess.children:
            self._send(raw, caddr)
        for seq in range(first, first + len(msg.hashes)):
            p = sess.pending.pop(seq, None)
            if p is not None:
                self._verify_and_accept(sess, seq, p[0], now)

    def _on_data(self, data: bytes, addr: Addr, now: float) -> None:
        if len(data) < _DATA_HEADER_LEN:
            self.stats.bad_datagrams += 1
            return
        sess = self.sessions.get(data[4:8])
        if sess is None or sess.key is not None:  # (unknown, or our own station)
            self.stats.unexpected += 1
            return
        if addr == sess.parent:
            sess.parent_last = now
            sess.parent_data = True
        elif addr in sess.attach_targets or addr in sess.intents:
            self._lost_attach_ok(sess, addr, now)
        if not sess.started:
            self.stats.unexpected += 1
            return
        seq = _SEQ_TS.unpack_from(data, 8)[0]
        if seq < sess.low or seq in sess.history:
            self.stats.dup_chunks += 1
            return
        h = sess.hashes.get(seq)
        if h is not None:  # (_verify_and_accept, inlined)
            if chunk_hash(data) != h:
                self.stats.bad_chunks += 1
                self._strike(addr, now)
                return
            if addr == sess.parent:
                sess.got_parent += 1
            self._accept(sess, seq, data, now)
        elif len(sess.pending) < self.config.max_pending and (
            seq not in sess.pending or addr == sess.parent
        ):
            if addr == sess.parent and seq not in sess.pending and seq <= sess.head + 256:
                sess.got_parent += 1  # (before its seal: counted once, near the stream)
            sess.pending[seq] = (data, now)

    def _verify_and_accept(self, sess: Session, seq: int, data: bytes, now: float) -> None:
        if chunk_hash(data) != sess.hashes[seq]:
            self.stats.bad_chunks += 1
            return
        self._accept(sess, seq, data, now)

    def _accept(self, sess: Session, seq: int, data: bytes, now: float) -> None:
        sess.history[seq] = data
        sess.got += 1
        sess.requested.pop(seq, None)
        if seq > sess.known_head:
            sess.known_head = seq
        fresh = seq > sess.head
        if fresh and seq > sess.head + 1 and sess.key is None:  # (a gap, at a listener)
            sess.gap_seq = seq - 1
            self._next_tick = min(self._next_tick, now + 0.16)  # a gap: ask once it settles
        if fresh:
            sess.head = seq
            sess.head_ts = _SEQ_TS.unpack_from(data, 8)[1]
        if seq == sess.contig:
            hist = sess.history
            c = seq + 1
            while c in hist:
                c += 1
            sess.contig = c
        kids = sess.children
        if sess.child_wants and not fresh:
            want = sess.child_wants.pop(seq, None)
            if want is not None and now - want[1] < 3.0:
                asked = [a for a in want[0] if a in kids]
                for caddr in asked:
                    self._send(data, caddr)  # asked for, and late already: at once
                self.stats.repairs_served += len(asked)
                if asked:
                    kids = {a: c for a, c in kids.items() if a not in asked}
        if (
            kids
            and not fresh
            and self._tx_rate
            and sess.head - seq > 2
            and not self._fill_allowed(sess, len(kids) * len(data), now)
        ):
            # a repaired or late chunk filling a gap, beyond what our spare upload can pass
            # on at once: behind live data (a burst of old chunks would delay the live ones
            # below us; the children also ask helpers for what they miss)
            for caddr in kids:
                self._send_bulk(data, caddr)
        elif kids:
            out = self._out
            for caddr in kids:
                out.append((data, caddr))
            n = len(kids)
            st = self.stats
            st.datagrams_out += n
            st.bytes_out += n * len(data)
            st.data_bytes_out += n * len(data)
            sess.last_data_out = now
            if self._tx_rate:
                self._tx_free_at = max(now, self._tx_free_at) + n * len(data) / self._tx_rate
        if seq == sess.play_next or not sess.playing:
            self._play(sess, now)  # (before playout starts: is the cushion in yet?)

    def _play(self, sess: Session, now: float) -> None:
        """Emit in-order audio. Playout runs on a clock set by its first chunk (a constant
        delay behind the broadcaster, as a player hears it): a chunk too late for its time is
        dropped, and a gap is skipped when the audio after it is due (see _tick_child)."""
        hist = sess.history
        seq = sess.play_next
        ev = self._events
        sid = sess.station_id
        cfg = self.config
        d = hist.get(seq)
        if not sess.playing:
            if sess.needs_headers():
                return  # a player could not decode the audio without its codec headers
            if d is None:
                if sess.waiting_since is None and sess.head >= seq:
                    sess.waiting_since = now  # the first chunk is missing: skip it in time
                return
            # the playout delay: start at once when the first chunk is a cushion behind the
            # newest one (the usual case: the rest of the cushion is fetched while we play);
            # a stream that just began has less history: wait until it has
            ts_d = _SEQ_TS.unpack_from(d, 8)[1]
            behind = ((sess.head_ts - ts_d) & 0xFFFFFFFF) / 1000
            last = hist.get(sess.contig - 1)
            ahead = (
                0.0
                if last is None
                else ((_SEQ_TS.unpack_from(last, 8)[1] - ts_d) & 0xFFFFFFFF) / 1000
            )
            top = sess.contig - 1
            if behind < 0.9 * cfg.cushion_seconds and sess.known_head > top > seq:
                # the newest chunks we heard of wait for their seal: judge by sequence numbers
                behind = max(behind, (sess.known_head - seq) * ahead / (top - seq))
            if sess.first_at is None:
                sess.first_at = now
            # the rest of the cushion comes while we play: it must come at least as fast as we
            # play, or playout catches up with it and skips. Audio in hand per second since the
            # first chunk is that rate; slower than real time, start with more in hand
            rate = ahead / max(now - sess.first_at, 0.05)
            need = max(cfg.start_ahead, cfg.cushion_seconds * (1.0 - min(rate, 1.0)))
            ready = behind >= 0.9 * cfg.cushion_seconds and ahead >= need
            # a stream that just began: half a cushion of delay, counted from the first chunk
            # (listeners may attach long before a broadcast begins)
            if not ready and now - sess.first_at < cfg.cushion_seconds / 2:
                return
            sess.playing = True
            sess.waiting_since = None
            sess.play_t0 = now
            sess.play_ts0 = _SEQ_TS.unpack_from(d, 8)[1]
        if sess.is_source:  # our own stream: never late
            while d is not None:
                ts = _SEQ_TS.unpack_from(d, 8)[1]
                ev.append(AudioData(sid, seq, d[wire.DATA_HEADER_LEN :], bool(d[16] & 1), ts))
                seq += 1
                d = hist.get(seq)
            sess.play_next = seq
            return
        dropping = False
        dropped = 0
        first_dropped = seq
        while d is not None:
            ts = _SEQ_TS.unpack_from(d, 8)[1]
            start = bool(d[16] & _FRAME_START)
            late = now - sess.play_t0 - ((ts - sess.play_ts0) & 0xFFFFFFFF) / 1000
            if start:
                if late <= cfg.late_drop:
                    dropping = False
                    sess.late_since = None
                elif sess.late_since is not None and now - sess.late_since > cfg.reanchor:
                    # the stream as a whole comes later than our delay: take a longer one
                    self.stats.reanchors += 1
                    sess.play_t0 = now
                    sess.play_ts0 = ts
                    sess.late_since = None
                    dropping = False
                else:
                    dropping = True
                    if sess.late_since is None:
                        sess.late_since = now
            if dropping:
                if not dropped:
                    first_dropped = seq
                dropped += 1
            else:
                ev.append(AudioData(sid, seq, d[_DATA_HEADER_LEN:], start, ts))
            seq += 1
            d = hist.get(seq)
        if dropped:
            ev.append(Skipped(sid, first_dropped, dropped))
            self.stats.skipped_chunks += dropped
        sess.play_next = seq

    def _skip_due(self, sess: Session, now: float) -> None:
        """The chunk to play next is missing: skip it once the audio after it is due."""
        hist = sess.history
        sess.skip_at = _INF
        for seq in range(sess.play_next + 1, sess.head + 1):
            d = hist.get(seq)
            if d is not None and d[16] & _FRAME_START:
                ts = _SEQ_TS.unpack_from(d, 8)[1]
                due = sess.play_t0 + ((ts - sess.play_ts0) & 0xFFFFFFFF) / 1000
                sess.skip_at = due - self.config.fast_tick
                if now >= sess.skip_at:
                    self._skip(sess, now)
                return

    def _request_repairs(self, sess: Session, now: float) -> None:
        """NACK missing chunks, spread over the parent and helpers by their spare upload.

        Helpers are fresh in-tree candidates (they hold the same history) that said they have
        spare upload; a full parent serves repairs only from what its uplink has left, so a
        new listener's cushion or a re-homed node's gap comes mostly from them.
        """
        if sess.parent is None or not sess.started:
            return
        # only below the head we knew a moment ago: later chunks may still be in flight
        # (a parent sends a seal's chunks right after it, serialised on its uplink)
        if now - sess.settled_at >= 0.15:
            sess.settled_head, sess.settling_head = sess.settling_head, sess.known_head
            sess.settled_at = now
        first = max(sess.contig, sess.low)
        limit = self.config.repair_batch
        top = min(sess.known_head, sess.settled_head, first + 4 * limit)
        if top <= sess.repair_top and now < sess.repair_due:
            return  # nothing new below the head and no retry due: skip the scan
        # a request is cheap (a busy peer answers from spare upload only), a late chunk is
        # not: retry after ~2.5 round trips, a little later each time, never beyond 2 s
        retry = max(0.25, 2.5 * sess.rtt)
        hist = sess.history
        pending = sess.pending
        req = sess.requested
        missing: list[int] = []
        no_seal: list[int] = []
        next_due = now + 1.0
        seal_wait = self.config.seal_wait
        n = 0
        # the scan visits only the seqs not held (most of the range usually is)
        if sess.scan_from <= first and sess.scan_to <= top:
            old = sess.scan_missing
            seqs = list(filterfalse(hist.__contains__, old[bisect_left(old, first) :]))
            seqs += filterfalse(hist.__contains__, range(max(sess.scan_to + 1, first), top + 1))
        else:
            seqs = list(filterfalse(hist.__contains__, range(first, top + 1)))
        sess.scan_missing = seqs
        sess.scan_from = first
        sess.scan_to = top
        for seq in seqs:
            p = pending.get(seq) if pending else None
            due, tries = req.get(seq, _NOT_ASKED)
            if p is not None:
                # held but unverified: its seal comes after the batch; then ask for it alone
                if now - p[1] <= seal_wait:
                    t = p[1] + seal_wait
                    if t < next_due:
                        next_due = t
                elif now < due:
                    if due < next_due:
                        next_due = due
                else:
                    t = now + min(2.0, retry * (1 + tries))
                    req[seq] = (t, tries + 1)
                    if not no_seal or seq - no_seal[-1] >= wire.MAX_SEAL_COUNT:
                        no_seal.append(seq)
                    if t < next_due:
                        next_due = t
            elif now < due:
                if due < next_due:
                    next_due = due
            elif n >= limit:
                next_due = now  # more next tick
                break
            else:
                # back off: the peer's uplink may be congested, asking again makes it worse
                req[seq] = (now + min(2.0, retry * (1 + tries)), tries + 1)
                missing.append(seq)
                n += 1
                if tries:
                    sess.nacked += 1  # asked before and still missing: real loss
        sess.repair_top = top
        sess.repair_due = next_due
        if no_seal:
            self._send(wire.Nack(sess.tag, [(s, 0) for s in no_seal]).encode(), sess.parent)
        if not missing:
            return
        self.stats.repairs_requested += len(missing)
        targets = [(sess.parent, max(1, sess.parent_spare)), *self._helpers(sess, now)]
        assigned = [0] * len(targets)
        block = 8
        for i in range(0, len(missing), block):
            part = missing[i : i + block]
            ranges: list[tuple[int, int]] = []
            for s in part:
                if ranges and ranges[-1][0] + ranges[-1][1] == s:
                    ranges[-1] = (ranges[-1][0], ranges[-1][1] + 1)
                else:
                    ranges.append((s, 1))
            # a chunk or two of the live stream lost on the way: the parent sent it, so it
            # holds it, and resends it at once whatever its spare. Bigger first asks go to
            # whoever has most spare upload (weighted). Retries alternate between the helpers
            # in turn (the parent may lack it too: a loss upstream) and the parent (its
            # answer may have been lost)
            tries = req[part[0]][1]
            small = len(part) <= 2 and sess.known_head - part[0] < 128
            if len(targets) == 1 or (tries == 1 and small) or (tries > 1 and tries % 2):
                k = 0
            elif tries == 1:
                # at random, weighted by spare (less for whom we already asked): the one
                # with the most spare (often the broadcaster) would be everyone's first choice
                weights = [t[1] / (1 + assigned[k]) for k, t in enumerate(targets)]
                k = self.rng.choices(range(len(targets)), weights)[0]
            else:
                k = 1 + (tries // 2 - 1) % (len(targets) - 1)
            assigned[k] += 1
            self._send(wire.Nack(sess.tag, ranges).encode(), targets[k][0])

    def _slots(self, sess: Session) -> int:
        """Children this node can feed for a station: from upload capacity when known."""
        if self.nat.symmetric:
            return 0  # nobody behind a NAT could reach us to attach (see overlay/nat.py)
        cfg = self.config
        base = cfg.slots
        bitrate = self._bitrate(sess)
        upload = self._upload()
        if upload > 0 and bitrate > 0:
            usable = max(0.0, upload - cfg.control_kbps) * cfg.slot_headroom
            base = min(int(usable / bitrate), cfg.max_slots)
            if not cfg.upload_kbps:
                base = min(base, cfg.slots)  # measured: the configured count stays the limit
        elif self.bw.wanted:
            base = min(base, 1)  # not measured yet: one stream fits any link worth relaying
        return max(0, min(base, 255) - sess.slot_penalty)

    def _capacity(self) -> int:
        for sess in self.sessions.values():
            if sess.in_tree:
                return self._slots(sess)
        return self.config.slots

    def explore(self, now: float) -> None:
        """Ask every seed and a few random hosts for hosts and station records at once."""
        targets = list(dict.fromkeys([*self.seeds, *(self.hosts.random() for _ in range(4))]))
        for addr in targets:
            if addr is None:
                continue
            self._req_id += 1
            self._send(self._hello_req(self._my_tag(), wire.HELLO_WANT_STATIONS), addr)

    def stations(self, now: float) -> list[dict[str, object]]:
        """The station directory, ranked by listeners; offline stations after, by last seen."""
        out = []
        for sid, e in self.directory.items():
            tag = sid[:4]
            tuned = self.hosts.tuned(tag)
            sources = 0
            for a in tuned:
                h = self.hosts.get(a)
                if h is not None and h.source:
                    sources += 1
            listeners = len(tuned) - sources
            sess = self.sessions.get(tag)
            if sess is not None and sess.in_tree and not sess.is_source:
                listeners += 1
            # on air while anyone (listener or its broadcaster) is known to carry it
            online = (listeners > 0 or sources > 0 or (sess is not None and sess.is_source)) and (
                e.record.on_air
            )
            out.append(
                {
                    "station_id": sid,
                    "record": e.record,
                    "hosts": tuned[:4],
                    "listeners": listeners if online else 0,
                    "online": online,
                    "last_seen": e.last_alive,
                }
            )
        out.sort(key=lambda d: (not d["online"], -d["listeners"], -d["last_seen"]))  # type: ignore[operator]
        return out

    def _send_attach(self, sess: Session, addr: Addr, now: float, flags: int = 0) -> None:
        if sess.rounds >= 2 or now < sess.displaced_until:
            flags |= wire.ATTACH_LAST
        if now < sess.orphan_until:
            flags |= wire.ATTACH_ORPHAN
        sess.attaching = addr
        sess.attach_sent = now
        targets = sess.attach_targets
        if len(targets) > 16:
            for a in [a for a, t in targets.items() if now - t > 10.0]:
                del targets[a]
        targets[addr] = now
        from_seq = sess.contig if sess.started else wire.FRESH
        token = self._tokens.get(addr, b"")
        msg = wire.Attach(sess.station_id, self.node_id, from_seq, self._slots(sess), flags, token)
        self._send(msg.encode(), addr)

    def _can_overlap(self, sess: Session) -> bool:
        """Can our uplink carry one stream more while a displaced child moves away?"""
        cfg = self.config
        bitrate = self._bitrate(sess)
        if not self._tx_rate or not bitrate:
            return True  # capacity unknown: trust the slots
        streams = len(sess.children) + 1
        return streams * bitrate <= self._upload() and self.backlog() < cfg.max_backlog / 2

    def _drop_silent(self, sess: Session, now: float, orphan: bool = False) -> None:
        """Someone wants a slot: a child silent for a few status periods has crashed (its
        children are asking us for its place), so free its slot before child_timeout. An
        orphan's word that its parent went silent makes a shorter silence enough."""
        if sess.active_children() < self._slots(sess):
            return
        limit = now - (1.1 if orphan else 2.5) * self.config.status_interval
        for caddr in [a for a, c in sess.children.items() if c.last_heard < limit]:
            c = sess.children.pop(caddr)
            self._events.append(ChildLeft(sess.station_id, caddr, c.node_id, "timeout"))

    def _below(self, ancestors: int) -> bool:
        """Whether we may be among the ancestors in this filter (its owner may be below us).

        The filter covers every hop to the root however deep the tree is, so a loop of any
        length is seen; a false positive (rare at real depths) only costs one refusal.
        """
        return wire.may_hold(ancestors, self._anc_bits)

    def _above(self, sess: Session, node_id: bytes) -> bool:
        """Whether ``node_id`` may be one of our ancestors in this session."""
        return wire.may_hold(sess.ancestors, wire.ancestor_bits(node_id))

    def _weakest(self, sess: Session) -> tuple[Addr, Child] | None:
        """The active child with fewest slots (the one a stronger node may displace)."""
        best: tuple[Addr, Child] | None = None
        for a, c in sess.children.items():
            if not c.leaving and (best is None or c.slots < best[1].slots):
                best = (a, c)
        return best

    def _admit(self, sess: Session, addr: Addr, node_id: bytes, slots: int, flags: int) -> bool:
        """Room for this joiner? A stronger joiner (ATTACH_PREEMPT) displaces the weakest child."""
        if addr in sess.children:
            return True
        if self._above(sess, node_id) or addr == sess.parent:
            return False
        if self._expelled and self._expelled.get(node_id, 0.0) > self._now:
            return False  # its children reported it for starving them (see _on_report)
        self._drop_silent(sess, self._now, bool(flags & wire.ATTACH_ORPHAN))
        free = self._slots(sess) - sess.active_children()
        # the last free slot is kept for a child that can relay, so the tree can always grow
        # (unless the joiner found no other room for a while)
        relay_or_last = slots > 0 or flags & wire.ATTACH_LAST or not self.config.reserve_last_slot
        if free >= 2 or (free == 1 and relay_or_last):
            return True
        if flags & wire.ATTACH_PREEMPT and self.config.reshuffle:
            weak = self._weakest(sess)
            if weak is not None and weak[1].slots < slots:
                waddr, wchild = weak
                # the weakest child moves under the newcomer (which has room). If our uplink
                # can carry both for a moment it is fed here until it has re-homed; otherwise
                # it goes at once and its cushion covers the move (repaired from the new parent)
                if self._can_overlap(sess):
                    self._redirect(sess, waddr, wchild, [addr], self.config.redirect_grace)
                elif not flags & wire.ATTACH_GENTLE and self.config.hard_preempt:
                    del sess.children[waddr]
                    self._events.append(
                        ChildLeft(sess.station_id, waddr, wchild.node_id, "redirect")
                    )
                    self._send(wire.Leave(sess.tag, 0, [addr]).encode(), waddr)
                else:
                    return False
                return True
        return False

    def _redirect(
        self, sess: Session, addr: Addr, child: Child, refs: list[Addr], grace: float
    ) -> None:
        """Move a child elsewhere: it is fed here for ``grace`` seconds while it re-homes."""
        child.leaving = True
        child.since = self._now
        leave = wire.Leave(sess.tag, int(grace * 1000), refs[: wire.MAX_REFERRALS])
        self._send(leave.encode(), addr)

    def _accept_child(
        self, sess: Session, addr: Addr, node_id: bytes, slots: int, from_seq: int, now: float
    ) -> None:
        child = sess.children.get(addr)
        if child is not None and child.node_id != node_id:
            del sess.children[addr]  # a new node at the old address (it restarted)
            self._events.append(ChildLeft(sess.station_id, addr, child.node_id, "restart"))
            child = None
        if child is None:
            child = Child(node_id, now, slots=slots)
            sess.children[addr] = child
            self._events.append(ChildJoined(sess.station_id, addr, node_id))
        child.last_heard = now
        child.slots = slots
        child.leaving = False
        self._learn(addr, node_id, sess.tag, now, slots)
        start = self._start_seq(sess, from_seq)
        head = sess.head if sess.head >= 0 else wire.FRESH
        epoch = sess.record.epoch if sess.record is not None else 0
        ok = wire.AttachOk(
            sess.station_id, self.node_id, sess.depth, head, start, sess.ancestors, epoch
        )
        self._send(ok.encode(), addr)
        if sess.record_raw:
            self._send(wire.StationMsg(sess.record_raw).encode(), addr)
        if sess.head >= start:
            # the first chunks of the cushion (or of a re-homing child's gap) at once; the child
            # fetches the rest from us and from peers with spare upload
            self._serve(sess, addr, [(start, sess.head - start + 1)], push=self.config.push_chunks)

    def _serve(
        self,
        sess: Session,
        addr: Addr,
        ranges: list[tuple[int, int]],
        *,
        push: int = 0,
        helper: bool = False,
        limit: int = 16,
    ) -> None:
        """Send held chunks in ``ranges`` (and the seals covering them), at most a batch.

        The first ``push`` chunks go out at once; the rest wait behind live data in the bulk
        queue (repairs must not delay what every child needs next), and only as much as our
        spare upload can send before it expires: the requester asks again elsewhere.
        """
        cfg = self.config
        budget = min(16, limit) if helper else cfg.repair_batch
        if push:
            budget = push
        elif self._tx_rate:
            bitrate = self._bitrate(sess) or 128
            room = self._spare16(sess) * bitrate * 125 / 16 * cfg.bulk_expiry
            budget = min(budget, max(0 if helper else 1, int(room // 1400)))
        hist = sess.history
        sent_seals: set[int] = set()
        send = self._send if push else self._send_bulk
        for first, count in ranges:
            if count == 0:  # "I hold the chunks, send the seal covering this one"
                fs = sess.seal_of.get(first)
                if fs is not None and fs not in sent_seals and fs in sess.seals:
                    sent_seals.add(fs)
                    send(sess.seals[fs], addr)
                continue
            for seq in range(first, first + min(count, budget)):
                d = hist.get(seq)
                if d is None:
                    continue
                fs = sess.seal_of.get(seq)
                if fs is not None and fs not in sent_seals and fs in sess.seals:
                    sent_seals.add(fs)
                    send(sess.seals[fs], addr)
                send(d, addr)
                self.stats.repairs_served += 1
                budget -= 1
            if budget <= 0:
                break

    def _restart_stream(self, sess: Session, now: float) -> None:
        """The broadcast restarted (new epoch): sequence numbers begin again. Forget the old
        stream's chunks and seals and ask the parent for a fresh start (playback resumes)."""
        sess.history.clear()
        sess.hashes.clear()
        sess.seal_of.clear()
        sess.seals.clear()
        sess.pending.clear()
        sess.requested.clear()
        sess.low = sess.contig = sess.play_next = 0
        sess.head = sess.known_head = sess.settled_head = sess.settling_head = -1
        sess.gap_seq = -1
        sess.head_ts = 0
        sess.late_since = None
        sess.first_at = None
        sess.started = False
        sess.playing = False
        sess.waiting_since = None
        sess.repair_top = -1
        sess.repair_due = 0.0
        sess.scan_missing = []
        sess.scan_from, sess.scan_to = 0, -1
        sess.candidates.clear()  # they describe the old stream (helpers must hold the new one)
        if sess.parent is not None:
            self._send_attach(sess, sess.parent, now)

    def _directory_put(self, rec: StationRecord, raw: bytes, now: float) -> None:
        sid = rec.station_id
        entry = self.directory.get(sid)
        alive = now if self.hosts.tuned_count(sid[:4]) else (entry.last_alive if entry else now)
        self.directory[sid] = DirEntry(rec, raw, alive)
        self.tag_station[sid[:4]] = sid

    def _reshuffle(self, sess: Session, now: float) -> None:
        """Move toward the broadcaster when a shallower node has room, or a child weaker than us.

        Over time high-capacity (and, among equals, longer-lived) nodes form the backbone and
        zero-slot nodes sit at the edges. The move is a re-attach: the new parent serves from
        our first missing chunk, the old one is detached only once the new one accepted.
        """
        mine = self._slots(sess)
        if mine == 0:
            return  # a node that cannot relay has no business near the broadcaster
        if sess.parent in self.nat.lan_peers:
            return  # fed on our LAN: the station's traffic enters it once, so we stay
        best: Candidate | None = None
        for c in sess.candidates.values():
            if c.addr == sess.parent or now - c.heard > 15.0 or self._below(c.ancestors):
                continue
            if c.depth >= MAX_DEPTH:
                continue
            if c.depth + 1 >= sess.depth or self._is_dead(sess, c.addr, now):
                continue
            if c.free <= 0 and not (mine > 0 and c.weakest < mine):
                continue
            if best is None or c.depth < best.depth:
                best = c
        if best is not None:
            sess.candidates.pop(best.addr, None)
            # a weaker child there is displaced at once: it takes the slot we leave (our old
            # parent is the first of our referrals for a while); its cushion covers the move
            flags = wire.ATTACH_PREEMPT if best.free <= 0 else 0
            self._send_attach(sess, best.addr, now, flags)

    def _check_loss(self, sess: Session, now: float) -> None:
        """Children that keep reporting loss: this node sends more than its link carries."""
        kids = [c for c in sess.children.values() if not c.leaving]
        lossy = sum(1 for c in kids if c.loss >= 3)
        # only our own congestion is a reason to shed a slot (not loss upstream or on links)
        congested = self.backlog() > self.config.max_backlog / 2 or not self._tx_rate
        if len(kids) >= 2 and lossy * 2 > len(kids) and congested:
            sess.loss_streak += 1
        else:
            sess.loss_streak = 0
            if sess.slot_penalty and now - sess.last_penalty > 60.0:
                sess.slot_penalty -= 1  # things are fine again: try one more slot
                sess.last_penalty = now
        shed = self.config.reshuffle and self._slots(sess) > 0
        if sess.loss_streak >= self.config.loss_periods and shed:
            sess.loss_streak = 0
            sess.slot_penalty += 1
            sess.last_penalty = now
            if sess.active_children() > self._slots(sess):
                self._shed_weakest(sess)

    def _check_parent(self, sess: Session, now: float) -> bool:
        """Once per status period: does our parent deliver the stream? True: we left it.

        A period is bad when most new chunks came from others (repairs from helpers: the
        parent drops what it should forward, or its uplink cannot carry its children), or
        when the live edge is within ``starve_in_hand`` s of the playout clock and came a
        quarter second nearer in the period, or is behind it (the parent sends little or
        late, whatever it says about itself), or when it sent nothing for two cushions while
        we wait to start. Loss on the way, or a congested but honest parent, leaves most
        chunks coming from the parent and the live edge keeping its lead; a parent whose own
        parent went away re-homes within about a second. So only ``starve_periods`` bad
        periods in a row make us leave it (and avoid it a while): a few counters per chunk,
        this check once a second.
        """
        cfg = self.config
        got, mine = sess.got, sess.got_parent
        sess.got = sess.got_parent = 0
        sess.parent_got += mine
        # chunks the stream produced in the period, by its timestamps (not by what reaches
        # us: through a slow parent that comes at its pace)
        expected = 0.0
        if sess.check_at >= 0 and sess.head - 32 >= sess.low:
            new, old = sess.history.get(sess.head), sess.history.get(sess.head - 32)
            if new is not None and old is not None:
                span = ((_SEQ_TS.unpack_from(new, 8)[1] - _SEQ_TS.unpack_from(old, 8)[1])
                        & 0xFFFFFFFF) / 1000  # fmt: skip
                if 0 < span < 60:
                    expected = 32 / span * (now - sess.check_at)
        sess.check_at = now
        advanced = sess.parent_head - sess.check_parent_head if sess.check_parent_head >= 0 else 0
        sess.check_parent_head = sess.parent_head
        in_hand = sess.in_hand
        bad = False
        if (
            sess.parent_promised
            and not sess.parent_data
            and sess.parent_head >= sess.promised_head + PROMISE_MOVED
            and now - sess.parent_since >= max(cfg.promise_wait, 4 * sess.rtt)
            and sess.record is not None
            and sess.record.on_air
        ):
            # it said it holds our start and sent nothing of it, and its status says newer
            # chunks reached it since (not stalled itself, nor with a long uplink queue: that
            # status would be behind the chunks it queued for us): leave it now
            sess.starve_streak = 0
            self._lose_parent(sess, now, "starving")
            return True
        if (
            now - sess.parent_since >= cfg.starve_grace
            and sess.record is not None
            and sess.depth > 1
        ):
            # (never the broadcaster, our parent when we are at depth 1 by its ancestor
            # filter: it is no dropper of its own station, and its child leaving it as a
            # starver, avoided a minute, would cut the whole tree off)
            # it withholds (its status says the stream reaches it, yet it does not pass it
            # on), or it trickles (sends, but well under the stream's rate): a parent whose
            # own parent went away, or that lost chunks itself, has nothing new to send (its
            # head stands still) until it has them and then sends them all at once, and
            # helpers cover us meanwhile; at 2,000 peers that is common (without these two
            # conditions the rule left thousands of honest parents)
            withholds = advanced >= max(4, expected // 2) and mine * 2 < advanced
            trickles = 0 < mine < 0.75 * expected
            if not sess.record.on_air:
                pass  # nothing to deliver
            elif sess.playing or (got >= 4 and mine * 2 < got):
                if got >= 4 and mine * 2 < got:
                    bad = withholds  # the stream reached us, mostly not through our parent
                head = sess.history.get(sess.head)
                if sess.playing and head is not None:
                    ts = _SEQ_TS.unpack_from(head, 8)[1]
                    in_hand = sess.play_t0 + ((ts - sess.play_ts0) & 0xFFFFFFFF) / 1000 - now
                    # (not keeping up with the clock, or behind it: playout has nothing)
                    short = in_hand < cfg.starve_in_hand and (
                        in_hand < sess.in_hand - 0.25 or in_hand < 0
                    )
                    bad = bad or (short and (withholds or trickles))
            elif sess.known_head >= 0 and not sess.parent_got:
                bad = now - sess.parent_since > 2 * cfg.cushion_seconds  # nothing ever came
        sess.in_hand = in_hand
        sess.starve_streak = sess.starve_streak + 1 if bad else 0
        if sess.starve_streak < cfg.starve_periods:
            return False
        sess.starve_streak = 0
        self._lose_parent(sess, now, "starving")
        return True

    def _shed_weakest(self, sess: Session) -> bool:
        """Move our weakest child elsewhere (our parent first), fed while it does."""
        weak = self._weakest(sess)
        if weak is None:
            return False
        waddr, wchild = weak
        refs = self._referrals(sess, waddr)
        if sess.parent is not None:
            refs = [sess.parent, *refs]
        self._redirect(sess, waddr, wchild, refs, self.config.leave_grace)
        return True

    def _helpers(self, sess: Session, now: float) -> list[tuple[Addr, int]]:
        """Fresh in-tree candidates with spare upload (not our descendants), most spare first."""
        parent = sess.parent
        bits = self._anc_bits
        fresh = [
            (c.addr, c.spare)
            for c in sess.candidates.values()
            if c.spare >= 2
            and c.addr != parent
            and now - c.heard <= 20.0
            and c.ancestors & bits != bits  # (not self._below(c.ancestors))
            and not self._is_dead(sess, c.addr, now)
        ]
        fresh.sort(key=lambda h: -h[1])
        return fresh[: self.config.max_helpers]

    # ------------------------------------------------------------------ periodic work

    def _wake_at(self, sess: Session, now: float) -> float:
        """When this session next needs a tick (sooner than the housekeeping period)."""
        cfg = self.config
        fast = now + cfg.fast_tick
        if sess.seeking or sess.attaching is not None:
            return fast
        wake = _INF
        if sess.parent is not None:
            wake = sess.parent_last + cfg.parent_timeout + 0.001  # silent parent: lost then
            if sess.next_cstat < wake:
                wake = sess.next_cstat  # our own status: on time (parents watch it)
            known = sess.known_head
            if sess.started and known >= sess.contig:
                # a chunk is missing: the next repair is due, or newer announced chunks settle
                if sess.repair_due < wake:
                    wake = sess.repair_due
                # newer chunks settle before a gap among them is asked for: only while there
                # is such a gap (a missing chunk already asked for waits for its retry time)
                top = sess.settled_head
                if known > top and (sess.gap_seq > top or known > sess.head):
                    settle = sess.settled_at + 0.15
                    if settle < wake:
                        wake = settle
        if sess.playing:
            nxt = sess.play_next
            if nxt <= sess.head and nxt not in sess.history and sess.skip_at < wake:
                wake = sess.skip_at  # the audio after a gap is due: skip it then
        elif sess.started and fast < wake:
            wake = fast
        return wake if wake > fast else fast

    def _tick_session(self, sess: Session, now: float) -> None:
        cfg = self.config
        if sess.key is not None:  # (broadcasting)
            assert sess.packer is not None
            if sess.paced:
                self._release_paced(sess, now)
            due = sess.packer.due()
            if due is not None and now >= due:
                for payload, start in sess.packer.flush():
                    self._emit_chunk(sess, payload, start, now)
            age = now - sess.batch_started
            if (
                sess.batch
                and age >= cfg.seal_max_delay
                and (sess.batch_bytes >= cfg.seal_min_bytes or age >= 3 * cfg.seal_max_delay)
            ):
                self._seal(sess, now)
        else:
            self._tick_child(sess, now)
        # parent duties
        if sess.children:
            timeout = now - cfg.child_timeout
            for caddr in [a for a, c in sess.children.items() if c.last_heard < timeout]:
                c = sess.children.pop(caddr)
                self._events.append(ChildLeft(sess.station_id, caddr, c.node_id, "timeout"))
            status_due = now >= sess.next_pstat
            if status_due:
                self._check_loss(sess, now)
                # a redirected child that never re-homed: stop feeding it (it will rejoin)
                stale = now - cfg.redirect_grace
                for caddr in [a for a, c in sess.children.items() if c.leaving and c.since < stale]:
                    c = sess.children.pop(caddr)
                    self._events.append(ChildLeft(sess.station_id, caddr, c.node_id, "redirect"))
            if status_due or now - sess.last_data_out > cfg.parent_timeout / 2:
                self._send_pstat(sess, now)
        self._evict(sess)
        if sess.leaving and (not sess.children or now >= sess.leave_deadline):
            self._end_session(sess)

    def _tick_child(self, sess: Session, now: float) -> None:
        cfg = self.config
        # parent liveness
        if sess.parent is not None and now - sess.parent_last > cfg.parent_timeout:
            self._lose_parent(sess, now, "timeout")
        if sess.attaching is not None and now - sess.attach_sent > cfg.attach_timeout:
            sess.dead[sess.attaching] = now + 5.0
            sess.candidates.pop(sess.attaching, None)
            sess.attaching = None
        # seeking a parent
        if sess.seeking:
            if (
                sess.children
                and self._banned  # (forgers about: see _release_children)
                and now - sess.orphaned_at > ORPHAN_RELEASE
                and sess.playing
                and sess.play_next not in sess.history  # (stalled, or about to skip)
            ):
                self._release_children(sess, now)
            if sess.attaching is None:
                if sess.window_end is not None and now >= sess.window_end:
                    self._attach_best(sess, now)
                elif (
                    sess.window_end is None
                    and now >= sess.next_round
                    and not self._attach_best(sess, now)
                ):
                    self._join_round(sess, now)
        elif sess.parent is not None and now >= sess.next_refresh:
            # keep backup candidates fresh; the grandparent tells us if we could move up
            sess.next_refresh = now + cfg.refresh_interval * (0.5 + self.rng.random())
            self._forget_old_asks(sess, now)
            pool = [a for a in self.hosts.tuned(sess.tag) if a != sess.parent]
            asks = self.rng.sample(pool, min(3, len(pool)))
            # and listeners that relay nobody: their idle uplinks make good repair helpers
            idle = [a for a in pool if a not in asks and (h := self.hosts.get(a)) and not h.slots]
            asks += self.rng.sample(idle, min(2, len(idle)))
            if sess.backup is not None and sess.backup not in asks:
                asks.append(sess.backup)
            for a in asks:
                self._ask(sess, a, now)
        elif (
            cfg.reshuffle
            and sess.parent is not None
            and sess.attaching is None
            and not sess.parent_leaving
            and now >= sess.next_reshuffle
        ):
            sess.next_reshuffle = now + cfg.refresh_interval * (0.5 + self.rng.random())
            self._reshuffle(sess, now)
        if sess.parent is not None:
            self._request_repairs(sess, now)
            if now >= sess.next_cstat and not self._check_parent(sess, now):
                sess.next_cstat = now + cfg.status_interval
                slots = self._slots(sess)
                msg = wire.CStat(
                    sess.tag, self.node_id, sess.free_slots(slots), slots, sess.contig, sess.nacked
                )
                sess.nacked = 0
                self._send(msg.encode(), sess.parent)
        if (
            not sess.started
            and sess.parent is not None
            and sess.attaching is None
            and now >= sess.next_restart_attach
        ):
            sess.next_restart_attach = now + 0.5
            self._send_attach(sess, sess.parent, now)  # after a restart: a fresh start
        if sess.verifier is None and sess.parent is not None and now >= sess.next_station_req:
            sess.next_station_req = now + 1.0  # the record got lost: ask again
            self._send(wire.StationReq(sess.station_id).encode(), sess.parent)
        if sess.parent is not None and now >= sess.next_hdr_req and sess.needs_headers():
            self._request_headers(sess, now)  # (lost, or the parent had not got them yet)
        if sess.started and not sess.playing:
            self._play(sess, now)  # starts once the cushion is in (or its time is up)
        # playout: give up on chunks that did not come in time
        if sess.playing:
            if sess.play_next <= sess.head and sess.play_next not in sess.history:
                self._skip_due(sess, now)
        elif sess.waiting_since is not None and now - sess.waiting_since > cfg.cushion_seconds:
            self._skip(sess, now)  # the first chunk did not come: start at the next one
        # stale unverified chunks
        if len(sess.pending) > 0:
            for seq in [s for s, (_, t) in sess.pending.items() if now - t > 5.0 or s < sess.low]:
                del sess.pending[seq]

    def _skip(self, sess: Session, now: float) -> None:
        hist = sess.history
        seq = sess.play_next
        while seq <= sess.head:
            d = hist.get(seq)
            if d is not None and d[16] & wire.DATA_FRAME_START:
                break
            seq += 1
        count = seq - sess.play_next
        if count <= 0:
            sess.waiting_since = None
            return
        self._events.append(Skipped(sess.station_id, sess.play_next, count))
        self.stats.skipped_chunks += count
        for s in range(sess.play_next, seq):
            sess.requested.pop(s, None)
        sess.play_next = seq
        if sess.contig < seq:
            sess.contig = seq
            while sess.contig in hist:
                sess.contig += 1
        self._play(sess, now)

    def _evict(self, sess: Session) -> None:
        if sess.head < 0:
            return
        hist = sess.history
        limit = (sess.head_ts - int(self.config.history_seconds * 1000)) & 0xFFFFFFFF
        low = sess.low
        head = sess.head
        # chunks from play_next on are still wanted by playback (a listener's)
        wanted = sess.play_next if sess.key is None else head
        while low < head:
            d = hist.get(low)
            if d is None:
                if low >= wanted:
                    break  # still wanted: playback waits for it
                low += 1
                continue
            ts = _SEQ_TS.unpack_from(d, 8)[1]
            if not (ts - limit) & 0x80000000:  # ts >= limit
                break
            if low >= wanted:
                break
            del hist[low]
            low += 1
        if low != sess.low:
            seals = sess.seals
            for s in range(sess.low, low):
                hist.pop(s, None)
                sess.hashes.pop(s, None)
                sess.requested.pop(s, None)
                sess.pending.pop(s, None)
                fs = sess.seal_of.pop(s, None)
                if fs is not None:
                    raw = seals.get(fs)
                    if raw is not None and fs + raw[12] <= low:
                        del seals[fs]  # every chunk it covers is gone
            sess.low = low
            if sess.contig < low:
                sess.contig = low
