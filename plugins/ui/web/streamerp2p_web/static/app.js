// Streamer P2P web front end: renders the controller's snapshots (Server-Sent Events) and calls
// its actions (POST, JSON, with this page's token). Plain DOM, no build step.
"use strict";

const TOKEN = document.querySelector('meta[name="streamer-token"]').content;
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

let snap = null;
let selected = null; // station id of the selected row
let settings = null; // {settings: [...], path}
const helpBySid = new Map(); // tool help returned by start_broadcast
const rows = new Map(); // station id -> <tr>
const cards = new Map(); // station id -> broadcast card

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function post(path, body = {}) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Streamer-Token": TOKEN },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try {
    data = await r.json();
  } catch (_) {
    /* no body */
  }
  if (!r.ok) {
    const err = new Error(data.error || `${r.status} ${r.statusText}`);
    err.key = data.key;
    throw err;
  }
  return data;
}

function ago(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const t = el("textarea", { class: "sr-only" });
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
  const was = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = was), 1500);
}

function widgetSnippet(sid, name) {
  const title = `${name || "Station"} on Streamer P2P`.replace(/&/g, "&amp;").replace(/"/g, "&quot;")
    .replace(/</g, "&lt;");
  return `<iframe src="${location.origin}/widget/${sid}" title="${title}" width="320" height="120" ` +
    `style="border:0;max-width:100%" loading="lazy"></iframe>`;
}

// ------------------------------------------------------------------ stations

function tune(target) {
  $("tune-error").textContent = "";
  post("/api/tune", { target })
    .then(renderNewer)
    .catch((e) => ($("tune-error").textContent = e.message));
}

// An action's answer carries the snapshot right after it: show it unless the event stream
// already brought a newer one.
function renderNewer(answer) {
  if (answer.snapshot && (!snap || answer.snapshot.serial >= snap.serial)) render(answer.snapshot);
}

function select(sid, focus = false) {
  selected = sid;
  for (const [id, tr] of rows) {
    tr.setAttribute("aria-selected", id === sid ? "true" : "false");
  }
  $("tune").disabled = !sid;
  if (focus && rows.has(sid)) rows.get(sid).focus();
}

function rowKey(e, sid) {
  const order = [...rows.keys()];
  const i = order.indexOf(sid);
  if (e.key === "Enter") {
    e.preventDefault();
    select(sid);
    tune(sid);
  } else if (e.key === " ") {
    e.preventDefault();
    select(sid);
  } else if (e.key === "ArrowDown" && i + 1 < order.length) {
    e.preventDefault();
    select(order[i + 1], true);
  } else if (e.key === "ArrowUp" && i > 0) {
    e.preventDefault();
    select(order[i - 1], true);
  }
}

function renderStations(stations) {
  const tbody = $("stations").tBodies[0];
  const seen = new Set();
  stations.forEach((s) => {
    seen.add(s.station_id);
    let tr = rows.get(s.station_id);
    if (!tr) {
      tr = el("tr", {
        tabindex: "0",
        "data-sid": s.station_id,
        "aria-selected": "false",
        onclick: () => select(s.station_id),
        ondblclick: () => {
          select(s.station_id);
          tune(s.station_id);
        },
        onkeydown: (e) => rowKey(e, s.station_id),
      });
      for (const cls of ["name", "genre", "title", "listeners num", "state"]) {
        tr.append(el("td", { class: cls }));
      }
      rows.set(s.station_id, tr);
    }
    const [name, genre, title, listeners, state] = tr.cells;
    name.replaceChildren(el("span", { text: s.name || s.station_id.slice(0, 10) }));
    if (s.tuned) name.append(" ", el("span", { class: "badge", text: "tuned in" }));
    if (s.broadcasting) name.append(" ", el("span", { class: "badge own", text: "yours" }));
    genre.textContent = s.genre;
    title.textContent = s.title;
    listeners.textContent = s.online ? String(s.listeners) : "";
    state.textContent = s.online ? "on air" : `off air, last seen ${ago(s.last_seen_s)}`;
    tr.classList.toggle("offline", !s.online);
    tr.classList.toggle("tuned", !!s.tuned);
    tr.title = s.description || "";
  });
  for (const [sid, tr] of rows) {
    if (!seen.has(sid)) {
      tr.remove();
      rows.delete(sid);
    }
  }
  // keep the snapshot's ranking; only move rows when the order changed (moving blurs them)
  const want = stations.map((s) => rows.get(s.station_id));
  const have = [...tbody.rows];
  if (want.length !== have.length || want.some((tr, i) => tr !== have[i])) {
    const focused = document.activeElement;
    tbody.replaceChildren(...want);
    if (focused && want.includes(focused)) focused.focus();
  }
  if (selected && !rows.has(selected)) select(null);
  $("no-stations").hidden = stations.length > 0;
}

// ------------------------------------------------------------------ now playing and audio

const STATE_TEXT = {
  tuning: "Tuning in: looking for a parent…",
  buffering: "Buffering",
  playing: "Playing",
  "off air": "Off air (waiting for the station to come back)",
};

function renderPlayer(t, stations) {
  const audio = $("audio");
  $("stop").disabled = !t;
  if (!t) {
    $("np-station").textContent = "Not tuned in. Pick a station below.";
    $("np-title").textContent = "";
    $("np-state").textContent = "";
    $("np-state").dataset.state = "";
    $("np-progress").hidden = true;
    $("np-link").hidden = true;
    $("play").hidden = true;
    if (audio.dataset.src) {
      audio.pause();
      audio.removeAttribute("src");
      audio.load();
      delete audio.dataset.src;
    }
    audio.hidden = true;
    return;
  }
  const row = stations.find((s) => s.station_id === t.station_id) || {};
  $("np-station").textContent = t.name || row.name || t.station_id;
  $("np-title").textContent = t.title || row.title || "";
  let text = STATE_TEXT[t.state] || t.state;
  if (t.state === "buffering") text += ` ${Math.round(t.progress * 100)} %`;
  $("np-state").textContent = text;
  $("np-state").dataset.state = t.state;
  const busy = t.state === "tuning" || t.state === "buffering";
  $("np-progress").hidden = !busy;
  if (busy) {
    // indeterminate while tuning, then the share of the cushion buffered
    if (t.state === "tuning") $("np-progress").removeAttribute("value");
    else $("np-progress").value = t.progress;
  }
  $("np-link").hidden = false;
  $("np-link").href = t.link;
  if (t.state === "playing" && t.stream_url && audio.dataset.src !== t.stream_url) {
    audio.dataset.src = t.stream_url;
    audio.src = t.stream_url;
    audio.hidden = false;
    startAudio();
  }
}

function startAudio() {
  const audio = $("audio");
  audio.play().then(
    () => ($("play").hidden = true),
    () => ($("play").hidden = false), // autoplay refused: the user presses Play
  );
}

// ------------------------------------------------------------------ your node and the tree

function renderNode(n, t, broadcasts) {
  $("node-address").textContent = n.address;
  $("node-advertised").textContent = n.advertised;
  if (n.upload_measured) $("node-upload").textContent = `${n.upload_kbps} kbit/s (measured)`;
  else if (n.upload_kbps > 0) $("node-upload").textContent = `${n.upload_kbps} kbit/s (configured)`;
  else $("node-upload").textContent = "not measured yet";
  const nat = n.nat || {};
  let natText = "not checked yet";
  if (nat.reachable === true) natText = `reachable${nat.public ? ` as ${nat.public}` : ""}`;
  else if (nat.reachable === false) {
    natText = `behind a NAT${nat.symmetric_nat ? " (symmetric)" : ""}` +
      `${nat.public ? `, seen as ${nat.public}` : ""}`;
  }
  $("node-nat").textContent = natText;
  const proxy = nat.proxy ? `reached through ${nat.proxy}` : "none needed";
  const clients = nat.proxy_clients ? `; forwarding for ${nat.proxy_clients} nodes` : "";
  $("node-proxy").textContent = proxy + clients;
  const tree = t && t.tree ? t.tree : broadcasts.length ? broadcasts[0].tree : null;
  const own = !(t && t.tree) && broadcasts.length > 0;
  $("node-parent").textContent = own ? "— (this node broadcasts)" : tree ? tree.parent || "looking…" : "—";
  $("node-children").textContent = tree
    ? `${tree.children.length} of ${tree.slots} slots` +
      (tree.children.length ? `: ${tree.children.map((c) => c.address).join(", ")}` : "")
    : "—";
  $("node-depth").textContent = tree && (own || tree.parent) ? String(tree.depth) : "—";

  const trees = [];
  if (t && t.tree) trees.push(treeFigure(t.name || t.station_id, t.tree, n.address, false));
  for (const b of broadcasts) {
    if (b.tree) trees.push(treeFigure(b.name, b.tree, n.address, true));
  }
  $("trees").replaceChildren(...trees);
}

function treeFigure(name, tree, self, source) {
  // Levels from the top: grandparent, parent (the broadcaster at depth 1), this node, children.
  const levels = [];
  if (!source) {
    if (tree.grandparent) levels.push([{ role: "grandparent", label: "grandparent", addr: tree.grandparent }]);
    const top = tree.depth === 1 ? "broadcaster" : "parent";
    levels.push([{ role: "parent", label: top, addr: tree.parent || "looking…" }]);
  }
  levels.push([{ role: "self", label: source ? "this node (broadcaster)" : "this node", addr: self }]);
  const kids = tree.children.slice(0, 4).map((c) => ({ role: "child", label: "child", addr: c.address }));
  if (tree.children.length > 4) {
    kids.push({ role: "more", label: `+${tree.children.length - 4} more`, addr: "" });
  }
  if (kids.length) levels.push(kids);
  const W = 170, H = 40, GAP = 24, VGAP = 30;
  const widest = Math.max(...levels.map((l) => l.length));
  const width = Math.max(widest * (W + GAP), W + GAP);
  const height = levels.length * (H + VGAP);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("role", "img");
  svg.classList.add("tree");
  const title = document.createElementNS(SVG, "title");
  title.textContent = `Tree of ${name}: ` + levels.map((l) => l.map((b) => `${b.label} ${b.addr}`).join(", ")).join("; ");
  svg.append(title);
  const pos = levels.map((l, li) =>
    l.map((_, i) => ({ x: (width - l.length * (W + GAP)) / 2 + i * (W + GAP) + GAP / 2, y: li * (H + VGAP) + VGAP / 2 })),
  );
  for (let li = 1; li < levels.length; li++) {
    const up = pos[li - 1][0];
    for (const p of pos[li]) {
      const line = document.createElementNS(SVG, "line");
      line.setAttribute("x1", String(up.x + W / 2));
      line.setAttribute("y1", String(up.y + H));
      line.setAttribute("x2", String(p.x + W / 2));
      line.setAttribute("y2", String(p.y));
      svg.append(line);
    }
  }
  levels.forEach((l, li) =>
    l.forEach((b, i) => {
      const g = document.createElementNS(SVG, "g");
      g.classList.add("tree-node", b.role);
      g.dataset.role = b.role;
      const { x, y } = pos[li][i];
      const r = document.createElementNS(SVG, "rect");
      for (const [k, v] of Object.entries({ x, y, width: W, height: H, rx: 6 })) r.setAttribute(k, String(v));
      const t1 = document.createElementNS(SVG, "text");
      t1.setAttribute("x", String(x + W / 2));
      t1.setAttribute("y", String(y + 16));
      t1.textContent = b.label;
      const t2 = document.createElementNS(SVG, "text");
      t2.setAttribute("x", String(x + W / 2));
      t2.setAttribute("y", String(y + 32));
      t2.classList.add("addr");
      t2.textContent = b.addr;
      g.append(r, t1, t2);
      svg.append(g);
    }),
  );
  return el("figure", { class: "tree-figure" }, svg, el("figcaption", { text: `Tree of ${name}` }));
}

// ------------------------------------------------------------------ broadcasting

function broadcastCard(b) {
  const sid = b.station_id;
  const link = el("a", { class: "link b-link" });
  const copyLink = el("button", { type: "button", class: "small", text: "Copy link" });
  copyLink.addEventListener("click", () => copy(link.href, copyLink));
  const snippet = el("textarea", { class: "snippet", readonly: true, rows: "3", "aria-label": "Widget snippet" });
  const copySnippet = el("button", { type: "button", class: "small", text: "Copy snippet" });
  copySnippet.addEventListener("click", () => copy(snippet.value, copySnippet));
  const help = el("ol", { class: "help" });
  const stopB = el("button", { type: "button", class: "danger", text: "Stop broadcast" });
  stopB.addEventListener("click", () => {
    post("/api/broadcast/stop", { station_id: sid })
      .then(renderNewer)
      .catch((e) => ($("broadcast-error").textContent = e.message));
  });
  const card = el(
    "article",
    { class: "broadcast", "data-sid": sid },
    el("h3", { class: "b-name" }),
    el("p", { class: "b-state" }),
    el("p", {}, link, " ", copyLink),
    el("details", { class: "b-help", open: true }, el("summary", { text: "Point your broadcast tool at this node" }), help),
    el(
      "details",
      { class: "b-widget" },
      el("summary", { text: "Widget for your web site" }),
      el("p", { class: "hint", text: "Paste this into your station's page: it shows the station, its listeners and a listen link." }),
      snippet,
      el("div", { class: "row" }, copySnippet, el("a", { href: `/widget/${sid}`, target: "_blank", rel: "noopener", text: "Preview" })),
    ),
    el("div", { class: "row" }, stopB),
  );
  card._parts = { link, snippet, help };
  return card;
}

function renderBroadcasts(broadcasts, stations) {
  const box = $("broadcasts");
  const seen = new Set();
  for (const b of broadcasts) {
    seen.add(b.station_id);
    let card = cards.get(b.station_id);
    if (!card) {
      card = broadcastCard(b);
      cards.set(b.station_id, card);
      box.append(card);
    }
    const row = stations.find((s) => s.station_id === b.station_id) || {};
    card.querySelector(".b-name").textContent = `${b.name} (${b.mount === "*" ? "any mount" : b.mount})`;
    const state = card.querySelector(".b-state");
    state.textContent = b.on_air
      ? `On air from ${b.source || "this node"}; ${row.listeners || 0} listeners` + (b.title ? `; now: ${b.title}` : "")
      : "Waiting for a source (start your broadcast tool)";
    state.dataset.onAir = b.on_air ? "true" : "false";
    const { link, snippet, help } = card._parts;
    link.href = b.link;
    link.textContent = b.link;
    const want = widgetSnippet(b.station_id, b.name);
    if (snippet.value !== want) snippet.value = want;
    const rowsHelp = b.help || helpBySid.get(b.station_id) || [];
    if (help.childElementCount !== rowsHelp.length) {
      help.replaceChildren(
        ...rowsHelp.map((h) => el("li", {}, el("strong", { text: h.tool }), ": ", el("code", { text: h.how }))),
      );
    }
  }
  for (const [sid, card] of cards) {
    if (!seen.has(sid)) {
      card.remove();
      cards.delete(sid);
    }
  }
}

$("broadcast-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  $("broadcast-error").textContent = "";
  const body = Object.fromEntries(["name", "genre", "description", "mount", "password"].map((k) => [k, f.elements[k].value]));
  try {
    const st = await post("/api/broadcast", body);
    helpBySid.set(st.station_id, st.help);
    f.reset();
    renderNewer(st);
    const card = cards.get(st.station_id);
    if (card) card.querySelector(".b-link").focus();
  } catch (err) {
    $("broadcast-error").textContent = err.message;
  }
});

// ------------------------------------------------------------------ settings

function settingInput(s) {
  const id = `set-${s.key}`;
  const attrs = { id, name: s.key, "aria-describedby": `${id}-help ${id}-error` };
  let input;
  if (s.kind === "bool") {
    input = el("input", { ...attrs, type: "checkbox" });
    input.checked = !!s.value;
  } else if (s.kind === "int" || s.kind === "float") {
    input = el("input", {
      ...attrs,
      type: "number",
      step: s.kind === "int" ? "1" : "any",
      min: s.minimum ?? undefined,
      max: s.maximum ?? undefined,
    });
    input.value = String(s.value);
  } else {
    input = el("input", { ...attrs, type: "text" });
    input.value = s.kind === "list[str]" ? s.value.join(", ") : s.value;
  }
  return input;
}

function valueOf(s, input) {
  if (s.kind === "bool") return input.checked;
  return input.value;
}

function same(s, v) {
  if (s.kind === "bool") return v === s.value;
  if (s.kind === "list[str]") return v === s.value.join(", ");
  return v === String(s.value);
}

function renderSettings(data) {
  settings = data;
  $("settings-path").textContent = data.path || "the config file";
  const box = $("settings-fields");
  box.replaceChildren(
    ...data.settings.map((s) => {
      const id = `set-${s.key}`;
      const extra = s.kind === "list[str]" ? " Comma-separated." : "";
      const dflt = Array.isArray(s.default) ? `[${s.default.join(", ")}]` : String(s.default);
      return el(
        "div",
        { class: `field ${s.kind === "bool" ? "check" : ""}`, "data-key": s.key },
        el("label", { for: id, text: s.key }),
        settingInput(s),
        el("small", { id: `${id}-help`, text: `${s.help}${extra} Default: ${dflt}.` }),
        el("p", { id: `${id}-error`, class: "error", role: "alert" }),
      );
    }),
  );
}

$("settings-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!settings) return;
  const values = {};
  for (const s of settings.settings) {
    const input = $(`set-${s.key}`);
    input.removeAttribute("aria-invalid");
    $(`set-${s.key}-error`).textContent = "";
    const v = valueOf(s, input);
    if (!same(s, v)) values[s.key] = v;
  }
  const result = $("settings-result");
  result.className = "";
  if (!Object.keys(values).length) {
    result.textContent = "Nothing changed.";
    return;
  }
  try {
    const r = await post("/api/settings", { values });
    renderSettings(r);
    result.textContent = r.changed.length
      ? `Saved ${r.changed.join(", ")} to ${r.path}. Takes effect at the next start.`
      : "Nothing changed.";
  } catch (err) {
    result.className = "error";
    result.textContent = `Not saved: ${err.message}`;
    if (err.key && $(`set-${err.key}`)) {
      const input = $(`set-${err.key}`);
      input.setAttribute("aria-invalid", "true");
      $(`set-${err.key}-error`).textContent = err.message;
      input.focus();
    }
  }
});

// ------------------------------------------------------------------ the whole page

function renderLog(log) {
  const text = log
    .map((l) => `${new Date(l.time * 1000).toLocaleTimeString([], { hour12: false })}  ${l.line}`)
    .join("\n");
  if ($("log").textContent !== text) $("log").textContent = text;
}

function render(s) {
  snap = s;
  $("status").textContent = s.status;
  renderStations(s.stations);
  renderPlayer(s.tuned, s.stations);
  renderNode(s.node, s.tuned, s.broadcasts);
  renderBroadcasts(s.broadcasts, s.stations);
  renderLog(s.log);
  document.body.dataset.serial = String(s.serial);
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  source.addEventListener("open", () => ($("connection").textContent = ""));
  source.addEventListener("error", () => ($("connection").textContent = "connection lost, retrying…"));
  return source;
}

let events = connect();

$("tune").addEventListener("click", () => selected && tune(selected));
$("stop").addEventListener("click", () =>
  post("/api/stop").then(renderNewer).catch((e) => ($("tune-error").textContent = e.message)));
$("play").addEventListener("click", startAudio);
$("tune-link-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("tune-link").value.trim();
  if (v) tune(v);
});
$("quit").addEventListener("click", async () => {
  if (!window.confirm("Stop this node? It leaves the network politely.")) return;
  await post("/api/quit").catch(() => {});
  events.close();
  $("connection").textContent = "The node stopped; you can close this page.";
});

fetch("/api/settings")
  .then((r) => r.json())
  .then(renderSettings);
