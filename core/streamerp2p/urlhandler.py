"""Register ``streamerp2p://`` links with the desktop, so clicking one tunes in.

* Linux and other freedesktop systems: a ``streamerp2p.desktop`` file in
  ``$XDG_DATA_HOME/applications`` handling ``x-scheme-handler/streamerp2p``, made the default
  with ``xdg-mime`` when it is installed (else written into ``$XDG_CONFIG_HOME/mimeapps.list``).
* Windows: ``HKEY_CURRENT_USER\\Software\\Classes\\streamerp2p`` with ``URL Protocol`` and an
  ``open`` command (per user, no administrator rights).
* macOS: link schemes belong to application bundles (``CFBundleURLTypes``); the docs say how to
  wrap ``streamer open`` in one (docs/ingest-and-output.md, "Links").

The command run is ``<this Python> -m streamerp2p open <link>``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .link import SCHEME

DESKTOP_FILE = "streamerp2p.desktop"
MIME = f"x-scheme-handler/{SCHEME}"


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var, "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / default


def desktop_path() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "applications" / DESKTOP_FILE


def command() -> list[str]:
    return [sys.executable, "-m", "streamerp2p", "open"]


def _exec_quote(arg: str) -> str:
    """Quote an argument for a desktop entry's Exec key (freedesktop spec, "Exec variables")."""
    if not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'.replace("\\", "\\\\")


def desktop_entry() -> str:
    exec_line = " ".join(_exec_quote(a) for a in command()) + " %u"
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Streamer P2P\n"
        "GenericName=Internet radio\n"
        "Comment=Tune in to a peer-to-peer radio station\n"
        f"Exec={exec_line}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "Categories=AudioVideo;Audio;Player;\n"
        f"MimeType={MIME};\n"
    )


def _mimeapps() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "mimeapps.list"


def _edit_mimeapps(set_default: bool) -> None:
    """Add or remove our default in [Default Applications] of mimeapps.list."""
    path = _mimeapps()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    out: list[str] = []
    section = ""
    placed = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            if section == "[Default Applications]" and set_default and not placed:
                out.append(f"{MIME}={DESKTOP_FILE}")
                placed = True
            section = stripped
        elif section == "[Default Applications]" and stripped.split("=", 1)[0] == MIME:
            continue
        out.append(line)
    if set_default and not placed:
        if section != "[Default Applications]":
            out += ["[Default Applications]"]
        out.append(f"{MIME}={DESKTOP_FILE}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _freedesktop_install() -> list[str]:
    path = desktop_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(desktop_entry(), encoding="utf-8")
    tmp.replace(path)
    done = [f"wrote {path}"]
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime:
        subprocess.run([xdg_mime, "default", DESKTOP_FILE, MIME], check=True, timeout=30)
        done.append(f"xdg-mime default {DESKTOP_FILE} {MIME}")
    else:
        _edit_mimeapps(True)
        done.append(f"set {MIME} in {_mimeapps()}")
    update = shutil.which("update-desktop-database")
    if update:
        subprocess.run([update, str(path.parent)], check=False, timeout=30)
    return done


def _freedesktop_uninstall() -> list[str]:
    path = desktop_path()
    done = []
    if path.exists():
        path.unlink()
        done.append(f"removed {path}")
    if _mimeapps().exists():
        _edit_mimeapps(False)
        done.append(f"removed {MIME} from {_mimeapps()}")
    update = shutil.which("update-desktop-database")
    if update and path.parent.exists():
        subprocess.run([update, str(path.parent)], check=False, timeout=30)
    return done or ["nothing to remove"]


def _windows(install: bool) -> list[str]:  # pragma: no cover - Windows only
    import winreg

    base = rf"Software\Classes\{SCHEME}"
    if not install:
        for sub in (r"\shell\open\command", r"\shell\open", r"\shell", ""):
            with contextlib.suppress(FileNotFoundError):
                winreg.DeleteKey(winreg.HKEY_CURRENT_USER, base + sub)
        return [rf"removed HKCU\{base}"]
    cmd = subprocess.list2cmdline(command()) + ' "%1"'
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, base) as k:
        winreg.SetValueEx(k, "", 0, winreg.REG_SZ, "URL:Streamer P2P link")
        winreg.SetValueEx(k, "URL Protocol", 0, winreg.REG_SZ, "")
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, base + r"\shell\open\command") as k:
        winreg.SetValueEx(k, "", 0, winreg.REG_SZ, cmd)
    return [rf"wrote HKCU\{base} ({cmd})"]


def install() -> list[str]:
    """Register the scheme for this user; returns what was done, line by line."""
    if sys.platform.startswith("win"):
        return _windows(True)
    if sys.platform == "darwin":
        raise OSError(
            "macOS registers link schemes through application bundles; see "
            "docs/ingest-and-output.md (Links) for wrapping 'streamer open' in one"
        )
    return _freedesktop_install()


def uninstall() -> list[str]:
    if sys.platform.startswith("win"):
        return _windows(False)
    if sys.platform == "darwin":
        raise OSError("nothing registered on macOS by this command")
    return _freedesktop_uninstall()
