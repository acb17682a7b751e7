"""The plugin host: discovery through entry points, failures, enable/disable, hooks, events.

Discovery tests install throwaway distributions into a temporary directory and run the host in a
subprocess with that directory on ``PYTHONPATH`` (and a private ``XDG_CACHE_HOME``, so
stevedore's entry point cache cannot hide them): exactly what happens when a user
``pip install``s a third-party plugin.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from streamerp2p.cli_admin import plugins_cmd
from streamerp2p.hookspecs import hookimpl
from streamerp2p.plugins import (
    CODECS_GROUP,
    INGEST_GROUP,
    UI_GROUP,
    PluginHost,
    _matches,
)
from streamerp2p.testing import in_ci, require_tool
from streamerp2p.types import CodecSpec, Frame, FramerStats, IngestSpec, PeerInfo, StreamFormat

# ---- throwaway distributions ----------------------------------------------------------------

THROWAWAY_CODEC = '''
"""A codec nobody ships: 4-byte frames b"TW??"."""
from streamerp2p.hookspecs import hookimpl
from streamerp2p.types import CodecSpec, Frame, FramerStats, StreamFormat


class TwFramer:
    def __init__(self):
        self.stats = FramerStats()
        self._buf = b""

    def push(self, data):
        self.stats.bytes_in += len(data)
        self._buf += data
        frames = []
        while len(self._buf) >= 4:
            if not self._buf.startswith(b"TW"):
                self._buf = self._buf[1:]
                self.stats.skipped_bytes += 1
                continue
            frames.append(Frame(self._buf[:4]))
            self._buf = self._buf[4:]
        self.stats.frames += len(frames)
        return frames

    def flush(self):
        self._buf = b""
        return []

    def headers(self):
        return b""

    def format(self):
        return StreamFormat(description="throwaway") if self.stats.frames else None


def sniff(head, content_type):
    return 0.9 if head.startswith(b"TW") else 0.0


@hookimpl
def streamerp2p_codecs():
    return [
        CodecSpec(
            name="throwaway",
            content_types=("audio/x-throwaway",),
            extensions=(".tw",),
            sniff=sniff,
            framer=TwFramer,
            passthrough=True,
        )
    ]
'''

#: Run in the subprocess: load the plugins (with the config file argv[1] if given), print JSON.
HOST_SCRIPT = r"""
import json, sys
from pathlib import Path
from streamerp2p.config import load_config
from streamerp2p.plugins import load_plugins

config = load_config(Path(sys.argv[1])) if len(sys.argv) > 1 else None
host = load_plugins(config)
out = host.as_dict()
out["codecs"] = [c.name for c in host.codecs()]
out["imported"] = sorted(m for m in sys.modules if m.startswith("tw_"))
if "throwaway" in out["codecs"]:
    by_type = host.codec_for("Audio/X-Throwaway; charset=binary")
    by_sniff = host.codec_for(None, b"TW01TW02")
    framer = host.codec("throwaway").framer()
    frames = []
    for piece in (b"junkT", b"W0", b"1TW", b"02TW0"):  # any read size
        frames += [f.data.decode() for f in framer.push(piece)]
    out["by_type"] = by_type.name if by_type else None
    out["by_sniff"] = by_sniff.name if by_sniff else None
    out["no_match"] = host.codec_for("text/html", b"<html>") is None
    out["frames"] = frames
    out["skipped"] = framer.stats.skipped_bytes
print(json.dumps(out))
"""

CLI_SCRIPT = r"""
import sys
from pathlib import Path
from streamerp2p.cli_admin import plugins_cmd
config_path = Path(sys.argv[2]) if len(sys.argv) > 2 else None
args = ["--json"] if sys.argv[1] == "json" else []
plugins_cmd(args, obj={"config_path": config_path, "state_dir": None})
"""


def _norm(name: str) -> str:
    return name.replace("-", "_")


def handmade_install(
    target: Path,
    name: str,
    version: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
) -> None:
    """What an installer leaves behind: the modules plus a ``.dist-info`` directory."""
    target.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (target / f"{module}.py").write_text(textwrap.dedent(source))
    info = target / f"{_norm(name)}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    eps = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in names.items()) + "\n"
        for group, names in entry_points.items()
    )
    (info / "entry_points.txt").write_text(eps)
    (info / "RECORD").write_text("")


def uv_install(
    target: Path,
    name: str,
    version: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str],
) -> None:
    """A real install: build the project with hatchling and install it with uv (offline)."""
    uv = os.environ.get("UV") or require_tool("uv", "pip install uv")
    project = target.parent / f"src-{name}"
    project.mkdir(parents=True)
    eps = "".join(
        f'[project.entry-points."{group}"]\n'
        + "".join(f'{k} = "{v}"\n' for k, v in names.items())
        + "\n"
        for group, names in entry_points.items()
    )
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n{eps}'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        f"include = [{', '.join(json.dumps(m + '.py') for m in modules)}]\n"
    )
    for module, source in modules.items():
        (project / f"{module}.py").write_text(textwrap.dedent(source))
    cmd = [uv, "pip", "install", "--offline", "--no-deps", "--python", sys.executable]
    result = subprocess.run(
        [*cmd, "--target", str(target), str(project)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        message = f"offline uv install not possible here: {result.stderr.strip()[-300:]}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def run_python(tmp_path: Path, target: Path, script: str, *args: str) -> str:
    env = dict(os.environ)
    paths = [str(target), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # stevedore's entry point cache
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_host(tmp_path: Path, target: Path, config: str | None = None) -> dict[str, Any]:
    args: list[str] = []
    if config is not None:
        path = tmp_path / "streamer.toml"
        path.write_text(config)
        args.append(str(path))
    return json.loads(run_python(tmp_path, target, HOST_SCRIPT, *args))


def find(records: list[dict[str, Any]], group: str, name: str) -> dict[str, Any] | None:
    for r in records:
        if r["group"] == group and r["name"] == name:
            return r
    return None


# ---- (a) a third-party codec is used without any kernel change --------------------------------


@pytest.mark.parametrize("install", [handmade_install, uv_install], ids=["dist-info", "uv"])
def test_throwaway_codec_distribution_is_loaded_and_used(tmp_path: Path, install: Any) -> None:
    target = tmp_path / "site"
    install(
        target,
        "throwaway-codec",
        "0.1",
        {CODECS_GROUP: {"throwaway": "tw_codec"}},
        {"tw_codec": THROWAWAY_CODEC},
    )
    out = run_host(tmp_path, target)

    rec = find(out["loaded"], CODECS_GROUP, "throwaway")
    assert rec is not None, out
    assert rec["distribution"] == "throwaway-codec"
    assert rec["version"] == "0.1"
    assert rec["module"] == "tw_codec"
    assert rec["hooks"] == ["streamerp2p_codecs"]
    assert find(out["failed"], CODECS_GROUP, "throwaway") is None

    assert "throwaway" in out["codecs"]
    assert out["by_type"] == "throwaway"  # content type, parameters and case ignored
    assert out["by_sniff"] == "throwaway"  # no content type: sniffed
    assert out["no_match"] is True
    assert out["frames"] == ["TW01", "TW02"]
    assert out["skipped"] == 4  # "junk"


# ---- (b) broken plugins are reported, never fatal ----------------------------------------------


BROKEN_DIST = {
    CODECS_GROUP: {"broken": "tw_broken"},
    INGEST_GROUP: {"asserts": "tw_asserts"},
    UI_GROUP: {"missing": "tw_no_such_module"},
}
BROKEN_MODULES = {
    "tw_broken": "import tw_dependency_that_is_not_installed\n",
    "tw_asserts": "assert False, 'plugin asserts at import'\n",
}


def install_broken_and_good(target: Path) -> None:
    handmade_install(target, "tw-broken", "2.0", BROKEN_DIST, BROKEN_MODULES)
    handmade_install(
        target,
        "throwaway-codec",
        "0.1",
        {CODECS_GROUP: {"throwaway": "tw_codec"}},
        {"tw_codec": THROWAWAY_CODEC},
    )


def test_import_errors_are_reported_not_fatal(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install_broken_and_good(target)
    out = run_host(tmp_path, target)

    broken = find(out["failed"], CODECS_GROUP, "broken")
    assert broken is not None, out
    assert broken["distribution"] == "tw-broken"
    assert broken["version"] == "2.0"
    assert broken["error"] == (
        "ModuleNotFoundError: No module named 'tw_dependency_that_is_not_installed'"
    )
    asserts = find(out["failed"], INGEST_GROUP, "asserts")
    assert asserts is not None
    assert asserts["error"] == "AssertionError: plugin asserts at import"
    missing = find(out["failed"], UI_GROUP, "missing")
    assert missing is not None
    assert "tw_no_such_module" in missing["error"]

    # The good plugin next to them still works.
    assert find(out["loaded"], CODECS_GROUP, "throwaway") is not None
    assert out["by_type"] == "throwaway"


# ---- (c) plugins.enabled / plugins.disabled -----------------------------------------------------


def test_disabled_plugins_are_listed_and_not_imported(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install_broken_and_good(target)
    out = run_host(
        tmp_path,
        target,
        '[plugins]\ndisabled = ["codecs:broken", "streamerp2p.ingest:asserts", "throwaway"]\n',
    )
    names = {(d["group"], d["name"]): d for d in out["disabled"]}
    assert set(names) >= {
        (CODECS_GROUP, "broken"),
        (INGEST_GROUP, "asserts"),
        (CODECS_GROUP, "throwaway"),
    }
    assert names[(CODECS_GROUP, "broken")]["reason"] == "in plugins.disabled"
    assert names[(CODECS_GROUP, "broken")]["distribution"] == "tw-broken"
    assert out["imported"] == []  # disabled plugins are not even imported
    assert find(out["failed"], CODECS_GROUP, "broken") is None
    assert find(out["failed"], UI_GROUP, "missing") is not None  # not disabled: still tried
    assert "throwaway" not in out["codecs"]


def test_enabled_list_loads_only_those(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install_broken_and_good(target)
    out = run_host(tmp_path, target, '[plugins]\nenabled = ["throwaway"]\n')
    assert [(r["group"], r["name"]) for r in out["loaded"]] == [(CODECS_GROUP, "throwaway")]
    assert out["failed"] == []
    assert out["imported"] == ["tw_codec"]
    reasons = {d["name"]: d["reason"] for d in out["disabled"]}
    assert reasons["broken"] == "not in plugins.enabled"
    assert reasons["asserts"] == "not in plugins.enabled"


def test_streamer_plugins_command(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install_broken_and_good(target)
    config = tmp_path / "c.toml"
    config.write_text('[plugins]\ndisabled = ["ui:missing"]\n')

    data = json.loads(run_python(tmp_path, target, CLI_SCRIPT, "json", str(config)))
    assert set(data) == {"loaded", "disabled", "failed"}
    assert find(data["loaded"], CODECS_GROUP, "throwaway") is not None
    assert find(data["disabled"], UI_GROUP, "missing") is not None
    assert find(data["failed"], CODECS_GROUP, "broken") is not None

    text = run_python(tmp_path, target, CLI_SCRIPT, "text", str(config))
    assert "streamerp2p.codecs:throwaway  throwaway-codec 0.1  [streamerp2p_codecs]" in text
    assert "streamerp2p.ui:missing  tw-broken 2.0  (in plugins.disabled)" in text
    assert "ModuleNotFoundError: No module named 'tw_dependency_that_is_not_installed'" in text


def test_plugins_command_reports_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[plugins]\ndisabled = 3\n")

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.obj = {"config_path": bad, "state_dir": None}

    main.add_command(plugins_cmd)
    r = CliRunner().invoke(main, ["plugins"])
    assert r.exit_code == 1
    assert f"{bad}: option 'plugins.disabled' must be a list of strings" in r.stderr


def test_name_matching() -> None:
    for pattern in ("mp3", "codecs:mp3", "streamerp2p.codecs:mp3", " mp3 "):
        assert _matches([pattern], CODECS_GROUP, "mp3")
    for pattern in ("ingest:mp3", "mp", "streamerp2p.ui:mp3"):
        assert not _matches([pattern], CODECS_GROUP, "mp3")


# ---- in-process host: registration, plugin types, events --------------------------------


def make_codec(name: str, content_type: str, magic: bytes, score: float = 0.9) -> CodecSpec:
    class NullFramer:
        def __init__(self) -> None:
            self.stats = FramerStats()

        def push(self, data: bytes) -> list[Frame]:
            return [Frame(data)]

        def flush(self) -> list[Frame]:
            return []

        def headers(self) -> bytes:
            return b""

        def format(self) -> StreamFormat | None:
            return None

    return CodecSpec(
        name=name,
        content_types=(content_type,),
        extensions=(),
        sniff=lambda head, ct: score if head.startswith(magic) else 0.0,
        framer=NullFramer,
    )


class CodecPlugin:
    def __init__(self, *specs: CodecSpec) -> None:
        self.specs = specs

    @hookimpl
    def streamerp2p_codecs(self) -> list[CodecSpec]:
        return list(self.specs)


def test_codecs_lookup_and_codec_for() -> None:
    host = PluginHost()
    a = make_codec("aaa", "audio/aaa", b"AA", 0.9)
    b = make_codec("bbb", "audio/bbb", b"A", 0.6)
    weak = make_codec("weak", "audio/weak", b"", 0.5)  # never above the threshold
    assert host.register(CodecPlugin(a, b), CODECS_GROUP, "ab") is not None
    assert host.register(CodecPlugin(weak), CODECS_GROUP, "weak") is not None

    assert [c.name for c in host.codecs()] == ["aaa", "bbb", "weak"]
    assert host.codec("bbb") is b
    with pytest.raises(KeyError, match=r"no codec named 'ogg' \(known: aaa, bbb, weak"):
        host.codec("ogg")

    assert host.codec_for("audio/bbb") is b
    assert host.codec_for("audio/BBB ; charset=x", b"AA") is b  # content type beats sniffing
    assert host.codec_for(None, b"AAxx") is a  # highest score
    assert host.codec_for("application/octet-stream", b"Ax") is b
    assert host.codec_for(None, b"zz") is None  # only "weak" scores, at 0.5: not enough
    assert host.codec_for(None) is None


def test_misbehaving_codec_plugins_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    class Raises:
        @hookimpl
        def streamerp2p_codecs(self) -> list[CodecSpec]:
            raise RuntimeError("boom")

    class WrongType:
        @hookimpl
        def streamerp2p_codecs(self) -> list[Any]:
            return ["not a codec spec"]

    def bad_sniff(head: bytes, ct: str | None) -> float:
        raise ValueError("sniff bug")

    good = make_codec("good", "audio/good", b"GG")
    sniffer = CodecSpec("sniffer", ("audio/s",), (), bad_sniff, good.framer)
    dup = make_codec("good", "audio/other", b"XX")

    host = PluginHost()
    host.register(Raises(), CODECS_GROUP, "raises")
    host.register(WrongType(), CODECS_GROUP, "wrongtype")
    host.register(CodecPlugin(good, sniffer), CODECS_GROUP, "good")
    host.register(CodecPlugin(dup), CODECS_GROUP, "dup")
    with caplog.at_level(logging.WARNING, logger="streamerp2p.plugins"):
        assert [c.name for c in host.codecs()] == ["good", "sniffer"]
        assert host.codec_for(None, b"GG") is good
    text = caplog.text
    assert "streamerp2p.codecs:raises: streamerp2p_codecs() raised" in text
    assert "boom" in text
    assert "not a CodecSpec" in text
    assert "already provided by streamerp2p.codecs:good" in text
    assert "sniff() raised" in text


def test_registration_failures_are_recorded() -> None:
    class Typo:
        @hookimpl
        def streamerp2p_codec(self) -> list[CodecSpec]:  # missing "s"
            return []

    class WrongArgs:
        @hookimpl
        def streamerp2p_now_playing(self, station: str) -> None:
            pass

    host = PluginHost()
    assert host.register(Typo(), CODECS_GROUP, "typo") is None
    assert host.register(WrongArgs(), UI_GROUP, "wrongargs") is None
    ok = CodecPlugin()
    assert host.register(ok, CODECS_GROUP, "ok") is not None
    assert host.register(CodecPlugin(), CODECS_GROUP, "ok") is None  # same name
    assert host.register(ok, CODECS_GROUP, "ok2") is None  # same object

    errors = {f.name: f.error for f in host.failed}
    assert errors["typo"].startswith("UnknownHook: streamerp2p_codec (known hooks: ")
    assert "PluginValidationError" in errors["wrongargs"]
    assert "already registered as 'streamerp2p.codecs:ok'" in errors["ok"]
    assert "DuplicatePlugin" in errors["ok2"]
    assert [r.name for r in host.loaded] == ["ok"]
    assert host.pm.get_plugin("streamerp2p.codecs:typo") is None


def test_ingest_and_ui_lookup() -> None:
    async def serve(ctx: Any) -> None:
        return None

    class Ingest:
        @hookimpl
        def streamerp2p_ingest_servers(self) -> list[IngestSpec]:
            return [IngestSpec("fake", "a fake ingest", 1234, serve)]

    host = PluginHost()
    host.register(Ingest(), INGEST_GROUP, "fake")
    assert host.ingest("fake").default_port == 1234
    assert [i.name for i in host.ingest_servers()] == ["fake"]
    with pytest.raises(KeyError, match=r"no ingest server named 'icecast' \(known: fake"):
        host.ingest("icecast")
    assert host.uis() == []
    with pytest.raises(KeyError, match=r"no front end named 'tui' \(known: none"):
        host.ui("tui")


# ---- (d) events: one raising plugin never stops the others ------------------------------


def test_emit_contains_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str, str]] = []

    class Good:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        @hookimpl
        def streamerp2p_now_playing(self, station_id: str, title: str) -> None:
            calls.append((self.tag, station_id, title))

    class Bad:
        @hookimpl
        def streamerp2p_now_playing(self, station_id: str, title: str) -> None:
            raise RuntimeError("plugin bug")

    class Partial:  # implementations may take a subset of the arguments
        @hookimpl
        def streamerp2p_peer_left(self, reason: str) -> None:
            calls.append(("partial", reason, ""))

    host = PluginHost()
    host.register(Good("first"), UI_GROUP, "first")
    host.register(Bad(), UI_GROUP, "bad")
    host.register(Good("last"), UI_GROUP, "last")
    host.register(Partial(), UI_GROUP, "partial")

    with caplog.at_level(logging.ERROR, logger="streamerp2p.plugins"):
        host.emit("streamerp2p_now_playing", station_id="ab12", title="Song")
    assert sorted(calls) == [("first", "ab12", "Song"), ("last", "ab12", "Song")]
    assert "streamerp2p.ui:bad: streamerp2p_now_playing raised" in caplog.text
    assert "plugin bug" in caplog.text

    host.emit(
        "streamerp2p_peer_left",
        station_id="ab12",
        peer=PeerInfo("00", "127.0.0.1:1"),
        reason="timeout",
    )
    assert calls[-1] == ("partial", "timeout", "")

    with pytest.raises(ValueError, match="no hook named 'streamerp2p_nothing'"):
        host.emit("streamerp2p_nothing")
    with pytest.raises(TypeError, match="missing arguments: title"):
        host.emit("streamerp2p_now_playing", station_id="x")
