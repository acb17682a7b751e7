"""Generated audio for the demo and benchmarks: a tune of sine tones encoded to mp3 with PyAV.

It produces the byte stream a broadcast tool would send (MPEG-1 Layer III, 44.1 kHz stereo),
in real time or as fast as asked.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import av

RATE = 44100
FRAME_SAMPLES = 1152
# a little tune (Hz), one note per second
NOTES = [440.0, 494.0, 523.3, 587.3, 659.3, 587.3, 523.3, 494.0]


def _note_name(freq: float) -> str:
    names = ["A", "A#", "B", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#"]
    n = round(12 * math.log2(freq / 440.0))
    return f"{names[n % 12]}{4 + (n + 9) // 12}"


class ToneSource:
    """Encodes a repeating tune to mp3; ``read(seconds)`` returns the next bytes."""

    def __init__(self, bitrate_kbps: int = 128) -> None:
        self.codec = av.CodecContext.create("libmp3lame", "w")
        self.codec.sample_rate = RATE
        self.codec.layout = "stereo"
        self.codec.format = "s16p"
        self.codec.bit_rate = bitrate_kbps * 1000
        self.codec.open()
        self.samples = 0
        self._phase = 0.0

    def title(self) -> str:
        f = NOTES[(self.samples // RATE) % len(NOTES)]
        return f"Demo tone {_note_name(f)} ({f:.0f} Hz)"

    def _pcm(self) -> bytes:
        out = bytearray()
        pack = struct.Struct("<h").pack
        for i in range(FRAME_SAMPLES):
            t = self.samples + i
            f = NOTES[(t // RATE) % len(NOTES)]
            env = min(1.0, (t % RATE) / 2000.0) * min(1.0, (RATE - t % RATE) / 2000.0)
            self._phase += 2 * math.pi * f / RATE
            out += pack(int(9000 * env * math.sin(self._phase)))
        return bytes(out)

    def frames(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            pcm = self._pcm()
            frame = av.AudioFrame(format="s16p", layout="stereo", samples=FRAME_SAMPLES)
            frame.planes[0].update(pcm)
            frame.planes[1].update(pcm)
            frame.sample_rate = RATE
            frame.pts = self.samples
            self.samples += FRAME_SAMPLES
            for packet in self.codec.encode(frame):
                yield bytes(packet)

    def read(self, seconds: float) -> bytes:
        n = max(1, round(seconds * RATE / FRAME_SAMPLES))
        return b"".join(self.frames(n))


async def tone_loop(app: Any, station_id: bytes) -> None:
    """Feed ``app``'s station with the tune in real time, updating the now-playing title."""
    import anyio

    src = ToneSource()
    push = app.push_bytes_framer(station_id)
    t0 = anyio.current_time()
    last_title = ""
    while station_id[:4] in app.node.sessions:  # until the broadcast ends (leave)
        need = anyio.current_time() - t0 + 0.2 - src.samples / RATE
        if need > 0:
            push(src.read(need))
            title = src.title()
            if title != last_title and station_id[:4] in app.node.sessions:
                last_title = title
                app.node.update_station(station_id, app.now(), title=title)
                app.runtime.poke()
        await anyio.sleep(0.1)
