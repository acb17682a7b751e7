"""The real ``streamer --ui cli`` in a real terminal (tmux, 120x40), listening to a real
``streamer broadcast --tone`` process on loopback; the test reads the screen as a person would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool

pytestmark = pytest.mark.e2e

COMMON = ["--port", "0", "--bind", "127.0.0.1", "--advertise", "127.0.0.1"]


class Tmux:
    """One tmux server of its own (private socket) with one pane running ``args``."""

    def __init__(self, tmux: str, tmp: Path, args: list[str], size: tuple[int, int]) -> None:
        self.tmux = tmux
        self.socket = str(tmp / "tmux.sock")
        conf = tmp / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 0\n")
        self.run(
            "-f", str(conf), "new-session", "-d", "-s", "ui", "-x", str(size[0]),
            "-y", str(size[1]), "--", *args,
        )  # fmt: skip
        self.pid = int(self.display("#{pane_pid}"))

    def run(self, *args: str) -> str:
        # (COLUMNS/LINES, as pytest may set them, would override the pane's size)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        out = subprocess.run(
            [self.tmux, "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
        )
        if out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def display(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", "ui", fmt).strip()

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ui")

    def keys(self, *keys: str) -> None:
        for k in keys:  # (one at a time: a burst of keys reads as a paste)
            self.run("send-keys", "-t", "ui", k)

    def dead(self) -> bool:
        return self.exit_status() is not None

    def exit_status(self) -> str | None:
        """ "STATUS/SIGNAL" once the pane's process is gone and reaped (tmux may see the
        terminal close a moment before it has the status), else None."""
        dead, status, sig = self.display(
            "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}"
        ).split("|")
        return f"{status}/{sig}" if dead == "1" and (status or sig) else None

    def wait(self, pred: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        """Poll the screen until ``pred(screen)`` (fail with the screen after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if pred(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)  # (poll interval, not a synchronisation)

    def wait_for(self, text: str, timeout: float = 20) -> str:
        return self.wait(lambda s: text in s, repr(text), timeout)

    def close(self) -> None:
        try:
            if not self.dead():
                os.kill(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while not self.dead() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if not self.dead():
                    os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, RuntimeError):
            pass
        finally:
            subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True)


@contextmanager
def terminal(tmp: Path, args: list[str]) -> Iterator[Tmux]:
    t = Tmux(require_tool("tmux"), tmp, args, (120, 40))
    try:
        yield t
    finally:
        t.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamer_ui_cli_in_a_terminal(tmp_path: Path) -> None:
    bc = NodeProcess(
        [
            "--state-dir", str(tmp_path / "bc"), "--config", str(tmp_path / "bc.toml"),
            "broadcast", "--tone", "--name", "Tmux FM", "--genre", "Tests",
            "--http", "127.0.0.1:0", *COMMON,
        ],
        name="broadcaster",
    )  # fmt: skip
    try:
        bport = int(bc.value("node:").rsplit(":", 1)[1])
        bc.wait_line("source: generated tone")
        cfg = tmp_path / "l.toml"
        http = free_port()  # (scripts on this machine ask the running node on its HTTP port)
        cfg.write_text(f'[http]\nhost = "127.0.0.1"\nport = {http}\n')
        args = [
            sys.executable, "-m", "streamerp2p", "--state-dir", str(tmp_path / "l"),
            "--config", str(cfg), "--ui", "cli", "node", "--seed", f"127.0.0.1:{bport}", *COMMON,
        ]  # fmt: skip
        with terminal(tmp_path, args) as term:
            term.wait_for("Tmux FM")
            # the footer with the keys (the table's own, Enter, once it has the focus)
            keys = ("Tune in", "s Stop", "b Broadcast", "o Settings", "q Quit")
            term.wait(lambda s: all(k in s for k in keys), "the keys in the footer")
            found = re.search(r"Node 127\.0\.0\.1:(\d+)", term.wait_for("Node 127.0.0.1:"))
            assert found is not None
            lport = int(found.group(1))
            term.wait_for("1 stations, 0 listeners")
            # a script alongside: streamer stations --json asks the running node
            out = subprocess.run(
                [sys.executable, "-m", "streamerp2p", "--config", str(cfg), "stations", "--json"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            directory = json.loads(out.stdout)
            assert [s["name"] for s in directory["stations"]] == ["Tmux FM"]
            assert directory["status"].startswith("1 stations")

            # Enter tunes in: playing, the title, the place in the tree
            term.keys("Enter")
            screen = term.wait_for("[playing]")
            screen = term.wait_for("Demo tone")
            term.wait_for(f"parent 127.0.0.1:{bport}")
            term.wait_for("1 stations, 1 listeners")
            bc.wait_line(f"child joined: 127.0.0.1:{lport}")
            # s stops: the node leaves the tree politely (the broadcaster sees a detach)
            start = len(bc.lines)
            term.keys("s")
            term.wait_for("Not tuned in")
            bc.wait_line(f"child left: 127.0.0.1:{lport} (detach)", start=start)
            # tune again, then q: the UI closes and the node leaves politely
            term.keys("Enter")
            term.wait_for("[playing]")
            bc.wait_line(f"child joined: 127.0.0.1:{lport}", start=start)
            start = len(bc.lines)
            term.keys("q")
            screen = term.wait(lambda _s: term.dead(), "the UI to exit", 40)
            assert term.exit_status() == "0/", screen
            lines = [line.strip() for line in screen.splitlines()]
            assert "leaving (cli closed)" in lines and "left" in lines, screen
            bc.wait_line(f"child left: 127.0.0.1:{lport} (detach)", start=start)
        assert not any("Traceback" in line for line in bc.lines), bc.output()
    finally:
        assert bc.stop() == 0
