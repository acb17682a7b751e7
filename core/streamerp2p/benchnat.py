"""``streamer bench nat``: broadcasting and listening through real Linux NAT, as JSON figures.

Builds a test bed (network namespaces; root, Linux, ``ip``/``nft``/``tc``): a seed and public
listeners on the "internet"; the broadcaster behind a cone NAT without port forwarding; listeners
behind cone NATs, behind symmetric NATs, and a LAN pair behind one router (one with the port
forwarded); two hosts with capped uploads for the bandwidth test. Listeners start one after the
other, each once the previous one plays. Figures: share of listeners served, time to first audio
per NAT kind (from the process start), tree links per NAT-kind pair (every link is a direct path,
punched where both ends are behind NATs, a LAN address between LAN neighbours) and the share
of them that are direct, failed punches, datagrams that went through proxies, and the
bandwidth test's error against the tbf cap.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .netbed import BedNodes, Host, NetBed, playing


def run_nat_bench(
    *, listeners: int = 2, as_json: bool = False, hold: float = 10.0
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="benchnat"))
    with NetBed() as bed:
        seed = bed.public_host("seed")
        kinds: dict[str, str] = {}  # node name -> NAT kind
        hosts: dict[str, Host] = {}

        def add(name: str, host: Host, kind: str) -> None:
            hosts[name], kinds[name] = host, kind

        for i in range(listeners):
            add(f"pub{i}", bed.public_host(f"pub{i}"), "public")
        for i in range(listeners):
            add(f"cone{i}", bed.host(f"cone{i}", bed.router(f"rc{i}", "cone")), "cone")
        for i in range(listeners):
            add(f"sym{i}", bed.host(f"sym{i}", bed.router(f"rs{i}", "symmetric")), "symmetric")
        lan = bed.router("lan", "cone")
        add("lan_fwd", bed.host("lan_fwd", lan, forward=8466), "lan-forwarded")
        add("lan_2nd", bed.host("lan_2nd", lan), "lan-second")
        home = bed.router("home", "cone")
        bc = bed.host("bc", home)
        caps = {"cap256": 256, "cap1024": 1024}
        for name, kbit in caps.items():
            h = bed.public_host(name)
            bed.cap(h, kbit)
            add(name, h, "public-capped")
        addr_kind = {f"{h.public_ip}:8466": kinds[n] for n, h in hosts.items()}
        addr_kind[f"{seed.ip}:8466"] = "public"
        addr_kind[f"{home.wan_ip}:8466"] = "cone (broadcaster)"
        for n, h in hosts.items():
            if h.router is not None:  # a LAN neighbour feeds another at its LAN address
                addr_kind[f"{h.ip}:8466"] = f"{kinds[n]} (LAN)"

        nodes = BedNodes(tmp)
        s = f"{seed.ip}:8466"
        try:
            nodes.start(seed, "seed", ["node"])
            b = nodes.start(bc, "bc", ["broadcast", "--tone", "--name", "Bench FM", "--seed", s])
            link = b.value("link:", 30)
            nodes.wait("bc", lambda st: st["nat"]["proxy"] is not None, 20)
            time.sleep(3)  # some history, as a station on air for a while has
            served: dict[str, float | None] = {}
            order = [n for n in hosts if kinds[n] == "public"] + [
                n for n in hosts if kinds[n] != "public"
            ]
            for name in order:
                nodes.start(hosts[name], name, ["listen", link, "--seed", s, "--slots", "4"])
                try:
                    st = nodes.wait(name, playing, 10)
                    served[name] = st["sessions"][0]["first_audio_s"]
                except AssertionError:
                    served[name] = None
            time.sleep(hold)  # the tree settles, capacities are measured
            links: Counter[str] = Counter()
            direct: Counter[str] = Counter()
            proxied = punch_failed = 0
            bw: dict[str, Any] = {}
            for name in ["seed", "bc", *order]:
                st = nodes.status(name)
                proxied += st["stats"]["nat_forwarded"]
                punch_failed += st["stats"].get("nat_punch_failed", 0)
                if name in caps:
                    got = st["upload_kbps"] if st["upload_measured"] else None
                    err = None if got is None else round(got / caps[name] - 1, 3)
                    bw[name] = {"cap_kbps": caps[name], "measured_kbps": got, "error": err}
                if name in kinds:
                    parent = st["sessions"][0]["parent"] if st["sessions"] else None
                    if parent is not None:
                        pair = f"{kinds[name]} <- {addr_kind.get(parent, '?')}"
                        links[pair] += 1
                        # direct: the parent's own address (public, or LAN), never a proxy's
                        direct[pair] += parent in addr_kind
            by_kind: dict[str, list[float]] = {}
            for name, t in served.items():
                if t is not None:
                    by_kind.setdefault(kinds[name], []).append(t)
            figures = {
                "listeners": len(served),
                "served_share": round(sum(t is not None for t in served.values()) / len(served), 3),
                "not_served": sorted(n for n, t in served.items() if t is None),
                "first_audio_s_by_kind": {
                    k: {"median": round(statistics.median(v), 3), "max": round(max(v), 3)}
                    for k, v in sorted(by_kind.items())
                },
                "tree_links_by_kind": dict(sorted(links.items())),
                "direct_share_by_kind_pair": {
                    k: round(direct[k] / v, 3) for k, v in sorted(links.items())
                },
                "punches_failed": punch_failed,
                "datagrams_forwarded_by_proxies": proxied,
                "bandwidth_test": bw,
            }
        finally:
            nodes.stop()
    if as_json:
        print(json.dumps(figures))
    else:
        print(json.dumps(figures, indent=2))
    return figures
