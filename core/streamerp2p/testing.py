"""Helpers for the test suites of the kernel and of plugins."""

from __future__ import annotations

import os
import shutil
from typing import Any


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def require_tool(name: str, install_hint: str = "") -> str:
    """Path of an external tool; skips the test locally if missing, fails it in CI.

    ``.ci/run`` installs every tool the tests use, so a missing tool in CI is a real failure.
    """
    import pytest

    path = shutil.which(name)
    if path is None:
        hint = install_hint or f"apt-get install {name}"
        if in_ci():
            pytest.fail(f"{name} is required in CI ({hint}; .ci/run installs it)")
        pytest.skip(f"{name} not installed ({hint})")
    return path


# --------------------------------------------------------------------------------------------
# Audio: known signals, decoding, and comparing a recording with its source
# --------------------------------------------------------------------------------------------


def noise_mp3(seconds: float, *, seed: int = 1, bitrate_kbps: int = 128) -> bytes:
    """An mp3 stream (44.1 kHz stereo, no tags) of white noise: a recording of it aligns with
    its source at exactly one offset, so a gap or a repeat anywhere shows."""
    import av
    import numpy as np

    rate, frame = 44100, 1152
    rng = np.random.default_rng(seed)
    codec = av.CodecContext.create("libmp3lame", "w")
    codec.sample_rate = rate
    codec.layout = "stereo"
    codec.format = "fltp"
    codec.bit_rate = bitrate_kbps * 1000
    codec.open()
    out = bytearray()
    n = round(seconds * rate / frame)
    for i in range(n + 1):
        if i < n:
            pcm = (0.25 * rng.standard_normal((2, frame))).clip(-1, 1).astype(np.float32)
            f = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
            f.sample_rate = rate
            f.pts = i * frame
            packets = codec.encode(f)
        else:
            packets = codec.encode(None)
        for p in packets:
            out += bytes(p)
    return bytes(out)


def decode_pcm(data: bytes, fmt: str = "mp3") -> Any:
    """Decode a whole stream with PyAV to float32 stereo, shape (frames, 2)."""
    import io

    import av
    import numpy as np

    blocks = []
    with av.open(io.BytesIO(data), format=fmt) as c:
        res = av.AudioResampler(format="flt", layout="stereo", rate=c.streams.audio[0].rate)
        for frame in c.decode(audio=0):
            blocks += [o.to_ndarray().reshape(-1, 2) for o in res.resample(frame)]
        blocks += [o.to_ndarray().reshape(-1, 2) for o in res.resample(None)]
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), np.float32)


def align(reference: Any, recording: Any, probe_seconds: float = 2.0, rate: int = 44100) -> int:
    """Offset in ``reference`` (sample frames) where ``recording`` starts: the peak of the
    cross-correlation of a probe from the recording's start (after 0.2 s) with the reference."""
    import numpy as np

    ref = reference.mean(axis=1) if reference.ndim > 1 else reference
    rec = recording.mean(axis=1) if recording.ndim > 1 else recording
    skip = int(0.2 * rate)
    probe = rec[skip : skip + int(probe_seconds * rate)]
    n = 1 << int(np.ceil(np.log2(len(ref) + len(probe))))
    corr = np.fft.irfft(np.fft.rfft(ref, n) * np.conj(np.fft.rfft(probe, n)), n)
    return int(np.argmax(corr[: len(ref)])) - skip


def window_correlations(
    reference: Any, recording: Any, offset: int, window: int = 11025
) -> list[float]:
    """Normalised correlation of each ``window`` of ``recording`` with ``reference`` at
    ``offset`` (1.0: the same audio; a gap or a repeat drops every window after it)."""
    import numpy as np

    out: list[float] = []
    for start in range(0, len(recording) - window + 1, window):
        a = recording[start : start + window].reshape(-1)
        lo = offset + start
        if lo < 0 or lo + window > len(reference):
            break
        b = reference[lo : lo + window].reshape(-1)
        den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
        out.append(float(np.dot(a, b)) / den if den else 0.0)
    return out


def require_portaudio() -> None:
    """Skip the test locally (fail it in CI) unless sounddevice finds the PortAudio library."""
    import pytest

    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        hint = "apt-get install libportaudio2"
        if in_ci():
            pytest.fail(f"PortAudio is required in CI ({hint}; .ci/run installs it): {exc}")
        pytest.skip(f"PortAudio not installed ({hint})")


def fuzz_settings() -> Any:
    """The hypothesis settings of the fuzz tests: derandomized, no example database, no
    deadline (CI machines are slow and shared). Use as ``@settings(FUZZ, max_examples=N)``."""
    from hypothesis import HealthCheck, settings

    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
