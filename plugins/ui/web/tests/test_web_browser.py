"""The web front end in real headless Chromium, on real nodes (processes, loopback UDP).

A broadcaster node with ``--ui web`` starts a station from its page; ffmpeg, pointed at it
with the command the page shows, feeds it. A listener node with ``--ui web`` sees the station,
tunes in (click + Tune in), buffers, plays it in the page's ``<audio>`` (its time advances),
shows the title and the tree; the broadcaster's widget, embedded in a page of another origin,
counts the listener and drops it when the listener stops; the settings are saved to the TOML
file and a bad value is refused inline; a cross-site request from the foreign page changes
nothing. Screenshots of each step go to ``tmp_path/screenshots`` (and
``$STREAMERP2P_SCREENSHOTS``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import re
import shlex
import subprocess
import threading
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamerp2p.procs import NodeProcess
from streamerp2p.testing import in_ci, require_tool
from streamerp2p.tone import ToneSource
from webnodes import Shots, node_args, snapshot, web_node

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
TIMEOUT_MS = 20_000


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium", "apt-get install chromium")
    if in_ci():  # the dev group installs it: missing in CI is a failure, not a skip
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class ForeignSite:
    """A web site of another origin (another local port) that embeds things."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def tone_mp3(path: Path, seconds: float) -> None:
    path.write_bytes(b"".join(ToneSource().frames(round(seconds * 44100 / 1152))))


def set_title(ingest: str, mount: str, password: str, title: str) -> None:
    """What broadcast tools do: an Icecast /admin/metadata title update."""
    auth = base64.b64encode(f"source:{password}".encode()).decode()
    q = f"mode=updinfo&mount={mount}&song={urllib.request.quote(title)}"
    req = urllib.request.Request(
        f"http://{ingest}/admin/metadata?{q}", headers={"Authorization": f"Basic {auth}"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def record_states(page: Any) -> None:
    """Collect every tuning state the page shows (an observer, not polling)."""
    page.evaluate(
        """() => {
          window.__states = [];
          const el = document.getElementById("np-state");
          new MutationObserver(() => window.__states.push(el.dataset.state))
            .observe(el, {attributes: true, attributeFilter: ["data-state"]});
        }"""
    )


def test_tune_play_stop_broadcast_widget_settings_in_chromium(browser: Any, tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    shots = Shots(tmp_path)
    procs: list[Any] = []
    site: ForeignSite | None = None
    tool: subprocess.Popen[bytes] | None = None
    try:
        bc, bc_url, _ = web_node(
            tmp_path,
            "bc",
            '[ingest]\nport = 0\npassword = "unused"\n[node]\nbandwidth_test = false\n',
        )
        procs.append(bc)
        bc_addr = bc.value("node:")
        # the listener starts meanwhile (it finds the station through its seed, the broadcaster)
        ln_cfg = tmp_path / "ln.toml"
        ln_cfg.write_text(
            "[web]\nport = 0\n[node]\nbandwidth_test = false\ncushion_seconds = 2.0\n",
            encoding="utf-8",
        )
        ln = NodeProcess(node_args(tmp_path, "ln", "--seed", bc_addr), name="ln")
        procs.append(ln)
        ctx = browser.new_context(viewport={"width": 1280, "height": 1100})
        ctx.set_default_timeout(TIMEOUT_MS)

        # ---- broadcaster: start a station from the page, then point ffmpeg at it
        bpage = ctx.new_page()
        bpage.goto(bc_url)
        bpage.get_by_label("Station name").fill("Web FM")
        bpage.get_by_label("Genre").fill("Tests")
        bpage.get_by_label("Description").fill("Broadcast from the web page")
        bpage.get_by_label("Mount").fill("/live")
        bpage.get_by_label("Source password").fill("s3cret")
        bpage.get_by_role("button", name="Start broadcast").click()
        card = bpage.locator("article.broadcast")
        link = card.locator("a.b-link")
        assert link.inner_text(timeout=TIMEOUT_MS).startswith("streamerp2p://")
        ff_help = card.locator("ol.help li", has_text="ffmpeg").inner_text()
        assert card.locator("ol.help li", has_text="butt").count() == 1
        m = re.search(r"icecast://source:s3cret@(127\.0\.0\.1:\d+)/live", ff_help)
        assert m, ff_help
        ingest = m.group(1)
        assert card.locator(".b-state").inner_text().startswith("Waiting for a source")
        shots.take(bpage, "broadcast-started")

        # the command the page shows, with a file of ours (looped: the test may outlast it)
        mp3 = tmp_path / "music.mp3"
        tone_mp3(mp3, 4)
        cmd = shlex.split(ff_help.split(":", 1)[1].strip())
        assert cmd[0] == "ffmpeg"
        cmd = [ffmpeg, "-v", "error", "-stream_loop", "-1", *cmd[1:]]
        cmd[cmd.index("music.mp3")] = str(mp3)
        tool = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        bpage.wait_for_selector("article.broadcast .b-state[data-on-air=true]")
        assert "On air from 127.0.0.1:" in card.locator(".b-state").inner_text()
        shots.take(bpage, "broadcast-on-air")

        # ---- listener: the station in the list, the status line
        ln_url = ln.value("web:", timeout=20)
        page = ctx.new_page()
        page.goto(ln_url)
        row = page.locator("#stations tbody tr", has_text="Web FM")
        row.wait_for()
        # (a new node may count the broadcaster as a listener for a moment: wait for 0)
        page.wait_for_function(
            "() => document.getElementById('status').textContent === '1 stations, 0 listeners'"
        )
        assert row.locator("td.genre").inner_text() == "Tests"
        assert row.locator("td.listeners").inner_text() == "0"
        assert row.locator("td.state").inner_text() == "on air"
        assert page.get_by_role("button", name="Tune in", exact=True).is_disabled()
        shots.take(page, "listener-stations")

        # ---- tune in: click the row, then Tune in; tuning/buffering, then playing
        record_states(page)
        row.click()
        assert row.get_attribute("aria-selected") == "true"
        page.get_by_role("button", name="Tune in", exact=True).click()
        shots.take(page, "listener-tuning")
        page.wait_for_selector("#np-state[data-state=playing]")
        states = page.evaluate("window.__states")
        assert states[0] in ("tuning", "buffering") and "playing" in states, states
        assert page.locator("#np-station").inner_text() == "Web FM"
        # the browser plays the node's HTTP output: the audio clock advances
        page.wait_for_function(
            "() => { const a = document.getElementById('audio');"
            " return !a.paused && a.currentTime > 1.0 && a.src.includes('/stream/'); }"
        )
        # the title the broadcast tool sets reaches the listener's page
        set_title(ingest, "/live", "s3cret", "Sine Song")
        page.wait_for_function(
            "() => document.getElementById('np-title').textContent === 'Sine Song'"
        )
        # the node panel and the tree picture: the broadcaster is the parent, depth 1
        assert page.locator("#node-parent").inner_text() == bc_addr
        assert page.locator("#node-depth").inner_text() == "1"
        parent_box = page.locator("svg.tree g.parent")
        assert parent_box.locator("text.addr").text_content() == bc_addr
        assert parent_box.locator("text").first.text_content() == "broadcaster"
        assert page.locator("svg.tree g.self").count() == 1
        shots.take(page, "listener-playing")

        # ---- the broadcaster sees its child; the listener count reaches both pages
        bpage.wait_for_selector("svg.tree g.child")
        page.wait_for_function(
            "() => document.getElementById('status').textContent === '1 stations, 1 listeners'"
        )
        bpage.wait_for_function(
            "() => document.querySelector('article.broadcast .b-state').textContent"
            ".includes('1 listeners')"
        )

        # ---- the widget, embedded in a page of another origin
        snippet = card.locator("textarea.snippet").input_value()
        assert snippet.startswith(f'<iframe src="{bc_url}widget/')
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text(
            "<!doctype html><title>My station</title><h1>My station's own page</h1>" + snippet,
            encoding="utf-8",
        )
        site = ForeignSite(tmp_path / "site")
        spage = ctx.new_page()
        spage.goto(site.url)
        frame = spage.frame_locator("iframe")
        assert frame.locator("#name").inner_text() == "Web FM"
        frame.locator("#listeners", has_text="1 listener").wait_for()
        assert frame.locator("#state").inner_text() == "on air"
        href = frame.locator("a#listen").get_attribute("href")
        assert href is not None and href.startswith("streamerp2p://")
        assert href.split("?")[0] == link.inner_text().split("?")[0]
        shots.take(spage, "widget-embedded")

        # ---- a cross-site request from that page changes nothing (no token, foreign Origin)
        outcome = spage.evaluate(
            """async (url) => {
              const out = {};
              try {
                await fetch(url + "api/stop", {method: "POST", mode: "no-cors",
                  headers: {"Content-Type": "text/plain"}, body: "{}"});
                out.simple = "sent";
              } catch (e) { out.simple = "failed"; }
              try {
                await fetch(url + "api/stop", {method: "POST",
                  headers: {"Content-Type": "application/json", "X-Streamer-Token": "guess"},
                  body: "{}"});
                out.preflighted = "answered";
              } catch (e) { out.preflighted = "blocked"; }
              return out;
            }""",
            ln_url,
        )
        assert outcome == {"simple": "sent", "preflighted": "blocked"}, outcome
        assert snapshot(ln_url)["tuned"] is not None, "a cross-site POST stopped the listener"

        # ---- stop: not tuned, the audio stops, the widget counts no listener any more
        page.get_by_role("button", name="Stop").click()
        page.wait_for_function(
            "() => document.getElementById('np-station').textContent.startsWith('Not tuned in')"
        )
        assert page.evaluate("document.getElementById('audio').paused")
        assert snapshot(ln_url)["tuned"] is None
        frame.locator("#listeners", has_text="0 listeners").wait_for()
        shots.take(page, "listener-stopped")

        # ---- keyboard: focus the row, Enter tunes in; double click tunes in too
        not_tuned = "() => document.getElementById('np-station').textContent.startsWith('Not')"
        for how in ("Enter", "double click"):
            if how == "Enter":
                row.focus()
                page.keyboard.press("Enter")
            else:
                row.dblclick()
            page.wait_for_selector("#np-state[data-state]:not([data-state=''])")
            assert snapshot(ln_url)["tuned"]["name"] == "Web FM", how
            page.get_by_role("button", name="Stop").click()
            page.wait_for_function(not_tuned)

        # ---- settings: node.slots saved to the TOML file; a bad value refused inline
        slots = page.get_by_label("node.slots", exact=True)
        slots.fill("7")
        page.get_by_role("button", name="Save settings").click()
        result = page.locator("#settings-result")
        result.filter(has_text="Saved node.slots").wait_for()
        assert "next start" in result.inner_text()
        assert tomllib.loads(ln_cfg.read_text())["node"]["slots"] == 7
        slots.fill("-1")
        page.get_by_role("button", name="Save settings").click()
        error = page.locator("[id='set-node.slots-error']")
        error.filter(has_text="at least 0").wait_for()
        assert slots.get_attribute("aria-invalid") == "true"
        assert "Not saved" in result.inner_text()
        assert tomllib.loads(ln_cfg.read_text())["node"]["slots"] == 7
        page.locator("#settings").scroll_into_view_if_needed()
        shots.take(page, "settings-error", full_page=True)

        # ---- the broadcaster stops its broadcast from the page; the listener greys it out
        card.get_by_role("button", name="Stop broadcast").click()
        bpage.wait_for_selector("article.broadcast", state="detached")
        page.wait_for_selector("#stations tbody tr.offline")
        assert row.locator("td.state").inner_text().startswith("off air, last seen")
        assert row.locator("td.listeners").inner_text() == ""
        page.wait_for_function(
            "() => document.getElementById('status').textContent === '0 stations, 0 listeners'"
        )
        page.locator("#stations-panel").scroll_into_view_if_needed()
        shots.take(page, "listener-station-offline")
        ctx.close()
    finally:
        if tool is not None:
            tool.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                tool.wait(5)
            if tool.poll() is None:
                tool.kill()
                tool.wait()
        if site is not None:
            site.close()
        for p in procs:
            p.stop()
    for p in procs:
        assert "Traceback" not in p.output(), p.output()
