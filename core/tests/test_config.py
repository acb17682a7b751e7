"""Configuration: schema, parsing, validation, atomic saving, and the ``config`` commands."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from streamerp2p import config as cfg
from streamerp2p.cli_admin import config_cmd
from streamerp2p.config import OPTIONS, Config, ConfigError, load_config, state_dir

EXPECTED_DEFAULTS: dict[str, Any] = {
    "node.port": 8466,
    "node.host": "0.0.0.0",
    "node.seeds": [],
    "node.slots": 4,
    "node.upload_kbps": 0.0,
    "node.bandwidth_test": True,
    "node.max_proxy_clients": 16,
    "node.history_seconds": 30.0,
    "node.cushion_seconds": 4.0,
    "node.parent_timeout": 1.0,
    "node.leave_grace": 3.0,
    "node.state_dir": "",
    "http.host": "127.0.0.1",
    "http.port": 8467,
    "ingest.plugin": "icecast",
    "ingest.host": "127.0.0.1",
    "ingest.port": 8000,
    "ingest.password": "hackme",
    "station.name": "",
    "station.genre": "",
    "station.description": "",
    "station.url": "",
    "player.default": "none",
    "player.volume": 100,
    "player.device": "",
    "plugins.disabled": [],
    "plugins.enabled": [],
    "ui.default": "none",
    "web.host": "127.0.0.1",
    "web.port": 8468,
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- schema and defaults -------------------------------------------------------------------


def test_schema_is_exactly_the_documented_options() -> None:
    assert list(OPTIONS) == list(EXPECTED_DEFAULTS)
    for key, opt in OPTIONS.items():
        assert opt.default == EXPECTED_DEFAULTS[key]
        assert type(opt.default) is type(EXPECTED_DEFAULTS[key])
        assert opt.help, key
        assert cfg.validate(key, opt.default) == opt.default  # defaults are valid


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    c = load_config(tmp_path / "nope.toml")
    assert c.path == tmp_path / "nope.toml"
    for key, value in EXPECTED_DEFAULTS.items():
        assert c.get(key) == value
    d = c.as_dict()
    assert d["node"]["port"] == 8466
    assert d["ui"] == {"default": "none"}
    assert sum(len(t) for t in d.values()) == len(OPTIONS)


def test_default_paths_are_platform_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cfg.default_config_path() == tmp_path / "conf" / "streamerp2p" / "config.toml"
    assert load_config().path == cfg.default_config_path()
    d = state_dir(Config(path=tmp_path / "c.toml"), None)
    assert d == tmp_path / "state" / "streamerp2p"
    assert d.is_dir()


def test_file_values_override_defaults(tmp_path: Path) -> None:
    p = write(
        tmp_path / "c.toml",
        '[node]\nport = 9000\nseeds = ["a.example:8466", "[::1]:1"]\nhistory_seconds = 10\n'
        '[station]\nname = "Radio X"\n',
    )
    c = load_config(p)
    assert c.get("node.port") == 9000
    assert c.get("node.seeds") == ["a.example:8466", "[::1]:1"]
    assert c.get("node.history_seconds") == 10.0
    assert isinstance(c.get("node.history_seconds"), float)  # int accepted for a float
    assert c.get("station.name") == "Radio X"
    assert c.get("http.port") == 8467
    assert c["node.port"] == 9000


def test_get_returns_copies_of_lists() -> None:
    c = Config()
    c.get("node.seeds").append("x:1")
    assert c.get("node.seeds") == []
    assert OPTIONS["node.seeds"].default == []


# ---- set / parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("node.port", "9000", 9000),
        ("node.port", " 9001 ", 9001),
        ("node.history_seconds", "12.5", 12.5),
        ("node.history_seconds", "12", 12.0),
        ("node.host", "::", "::"),
        ("station.name", "  Radio, with spaces ", "  Radio, with spaces "),
        ("node.seeds", "a:1, b:2", ["a:1", "b:2"]),
        ("node.seeds", "a:1", ["a:1"]),
        ("node.seeds", "example.org, [::1]:9, ::1", ["example.org", "[::1]:9", "::1"]),
        ("node.seeds", "", []),
        ("node.seeds", '["a:1", "b:2"]', ["a:1", "b:2"]),
        ("node.seeds", "[]", []),
        ("node.seeds", "[::1]:9, [::2]:8", ["[::1]:9", "[::2]:8"]),  # not a TOML array
        ("plugins.disabled", "mp3,ingest:icecast", ["mp3", "ingest:icecast"]),
    ],
)
def test_set_parses_to_the_option_type(key: str, raw: str, expected: Any) -> None:
    c = Config()
    assert c.set(key, raw) == expected
    assert c.get(key) == expected
    assert type(c.get(key)) is type(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("off", False),
    ],
)
def test_bool_parsing(raw: str, expected: bool) -> None:
    # No boolean option exists yet: exercise the parser through a temporary option.
    opt = cfg.Option("test.flag", "bool", False, "test")
    OPTIONS["test.flag"] = opt
    try:
        assert cfg.parse_value("test.flag", raw) is expected
    finally:
        del OPTIONS["test.flag"]


@pytest.mark.parametrize(
    ("key", "raw", "fragment"),
    [
        ("node.port", "abc", "must be an integer"),
        ("node.port", "80.5", "must be an integer"),
        ("node.port", "70000", "at most 65535"),
        ("node.port", "-1", "at least 0"),
        ("node.history_seconds", "soon", "must be a number"),
        ("node.history_seconds", "nan", "finite"),
        ("node.parent_timeout", "-2", "at least 0"),
        ("node.seeds", "example.org:", "host:port"),
        ("node.seeds", ":8466", "host:port"),
        ("node.seeds", "example.org:99999", "host:port"),
        ("node.seeds", '["[::1"]', "host:port"),
        ("node.seeds", '["[::1]x"]', "host:port"),
        ("node.seeds", "[1, 2]", "must be a list of strings"),
        ("node.seeds", '["a:1", ]]', "invalid TOML array"),
        ("plugins.disabled", "a:b:c", "not a plugin name"),
    ],
)
def test_set_rejects_bad_values(key: str, raw: str, fragment: str) -> None:
    c = Config()
    with pytest.raises(ConfigError, match=fragment) as info:
        c.set(key, raw)
    assert repr(key) in str(info.value)
    assert key not in c.values


def test_set_unknown_key_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'node\.prot'.*'node\.port'"):
        Config().set("node.prot", "1")
    with pytest.raises(ConfigError, match=r"unknown option 'nope\.x'.*sections: node"):
        Config().get("nope.x")


def test_unset_restores_default() -> None:
    c = Config()
    c.set("node.port", "1234")
    c.unset("node.port")
    assert c.get("node.port") == 8466


def test_set_value_validates() -> None:
    c = Config()
    c.set_value("node.cushion_seconds", 2)
    assert c.get("node.cushion_seconds") == 2.0
    with pytest.raises(ConfigError, match="must be an integer, got boolean True"):
        c.set_value("node.port", True)


# ---- save / load ------------------------------------------------------------------------------


def test_save_reload_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "config.toml"
    c = load_config(path)
    c.set("node.port", "9100")
    c.set("node.seeds", "h1:1, h2:2")
    c.set("node.leave_grace", "0.5")
    c.set("station.name", 'Quote " and \\ backslash')
    c.set("plugins.disabled", "codecs:mp3")
    assert c.save() == path

    again = load_config(path)
    assert again.as_dict() == c.as_dict()
    assert again.values == c.values
    # Only what was set is written: later defaults still apply to the rest.
    on_disk = tomllib.loads(path.read_text(encoding="utf-8"))
    assert on_disk == {
        "node": {"port": 9100, "seeds": ["h1:1", "h2:2"], "leave_grace": 0.5},
        "station": {"name": 'Quote " and \\ backslash'},
        "plugins": {"disabled": ["codecs:mp3"]},
    }


def test_save_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write(path, "[node]\nport = 1\n")
    os.chmod(path, 0o644)
    old_inode = path.stat().st_ino
    c = load_config(path)
    c.set("ingest.password", "s3cret")
    c.save()
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_ino != old_inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temp files left
    assert load_config(path).get("ingest.password") == "s3cret"
    assert load_config(path).get("node.port") == 1


def test_failed_save_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "config.toml", "[node]\nport = 1\n")
    c = load_config(path)
    c.set("node.port", "2")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cfg.os, "replace", boom)
    with pytest.raises(ConfigError, match=r"cannot write config file .*No space left"):
        c.save()
    assert path.read_text() == "[node]\nport = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


# ---- errors in files ----------------------------------------------------------------------------


def test_bad_toml_names_file_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path / "bad.toml", '[node]\nport = 8466\nhost = \n[http]\nport = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert str(p) in msg
    assert "line 3, column 8" in msg
    assert "Invalid value" in msg
    assert "(at line" not in msg  # position not repeated


def test_bad_toml_at_end_of_document(tmp_path: Path) -> None:
    p = write(tmp_path / "bad.toml", '[node]\nhost = "unterminated')
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML at line 2, column 21"):
        load_config(p)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    p = write(tmp_path / "c.toml", "[node]\nprot = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert str(p) in msg
    assert "unknown option 'node.prot'" in msg
    assert "'node.port'" in msg  # suggestion


def test_unknown_section_and_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.toml: unknown section \[nodes\]"):
        load_config(write(tmp_path / "c.toml", "[nodes]\nport = 1\n"))
    with pytest.raises(ConfigError, match=r"c\.toml: unknown option 'port'.*'node\.port'"):
        load_config(write(tmp_path / "c.toml", "port = 1\n"))
    with pytest.raises(ConfigError, match=r"c\.toml: \[node\] must be a table"):
        load_config(write(tmp_path / "c.toml", "node = 1\n"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[node]\nport = "8466"\n', "option 'node.port' must be an integer, got string '8466'"),
        ("[node]\nport = 8466.0\n", "option 'node.port' must be an integer, got number 8466.0"),
        ("[node]\nport = true\n", "option 'node.port' must be an integer, got boolean True"),
        ('[node]\nseeds = "a:1"\n', "option 'node.seeds' must be a list of strings"),
        ("[node]\nseeds = [1]\n", "option 'node.seeds' must be a list of strings"),
        ("[node]\nhistory_seconds = 'x'\n", "option 'node.history_seconds' must be a number"),
        ("[http]\nhost = 127\n", "option 'http.host' must be a string, got integer 127"),
        ("[ui]\ndefault = {a = 1}\n", "option 'ui.default' must be a string, got table"),
        ("[http]\nport = 99999\n", "option 'http.port' must be at most 65535"),
    ],
)
def test_wrong_type_in_file(tmp_path: Path, text: str, fragment: str) -> None:
    p = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert str(info.value).startswith(f"{p}: ")
    assert fragment in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[station]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8"):
        load_config(p)


# ---- state dir -----------------------------------------------------------------------------------


def test_state_dir_override_config_and_creation(tmp_path: Path) -> None:
    c = Config(path=tmp_path / "conf" / "config.toml")
    override = state_dir(c, tmp_path / "node-a" / "state")
    assert override == tmp_path / "node-a" / "state"
    assert stat.S_IMODE(override.stat().st_mode) == 0o700

    c.set("node.state_dir", "relative/state")
    assert state_dir(c, None) == tmp_path / "conf" / "relative" / "state"
    c.set("node.state_dir", str(tmp_path / "abs"))
    assert state_dir(c, None) == tmp_path / "abs"
    assert state_dir(c, tmp_path / "wins") == tmp_path / "wins"

    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    assert state_dir(c, existing) == existing
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # an existing dir is left alone

    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="state directory"):
        state_dir(c, tmp_path / "file")


# ---- docs --------------------------------------------------------------------------------------


def test_reference_markdown_lists_every_option() -> None:
    md = cfg.config_reference_markdown()
    for key, opt in OPTIONS.items():
        assert f"| `{key}` | {opt.kind} |" in md
    assert '| `node.host` | str | `"0.0.0.0"` |' in md
    assert "| `node.seeds` | list[str] | `[]` |" in md


# ---- streamer config ...  (through a test-local group, like the real cli.py does) --------------


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None)
@click.pass_context
def fake_main(ctx: click.Context, config_path: Path | None) -> None:
    ctx.obj = {"config_path": config_path, "state_dir": None}


fake_main.add_command(config_cmd)


def run(*args: str) -> Any:
    return CliRunner().invoke(fake_main, list(args), catch_exceptions=False)


def test_cli_config_set_show_get_path(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    r = run("--config", str(p), "config", "path")
    assert r.exit_code == 0 and r.output.strip() == str(p)

    r = run("--config", str(p), "config", "set", "node.port", "9300")
    assert r.exit_code == 0, r.output
    r = run("--config", str(p), "config", "set", "node.seeds", "a:1,b:2")
    assert r.exit_code == 0, r.output
    assert tomllib.loads(p.read_text()) == {"node": {"port": 9300, "seeds": ["a:1", "b:2"]}}

    r = run("--config", str(p), "config", "show")
    assert r.exit_code == 0
    shown = tomllib.loads(r.stdout)
    assert shown["node"]["port"] == 9300
    assert shown["http"]["port"] == 8467  # defaults filled
    assert str(p) in r.stderr

    r = run("--config", str(p), "config", "show", "--json")
    assert json.loads(r.stdout)["node"]["seeds"] == ["a:1", "b:2"]

    r = run("--config", str(p), "config", "get", "node.port")
    assert r.stdout.strip() == "9300"

    r = run("--config", str(p), "config", "unset", "node.port")
    assert r.exit_code == 0
    assert tomllib.loads(p.read_text()) == {"node": {"seeds": ["a:1", "b:2"]}}


def test_cli_config_errors_are_click_exceptions(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    r = run("--config", str(p), "config", "set", "node.port", "many")
    assert r.exit_code == 1
    assert "Error: option 'node.port' must be an integer, got 'many'" in r.stderr
    assert not p.exists()

    r = run("--config", str(p), "config", "set", "node.nope", "1")
    assert r.exit_code == 1 and "unknown option 'node.nope'" in r.stderr

    write(p, "[node\n")
    r = run("--config", str(p), "config", "show")
    assert r.exit_code == 1
    assert f"Error: {p}: invalid TOML at line 1" in r.stderr


def test_cli_config_without_obj_uses_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    r = CliRunner().invoke(config_cmd, ["path"], catch_exceptions=False)
    assert r.output.strip() == str(tmp_path / "streamerp2p" / "config.toml")
