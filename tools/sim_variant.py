"""NodeConfig overrides over seeds.

`uv run python tools/sim_variant.py PEERS MINUTES SEED key=value...` (NodeConfig fields, or
`node.NAME=value` for a module constant of streamerp2p.overlay.node)
"""

import functools
import json
import sys

from streamerp2p import simrun
from streamerp2p.overlay import node as node_module
from streamerp2p.overlay.node import NodeConfig

peers, minutes, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
over = {}
consts = {}
for kv in sys.argv[4:]:
    k, v = kv.split("=")
    if k.startswith("node."):  # a module constant of streamerp2p.overlay.node
        setattr(node_module, k[5:], eval(v))
        consts[k] = eval(v)
        continue
    over[k] = type(getattr(NodeConfig(), k))(eval(v))
simrun.NodeConfig = functools.partial(NodeConfig, **over)
p = simrun.SimParams(
    peers=peers, minutes=minutes, churn=0.1, seed=seed, bitrate_kbps=128, warmup_seconds=60
)
f = simrun.run_sim(p).figures
print(
    json.dumps(
        {
            "over": {**over, **consts},
            **{
                k: f[k]
                for k in (
                    "continuity",
                    "continuity_by_minute",
                    "startup_p50_s",
                    "startup_p95_s",
                    "rebuffers",
                    "control_overhead",
                    "auth_overhead",
                    "source_upload_ratio",
                    "depth_mean",
                    "depth_max",
                    "never_started",
                    "honest_nodes",
                    "wall_s",
                )
            },
        }
    )
)
