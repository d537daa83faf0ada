"""`/`: one self-contained HTML page (no external assets) showing the worker live.

The first snapshot is embedded in the page, so it shows something before any
event arrives; after that `/events` (live.py) keeps it current: `entry` events
prepend ledger rows (deduplicated by position, so a resume that overlaps
does no harm), `status` events redraw connection, window, queue, progress and
the newest backfill batches (each with its own event stream at
`/batches/<id>/events`).
All text goes in through `textContent`, never `innerHTML`: company names and
error messages come from outside.
"""

from __future__ import annotations

__all__ = ["render_page"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chledger status</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.2rem; margin: 0 0 1rem; }
section { display: inline-block; vertical-align: top; min-width: 14rem; margin: 0 1.5rem 1rem 0; }
h2 { font-size: .8rem; text-transform: uppercase; color: #666; margin: 0 0 .3rem; }
.ok { color: #17612e; } .bad { color: #a4161a; } .muted { color: #777; }
meter { width: 12rem; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: .15rem .5rem; border-bottom: 1px solid #eee; }
td.pos { font-variant-numeric: tabular-nums; color: #555; }
td:nth-child(-n+4) { white-space: nowrap; }
</style>
</head>
<body>
<h1>chledger <span id="feed-state" class="muted">connecting…</span></h1>
<section><h2>Health</h2><div id="health"></div></section>
<section><h2>Stream</h2><div id="streams"></div><div id="lag" class="muted"></div></section>
<section><h2>Rate limit window</h2>
  <div><meter id="window-meter" min="0" max="1" value="0"></meter></div>
  <div id="window"></div><div id="cooldown" class="bad"></div></section>
<section><h2>Queue</h2><div id="queue"></div></section>
<section><h2>Progress</h2><div id="progress"></div><div id="officers"></div></section>
<section><h2>Batches</h2><div id="batches"></div></section>
<h2>Recent ledger entries <span id="head" class="muted"></span></h2>
<table><thead><tr><th>#</th><th>type</th><th>company</th><th>received</th><th>detail</th></tr></thead>
<tbody id="entries"></tbody></table>
<script id="initial" type="application/json">__SNAPSHOT__</script>
<script>
"use strict";
const MAX_ROWS = __MAX_ROWS__;
const $ = (id) => document.getElementById(id);
function text(id, value, cls) {
  const el = $(id); el.textContent = value; if (cls !== undefined) el.className = cls;
}
function lines(id, items) {
  const el = $(id); el.replaceChildren();
  for (const [value, cls] of items) {
    const div = document.createElement("div"); div.textContent = value;
    if (cls) div.className = cls; el.appendChild(div);
  }
}
function showStatus(snap) {
  const h = snap.health;
  lines("health", Object.entries(h.checks).map(([name, c]) =>
    [(c.ok ? "✔ " : "✘ ") + name + ": " + c.detail, c.ok ? "ok" : "bad"]));
  lines("streams", snap.streams.length ? snap.streams.map((s) =>
    [s.stream + ": " + (s.connected ? "connected" : "disconnected") +
     (s.last_heard_seconds === null ? "" : ", heard " + s.last_heard_seconds + " s ago") +
     ", " + s.events + " events, " + s.reconnects + " reconnects", s.connected ? "ok" : "bad"])
    : [["no stream client", "bad"]]);
  const st = snap.status;
  text("lag", st.stream_lag_seconds === null ? "no stream events yet"
    : "last event published " + st.last_event_published_at + " (" + st.stream_lag_seconds + " s ago)");
  text("window", st.window_used + " / " + st.window_limit + " requests in " + st.window_seconds + " s");
  $("window-meter").value = st.window_limit ? st.window_used / st.window_limit : 0;
  text("cooldown", st.cooldown_until ? "cooling down until " + st.cooldown_until : "");
  text("queue", Object.entries(st.queue).map(([p, n]) => p + " " + n).join(" · "));
  text("progress", "detected " + st.companies_detected + " · completed " + st.companies_completed +
    " · failed " + st.companies_failed + " · in progress " + st.companies_in_progress);
  text("officers", st.companies_with_officers + " / " + st.target + " companies with officers" +
    (st.ready ? " — READY FOR STREAMING API" : ""), st.ready ? "ok" : "");
  text("head", "(head " + st.ledger_head + ")");
  const batches = snap.batches || [];
  lines("batches", batches.length ? batches.map((b) => {
    const done = b.completed_jobs + b.failed_jobs + b.cancelled_jobs;
    return [b.name + ": " + b.status + ", " + done + " / " + b.total_jobs + " jobs" +
            (b.failed_jobs ? " (" + b.failed_jobs + " failed)" : ""),
            b.status === "completed" ? "ok" : (b.status === "failed" || b.status === "partial") ? "bad" : ""];
  }) : [["no batches", "muted"]]);
}
function addEntry(e) {
  const body = $("entries");
  if (body.querySelector('tr[data-position="' + e.position + '"]')) return;
  const tr = document.createElement("tr");
  tr.dataset.position = e.position;
  tr.dataset.type = e.event_type;
  for (const [value, cls] of [[e.position, "pos"], [e.event_type], [e.company_number || ""],
                               [e.received_at], [e.summary]]) {
    const td = document.createElement("td"); td.textContent = value;
    if (cls) td.className = cls; tr.appendChild(td);
  }
  let before = null;  // newest first, even when a resume delivers older rows late
  for (const row of body.rows) {
    if (Number(row.dataset.position) < e.position) { before = row; break; }
  }
  body.insertBefore(tr, before);
  while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  text("head", "(head " + Math.max(e.position, Number(($("head").textContent.match(/\\d+/) || [0])[0])) + ")");
}
showStatus(JSON.parse($("initial").textContent));
const feed = new EventSource("events");
window.chledgerFeed = feed;
feed.addEventListener("open", () => text("feed-state", "live", "ok"));
feed.addEventListener("error", () => text("feed-state", "reconnecting…", "bad"));
feed.addEventListener("entry", (m) => addEntry(JSON.parse(m.data)));
feed.addEventListener("status", (m) => showStatus(JSON.parse(m.data)));
</script>
</body>
</html>
"""


def render_page(snapshot_json: bytes, max_rows: int = 50) -> str:
    """The page with its first snapshot embedded (`</` escaped so it can't end the script)."""
    embedded = snapshot_json.decode().replace("</", "<\\/")
    return _PAGE.replace("__MAX_ROWS__", str(int(max_rows))).replace("__SNAPSHOT__", embedded)
