"""Running ``streamer`` node processes (for benchmarks and end-to-end tests).

:class:`NodeProcess` starts ``python -m streamerp2p ...``, collects its output lines in a
background thread and lets the caller wait for a line (an event, not a sleep). Every process is
stopped by PID when the caller is done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class NodeProcess:
    def __init__(
        self,
        args: list[str],
        *,
        name: str = "node",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        wrap: list[str] | None = None,
    ) -> None:
        """``wrap``: a command prefix, e.g. ``["ip", "netns", "exec", NS]`` (the test bed)."""
        self.name = name
        self.args = [*(wrap or []), sys.executable, "-m", "streamerp2p", *args]
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, prefix: str, timeout: float = 15.0, start: int = 0) -> str:
        """The first output line (from index ``start``) starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if line.startswith(prefix):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise TimeoutError(
                        f"{self.name}: no line starting with {prefix!r}; output:\n"
                        + "\n".join(self.lines[-40:])
                    )
                self._cond.wait(min(left, 0.5))

    def value(self, prefix: str, timeout: float = 15.0) -> str:
        return self.wait_line(prefix, timeout)[len(prefix) :].strip()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (polite leave), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None
