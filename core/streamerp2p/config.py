"""Configuration: a TOML file with a typed, documented schema.

The file lives in the platform config directory (``platformdirs.user_config_dir("streamerp2p")``,
e.g. ``~/.config/streamerp2p/config.toml`` on Linux) unless a path is given (``--config FILE``).
Each node also has a state directory (keys, caches...): ``node.state_dir`` or ``--state-dir``,
by default ``platformdirs.user_state_dir("streamerp2p")``. Several nodes on one machine use
different state directories.

Everything about an option — its type, default, help text and constraints — is declared once in
:data:`OPTIONS`; defaults, validation, ``streamer config set`` parsing and the reference table in
``docs/config.md`` (:func:`config_reference_markdown`) all come from it.

Only the options that were set (in the file or with :meth:`Config.set`) are written back by
:meth:`Config.save`, so a changed default in a later version reaches users who never set it.
Comments in the file are not preserved when it is rewritten.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
import tomli_w

APP_NAME = "streamerp2p"
CONFIG_FILENAME = "config.toml"

Kind = Literal["int", "float", "str", "bool", "list[str]"]

_KIND_NAMES: dict[str, str] = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean (true or false)",
    "list[str]": "a list of strings",
}


class ConfigError(Exception):
    """A configuration problem, with a message meant for humans (file, key, what is wrong)."""


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration option.

    ``check(value)`` returns an error message (or None) for values of the right type that are
    still invalid (out of range, malformed...).
    """

    key: str  # dotted: "section.name"
    kind: Kind
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None

    @property
    def section(self) -> str:
        return self.key.partition(".")[0]

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]

    @property
    def type_name(self) -> str:
        return _KIND_NAMES[self.kind]


def _check_host_port(value: list[str]) -> str | None:
    """Seeds: ``host:port``, ``host`` (default port), ``[v6]:port`` or a bare IPv6 address."""
    for item in value:
        text = item.strip()
        port: str | None = None
        if text.startswith("["):
            host, close, rest = text[1:].partition("]")
            if not close or (rest and not rest.startswith(":")):
                host = ""
            port = rest[1:] if rest else None
        elif text.count(":") == 1:
            host, port = text.split(":")
        else:
            host = text
        if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
            return f"{item!r} is not of the form host:port"
    return None


def _check_plugin_names(value: list[str]) -> str | None:
    for item in value:
        if not item or item.count(":") > 1 or item.startswith(":") or item.endswith(":"):
            return f"{item!r} is not a plugin name (NAME or GROUP:NAME)"
    return None


def _check_player(value: str) -> str | None:
    if not value.strip():
        return 'empty (use "none" for no player)'
    return None


def _opt(
    key: str,
    kind: Kind,
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> tuple[str, Option]:
    return key, Option(key, kind, default, help, minimum, maximum, check)


#: Section descriptions (also used for the documentation), in display order.
SECTIONS: dict[str, str] = {
    "node": "The peer-to-peer node: overlay port, seed hosts, capacity and timing.",
    "http": "The local HTTP output that players (VLC, mpv, a browser...) connect to.",
    "ingest": "The ingest server that broadcast tools (butt, Mixxx, ices...) connect to.",
    "station": "Defaults for the station this node broadcasts (the broadcast tool may override "
    "them).",
    "player": "The player `streamer listen` starts, and the internal player's sound output.",
    "plugins": "Which plugins load (see `streamer plugins`).",
    "ui": "Front ends.",
}

#: Every option, keyed by dotted name. The single source of defaults, validation and docs.
OPTIONS: dict[str, Option] = dict(
    [
        _opt("node.port", "int", 8466, "UDP port of the overlay.", minimum=0, maximum=65535),
        _opt("node.host", "str", "0.0.0.0", "Address the overlay binds to."),
        _opt(
            "node.seeds",
            "list[str]",
            [],
            'Seed hosts to join the overlay through, as "host:port" ("[v6]:port" for IPv6; '
            "the port defaults to 8466).",
            check=_check_host_port,
        ),
        _opt(
            "node.slots",
            "int",
            4,
            "Children per station this node feeds at most when its upload capacity is not"
            " configured (the bandwidth test may allow fewer).",
            minimum=0,
        ),
        _opt(
            "node.upload_kbps",
            "float",
            0.0,
            "Upload capacity in kbit/s; when set, relay slots = capacity * 0.925 / bitrate "
            "and repairs are paced to it (0 = unknown: measured by the bandwidth test, "
            "node.slots at most).",
            minimum=0,
        ),
        _opt(
            "node.bandwidth_test",
            "bool",
            True,
            "Measure the upload capacity with packet trains to other nodes (at start and "
            "every 10 minutes) when node.upload_kbps is 0; until measured, one child at most.",
        ),
        _opt(
            "node.max_proxy_clients",
            "int",
            16,
            "Nodes behind NATs this node forwards first datagrams for when it is reachable "
            "(a volunteer proxy; 0: none).",
            minimum=0,
        ),
        _opt(
            "node.history_seconds",
            "float",
            30.0,
            "Seconds of audio kept per station to serve children and players.",
            minimum=0,
        ),
        _opt(
            "node.cushion_seconds",
            "float",
            4.0,
            "Playout delay: a new listener starts this far behind the live edge (fetching"
            " that audio while it plays), which hides a vanished parent or congestion.",
            minimum=0,
        ),
        _opt(
            "node.parent_timeout",
            "float",
            1.0,
            "Seconds of silence before a parent is declared lost.",
            minimum=0,
        ),
        _opt(
            "node.leave_grace",
            "float",
            3.0,
            "Polite leave: seconds a leaving node keeps feeding children while they re-home.",
            minimum=0,
        ),
        _opt(
            "node.state_dir",
            "str",
            "",
            "Per-node state directory (empty: the platform state directory). Relative paths "
            "are relative to the config file's directory.",
        ),
        _opt("http.host", "str", "127.0.0.1", "Address of the local player output."),
        _opt(
            "http.port",
            "int",
            8467,
            "Port of the local player output (0: any free port).",
            minimum=0,
            maximum=65535,
        ),
        _opt("ingest.plugin", "str", "icecast", "Ingest server plugin to use."),
        _opt("ingest.host", "str", "127.0.0.1", "Address the ingest server listens on."),
        _opt(
            "ingest.port",
            "int",
            8000,
            "Port the ingest server listens on (shoutcast: sources connect to this port + 1, "
            "title updates to this one).",
            minimum=0,
            maximum=65535,
        ),
        _opt("ingest.password", "str", "hackme", "Source password broadcast tools must send."),
        _opt("station.name", "str", "", "Station name."),
        _opt("station.genre", "str", "", "Station genre."),
        _opt("station.description", "str", "", "Station description."),
        _opt("station.url", "str", "", "Station web site."),
        _opt(
            "player.default",
            "str",
            "none",
            'Player of `streamer listen` (--player): "none", "internal" (decoded here and played '
            'on the sound device), "default" (the desktop\'s player for .pls files) or a player '
            'command that gets the stream URL (e.g. "mpv").',
            check=_check_player,
        ),
        _opt(
            "player.volume",
            "int",
            100,
            "Volume of the internal player in percent (a software gain on the decoded audio; "
            "recordings are not affected).",
            minimum=0,
            maximum=100,
        ),
        _opt(
            "player.device",
            "str",
            "",
            "Sound device of the internal player: a device number or part of its name as "
            "PortAudio lists it (python -m sounddevice); empty: the system's default output.",
        ),
        _opt(
            "plugins.disabled",
            "list[str]",
            [],
            'Plugins not to load: entry point names, or "group:name" (e.g. "codecs:mp3").',
            check=_check_plugin_names,
        ),
        _opt(
            "plugins.enabled",
            "list[str]",
            [],
            'If not empty, only these plugins load (names or "group:name").',
            check=_check_plugin_names,
        ),
        _opt("ui.default", "str", "none", 'Front end to run ("none": headless).'),
    ]
)


def _unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key, OPTIONS, n=3, cutoff=0.6)
    if close:
        return f"unknown option {key!r} (did you mean {', '.join(map(repr, close))}?)"
    section = key.partition(".")[0]
    in_section = [o.name for o in OPTIONS.values() if o.section == section]
    if in_section:
        return f"unknown option {key!r} (options in [{section}]: {', '.join(in_section)})"
    return f"unknown option {key!r} (sections: {', '.join(SECTIONS)})"


def option(key: str) -> Option:
    """The definition of option ``key``; :class:`ConfigError` if there is none."""
    try:
        return OPTIONS[key]
    except KeyError:
        raise ConfigError(_unknown_key_message(key)) from None


def _describe(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}
    kind = names.get(type(value), "table" if isinstance(value, dict) else type(value).__name__)
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}"


def validate(key: str, value: Any) -> Any:
    """Check ``value`` for option ``key`` and return it normalised (ints for floats become
    floats, lists are copied). Raises :class:`ConfigError` without a file name."""
    opt = option(key)
    expected = f"option {key!r} must be {opt.type_name}, got {_describe(value)}"
    match opt.kind:
        case "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(expected)
        case "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(expected)
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"option {key!r} must be a finite number, got {value}")
        case "str":
            if not isinstance(value, str):
                raise ConfigError(expected)
        case "bool":
            if not isinstance(value, bool):
                raise ConfigError(expected)
        case "list[str]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(expected)
            value = list(value)
    if opt.minimum is not None and value < opt.minimum:
        raise ConfigError(f"option {key!r} must be at least {opt.minimum:g}, got {value}")
    if opt.maximum is not None and value > opt.maximum:
        raise ConfigError(f"option {key!r} must be at most {opt.maximum:g}, got {value}")
    if opt.check is not None and (problem := opt.check(value)) is not None:
        raise ConfigError(f"option {key!r}: {problem}")
    return value


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_value(key: str, raw: str) -> Any:
    """Parse the command line string ``raw`` to option ``key``'s type and validate it.

    ints and floats as Python/TOML numbers; booleans from true/false, yes/no, on/off, 1/0;
    lists either comma-separated (``a:1, b:2``; empty string = empty list) or in TOML array
    syntax (``["a:1", "b:2"]``, recognised by the enclosing brackets); strings as they are.
    """
    opt = option(key)
    text = raw.strip()
    bad = f"option {key!r} must be {opt.type_name}, got {raw!r}"
    value: Any
    match opt.kind:
        case "int":
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(bad) from None
        case "float":
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(bad) from None
        case "bool":
            if text.lower() in _TRUE:
                value = True
            elif text.lower() in _FALSE:
                value = False
            else:
                raise ConfigError(bad)
        case "list[str]":
            if text.startswith("[") and text.endswith("]"):
                try:
                    value = tomllib.loads(f"v = {text}")["v"]
                except tomllib.TOMLDecodeError as e:
                    raise ConfigError(f"{bad}: invalid TOML array ({e})") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        case _:
            value = raw
    return validate(key, value)


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def default_config_path() -> Path:
    """``<platform config dir>/streamerp2p/config.toml``."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / CONFIG_FILENAME


def default_state_dir() -> Path:
    """The platform state directory for streamerp2p (one node per machine by default)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def state_dir(config: Config | None = None, override: Path | None = None) -> Path:
    """The node's state directory, created (mode 0700) if missing.

    ``override`` (``--state-dir``) wins, then ``node.state_dir`` (relative to the config file's
    directory), then the platform state directory. An existing directory is used as it is.
    """
    if override is not None:
        path = Path(override).expanduser()
    elif config is not None and config.get("node.state_dir"):
        path = Path(config.get("node.state_dir")).expanduser()
        if not path.is_absolute():
            path = config.path.parent / path
    else:
        path = default_state_dir()
    path = path.absolute()
    if not path.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # mkdir's mode is subject to the umask
        except FileExistsError:
            if not path.is_dir():
                msg = f"state directory {path} exists and is not a directory"
                raise ConfigError(msg) from None
        except OSError as e:
            raise ConfigError(f"cannot create state directory {path}: {e.strerror}") from e
    return path


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class Config:
    """The effective configuration: options set in ``path`` (or with :meth:`set`) over the
    defaults of :data:`OPTIONS`.

    ``values`` holds only the options that were set, flat (``{"node.port": 9000}``).
    """

    path: Path = field(default_factory=default_config_path)
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """The value of option ``key`` (its default if not set). Lists are copies."""
        opt = option(key)
        value = self.values.get(key, opt.default)
        return list(value) if isinstance(value, list) else value

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def set(self, key: str, raw: str) -> Any:
        """Set option ``key`` from the command line string ``raw`` (see :func:`parse_value`);
        return the parsed value. Raises :class:`ConfigError`."""
        value = parse_value(key, raw)
        self.values[key] = value
        return value

    def set_value(self, key: str, value: Any) -> None:
        """Set option ``key`` to an already typed ``value`` (validated)."""
        self.values[key] = validate(key, value)

    def unset(self, key: str) -> None:
        """Back to the default for ``key``."""
        option(key)
        self.values.pop(key, None)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """All options, defaults filled, nested by section: ``{"node": {"port": 8466, ...}}``."""
        out: dict[str, dict[str, Any]] = {}
        for key, opt in OPTIONS.items():
            out.setdefault(opt.section, {})[opt.name] = self.get(key)
        return out

    def to_toml(self, *, all_options: bool = True) -> str:
        """TOML text of the effective config (or only the options that were set)."""
        if all_options:
            return tomli_w.dumps(self.as_dict())
        return tomli_w.dumps(_nest(self.values))

    def save(self, path: Path | None = None) -> Path:
        """Write the options that were set to ``path`` (default: :attr:`path`) atomically.

        A temporary file in the same directory (mode 0600) is written, flushed and renamed over
        the target, so readers see the old file or the new one, never a partial one. The
        directory is created (mode 0700) if missing. Returns the path written.
        """
        target = Path(path) if path is not None else self.path
        data = tomli_w.dumps(_nest({k: self.values[k] for k in OPTIONS if k in self.values}))
        try:
            if not target.parent.is_dir():
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as e:
            raise ConfigError(f"cannot write config file {target}: {e.strerror}") from e
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                if hasattr(os, "fchmod"):  # (POSIX; on Windows the user's profile ACLs apply)
                    os.fchmod(f.fileno(), 0o600)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise ConfigError(f"cannot write config file {target}: {e.strerror}") from e
            raise
        return target


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = value
    return out


_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


def _toml_error(path: Path, text: str, err: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(err)
    line: int | None = getattr(err, "lineno", None)  # Python >= 3.14
    column: int | None = getattr(err, "colno", None)
    m = _TOML_POSITION.search(message)
    if m:
        message = message[: m.start()]
        if line is None and m.group(1):
            line, column = int(m.group(1)), int(m.group(2))
    if line is None or column is None:  # "at end of document"
        lines = text.split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    msg = getattr(err, "msg", None)
    if isinstance(msg, str) and msg:
        message = msg
    return ConfigError(f"{path}: invalid TOML at line {line}, column {column}: {message}")


def _flatten(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            if isinstance(table, dict):
                msg = f"unknown section [{section}] (sections: {', '.join(SECTIONS)})"
            else:
                msg = _unknown_key_message(section)
            raise ConfigError(f"{path}: {msg}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table, got {_describe(table)}")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in OPTIONS:
                raise ConfigError(f"{path}: {_unknown_key_message(key)}")
            try:
                values[key] = validate(key, value)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
    return values


def load_config(path: Path | None = None) -> Config:
    """Read the config file ``path`` (default: :func:`default_config_path`).

    A missing file gives the defaults (and :meth:`Config.save` creates it). Raises
    :class:`ConfigError` naming the file (and line and column, or option) on invalid TOML,
    unknown options and wrong types.
    """
    path = Path(path).expanduser() if path is not None else default_config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path=path)
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(path, text, e) from None
    return Config(path=path, values=_flatten(path, data))


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------


def _toml_literal(value: Any) -> str:
    return tomli_w.dumps({"v": value})[4:].strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference_markdown(options: Iterable[Option] | None = None) -> str:
    """The option reference of ``docs/config.md``, generated from :data:`OPTIONS`.

    One ``### [section]`` heading per section with a table of its options (key, type, default,
    description). A test checks the text is in ``docs/config.md``; regenerate it with
    ``uv run python -m streamerp2p.config``.
    """
    opts = list(OPTIONS.values() if options is None else options)
    parts: list[str] = []
    for section, about in SECTIONS.items():
        rows = [o for o in opts if o.section == section]
        if not rows:
            continue
        parts.append(f"### `[{section}]`\n\n{about}\n")
        table = ["| Option | Type | Default | Description |", "| --- | --- | --- | --- |"]
        for o in rows:
            help_text = o.help
            bounds = []
            if o.minimum is not None:
                bounds.append(f"≥ {o.minimum:g}")
            if o.maximum is not None:
                bounds.append(f"≤ {o.maximum:g}")
            if bounds:
                help_text += f" ({', '.join(bounds)})"
            default = _toml_literal(o.default)
            table.append(f"| `{o.key}` | {o.kind} | `{_cell(default)}` | {_cell(help_text)} |")
        parts.append("\n".join(table) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":  # uv run python -m streamerp2p.config > reference
    print(config_reference_markdown(), end="")
