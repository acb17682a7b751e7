"""The internal player and the recorder: a station's output stream decoded with PyAV.

A :class:`StreamDecoder` reads the bytes a player would get (a
:class:`~streamerp2p.output.Subscription`: codec headers, then audio from a frame start, then
live) and decodes them with PyAV. The async side copies the bytes into a :class:`BytePipe`;
a worker thread (``anyio.to_thread``) opens it with ``av.open`` as a non-seekable file with the
codec's demuxer (:attr:`CodecSpec.decoder_format`), decodes, resamples with PyAV's
``AudioResampler`` to float32 stereo at the stream's rate and hands the PCM to a sink:

- :class:`SoundDeviceSink`: the sound device through sounddevice/PortAudio (imported lazily; a
  missing library or device raises :class:`NoSoundDevice` with a one-line reason);
- :class:`SoundFileSink`: a WAV, FLAC or Ogg Vorbis file through soundfile (``--record``),
  kept a valid file at every moment so that a killed node leaves a readable recording;
- :class:`NullSink`: counts (and optionally keeps) the samples, for tests.

Bad input never stops the node: decode and demux errors are counted in :class:`DecodeStats`
and decoding goes on (reopening the demuxer on the rest of the stream if it gives up).
``--dump`` needs no decoding: :func:`dump_output` writes the stream bytes as they come.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import numpy as np

from .output import StationOutput
from .types import CodecSpec, StationMeta

if TYPE_CHECKING:
    from .plugins import PluginHost

log = logging.getLogger(__name__)

#: Every decoder's output: interleaved float32, this many channels, at the stream's rate.
CHANNELS = 2
#: Bytes the pipe between the async side and the decoder thread holds at most; past that the
#: decoder is far slower than the stream and what is buffered is dropped (counted).
PIPE_LIMIT = 4 << 20
#: Demuxer options: start decoding at once on a live stream (no long probing).
_OPEN_OPTIONS = {"probesize": "32768", "analyzeduration": "0"}
#: Consecutive demux errors after which the demuxer is reopened on the rest of the stream.
_MAX_DEMUX_ERRORS = 8


class CannotDecode(Exception):
    """The internal decoder cannot play this stream (message meant for humans)."""


class NoSoundDevice(Exception):
    """No sound output: PortAudio missing, no device, or the device refused the stream."""


@dataclass(slots=True)
class DecodeStats:
    bytes_in: int = 0
    packets: int = 0
    samples: int = 0  # output sample frames (per channel) handed to the sink
    decode_errors: int = 0  # corrupt packets / demux errors dropped
    reopens: int = 0  # times the demuxer was reopened on the rest of the stream
    dropped_bytes: int = 0  # bytes dropped because the decoder fell too far behind
    rate: int = 0  # output sample rate, once known

    @property
    def seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0


# --------------------------------------------------------------------------------------------
# The pipe between the event loop and the decoder thread
# --------------------------------------------------------------------------------------------


class BytePipe:
    """A thread-safe byte queue that PyAV reads as a non-seekable file.

    ``write`` (event loop side) never blocks; ``read`` (decoder thread) blocks until data is
    there or the pipe is closed, and returns b"" at the end. ``abort`` also drops what is
    buffered.
    """

    def __init__(self, limit: int = PIPE_LIMIT) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        with self._cond:
            if self._closed or not data:
                return
            if self._size + len(data) > self.limit:
                self.dropped += self._size
                self._chunks.clear()
                self._size = 0
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                return b""
            data = self._chunks.popleft()
            if 0 <= n < len(data):
                self._chunks.appendleft(data[n:])
                data = data[:n]
            self._size -= len(data)
            return data

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        """Closed and nothing left to read."""
        with self._cond:
            return self._closed and not self._chunks


# --------------------------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------------------------


class PcmSink(Protocol):
    """Where decoded audio goes. Called from the decoder thread only."""

    def open(self, rate: int, channels: int) -> None: ...

    def write(self, pcm: np.ndarray) -> None:
        """``pcm``: float32, shape (frames, channels), nominally within [-1, 1]."""
        ...

    def close(self, abort: bool = False) -> None:
        """End of stream (``abort``: stopped, drop what is not played yet)."""
        ...


class NullSink:
    """Counts the samples (and keeps them with ``keep=True``); for tests and benchmarks."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self.rate = 0
        self.channels = 0
        self.samples = 0
        self.closed = False
        self.blocks: list[np.ndarray] = []
        self._cond = threading.Condition()

    def open(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels

    def write(self, pcm: np.ndarray) -> None:
        with self._cond:
            if self.keep:
                self.blocks.append(pcm.copy())
            self.samples += len(pcm)
            self._cond.notify_all()

    def close(self, abort: bool = False) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def pcm(self) -> np.ndarray:
        with self._cond:
            if not self.blocks:
                return np.zeros((0, self.channels or CHANNELS), np.float32)
            return np.concatenate(self.blocks)

    def wait_for(self, samples: int, timeout: float) -> bool:
        """Block until ``samples`` sample frames arrived (or the sink closed, or timeout)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.samples >= samples or self.closed, timeout)


#: Recording formats by file extension: (soundfile format, subtype).
RECORD_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
}

# libsndfile's sf_command code (sndfile.h) that soundfile does not name.
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061
# Samples libFLAC may hold before writing a frame (libsndfile's encoder uses 4096 per block).
_FLAC_MAX_BLOCK = 4608


def record_format(path: Path) -> tuple[str, str]:
    """The (format, subtype) for a recording file name; ValueError for an unknown extension."""
    fmt = RECORD_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(RECORD_FORMATS))
        raise ValueError(
            f"{path}: cannot record to {path.suffix or 'a file without extension'!r} "
            f"(use {known}; --dump FILE keeps the stream as it is)"
        )
    return fmt


class SoundFileSink:
    """A recording through soundfile (libsndfile), format from the file name's extension.

    The file is a valid one at every moment, so a node that is killed leaves a readable
    recording: a WAV file's RIFF and data sizes are rewritten after every write
    (libsndfile's auto header update), a FLAC file's STREAMINFO gets the count of samples
    safely on disk twice a second (it is completed at close), Ogg pages are complete as written
    (the last second or so, still inside the encoder, is lost on a kill).
    """

    def __init__(self, path: Path, on_open: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.format, self.subtype = record_format(self.path)
        self.on_open = on_open
        self.samples = 0
        self.rate = 0
        self._file: Any = None
        self._flac_patched = 0
        self._flac_patching = self.format == "FLAC"

    def open(self, rate: int, channels: int) -> None:
        import soundfile as sf

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(
            self.path,
            "w",
            samplerate=rate,
            channels=channels,
            format=self.format,
            subtype=self.subtype,
        )
        self.rate = rate
        if self.format == "WAV":
            _sf_command(self._file, _SFC_SET_UPDATE_HEADER_AUTO, True)
        if self.on_open is not None:
            self.on_open(f"{self.format} {self.subtype}, {rate} Hz, {channels} ch")

    def write(self, pcm: np.ndarray) -> None:
        self._file.write(np.clip(pcm, -1.0, 1.0))
        self.samples += len(pcm)
        if self._flac_patching and self.samples - self._flac_patched >= self.rate // 2:
            self._patch_flac_length()

    def close(self, abort: bool = False) -> None:
        if self._file is not None:
            self._file.close()  # writes the final header / STREAMINFO / last Ogg page
            self._file = None

    def _patch_flac_length(self) -> None:
        """Put a lower bound of the samples on disk in the STREAMINFO block.

        libFLAC writes STREAMINFO with "length unknown" and completes it at close; a file cut
        by a kill would keep "unknown", which libsndfile cannot read. Samples still inside the
        encoder (at most a few blocks) are not counted.
        """
        safe = self.samples - 2 * _FLAC_MAX_BLOCK
        if safe <= 0:
            return
        try:
            with open(self.path, "r+b") as f:
                head = f.read(26)
                # "fLaC", then STREAMINFO (type 0) first; total samples: 36 bits at byte 21.5
                if len(head) < 26 or head[:4] != b"fLaC" or head[4] & 0x7F != 0:
                    return
                word = int.from_bytes(head[18:26], "big")
                word = (word & ~((1 << 36) - 1)) | (safe & ((1 << 36) - 1))
                f.seek(18)
                f.write(word.to_bytes(8, "big"))
            self._flac_patched = self.samples
        except OSError as exc:  # the recording goes on; only the kill-safety is lost
            log.warning("cannot update %s's length (no longer tried): %s", self.path, exc)
            self._flac_patching = False


def _sf_command(sndfile: Any, command: int, flag: bool) -> None:
    """A libsndfile ``sf_command`` with a boolean argument (not wrapped by soundfile)."""
    from soundfile import _ffi, _snd  # type: ignore[attr-defined]

    _snd.sf_command(sndfile._file, command, _ffi.NULL, _snd.SF_TRUE if flag else _snd.SF_FALSE)


def _import_sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # sounddevice is there, the PortAudio library is not
        raise NoSoundDevice(
            f"{exc} (install PortAudio: e.g. apt-get install libportaudio2)"
        ) from exc
    except ImportError as exc:
        raise NoSoundDevice(f"the sounddevice module is missing ({exc})") from exc
    return sd


def _device_arg(device: str) -> int | str | None:
    device = device.strip()
    if not device:
        return None
    return int(device) if device.isdigit() else device


def probe_sound_device(device: str = "") -> str:
    """Name of the output device ``device`` ("" = the default); :class:`NoSoundDevice` if none."""
    sd = _import_sounddevice()
    try:
        info = sd.query_devices(_device_arg(device), kind="output")
        api = sd.query_hostapis(info["hostapi"])["name"]
    except (sd.PortAudioError, ValueError) as exc:
        what = f"no output device {device!r}" if device else "no output device"
        raise NoSoundDevice(f"{what} (PortAudio: {exc})") from exc
    return f"{info['name']} ({api})"


class SoundDeviceSink:
    """Plays through the sound device with a sounddevice ``OutputStream`` (blocking writes)."""

    def __init__(self, device: str = "") -> None:
        self.device = device
        self.underflows = 0
        self.description = ""
        self._stream: Any = None

    def open(self, rate: int, channels: int) -> None:
        sd = _import_sounddevice()
        try:
            self.description = probe_sound_device(self.device)
            self._stream = sd.OutputStream(
                samplerate=rate,
                channels=channels,
                dtype="float32",
                device=_device_arg(self.device),
                latency="high",
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise NoSoundDevice(f"{self.description or 'output device'}: {exc}") from exc

    def write(self, pcm: np.ndarray) -> None:
        if self._stream.write(np.ascontiguousarray(pcm, np.float32)):
            self.underflows += 1

    def close(self, abort: bool = False) -> None:
        if self._stream is None:
            return
        with contextlib.suppress(Exception):
            if abort:
                self._stream.abort()
            else:
                self._stream.stop()
        with contextlib.suppress(Exception):
            self._stream.close()
        self._stream = None


# --------------------------------------------------------------------------------------------
# The decoder
# --------------------------------------------------------------------------------------------


def decoder_format(spec: CodecSpec | None, meta: StationMeta) -> str:
    """The PyAV demuxer for ``spec``; :class:`CannotDecode` with a plain reason if none."""
    if spec is None:
        raise CannotDecode(
            f"no codec plugin for this stream ({meta.content_type or 'unknown type'})"
        )
    if spec.passthrough or not spec.decoder_format:
        raise CannotDecode(
            f"the internal decoder cannot decode {spec.name}"
            + (f" ({spec.description})" if spec.description else "")
        )
    return spec.decoder_format


class StreamDecoder:
    """Decodes an async byte stream into a :class:`PcmSink`; see the module docstring.

    ``gain`` (0..1, applied in software) may be changed while playing.
    """

    def __init__(self, fmt: str, sink: PcmSink, *, gain: float = 1.0) -> None:
        self.format = fmt
        self.sink = sink
        self.gain = gain
        self.stats = DecodeStats()
        self._pipe = BytePipe()
        self._stop = False
        self._sink_open = False
        self._resampler: Any = None
        self._resampler_key: tuple[str, str, int] | None = None

    async def run(self, chunks: AsyncIterator[bytes], *, drain: bool = True) -> DecodeStats:
        """Decode until ``chunks`` ends (then the sink is closed) or the task is cancelled.

        On cancellation, ``drain`` decodes what is already buffered (a recording keeps every
        byte it got); otherwise it is dropped (a player stops at once). Raises the sink's
        :class:`NoSoundDevice`.
        """
        pipe = self._pipe

        async def feed() -> None:
            try:
                async for data in chunks:
                    self.stats.bytes_in += len(data)
                    pipe.write(data)
            finally:
                pipe.close()

        async def on_cancel() -> None:
            # the worker thread cannot be cancelled: tell it to stop (it finishes its block)
            try:
                await anyio.sleep_forever()
            finally:
                if not drain:
                    self._stop = True
                    pipe.abort()

        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(feed)
                tg.start_soon(on_cancel)
                try:
                    # its own limiter: a long-lived decoder takes no token of anyio's default
                    await anyio.to_thread.run_sync(self._decode, limiter=anyio.CapacityLimiter(1))
                except Exception as exc:  # the sink failed (no sound device...): raised as is
                    error = exc
                finally:
                    tg.cancel_scope.cancel()  # done (or failed): stop reading
        finally:
            pipe.close()
            self.stats.dropped_bytes = pipe.dropped
        if error is not None:
            raise error
        return self.stats

    # ---- decoder thread -------------------------------------------------------------------

    def _decode(self) -> None:
        import av

        aborted = False
        try:
            while not self._stop and not self._pipe.drained:
                try:
                    container = av.open(
                        self._pipe, mode="r", format=self.format, container_options=_OPEN_OPTIONS
                    )
                except (av.error.FFmpegError, ValueError, EOFError) as exc:
                    if self._pipe.drained:
                        break
                    log.debug("decoder open failed: %s", exc)
                    self.stats.decode_errors += 1
                    self.stats.reopens += 1
                    continue
                try:
                    self._demux(container, av)
                finally:
                    container.close()
                if not self._pipe.drained and not self._stop:
                    self.stats.reopens += 1
            if self._resampler is not None and not self._stop:
                self._emit_frames(self._resampler.resample(None))
        except BaseException:
            aborted = True
            raise
        finally:
            if self._sink_open:
                self.sink.close(abort=aborted or self._stop)

    def _demux(self, container: Any, av: Any) -> None:
        if not container.streams.audio:
            self.stats.decode_errors += 1
            return
        stream = container.streams.audio[0]
        packets = container.demux(stream)
        errors = 0
        while not self._stop:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, ValueError) as exc:
                log.debug("demux error: %s", exc)
                self.stats.decode_errors += 1
                errors += 1
                if errors >= _MAX_DEMUX_ERRORS:
                    return  # reopen on the rest of the stream
                packets = container.demux(stream)
                continue
            errors = 0
            self.stats.packets += 1
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                log.debug("decode error: %s", exc)
                self.stats.decode_errors += 1
                continue
            for frame in frames:
                self._emit_frames(self._resample(frame, av))

    def _resample(self, frame: Any, av: Any) -> list[Any]:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._resampler_key:
            if self._resampler is not None:
                self._emit_frames(self._resampler.resample(None))
            rate = self.stats.rate or frame.sample_rate
            self._resampler = av.AudioResampler(format="flt", layout="stereo", rate=rate)
            self._resampler_key = key
        return list(self._resampler.resample(frame))

    def _emit_frames(self, frames: list[Any]) -> None:
        for out in frames:
            pcm = out.to_ndarray().reshape(-1, CHANNELS)
            if not len(pcm):
                continue
            if not self._sink_open:
                self.stats.rate = out.sample_rate
                self.sink.open(out.sample_rate, CHANNELS)
                self._sink_open = True
            gain = self.gain
            if gain != 1.0:
                pcm = pcm * np.float32(gain)
            self.sink.write(pcm)
            self.stats.samples += len(pcm)


# --------------------------------------------------------------------------------------------
# Front: a station's output into a player, a recording or a dump
# --------------------------------------------------------------------------------------------


def pick_codec(plugins: PluginHost, meta: StationMeta, head: bytes) -> CodecSpec | None:
    """The codec of a station: the one its record names, else the one the first bytes (a frame
    start, or the codec headers) look like, else the one of its content type.

    (A listener may get audio before the record that names the codec: the broadcaster names
    it once its first frames are out, and ``content_type`` is only a default until then.)
    """
    if meta.codec:
        with contextlib.suppress(KeyError):
            return plugins.codec(meta.codec)
    return plugins.codec_for(None, head) or plugins.codec_for(meta.content_type or None, head)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for data in rest:
        yield data


async def decode_output(
    output: StationOutput,
    plugins: PluginHost,
    sink: PcmSink,
    *,
    gain: float = 1.0,
    drain: bool = True,
    started: Callable[[StreamDecoder, CodecSpec], None] | None = None,
) -> DecodeStats | None:
    """Decode a station's output (from the next frame start) into ``sink`` until it ends.

    The codec is known from the first bytes; :class:`CannotDecode` if the internal decoder
    cannot play it. ``started(decoder, codec)`` is called once decoding begins. Returns None
    when the station ended before any audio.
    """
    async with output.subscribe() as sub:
        first = b""
        async for data in sub:
            first = data
            break
        if not first:
            return None
        spec = pick_codec(plugins, sub.meta, first)
        decoder = StreamDecoder(decoder_format(spec, sub.meta), sink, gain=gain)
        if started is not None and spec is not None:
            started(decoder, spec)
        return await decoder.run(_prepend(first, sub), drain=drain)


async def dump_output(output: StationOutput, path: Path) -> int:
    """Write the station's stream bytes exactly as a player gets them (headers first) to
    ``path`` until the station ends or the task is cancelled; returns the bytes written.

    Every chunk is written through to the operating system at once, so a killed node leaves
    everything it received in the file.
    """
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb", buffering=0) as f:
        async with output.subscribe() as sub:
            async for data in sub:
                view = memoryview(data)
                while view:
                    n = f.write(view)
                    view = view[n or 0 :]
                written += len(data)
    return written


__all__ = [
    "CHANNELS",
    "RECORD_FORMATS",
    "BytePipe",
    "CannotDecode",
    "DecodeStats",
    "NoSoundDevice",
    "NullSink",
    "PcmSink",
    "SoundDeviceSink",
    "SoundFileSink",
    "StreamDecoder",
    "decode_output",
    "decoder_format",
    "dump_output",
    "pick_codec",
    "probe_sound_device",
    "record_format",
]
