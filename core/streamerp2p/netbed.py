"""A test bed of real Linux network namespaces: an "internet", NAT routers and hosts behind them.

Used by the NAT tests and ``streamer bench nat`` (root and Linux only: ``ip`` from iproute2,
``nft`` from nftables, ``tc`` for upload caps). Everything it builds carries a unique name prefix
and is torn down by :meth:`NetBed.close` (also on errors, and leftovers of a killed run with the
same prefix are removed first)::

    with NetBed() as bed:
        pub = bed.public_host("pub")                 # on the internet
        home = bed.router("home", nat="cone")        # masquerade, source port kept when free
        a = bed.host("a", home, forward=8466)        # DNAT 8466 -> a (port forwarding)
        b = bed.host("b", home)
        bed.cap(b, 256)                              # b's upload: 256 kbit/s (tbf)
        bed.loss(b, 2)                               # b drops 2 % of what it sends (nft numgen)
        bed.loss(b, 3, "in")                         # ... and 3 % of what it receives
        proc = b.popen(["python", "-m", "streamerp2p", ...])

Addresses: the internet is 198.18.0.0/24 (a range reserved for benchmarks), public hosts get
198.18.0.10+, routers' WAN sides 198.18.0.100+; the n-th router's LAN is 10.n.0.0/24 with the
router at .1 and hosts from .2. ``nat="symmetric"`` uses ``masquerade random``: a new public port
for every new destination, which simple hole punching cannot pass from both sides.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import NodeProcess, read_status

INET = "198.18.0"


class NetBedError(RuntimeError):
    pass


def available() -> str | None:
    """Why the test bed cannot run here (None: it can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool, pkg in (("ip", "iproute2"), ("nft", "nftables"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {pkg})"
    return None


def _run(args: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    p = subprocess.run(list(args), input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise NetBedError(f"{' '.join(args)}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


@dataclass
class Host:
    bed: NetBed
    name: str
    ns: str
    ip: str  # its own address (public, or on its router's LAN)
    dev: str  # its interface inside its namespace
    router: Router | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def public_ip(self) -> str:
        return self.router.wan_ip if self.router is not None else self.ip

    def cmd(self, args: Sequence[str]) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *args]

    def run(self, args: Sequence[str], *, check: bool = True) -> str:
        return _run(self.cmd(args), check=check)

    def popen(self, args: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        p: subprocess.Popen[bytes] = subprocess.Popen(self.cmd(args), **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p


@dataclass
class Router:
    name: str
    ns: str
    index: int
    wan_ip: str
    nat: str
    lan_prefix: str  # "10.n.0"
    hosts: int = 0


class NetBed:
    def __init__(self, prefix: str | None = None) -> None:
        why = available()
        if why is not None:
            raise NetBedError(why)
        self.prefix = prefix or f"sp{os.getpid() % 100000}"
        self.namespaces: list[str] = []
        self.hosts: list[Host] = []
        self.routers: list[Router] = []
        self._pub = 10
        self._links = 0
        self._cleanup_leftovers()
        try:
            self.inet = self._netns("inet")
            _run(["ip", "-n", self.inet, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.inet, "link", "set", "br0", "up"])
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- building

    def _netns(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        """A cable between two namespaces (interface names as seen inside each)."""
        self._links += 1
        tmp_a, tmp_b = f"{self.prefix}a{self._links}", f"{self.prefix}b{self._links}"
        _run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        _run(["ip", "link", "set", tmp_a, "netns", ns_a, "name", name_a])
        _run(["ip", "link", "set", tmp_b, "netns", ns_b, "name", name_b])
        for ns, dev in ((ns_a, name_a), (ns_b, name_b)):
            _run(["ip", "-n", ns, "link", "set", dev, "up"])

    def public_host(self, name: str) -> Host:
        """A host with a public address on the internet (no NAT)."""
        ns = self._netns(name)
        ip = f"{INET}.{self._pub}"
        self._pub += 1
        port = f"p{len(self.hosts)}"
        self._veth(ns, "eth0", self.inet, port)
        _run(["ip", "-n", self.inet, "link", "set", port, "master", "br0"])
        _run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "route", "add", "default", "dev", "eth0"])  # as on the internet
        host = Host(self, name, ns, ip, "eth0")
        self.hosts.append(host)
        return host

    def router(self, name: str, nat: str = "cone") -> Router:
        """A home router: masquerade on its WAN side, drops what nobody asked for.

        ``nat``: "cone" (masquerade: the source port is kept when free, so a host has one public
        port for every destination) or "symmetric" (masquerade random: a new port per
        destination).
        """
        if nat not in ("cone", "symmetric"):
            raise ValueError(f"nat must be 'cone' or 'symmetric', not {nat!r}")
        index = len(self.routers) + 1
        ns = self._netns(name)
        wan_ip = f"{INET}.{100 + index}"
        port = f"r{index}"
        self._veth(ns, "wan", self.inet, port)
        _run(["ip", "-n", self.inet, "link", "set", port, "master", "br0"])
        _run(["ip", "-n", ns, "addr", "add", f"{wan_ip}/24", "dev", "wan"])
        _run(["ip", "-n", ns, "link", "add", "lan", "type", "bridge"])
        _run(["ip", "-n", ns, "link", "set", "lan", "up"])
        lan = f"10.{index}.0"
        _run(["ip", "-n", ns, "addr", "add", f"{lan}.1/24", "dev", "lan"])
        _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        random = " random" if nat == "symmetric" else ""
        rules = f"""
table ip nat {{
    chain pre {{ type nat hook prerouting priority dstnat; }}
    chain post {{
        type nat hook postrouting priority srcnat;
        oifname "wan" masquerade{random}
    }}
}}
table inet filter {{
    chain input {{
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iifname {{ "lo", "lan" }} accept
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct status dnat accept
        iifname "lan" accept
    }}
}}
"""
        _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules)
        r = Router(name, ns, index, wan_ip, nat, lan)
        self.routers.append(r)
        return r

    def host(self, name: str, router: Router, *, forward: int | None = None) -> Host:
        """A host on ``router``'s LAN; ``forward``: the router maps this UDP port to it."""
        ns = self._netns(name)
        router.hosts += 1
        ip = f"{router.lan_prefix}.{router.hosts + 1}"
        port = f"h{router.hosts}"
        self._veth(ns, "eth0", router.ns, port)
        _run(["ip", "-n", router.ns, "link", "set", port, "master", "lan"])
        _run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "route", "add", "default", "via", f"{router.lan_prefix}.1"])
        if forward is not None:
            rule = f'add rule ip nat pre iifname "wan" udp dport {forward} dnat to {ip}:{forward}\n'
            _run(["ip", "netns", "exec", router.ns, "nft", "-f", "-"], input=rule)
        host = Host(self, name, ns, ip, "eth0", router)
        self.hosts.append(host)
        return host

    def cap(self, host: Host, kbit: int) -> None:
        """Limit what ``host`` can send to ``kbit`` kbit/s (a token bucket on its interface)."""
        burst = max(1600, kbit * 1000 // 8 // 50)  # ~20 ms of data, at least one datagram
        host.run(
            ["tc", "qdisc", "replace", "dev", host.dev, "root", "tbf", "rate", f"{kbit}kbit",
             "burst", str(burst), "latency", "200ms"]
        )  # fmt: skip

    def loss(self, host: Host, percent: int, direction: str = "out") -> None:
        """``host`` loses ``percent`` % of the UDP datagrams it sends (``direction="out"``)
        or receives (``"in"``), at random (nft numgen)."""
        if direction not in ("in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        hook = "output" if direction == "out" else "input"
        rules = f"""
table inet loss_{direction} {{
    chain {direction} {{
        type filter hook {hook} priority filter;
        meta l4proto udp numgen random mod 100 < {percent} drop
    }}
}}
"""
        _run(["ip", "netns", "exec", host.ns, "nft", "-f", "-"], input=rules)

    # ---------------------------------------------------------------- teardown

    def _kill_ns_pids(self, ns: str) -> None:
        out = _run(["ip", "netns", "pids", ns], check=False)
        for pid in out.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)

    def _cleanup_leftovers(self) -> None:
        out = _run(["ip", "netns", "list"], check=False)
        for line in out.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"{self.prefix}-"):
                self._kill_ns_pids(ns)
                _run(["ip", "netns", "del", ns], check=False)

    def close(self) -> None:
        for host in self.hosts:
            for p in host.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=5)
        for ns in reversed(self.namespaces):
            self._kill_ns_pids(ns)
            _run(["ip", "netns", "del", ns], check=False)
        self.namespaces.clear()

    def __enter__(self) -> NetBed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BedNodes:
    """``streamer`` node processes on test-bed hosts, each with a status file (port 8466)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, NodeProcess] = {}
        self.started: dict[str, float] = {}

    def start(self, host: Host, name: str, args: list[str]) -> NodeProcess:
        common = ["--port", "8466", "--http", "127.0.0.1:0"]
        status = ["--status-file", str(self.tmp / f"{name}.json")]
        p = NodeProcess(
            ["--state-dir", str(self.tmp / name), *args, *common, *status],
            name=name,
            wrap=host.cmd([]),
        )
        self.procs[name] = p
        self.started[name] = time.monotonic()
        return p

    def status(self, name: str) -> dict[str, Any]:
        st = read_status(self.tmp / f"{name}.json")
        if st is None:
            raise NetBedError(f"{name}: no status")
        return st

    def wait(
        self, name: str, cond: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The node's status once ``cond`` holds (the status file is rewritten twice a second:
        polled, there is no event to wait on); AssertionError with the last status if not."""
        deadline = time.monotonic() + timeout
        st: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            st = read_status(self.tmp / f"{name}.json")
            if st is not None and cond(st):
                return st
            time.sleep(0.1)
        raise AssertionError(f"{name}: condition not met; last status {json.dumps(st)[:2000]}")

    def stop(self) -> None:
        for p in self.procs.values():
            p.kill()


def playing(st: dict[str, Any]) -> bool:
    return any(s["first_audio_s"] is not None for s in st["sessions"])
