// The broadcaster widget: a station's name, live listener count and listen link, for an
// <iframe> on the station's own web site. Updates by Server-Sent Events from this node.
"use strict";

const sid = document.body.dataset.sid;

function show(s) {
  document.getElementById("name").textContent = s.name || "Streamer P2P";
  document.getElementById("state").textContent = s.online ? "on air" : "off air";
  document.body.classList.toggle("offline", !s.online);
  const n = s.listeners;
  document.getElementById("listeners").textContent = `${n} ${n === 1 ? "listener" : "listeners"}`;
  document.getElementById("title").textContent = s.title || "";
  if (s.link) document.getElementById("listen").href = s.link;
}

const events = new EventSource(`/widget/${sid}/events`);
events.addEventListener("station", (e) => show(JSON.parse(e.data)));
