"""The ``streamer`` command line."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import click

from . import __version__
from .app import App, NodeOptions, load_station_key
from .config import ConfigError, load_config, state_dir
from .link import Link, format_hostport, parse_hostport
from .plugins import load_plugins
from .types import StationMeta


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _hostport(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return None
    try:
        if isinstance(value, tuple):
            return [parse_hostport(v) for v in value]
        return parse_hostport(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def hostile_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--malicious, --malicious-kind, --crash-at, --crash-share (sim and bench swarm)."""
    opts = [
        click.option(
            "--malicious",
            type=click.FloatRange(0.0, 0.9),
            default=0.0,
            show_default=True,
            help="Share of the peers that are malicious, replacements too (not counted in "
            "honest_continuity).",
        ),
        click.option(
            "--malicious-kind",
            type=click.Choice(["tamper", "drop", "lie", "flood", "mix"]),
            default="mix",
            show_default=True,
            help="tamper: forged chunks, seals, records; drop: takes children, sends no audio; "
            "lie: claims 3 slots and depth 0; flood: requests, garbage, fake hosts; mix: all "
            "in turn.",
        ),
        click.option(
            "--crash-at",
            type=float,
            default=None,
            help="Seconds (sim: of the run; bench swarm: into the churn phase) at which "
            "--crash-share of the live peers crash at once.",
        ),
        click.option(
            "--crash-share",
            type=click.FloatRange(0.0, 1.0),
            default=0.3,
            show_default=True,
            help="Share of the live peers crashing at --crash-at.",
        ),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def node_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every node-running command takes."""
    opts = [
        click.option("--port", type=int, default=None, help="UDP port of the node (default 8466)."),
        click.option("--bind", "bind_host", default=None, help="Address to bind the UDP port to."),
        click.option("--advertise", default=None, help="Host to put in links (default: guessed)."),
        click.option(
            "--seed",
            "seeds",
            multiple=True,
            callback=_hostport,
            help="Seed host HOST:PORT (repeatable).",
        ),
        click.option(
            "--slots", type=int, default=None, help="Children this node feeds per station."
        ),
        click.option(
            "--http",
            "http",
            default=None,
            callback=_hostport,
            help="HOST:PORT of the local HTTP output for players (port 0 = any).",
        ),
        click.option(
            "--status-file",
            type=click.Path(path_type=Path),
            default=None,
            help="Write the node's status as JSON to this file twice a second.",
        ),
        click.option(
            "--exit-after", type=float, default=None, help="Leave politely after this many seconds."
        ),
        # test beds only (bench swarm): not for users, hence hidden
        click.option(
            "--chunk-log",
            type=click.Path(path_type=Path),
            default=None,
            hidden=True,
            help="Append 'seq length sha256' of every chunk played to this file.",
        ),
        click.option(
            "--adversary",
            type=click.Choice(["tamper", "drop", "lie", "flood"]),
            default=None,
            hidden=True,
            help="Run a malicious node of this kind (streamerp2p.adversary): test beds only.",
        ),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _record_path(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if not value:
        return []
    from .player import record_format

    for path in value:
        try:
            record_format(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
    return list(value)


def _check_outputs(records: list[Path], dumps: list[Path]) -> None:
    """Two recordings or dumps into one file would garble it."""
    seen: set[Path] = set()
    for path in [*records, *dumps]:
        key = path.expanduser().absolute()
        if key in seen:
            raise click.BadParameter(f"{path} is given twice", param_hint="--record/--dump")
        seen.add(key)


def record_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--record / --dump: keep what this node plays (commands that have a station)."""
    opts = [
        click.option(
            "--record",
            "records",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            callback=_record_path,
            help="Record the decoded audio to FILE (.wav, .flac or .ogg; repeatable).",
        ),
        click.option(
            "--dump",
            "dumps",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Write the stream's bytes as players get them to FILE (repeatable).",
        ),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


@click.group(invoke_without_command=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Config file (default: the platform config dir).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="State dir (keys, playlists); use one per node on one machine.",
)
@click.option("--ui", default=None, help="Run a node with this front end (see `streamer plugins`).")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.version_option(__version__, prog_name="streamer")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path | None,
    state_dir: Path | None,
    ui: str | None,
    verbose: int,
) -> None:
    """Streamer P2P: peer-to-peer internet radio."""
    logging.basicConfig(
        level=logging.WARNING - 10 * verbose, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["state_dir"] = state_dir
    ctx.obj["ui"] = ui  # (also for `streamer --ui NAME node --seed ...`)
    if ctx.invoked_subcommand is None:
        if ui is None:
            click.echo(ctx.get_help())
            return
        ctx.invoke(node_cmd, ui=ui)


def _setup(ctx: click.Context, **overrides: Any) -> tuple[Any, Path, Any, NodeOptions]:
    try:
        config = load_config(ctx.obj.get("config_path"))
        sdir = state_dir(config, ctx.obj.get("state_dir"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    plugins = load_plugins(config)
    for f in plugins.failed:
        click.echo(f"warning: plugin {f.group}:{f.name} failed to load: {f.error}", err=True)
    http = overrides.pop("http", None)
    chunk_log = overrides.pop("chunk_log", None)
    adversary = overrides.pop("adversary", None)
    opts = NodeOptions.from_config(
        config,
        port=overrides.pop("port", None),
        host=overrides.pop("bind_host", None),
        advertise=overrides.pop("advertise", None),
        slots=overrides.pop("slots", None),
    )
    seeds = overrides.pop("seeds", None) or []
    opts.seeds = list(dict.fromkeys([*opts.seeds, *seeds]))
    if http is not None:
        opts.http_host, opts.http_port = http
    opts.chunk_log = chunk_log
    opts.adversary = adversary or ""
    return config, sdir, plugins, opts


async def _wait_for_stop(exit_after: float | None) -> str:
    """Until SIGINT/SIGTERM (or --exit-after); returns what stopped us."""
    async with anyio.create_task_group() as tg:
        reason = {"why": "exit-after"}

        async def signals() -> None:
            try:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
                    async for s in sigs:
                        reason["why"] = signal.Signals(s).name
                        tg.cancel_scope.cancel()
                        return
            except NotImplementedError:  # Windows: Ctrl+C arrives as KeyboardInterrupt
                await anyio.sleep_forever()

        tg.start_soon(signals)
        if exit_after is not None:
            await anyio.sleep(exit_after)
            tg.cancel_scope.cancel()
        else:
            await anyio.sleep_forever()
    return reason["why"]


def _run(fn: Callable[..., Awaitable[None]], *args: Any) -> None:
    """anyio.run, reporting a ClickException raised inside a task group as itself."""
    try:
        anyio.run(fn, *args)
    except BaseExceptionGroup as eg:
        found = eg.subgroup(lambda e: isinstance(e, click.ClickException))
        while found is not None and isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]  # type: ignore[assignment]
        if isinstance(found, click.ClickException):
            raise found from None
        raise


async def _run_node(
    app: App,
    body: Callable[[Any], Awaitable[None]],
    exit_after: float | None,
    status_file: Path | None,
) -> None:
    async with anyio.create_task_group() as tg:
        try:
            await app.start(tg)
        except OSError as exc:
            raise click.ClickException(
                f"cannot open the node's ports ({exc.strerror or exc}); is another node running? "
                "use --port / --http (and --state-dir) to run several on one machine"
            ) from exc
        if status_file is not None:
            tg.start_soon(app.write_status_loop, status_file)
        await body(tg)
        why = await _wait_for_stop(exit_after)
        _say(f"leaving ({why})")
        await app.leave()
        _say("left")
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------------------------- local outputs


async def _record(app: App, station_id: bytes, path: Path) -> None:
    """Record a station's decoded audio to ``path`` until the node stops."""
    from .player import CannotDecode, SoundFileSink, decode_output

    sink = SoundFileSink(path, on_open=lambda what: _say(f"recording: {path} ({what})"))
    decoders: list[Any] = []
    try:
        await decode_output(
            app.outputs[station_id],
            app.plugins,
            sink,
            started=lambda decoder, spec: decoders.append(decoder),
        )
    except CannotDecode as exc:
        _say(f"cannot record {path}: {exc}; --dump FILE keeps the stream as it is")
    except Exception as exc:  # a full disk, an unwritable path...: the node goes on
        _say(f"recording {path} stopped: {exc}")
    finally:
        if sink.samples and decoders:
            errors = decoders[0].stats.decode_errors
            seconds = sink.samples / max(sink.rate, 1)
            _say(f"recorded: {path} ({seconds:.1f} s, {errors} decode errors)")


async def _dump(app: App, station_id: bytes, path: Path) -> None:
    from .player import dump_output

    _say(f"dumping: {path}")
    try:
        await dump_output(app.outputs[station_id], path)
    except OSError as exc:
        _say(f"dump {path} stopped: {exc}")
    finally:
        with contextlib.suppress(OSError):
            _say(f"dumped: {path} ({path.stat().st_size} bytes)")


async def _play_internal(app: App, station_id: bytes, volume: int, device: str) -> None:
    """The internal player: decode and play on the sound device; the node runs on without."""
    from .player import (
        CannotDecode,
        NoSoundDevice,
        SoundDeviceSink,
        decode_output,
        probe_sound_device,
    )

    hint = "use --record FILE or an external --player"
    try:  # (PortAudio's start can take a moment: not on the event loop)
        where = await anyio.to_thread.run_sync(probe_sound_device, device)
    except NoSoundDevice as exc:
        _say(f"no sound device: {exc}; {hint}")
        return

    playing: list[Any] = []
    sink = SoundDeviceSink(device)

    def started(decoder: Any, spec: Any) -> None:
        playing.append(decoder)
        _say(f"player: internal, {spec.name} on {where}, volume {volume} %")

    try:
        await decode_output(
            app.outputs[station_id],
            app.plugins,
            sink,
            gain=volume / 100,
            drain=False,
            started=started,
        )
    except CannotDecode as exc:
        _say(
            f"player: {exc}; use an external player (e.g. --player mpv, or --player default) "
            "or --dump FILE"
        )
    except NoSoundDevice as exc:
        _say(f"no sound device: {exc}; {hint}")
    except Exception as exc:
        logging.getLogger(__name__).exception("internal player failed")
        _say(f"player stopped: {exc}")
    finally:
        if playing:
            st = playing[0].stats
            _say(
                f"player: played {st.seconds:.1f} s ({st.decode_errors} decode errors, "
                f"{sink.underflows} underflows)"
            )


def _start_recordings(
    tg: Any, app: App, station_id: bytes, records: list[Path], dumps: list[Path]
) -> None:
    for path in records:
        tg.start_soon(_record, app, station_id, path)
    for path in dumps:
        tg.start_soon(_dump, app, station_id, path)


# ---------------------------------------------------------------------------------- broadcast


@main.command("broadcast")
@click.option("--name", required=True, help="Station name.")
@click.option("--genre", default="", help="Station genre.")
@click.option("--description", default="", help="Station description.")
@click.option("--url", "station_url", default="", help="Station web site.")
@click.option("--ingest", default=None, help="Ingest plugin (default from config: icecast).")
@click.option(
    "--source",
    default=None,
    callback=_hostport,
    help="HOST:PORT where broadcast tools connect (default 127.0.0.1:8000).",
)
@click.option("--password", default=None, help="Source password (default from config).")
@click.option(
    "--mount",
    default="*",
    show_default=True,
    help="Mount point of this station's source ('*': any mount no --station has).",
)
@click.option(
    "--station",
    "more_stations",
    multiple=True,
    metavar="MOUNT=NAME",
    help="Another station of this node, fed by sources on MOUNT (repeatable).",
)
@click.option("--tone", is_flag=True, help="Broadcast generated audio instead of an ingest source.")
@record_options
@node_options
@click.pass_context
def broadcast_cmd(
    ctx: click.Context,
    name: str,
    genre: str,
    description: str,
    station_url: str,
    ingest: str | None,
    source: Any,
    password: str | None,
    mount: str,
    more_stations: tuple[str, ...],
    tone: bool,
    records: list[Path],
    dumps: list[Path],
    exit_after: float | None,
    status_file: Path | None,
    **node: Any,
) -> None:
    """Run a broadcasting node; prints its streamerp2p:// link (one per station).

    One node can broadcast several stations: each has its own mount point (``--mount`` for
    the one named by ``--name``, ``--station /jazz="Jazz FM"`` for more) and its own key.
    """
    _check_outputs(records, dumps)
    extra: list[tuple[str, str]] = []
    for spec in more_stations:
        m, sep, n = spec.partition("=")
        if not sep or not m.strip() or not n.strip() or m.strip() == "*":
            raise click.BadParameter(
                f"{spec!r}: use MOUNT=NAME, e.g. /jazz=Jazz FM", param_hint="--station"
            )
        extra.append(("/" + m.strip().strip("/"), n.strip()))
    mounts = [mount, *(m for m, _ in extra)]
    if len(set(mounts)) != len(mounts):
        raise click.BadParameter("two stations on one mount", param_hint="--station")
    config, sdir, plugins, opts = _setup(ctx, **node)
    ingest = ingest or config.get("ingest.plugin")
    src_host, src_port = source or (config.get("ingest.host"), int(config.get("ingest.port")))
    password = password if password is not None else config.get("ingest.password")
    meta = StationMeta(name=name, genre=genre, description=description, url=station_url)
    stations = [(mount, load_station_key(sdir, name), meta)]
    stations += [(m, load_station_key(sdir, n), StationMeta(name=n)) for m, n in extra]
    app = App(opts, sdir, plugins, out=_say, config=config)

    async def body(tg: Any) -> None:
        _say(f"node: {format_hostport(app.address)}")
        for m, key, meta in stations:
            # with an ingest, a station is off air until its source connects
            link = app.start_station(key, meta, m, on_air=tone)
            _say(f"link: {link}" + (f" (mount {m})" if len(stations) > 1 else ""))
            if app.http is not None:
                _say(f"stream: {app.stream_url(key.station_id)}")
        _start_recordings(tg, app, stations[0][1].station_id, records, dumps)
        if tone:
            from .tone import tone_loop

            for _, key, _ in stations:
                tg.start_soon(tone_loop, app, key.station_id)
            _say("source: generated tone")
        else:
            h, p = await app.serve_ingest(tg, ingest, src_host, src_port, password)
            where = format_hostport((h, p))
            if ingest == "shoutcast":
                hint = f"SHOUTcast v1: sources connect to port {p + 1}, titles to {p}"
            else:
                example = "/live" if mount == "*" else mount
                hint = f"e.g. icecast://source:PASSWORD@{where}{example}"
            _say(f"ingest: {ingest} on {where} ({hint})")

    _run(_run_node, app, body, exit_after, status_file)


# ---------------------------------------------------------------------------------- listen


def _open_player(player: str, playlist: Path, url: str) -> subprocess.Popen[bytes] | None:
    if player == "none":
        return None
    try:
        if player == "default":
            if sys.platform.startswith("win"):
                os.startfile(str(playlist))  # type: ignore[attr-defined]
                return None
            opener = "open" if sys.platform == "darwin" else "xdg-open"
            return subprocess.Popen([opener, str(playlist)])
        return subprocess.Popen([*shlex.split(player), url])
    except OSError as exc:
        _say(f"warning: cannot start the player ({exc}); open {playlist} yourself")
        return None


@main.command("listen")
@click.argument("link_or_station")
@click.option(
    "--player",
    default=None,
    help="none, internal (decode and play on the sound device), default (the desktop's "
    "player for .pls) or a player command (default from config: none).",
)
@click.option(
    "--volume",
    type=click.IntRange(0, 100),
    default=None,
    help="Volume of the internal player in percent, 0-100 (default from config: 100).",
)
@click.option(
    "--device",
    default=None,
    help="Sound device of the internal player: number or part of its name (default: the "
    "system's default output).",
)
@record_options
@node_options
@click.pass_context
def listen_cmd(
    ctx: click.Context,
    link_or_station: str,
    player: str | None,
    volume: int | None,
    device: str | None,
    records: list[Path],
    dumps: list[Path],
    exit_after: float | None,
    status_file: Path | None,
    **node: Any,
) -> None:
    """Run a node tuned to a station; prints the local stream URL and the .pls path."""
    try:
        link = Link.parse(link_or_station)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="LINK_OR_STATION") from exc
    _check_outputs(records, dumps)
    config, sdir, plugins, opts = _setup(ctx, **node)
    player = player or config.get("player.default")
    volume = volume if volume is not None else int(config.get("player.volume"))
    device = device if device is not None else config.get("player.device")
    if not link.seeds and not opts.seeds:
        raise click.ClickException("no host to ask: give a link with seeds or --seed HOST:PORT")
    app = App(opts, sdir, plugins, out=_say, config=config)
    procs: list[subprocess.Popen[bytes]] = []

    async def body(tg: Any) -> None:
        app.tune(link)
        url = app.stream_url(link.station_id)
        pls, _m3u = app.write_playlists(link.station_id)
        _say(f"node: {format_hostport(app.address)}")
        _say(f"stream: {url}")
        _say(f"playlist: {pls}")
        _start_recordings(tg, app, link.station_id, records, dumps)
        if player == "internal":
            tg.start_soon(_play_internal, app, link.station_id, volume, device)
            return
        p = _open_player(player, pls, url)
        if p is not None:
            procs.append(p)

    try:
        _run(_run_node, app, body, exit_after, status_file)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()


@main.command("open")
@click.argument("link")
@click.option(
    "--player",
    default=None,
    help="none, internal, default (the desktop's player for .pls) or a player command "
    "(default: player.default from the config, or the desktop's player if that is none).",
)
@node_options
@click.pass_context
def open_cmd(ctx: click.Context, link: str, player: str | None, **rest: Any) -> None:
    """Tune in to a streamerp2p:// link and play it (what clicking a link runs)."""
    if player is None:
        try:
            configured = load_config(ctx.obj.get("config_path")).get("player.default")
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        player = configured if configured != "none" else "default"
    ctx.invoke(listen_cmd, link_or_station=link, player=player, **rest)


@main.group("url-handler")
def url_handler() -> None:
    """Register or remove streamerp2p:// links with the desktop (this user only)."""


@url_handler.command("install")
def url_handler_install() -> None:
    """Make clicking a streamerp2p:// link run 'streamer open LINK'."""
    from . import urlhandler

    try:
        for line in urlhandler.install():
            _say(line)
    except (OSError, subprocess.SubprocessError) as exc:
        raise click.ClickException(str(exc)) from exc


@url_handler.command("uninstall")
def url_handler_uninstall() -> None:
    """Remove what 'url-handler install' registered."""
    from . import urlhandler

    try:
        for line in urlhandler.uninstall():
            _say(line)
    except (OSError, subprocess.SubprocessError) as exc:
        raise click.ClickException(str(exc)) from exc


# ---------------------------------------------------------------------------------- node


@main.command("node")
@click.option("--ui", default=None, help="Front end to run (a plugin name) or none.")
@node_options
@click.pass_context
def node_cmd(
    ctx: click.Context,
    ui: str | None = None,
    exit_after: float | None = None,
    status_file: Path | None = None,
    **node: Any,
) -> None:
    """Run a node that relays, gossips and can act as a seed."""
    config, sdir, plugins, opts = _setup(ctx, **node)
    ui = ui or ctx.obj.get("ui") or config.get("ui.default")
    app = App(opts, sdir, plugins, out=_say, config=config)

    async def body(tg: Any) -> None:
        _say(f"node: {format_hostport(app.address)}")
        if ui and ui != "none":
            try:
                spec = plugins.ui(ui)
            except KeyError as exc:
                raise click.ClickException(str(exc)) from exc

            async def run_ui() -> None:
                await spec.run(app)
                _say(f"leaving ({ui} closed)")
                await app.leave()  # the front end closed: leave politely
                _say("left")
                tg.cancel_scope.cancel()

            tg.start_soon(run_ui)

    _run(_run_node, app, body, exit_after, status_file)


# ---------------------------------------------------------------------------------- demo


@main.command("demo")
@click.option("--peers", type=int, default=5, show_default=True, help="Listener nodes.")
@click.option(
    "--duration", type=float, default=None, help="Seconds to run (default: until Ctrl+C)."
)
@click.option("--slots", type=int, default=2, show_default=True, help="Children per node.")
@click.option(
    "--http-port",
    type=int,
    default=8467,
    show_default=True,
    help="HTTP port of the deepest listener's player output (0 = any).",
)
@click.pass_context
def demo_cmd(
    ctx: click.Context, peers: int, duration: float | None, slots: int, http_port: int
) -> None:
    """A small network on this machine: a broadcaster of generated audio and N listeners."""
    from .demo import run_demo

    anyio.run(run_demo, ctx.obj, peers, duration, slots, http_port, _say)


# ---------------------------------------------------------------------------------- stations


def _print_directory(data: dict[str, Any], as_json: bool) -> None:
    import json as _json

    if as_json:
        click.echo(_json.dumps(data, indent=1))
        return
    for s in data["stations"]:
        state = (
            f"{s['listeners']:>5} listening" if s["online"] else f"off air {s['last_seen_s']:.0f} s"
        )
        click.echo(
            f"{state:>18}  {s['name'] or '(no name)'}  [{s['genre']}] {s['bitrate']} kbit/s "
            f"{s['codec']}  {s['title']}".rstrip()
        )
        click.echo(f"{'':18}  {s['link']}")
    click.echo(data["status"])


@main.command("stations")
@click.option("--json", "as_json", is_flag=True, help="Print the directory as JSON.")
@click.option(
    "--wait",
    type=float,
    default=5.0,
    show_default=True,
    help="With no node running here: gossip this long with a temporary node first.",
)
@node_options
@click.pass_context
def stations_cmd(
    ctx: click.Context,
    as_json: bool,
    wait: float,
    exit_after: float | None,
    status_file: Path | None,
    **node: Any,
) -> None:
    """The station directory ranked by listeners (offline stations after, by last seen)."""
    import json as _json
    import urllib.request

    _, sdir, plugins, opts = _setup(ctx, **node)
    # a node already running on this machine knows best
    try:
        url = f"http://{opts.http_host}:{opts.http_port}/api/stations"
        with urllib.request.urlopen(url, timeout=2) as resp:  # loopback, our own node
            _print_directory(_json.loads(resp.read()), as_json)
            return
    except (OSError, ValueError):
        pass
    opts.http = False
    if node.get("port") is None:
        opts.port = 0
    if not opts.seeds:
        raise click.ClickException("no node running here and no seeds: give --seed HOST:PORT")
    app = App(opts, sdir, plugins)

    async def run() -> None:
        async with anyio.create_task_group() as tg:
            try:
                await app.start(tg)
            except OSError as exc:
                raise click.ClickException(f"cannot open a UDP port ({exc})") from exc
            # ask every seed for stations at once, then let gossip run
            app.node.explore(app.now())
            app.runtime.poke()
            await anyio.sleep(wait / 2)
            app.node.explore(app.now())  # and the hosts the seeds told us about
            app.runtime.poke()
            await anyio.sleep(wait / 2)
            _print_directory(app.directory(), as_json)
            tg.cancel_scope.cancel()

    _run(run)


# ---------------------------------------------------------------------------------- sim


@main.command("sim")
@click.option("--peers", type=int, default=200, show_default=True)
@click.option("--minutes", type=float, default=2.0, show_default=True)
@click.option(
    "--churn",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of peers leaving (half abruptly) and joining per minute.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--bitrate", type=int, default=128, show_default=True, help="Stream kbit/s.")
@click.option(
    "--warmup",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds before figures are taken (the flash crowd joins in the first 30).",
)
@click.option("--no-reshuffle", is_flag=True, help="Keep the tree as joins built it.")
@click.option(
    "--sessions",
    type=click.Choice(["uniform", "lognormal"]),
    default="uniform",
    show_default=True,
    help="Who leaves: random peers each minute (uniform), or each at the end of a heavy-tailed "
    "session drawn at its join (lognormal, mean 1/churn minutes: most sessions short, a few long).",
)
@click.option(
    "--session-sigma",
    type=float,
    default=1.5,
    show_default=True,
    help="Sigma of the lognormal session lengths.",
)
@click.option(
    "--uplink-queue",
    type=float,
    default=0.0,
    show_default=True,
    help="Each peer's uplink buffer, in seconds of its rate (at least 16 KiB); what would wait "
    "longer is dropped, as a router's full queue drops it. 0: unbounded.",
)
@hostile_options
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a PNG of the tree and of depth over time (needs matplotlib).",
)
def sim_cmd(
    peers: int,
    minutes: float,
    churn: float,
    seed: int,
    bitrate: int,
    warmup: float,
    no_reshuffle: bool,
    sessions: str,
    session_sigma: float,
    uplink_queue: float,
    malicious: float,
    malicious_kind: str,
    crash_at: float | None,
    crash_share: float,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Run the real overlay for a whole audience on the deterministic simulator."""
    import json as _json

    from .simrun import SimParams, run_sim
    from .simrun import plot as _plot

    params = SimParams(
        peers=peers,
        minutes=minutes,
        churn=churn,
        seed=seed,
        bitrate_kbps=bitrate,
        warmup_seconds=min(warmup, minutes * 60 / 2),
        reshuffle=not no_reshuffle,
        sessions=sessions,
        session_sigma=session_sigma,
        malicious=malicious,
        malicious_kind=malicious_kind,
        crash_at=crash_at,
        crash_share=crash_share,
        queue_s=uplink_queue if uplink_queue > 0 else None,
        progress=True,  # on stderr: stdout keeps the figures
    )
    result = run_sim(params)
    click.echo(_json.dumps(result.figures, indent=None if as_json else 2))
    if plot is not None:
        try:
            _plot(result, str(plot), params)
        except ImportError as exc:
            raise click.ClickException("--plot needs matplotlib (pip install matplotlib)") from exc
        if not as_json:
            click.echo(f"plot: {plot}")


# ---------------------------------------------------------------------------------- bench


@main.group("bench")
def bench_group() -> None:
    """Benchmarks that print figures (JSON)."""


@bench_group.command("relay")
@click.option("--children", type=int, default=20, show_default=True)
@click.option("--seconds", type=float, default=10.0, show_default=True)
@click.option("--tunes", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
def bench_relay(children: int, seconds: float, tunes: int, as_json: bool) -> None:
    """One node relaying to K children on loopback; tune-in time over N tunes."""
    from .bench import run_relay_bench

    run_relay_bench(children=children, seconds=seconds, tunes=tunes, as_json=as_json)


@bench_group.command("swarm")
@click.option("--peers", type=int, default=30, show_default=True)
@click.option("--seconds", type=float, default=60.0, show_default=True)
@click.option(
    "--churn",
    type=float,
    default=0.3,
    show_default=True,
    help="Share of the peers that crash or leave (and are replaced) during the run.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@hostile_options
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
def bench_swarm(
    peers: int,
    seconds: float,
    churn: float,
    seed: int,
    malicious: float,
    malicious_kind: str,
    crash_at: float | None,
    crash_share: float,
    as_json: bool,
) -> None:
    """Real node processes on loopback with a broadcaster of generated audio and churn."""
    from .bench import run_swarm_bench

    run_swarm_bench(
        peers=peers,
        seconds=seconds,
        kill_share=churn,
        as_json=as_json,
        seed=seed,
        malicious=malicious,
        malicious_kind=malicious_kind,
        crash_at=crash_at,
        crash_share=crash_share,
    )


@bench_group.command("nat")
@click.option("--listeners", type=int, default=2, show_default=True, help="Per NAT kind.")
@click.option("--hold", type=float, default=10.0, show_default=True, help="Seconds of playing.")
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
def bench_nat(listeners: int, hold: float, as_json: bool) -> None:
    """Broadcast and listen through real NAT (network namespaces; Linux, root, ip/nft/tc)."""
    from .benchnat import run_nat_bench
    from .netbed import available

    why = available()
    if why is not None:
        raise click.ClickException(f"the NAT test bed cannot run here: {why}")
    run_nat_bench(listeners=listeners, hold=hold, as_json=as_json)


@bench_group.command("fuzz")
@click.option(
    "--target",
    "targets",
    multiple=True,
    default=["all"],
    show_default=True,
    help="wire, node, icecast, shoutcast, http-output, icy, codec:NAME, codecs or all "
    "(repeatable).",
)
@click.option("--inputs", type=int, default=1_000_000, show_default=True, help="Per target.")
@click.option("--seconds", type=float, default=None, help="Stop a target after this long.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--crashes",
    "crash_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("fuzz-crashes"),
    show_default=True,
    help="Where the first reproducers of each target are saved.",
)
@click.option(
    "--engine",
    type=click.Choice(["mutate", "atheris"]),
    default="mutate",
    show_default=True,
    help="atheris: coverage-guided (pip install atheris), one process per target.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
def bench_fuzz(
    targets: tuple[str, ...],
    inputs: int,
    seconds: float | None,
    seed: int,
    crash_dir: Path,
    engine: str,
    as_json: bool,
) -> None:
    """Fuzz the parsers of outside bytes; one JSON line per target (inputs, crashes, speed)."""
    from .benchfuzz import run_fuzz_bench

    if engine == "atheris":
        try:
            import atheris  # type: ignore[import-not-found]  # noqa: F401
        except ImportError as exc:
            raise click.ClickException("atheris is not installed (pip install atheris)") from exc
    try:
        results = run_fuzz_bench(
            targets=list(targets),
            inputs=inputs,
            seconds=seconds,
            as_json=as_json,
            crash_dir=crash_dir,
            seed=seed,
            engine=engine,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if any(r.get("crashes") for r in results):
        raise SystemExit(1)


def _register_admin() -> None:
    from .cli_admin import config_cmd, plugins_cmd

    main.add_command(plugins_cmd)
    main.add_command(config_cmd)


_register_admin()


if __name__ == "__main__":  # pragma: no cover
    main()
