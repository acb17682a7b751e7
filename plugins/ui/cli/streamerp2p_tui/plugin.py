"""Plugin registration: the ``cli`` front end (entry point group ``streamerp2p.ui``)."""

from __future__ import annotations

from typing import Any

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import UISpec


async def run(app: Any) -> None:
    from .tui import run_tui

    await run_tui(app)


@hookimpl
def streamerp2p_ui() -> list[UISpec]:
    return [
        UISpec(
            name="cli",
            description="Full-screen terminal UI (Textual): stations, tune, player, node, "
            "broadcast, settings",
            run=run,
        )
    ]
