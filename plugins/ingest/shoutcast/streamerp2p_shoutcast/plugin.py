"""Plugin registration: the ``shoutcast`` ingest server (entry point ``streamerp2p.ingest``)."""

from __future__ import annotations

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import IngestContext, IngestSpec

from .server import ShoutcastServer


async def serve(ctx: IngestContext) -> None:
    """Accept SHOUTcast v1 sources on ``ctx.port + 1``, title updates on ``ctx.port``."""
    await ShoutcastServer(ctx).serve()


@hookimpl
def streamerp2p_ingest_servers() -> list[IngestSpec]:
    return [
        IngestSpec(
            name="shoutcast",
            description=(
                "SHOUTcast v1 (DNAS 1.x) compatible source server: sources on PORT+1 (password "
                "line, OK2, icy-* headers), /admin.cgi?mode=updinfo title updates on PORT "
                "(butt, darkice, libshout ICY, liquidsoap, Mixxx, SAM...)"
            ),
            default_port=8000,
            serve=serve,
        )
    ]
