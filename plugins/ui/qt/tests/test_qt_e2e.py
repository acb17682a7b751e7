"""``streamer --ui qt`` as a process, offscreen: the window shows, SIGTERM leaves politely;
and closing the window ends ``run(app)`` so that the node leaves."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamerp2p.procs import NodeProcess

pytestmark = pytest.mark.e2e

ENV = {"QT_QPA_PLATFORM": "offscreen"}


@pytest.mark.parametrize("how", ["--ui", "config"])
def test_streamer_ui_qt_shows_the_window_and_leaves_on_sigterm(tmp_path: Path, how: str) -> None:
    config = tmp_path / "config.toml"
    text = '[node]\nport = 0\nhost = "127.0.0.1"\n\n[http]\nport = 0\n'
    if how == "config":
        text += '\n[ui]\ndefault = "qt"\n'
    config.write_text(text)
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    args += ["--ui", "qt"] if how == "--ui" else ["node"]
    p = NodeProcess(args, name="qt", env=ENV)
    try:
        p.wait_line("node:", 30)
        p.wait_line("qt: window shown", 30)
        p.signal(signal.SIGTERM)
        assert p.proc.wait(20) == 0, p.output()
        p.wait_line("leaving (SIGTERM)", 1)
        p.wait_line("left", 1)
    finally:
        p.kill()


CLOSE_SCRIPT = """
import anyio
from PySide6.QtCore import QMetaObject, Qt
from PySide6.QtWidgets import QApplication
from streamerp2p.app import App, NodeOptions
from streamerp2p.config import Config
from streamerp2p.plugins import load_plugins
from streamerp2p_qt.plugin import run


def out(line):
    print(line, flush=True)
    if line == "qt: window shown":  # the user closes the window (a queued, thread-safe call)
        QMetaObject.invokeMethod(
            QApplication.instance(), "closeAllWindows", Qt.ConnectionType.QueuedConnection
        )


async def main():
    opts = NodeOptions(host="127.0.0.1", port=0, advertise="127.0.0.1", http_port=0)
    app = App(opts, STATE, load_plugins(), out=out, config=Config())
    async with anyio.create_task_group() as tg:
        await app.start(tg)
        await run(app)
        print("ui returned", flush=True)
        await app.leave(1.0)
        tg.cancel_scope.cancel()
    print("done", flush=True)


anyio.run(main)
"""


def test_closing_the_window_ends_run(tmp_path: Path) -> None:
    script = tmp_path / "close.py"
    script.write_text(f"from pathlib import Path\nSTATE = Path({str(tmp_path / 's')!r})\n")
    script.write_text(script.read_text() + textwrap.dedent(CLOSE_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, **ENV},
        stdin=subprocess.DEVNULL,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines.index("qt: window shown") < lines.index("ui returned") < lines.index("done")
