"""The documentation keeps up with the code: hooks, config options, examples."""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
from streamerp2p import hookspecs
from streamerp2p.config import OPTIONS, ConfigError, config_reference_markdown, load_config
from streamerp2p.plugins import PluginHost

DOCS = Path(__file__).parents[2] / "docs"


def hook_names() -> list[str]:
    return [
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("streamerp2p_")
        and getattr(obj, f"{hookspecs.PROJECT}_spec", None) is not None
    ]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_there_are_hooks() -> None:
    assert "streamerp2p_codecs" in hook_names()
    assert len(hook_names()) >= 8


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_section(hook: str) -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert f"### `{hook}`" in text, f"docs/hooks.md has no '### `{hook}`' section"
    section = text.split(f"### `{hook}`", 1)[1].split("\n### ", 1)[0]
    for part in ("**What for.**", "**Arguments.**", "**Returns.**", "**When called.**"):
        assert part in section, f"section {hook} in docs/hooks.md lacks {part}"
    assert "@hookimpl" in section and f"def {hook}(" in section, f"{hook}: no example"


def test_no_section_for_a_hook_that_does_not_exist() -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(streamerp2p_\w+)`", text, flags=re.M))
    assert documented == set(hook_names())


def test_every_config_option_is_documented() -> None:
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    for key in OPTIONS:
        assert f"`{key}`" in text, f"docs/config.md does not mention {key}"
    assert config_reference_markdown() in text, (
        "the option reference in docs/config.md is out of date: regenerate it with "
        "`uv run python -m streamerp2p.config`"
    )


def test_config_examples_are_valid(tmp_path: Path) -> None:
    blocks = code_blocks((DOCS / "config.md").read_text(encoding="utf-8"), "toml")
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as e:
            pytest.fail(f"example in docs/config.md is not a valid config: {e}")


@pytest.mark.parametrize("doc", ["hooks.md", "writing-plugins.md"])
def test_python_examples_compile(doc: str) -> None:
    blocks = code_blocks((DOCS / doc).read_text(encoding="utf-8"), "python")
    assert blocks
    for block in blocks:
        compile(block, f"<{doc} example>", "exec")


def test_writing_plugins_toml_is_valid() -> None:
    for block in code_blocks((DOCS / "writing-plugins.md").read_text(encoding="utf-8"), "toml"):
        tomllib.loads(block)


def test_writing_plugins_codec_example_works() -> None:
    """Run the codec of docs/writing-plugins.md with the test shown there."""
    text = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    source = code_blocks(text.split("### `streamerp2p_pcm16/plugin.py`", 1)[1], "python")[0]
    module = types.ModuleType("streamerp2p_pcm16_doc_example")
    sys.modules[module.__name__] = module  # dataclasses and annotations need it
    try:
        exec(compile(source, "<writing-plugins.md>", "exec"), module.__dict__)
        host = PluginHost()
        assert host.register(module, "streamerp2p.codecs", "pcm16") is not None
        codec = host.codec_for("audio/L16;rate=44100;channels=2")
        assert codec is not None and codec.name == "pcm16"
        framer = codec.framer()
        frames = []
        for _ in range(3):
            frames += framer.push(b"\x00" * 3000)
        assert [len(f.data) for f in frames] == [4096, 4096]
        assert [len(f.data) for f in framer.flush()] == [808]
        assert framer.format() is not None
        assert host.codec_for(None, b"\x00" * 64) is None
    finally:
        del sys.modules[module.__name__]
