"""Plugin registration: the ``icecast`` ingest server (entry point group ``streamerp2p.ingest``)."""

from __future__ import annotations

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import IngestContext, IngestSpec

from .server import IcecastServer


async def serve(ctx: IngestContext) -> None:
    """Accept Icecast 2 sources on ``ctx.host:ctx.port`` until cancelled."""
    await IcecastServer(ctx).serve()


@hookimpl
def streamerp2p_ingest_servers() -> list[IngestSpec]:
    return [
        IngestSpec(
            name="icecast",
            description=(
                "Icecast 2 compatible source server: PUT and legacy SOURCE, Basic auth, "
                "/admin/metadata title updates (ffmpeg, libshout, butt, Mixxx, liquidsoap...)"
            ),
            default_port=8000,
            serve=serve,
        )
    ]
