"""Where misses come from (age, class, peers).

`uv run python tools/sim_misses.py PEERS MINUTES SEED [CHURN LOSS]`
"""

import json
import sys
from collections import Counter

from streamerp2p import simrun

peers = int(sys.argv[1])
minutes = float(sys.argv[2])
seed = int(sys.argv[3])
churn = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
loss = float(sys.argv[5]) if len(sys.argv) > 5 else 0.01
p = simrun.SimParams(
    peers=peers,
    minutes=minutes,
    churn=churn,
    seed=seed,
    bitrate_kbps=128,
    warmup_seconds=60,
    loss_max=loss,
)
sw = simrun.Swarm(p)
by_age = Counter()
by_cls = Counter()
chunks_cls = Counter()
per_peer = Counter()
orig = sw._on_event


def on_event(peer, ev):
    if type(ev).__name__ == "Skipped" and sw.sim.now >= p.warmup_seconds:
        st = sw.stats.get(peer.addr)
        if st is not None and st.left is None and st.first_audio is not None:
            age = sw.sim.now - st.first_audio
            b = 0 if age < 5 else 1 if age < 10 else 2 if age < 30 else 3
            by_age[b] += ev.count
            by_cls[st.cls] += ev.count
            per_peer[peer.addr] += ev.count
    orig(peer, ev)


sw.sim.on_event = on_event
r = sw.run()
f = r.figures
print(
    json.dumps(
        {
            k: f[k]
            for k in (
                "continuity",
                "continuity_by_minute",
                "startup_p50_s",
                "startup_p95_s",
                "rebuffers",
                "skipped_chunks",
                "control_overhead",
                "wall_s",
            )
        }
    )
)
print("skipped by age since first audio: <5s, 5-10s, 10-30s, >30s:", [by_age[i] for i in range(4)])
print("skipped by class:", dict(by_cls))
vals = sorted(per_peer.values(), reverse=True)
n = len(sw.stats)
print(f"peers with skips: {len(vals)} of {n}; top 10: {vals[:10]}; total {sum(vals)}")
print("timeline", [(s["t"], s["continuity"]) for s in r.timeline])
