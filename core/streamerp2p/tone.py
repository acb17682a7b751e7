"""Generated audio for the demo and benchmarks: a tune of sine tones encoded to mp3 with PyAV.

It produces the byte stream a broadcast tool would send (MPEG-1 Layer III, 44.1 kHz stereo),
in real time or as fast as asked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import Any

import av
import numpy as np

RATE = 44100
FRAME_SAMPLES = 1152
# a little tune (Hz), one note per second
NOTES = [440.0, 494.0, 523.3, 587.3, 659.3, 587.3, 523.3, 494.0]


def _note_name(freq: float) -> str:
    names = ["A", "A#", "B", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#"]
    n = round(12 * math.log2(freq / 440.0))
    return f"{names[n % 12]}{4 + (n + 9) // 12}"


def _cycle_pcm() -> np.ndarray:
    """The whole tune once (int16 mono), each note faded in and out."""
    t = np.arange(RATE * len(NOTES))
    freqs = np.repeat(np.asarray(NOTES), RATE)
    phase = np.cumsum(2 * np.pi * freqs / RATE)
    pos = t % RATE
    env = np.minimum(1.0, pos / 2000.0) * np.minimum(1.0, (RATE - pos) / 2000.0)
    return (9000 * env * np.sin(phase)).astype("<i2")


def _encode_cycle(bitrate_kbps: int) -> tuple[bytes, ...]:
    """The tune encoded once: mp3 frames that loop seamlessly (the first frame of an
    encoding needs no earlier frame, and the tune is silent where it wraps)."""
    codec: Any = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate = RATE
    codec.layout = "stereo"
    codec.format = "s16p"
    codec.bit_rate = bitrate_kbps * 1000
    codec.open()
    pcm = _cycle_pcm()
    packets: list[bytes] = []
    for i in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        block = pcm[i : i + FRAME_SAMPLES].tobytes()
        frame = av.AudioFrame(format="s16p", layout="stereo", samples=FRAME_SAMPLES)
        frame.planes[0].update(block)
        frame.planes[1].update(block)
        frame.sample_rate = RATE
        frame.pts = i
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]  # the encoder's delayed frames
    return tuple(packets)


@functools.cache
def _cycle(bitrate_kbps: int) -> tuple[bytes, ...]:
    return _encode_cycle(bitrate_kbps)


class ToneSource:
    """A repeating tune as mp3; ``read(seconds)`` returns the next bytes.

    The tune is encoded once per process and bitrate, then replayed frame by frame: a tone
    broadcaster costs next to no CPU (it shares the interpreter with the node it feeds)."""

    def __init__(self, bitrate_kbps: int = 128) -> None:
        self._frames = _cycle(bitrate_kbps)
        self.samples = 0  # samples sent so far

    def title(self) -> str:
        index = (self.samples // FRAME_SAMPLES) % len(self._frames)
        f = NOTES[min(index * FRAME_SAMPLES // RATE, len(NOTES) - 1)]
        return f"Demo tone {_note_name(f)} ({f:.0f} Hz)"

    def frames(self, count: int) -> Iterator[bytes]:
        """The next ``count`` mp3 frames (1152 samples each)."""
        for _ in range(count):
            index = (self.samples // FRAME_SAMPLES) % len(self._frames)
            self.samples += FRAME_SAMPLES
            yield self._frames[index]

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
