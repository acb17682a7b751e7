"""The window's internal player: the tuned station's output decoded onto the sound device.

Runs on the node's event loop (PyAV decodes in a worker thread, see ``streamerp2p.player``).
Without a sound device it says so plainly and the node goes on (the station stays tuned; its
stream URL still works in any player).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from streamerp2p.app import App
from streamerp2p.overlay.records import decode_station_id
from streamerp2p.player import (
    CannotDecode,
    NoSoundDevice,
    PcmSink,
    SoundDeviceSink,
    StreamDecoder,
    decode_output,
    probe_sound_device,
)

log = logging.getLogger(__name__)


def sound_device_sink(device: str) -> tuple[PcmSink, str]:
    """The default sink: the sound device (blocking: called in a worker thread)."""
    where = probe_sound_device(device)
    return SoundDeviceSink(device), where


class InternalPlayer:
    """Plays one station at a time; ``open_sink(device)`` returns (sink, where it plays)."""

    def __init__(
        self,
        app: App,
        *,
        volume: int = 100,
        device: str = "",
        open_sink: Callable[[str], tuple[PcmSink, str]] = sound_device_sink,
    ) -> None:
        self.app = app
        self.volume = volume
        self.device = device
        self.open_sink = open_sink
        self.task_group: TaskGroup | None = None
        self.say: Callable[[str], None] = lambda line: None
        self.station_id: str | None = None
        self.status = "stopped"  # stopped, starting, playing, no sound device, cannot decode
        self.where = ""
        self.decoder: StreamDecoder | None = None
        self._scope: anyio.CancelScope | None = None

    def state(self) -> dict[str, Any]:
        seconds = self.decoder.stats.seconds if self.decoder is not None else 0.0
        return {
            "station_id": self.station_id,
            "status": self.status,
            "where": self.where,
            "volume": self.volume,
            "seconds": round(seconds, 1),
        }

    def play(self, station_id: str) -> None:
        """Play the (tuned) station ``station_id``, stopping what played before."""
        self.stop()
        if self.task_group is None:
            raise RuntimeError("the player is not running")
        scope = anyio.CancelScope()
        self._scope, self.station_id, self.status = scope, station_id, "starting"
        self.task_group.start_soon(self._run, station_id, scope)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        self._scope, self.station_id, self.decoder = None, None, None
        self.status, self.where = "stopped", ""

    def set_volume(self, percent: int) -> None:
        self.volume = max(0, min(100, int(percent)))
        if self.decoder is not None:
            self.decoder.gain = self.volume / 100  # read by the decoder thread per block

    async def _run(self, station_id: str, scope: anyio.CancelScope) -> None:
        with scope:
            output = self.app.outputs.get(decode_station_id(station_id))
            if output is None:
                return
            try:
                sink, where = await anyio.to_thread.run_sync(self.open_sink, self.device)
            except NoSoundDevice as exc:
                self._set(
                    scope,
                    "no sound device",
                    f"no sound device: {exc} (the node goes on; "
                    "the stream URL plays in any player)",
                )
                return

            def started(decoder: StreamDecoder, spec: Any) -> None:
                if self._scope is scope:
                    self.decoder, self.where = decoder, where
                line = f"player: {spec.name} on {where}, volume {self.volume} %"
                self._set(scope, "playing", line)

            try:
                await decode_output(
                    output,
                    self.app.plugins,
                    sink,
                    gain=self.volume / 100,
                    drain=False,
                    started=started,
                )
            except CannotDecode as exc:
                line = f"player: {exc}; play the stream URL in another player"
                self._set(scope, "cannot decode", line)
            except NoSoundDevice as exc:
                self._set(scope, "no sound device", f"no sound device: {exc} (the node goes on)")
            except Exception as exc:
                log.exception("internal player failed")
                self._set(scope, "stopped", f"player stopped: {exc}")
            else:
                self._set(scope, "stopped", "player: the station's stream ended")

    def _set(self, scope: anyio.CancelScope, status: str, line: str) -> None:
        if self._scope is not scope:  # stopped, or another station plays now
            return
        self.status = status
        self.say(line)
