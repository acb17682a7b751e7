"""Administrative commands of ``streamer``: ``streamer plugins`` and ``streamer config ...``.

They are attached to the main click group in :mod:`streamerp2p.cli`::

    from .cli_admin import config_cmd, plugins_cmd

    main.add_command(plugins_cmd)
    main.add_command(config_cmd)

The main group puts ``{"config_path": Path | None, "state_dir": Path | None}`` in ``ctx.obj``
(``--config FILE`` / ``--state-dir DIR``); both default to None here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .config import OPTIONS, Config, ConfigError, default_config_path, load_config


def _obj(ctx: click.Context) -> dict[str, Any]:
    return ctx.obj if isinstance(ctx.obj, dict) else {}


def _config_path(ctx: click.Context) -> Path | None:
    path = _obj(ctx).get("config_path")
    return Path(path) if path is not None else None


def _load(ctx: click.Context) -> Config:
    try:
        return load_config(_config_path(ctx))
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


# --------------------------------------------------------------------------------------------
# streamer plugins
# --------------------------------------------------------------------------------------------


def _dist(distribution: str | None, version: str | None) -> str:
    if distribution is None:
        return "(unknown distribution)"
    return f"{distribution} {version}" if version else distribution


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys loaded, disabled, failed).")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List plugins: loaded, disabled by the config, and failed (with the error)."""
    from .plugins import load_plugins  # imports plugins: only when the command runs

    host = load_plugins(_load(ctx))
    if as_json:
        click.echo(json.dumps(host.as_dict(), indent=2))
        return
    if host.loaded:
        click.echo("Loaded plugins:")
        for r in host.loaded:
            hooks = ", ".join(r.hooks) or "no hooks"
            click.echo(f"  {r.group}:{r.name}  {_dist(r.distribution, r.version)}  [{hooks}]")
    else:
        click.echo("No plugins loaded.")
    if host.disabled:
        click.echo("Disabled plugins:")
        for d in host.disabled:
            click.echo(f"  {d.group}:{d.name}  {_dist(d.distribution, d.version)}  ({d.reason})")
    if host.failed:
        click.echo("Failed plugins:")
        for f in host.failed:
            click.echo(f"  {f.group}:{f.name}  {_dist(f.distribution, f.version)}")
            click.echo(f"      {f.error}")


# --------------------------------------------------------------------------------------------
# streamer config
# --------------------------------------------------------------------------------------------


@click.group("config")
def config_cmd() -> None:
    """Show or change the configuration file."""


@config_cmd.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration (defaults filled in); the file path goes to stderr."""
    config = _load(ctx)
    state = "" if config.path.exists() else " (not present: defaults)"
    click.echo(f"# {config.path}{state}", err=True)
    if as_json:
        click.echo(json.dumps(config.as_dict(), indent=2))
    else:
        click.echo(config.to_toml(), nl=False)


@config_cmd.command("get")
@click.argument("key")
@click.pass_context
def config_get(ctx: click.Context, key: str) -> None:
    """Print the value of KEY (e.g. node.port) as JSON."""
    config = _load(ctx)
    try:
        value = config.get(key)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(value))


@config_cmd.command("set")
@click.argument("key")
@click.argument("value")
@click.pass_context
def config_set(ctx: click.Context, key: str, value: str) -> None:
    """Set KEY (e.g. node.port) to VALUE and write the file.

    Lists are comma-separated (a:1,b:2) or TOML arrays; booleans true/false/yes/no/1/0.
    """
    config = _load(ctx)
    try:
        parsed = config.set(key, value)
        path = config.save()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{key} = {json.dumps(parsed)}  ({path})", err=True)


@config_cmd.command("unset")
@click.argument("key")
@click.pass_context
def config_unset(ctx: click.Context, key: str) -> None:
    """Remove KEY from the file (back to its default)."""
    config = _load(ctx)
    try:
        config.unset(key)
        path = config.save()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{key} = {json.dumps(OPTIONS[key].default)} (default)  ({path})", err=True)


@config_cmd.command("path")
@click.pass_context
def config_path(ctx: click.Context) -> None:
    """Print the path of the configuration file (whether or not it exists)."""
    path = _config_path(ctx)
    click.echo(str(path.expanduser() if path is not None else default_config_path()))


__all__ = ["config_cmd", "plugins_cmd"]
