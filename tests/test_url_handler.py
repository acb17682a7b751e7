"""``streamer url-handler install|uninstall`` in a temporary XDG home, and the registered
command really tuning in to a link (as a desktop would run it)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import require_tool
from test_e2e import COMMON, node_args

pytestmark = pytest.mark.e2e


def xdg_env(tmp: Path, path: str | None = None) -> dict[str, str]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"))
    if path is not None:
        env["PATH"] = path
    return env


def streamer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamerp2p", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_registers_the_scheme_and_the_command_tunes_in(tmp_path: Path) -> None:
    xdg_mime = require_tool("xdg-mime", "apt-get install xdg-utils")
    validate = require_tool("desktop-file-validate", "apt-get install desktop-file-utils")
    env = xdg_env(tmp_path)
    r = streamer(env, "url-handler", "install")
    assert r.returncode == 0, r.stderr
    desktop = tmp_path / "data" / "applications" / "streamerp2p.desktop"
    v = subprocess.run([validate, str(desktop)], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and not v.stdout.strip(), v.stdout + v.stderr
    q = subprocess.run(
        [xdg_mime, "query", "default", "x-scheme-handler/streamerp2p"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert q.stdout.strip() == "streamerp2p.desktop"
    # what the desktop runs for a click: the Exec line with %u replaced by the link
    exec_line = next(
        line.removeprefix("Exec=") for line in desktop.read_text().splitlines() if "Exec=" in line
    )
    bc = NodeProcess(
        node_args(tmp_path, "bc", "broadcast", "--name", "Link FM", "--tone", *COMMON),
        name="broadcaster",
    )
    try:
        link = bc.value("link:")
        argv = [link if a == "%u" else a for a in shlex.split(exec_line)]
        assert argv[:3] == [sys.executable, "-m", "streamerp2p"]
        opened = NodeProcess(
            node_args(tmp_path, "l", *argv[3:], "--player", "none", *COMMON), name="opened"
        )
        try:
            opened.wait_line("tuned:", timeout=20)
            assert "stream: http://127.0.0.1:" in opened.output()
        finally:
            opened.stop()
    finally:
        bc.stop()
    r = streamer(env, "url-handler", "uninstall")
    assert r.returncode == 0, r.stderr
    assert not desktop.exists()
    mimeapps = (tmp_path / "config" / "mimeapps.list").read_text()
    assert "x-scheme-handler/streamerp2p" not in mimeapps


def test_without_xdg_mime_the_default_goes_into_mimeapps_list(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "mimeapps.list").write_text(
        "[Added Associations]\ntext/html=firefox.desktop;\n\n"
        "[Default Applications]\nx-scheme-handler/streamerp2p=old.desktop\n"
        "audio/mpeg=mpv.desktop\n"
    )
    bare = tmp_path / "bin"
    bare.mkdir()
    env = xdg_env(tmp_path, path=str(bare))  # no xdg-mime, no update-desktop-database
    r = streamer(env, "url-handler", "install")
    assert r.returncode == 0, r.stderr
    text = (cfg / "mimeapps.list").read_text()
    assert "x-scheme-handler/streamerp2p=streamerp2p.desktop" in text
    assert "old.desktop" not in text
    assert "audio/mpeg=mpv.desktop" in text and "text/html=firefox.desktop;" in text
    r = streamer(env, "url-handler", "uninstall")
    assert r.returncode == 0, r.stderr
    text = (cfg / "mimeapps.list").read_text()
    assert "streamerp2p" not in text and "audio/mpeg=mpv.desktop" in text
