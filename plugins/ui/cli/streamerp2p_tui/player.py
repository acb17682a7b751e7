"""The internal player of the terminal UI: plays the tuned station on the sound device.

Like ``streamer listen --player internal``: the station's output is decoded with PyAV
(:mod:`streamerp2p.player`) and played through sounddevice. Without a sound device (no
PortAudio, no device) it says so in plain words and the node runs on. The volume (0-100 %)
can be changed while playing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from streamerp2p.player import (
    CannotDecode,
    NoSoundDevice,
    PcmSink,
    SoundDeviceSink,
    decode_output,
    probe_sound_device,
)

log = logging.getLogger(__name__)


class Player:
    """Plays one station at a time in the node's task group; ``message`` says what it does."""

    def __init__(
        self,
        app: Any,
        *,
        volume: int = 100,
        device: str = "",
        sink_factory: Callable[[str], PcmSink] = SoundDeviceSink,
        probe: Callable[[str], str] = probe_sound_device,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.volume = max(0, min(100, volume))
        self.device = device
        self.sink_factory = sink_factory
        self.probe = probe
        self.say = say or app.out
        self.message = ""
        self.station_id: bytes | None = None
        self.seconds = 0.0
        self._scope: anyio.CancelScope | None = None
        self._decoder: Any = None

    @property
    def playing(self) -> bool:
        return self._decoder is not None

    def start(self, station_id: bytes) -> None:
        """Play ``station_id`` (the station played before stops)."""
        self.stop()
        tg = self.app.task_group
        if tg is None:
            raise RuntimeError("the node is not running")
        self.station_id = station_id
        self.message = "player: waiting for audio"
        scope = anyio.CancelScope()
        self._scope = scope
        tg.start_soon(self._run, station_id, scope)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        self._scope = None
        self._decoder = None
        self.station_id = None
        self.message = ""

    def change_volume(self, delta: int) -> int:
        self.volume = max(0, min(100, self.volume + delta))
        if self._decoder is not None:
            self._decoder.gain = self.volume / 100
        return self.volume

    def _set(self, scope: anyio.CancelScope, message: str, say: bool = True) -> None:
        if scope is self._scope:  # (a player that was stopped says nothing any more)
            self.message = message
            if say:
                self.say(message)

    async def _run(self, station_id: bytes, scope: anyio.CancelScope) -> None:
        with scope:
            output = self.app.outputs.get(station_id)
            if output is None:
                self._set(scope, "player: this station has no output here")
                return
            try:  # (PortAudio's start can take a moment: not on the event loop)
                where = await anyio.to_thread.run_sync(self.probe, self.device)
            except NoSoundDevice as exc:
                self._set(
                    scope,
                    f"no sound device: {exc}. The node goes on relaying; play the stream URL "
                    "in another player or record with streamer listen --record FILE",
                )
                return
            sink = self.sink_factory(self.device)

            def started(decoder: Any, spec: Any) -> None:
                if scope is self._scope:
                    self._decoder = decoder
                self._set(scope, f"player: internal, {spec.name} on {where}")

            try:
                stats = await decode_output(
                    output,
                    self.app.plugins,
                    sink,
                    gain=self.volume / 100,
                    drain=False,
                    started=started,
                )
                if stats is not None:
                    self.seconds = stats.seconds
                self._set(scope, "player: the stream ended", say=False)
            except CannotDecode as exc:
                self._set(scope, f"player: {exc} (play the stream URL in another player)")
            except NoSoundDevice as exc:
                self._set(scope, f"no sound device: {exc}. The node goes on relaying")
            except Exception as exc:  # the node goes on without a player
                log.exception("internal player failed")
                self._set(scope, f"player stopped: {exc}")
            finally:
                if scope is self._scope:
                    self._decoder = None
