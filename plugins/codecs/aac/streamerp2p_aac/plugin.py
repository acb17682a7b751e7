"""The AAC (ADTS) codec plugin (entry point ``aac`` in group ``streamerp2p.codecs``).

Written like a third-party plugin: nothing in the kernel knows about AAC.
docs/writing-plugins.md walks through this plugin step by step.
"""

from __future__ import annotations

from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec

from .framer import CONTENT_TYPES, AdtsFramer, sniff


@hookimpl
def streamerp2p_codecs() -> list[CodecSpec]:
    """Provide AAC in ADTS (LC and HE-AAC, "aacp"), decoded internally by FFmpeg's aac."""
    return [
        CodecSpec(
            name="aac",
            content_types=CONTENT_TYPES,
            extensions=("aac", "adts"),
            sniff=sniff,
            framer=AdtsFramer,
            passthrough=False,
            decoder_format="aac",  # FFmpeg's ADTS demuxer
            description="AAC in ADTS (AAC-LC, HE-AAC)",
            # rejoin: not needed, every ADTS frame carries its own header
        )
    ]
