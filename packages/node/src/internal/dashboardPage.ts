/**
 * The dashboard's front end: one HTML document with its CSS and JavaScript inline, so that it ships inside the
 * package's `src/` and `dist/` with no copy step and no build chain. The script reads `api/events` (Server-Sent
 * Events) relative to the page's own URL, so the page works at `/` of its own port and under any prefix of an
 * application's router. Everything that comes from the server is inserted with `textContent`, never as HTML.
 */

/** @internal */
export const page = (title: string): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>
<body>
<header>
  <h1>${escapeHtml(title)}</h1>
  <span id="status" class="badge">connecting…</span>
  <span id="phase" class="badge"></span>
  <label class="token">token <input id="token" type="password" autocomplete="off" placeholder="for actions"></label>
</header>
<main>
  <section id="pools"></section>
  <section id="queues"></section>
  <p id="message" role="status"></p>
</main>
<script>${script}</script>
</body>
</html>
`

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const css = `
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --mute:#6b7280; --ok:#16a34a; --bad:#dc2626; --line:#2563eb; --edge:#e5e7eb }
* { box-sizing: border-box }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink) }
header { display:flex; gap:12px; align-items:center; padding:10px 20px; background:#111827; color:#fff }
header h1 { font-size:18px; margin:0 12px 0 0 }
.badge { padding:2px 8px; border-radius:10px; background:#374151; font-size:12px }
.badge.live { background:var(--ok) } .badge.down { background:var(--bad) } .badge.warn { background:#d97706 }
.token { margin-left:auto; font-size:12px } .token input { width:140px }
main { padding:16px 20px; display:grid; gap:16px }
section { display:grid; gap:16px }
.card { background:var(--card); border:1px solid var(--edge); border-radius:8px; padding:14px 16px }
.card h2 { font-size:16px; margin:0 0 10px; display:flex; gap:8px; align-items:center }
.stats { display:grid; grid-template-columns:repeat(auto-fill, minmax(84px, 1fr)); gap:8px 14px; margin-bottom:10px }
.stat { min-width:0 } .stat b { display:block; font-size:20px; font-variant-numeric:tabular-nums }
.stat span { color:var(--mute); font-size:12px }
.charts { display:grid; grid-template-columns:1fr 1fr; gap:12px }
.chart { border:1px solid var(--edge); border-radius:6px; padding:6px 8px }
.chart h3 { margin:0 0 4px; font-size:12px; color:var(--mute); font-weight:600 }
.chart svg { width:100%; height:90px; display:block; background:linear-gradient(#f3f4f6 1px, transparent 1px) 0 0 / 100% 25% }
.axis { display:flex; justify-content:space-between; color:var(--mute); font-size:11px; margin-top:2px }
table { border-collapse:collapse; width:100%; font-size:13px }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--edge); vertical-align:top }
th { color:var(--mute); font-weight:600; font-size:12px }
td.num { font-variant-numeric:tabular-nums }
pre { margin:0; white-space:pre-wrap; max-height:6em; overflow:auto; font-size:12px; color:#7f1d1d }
h4 { margin:12px 0 4px; font-size:13px }
.empty { color:var(--mute); font-size:12px }
button { font:inherit; padding:2px 10px; border-radius:4px; border:1px solid #1d4ed8; background:#2563eb; color:#fff; cursor:pointer }
button.secondary { background:#fff; color:#1d4ed8 }
.cancel-by-id { margin-top:8px; font-size:12px; color:var(--mute) } .cancel-by-id input { width:180px }
#message { min-height:1.4em; margin:0; color:var(--mute) }
`

const script = `
"use strict";
const h = (tag, attrs, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v); else if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
};
const svg = (tag, attrs) => {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
};
const ms = (n) => n < 1000 ? Math.round(n) + " ms" : n < 60000 ? (n / 1000).toFixed(1) + " s" : Math.round(n / 60000) + " min";
const time = (at) => new Date(at).toLocaleTimeString();
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("fiberpool.dashboard.token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("fiberpool.dashboard.token", tokenInput.value));
const message = document.getElementById("message");

const W = 300, H = 90;
function barChart(series) {
  const n = series.succeeded.length;
  const total = series.succeeded.map((s, i) => s + series.failed[i]);
  const max = Math.max(1, ...total);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
  const bw = W / n;
  for (let i = 0; i < n; i++) {
    const ok = series.succeeded[i] / max * (H - 4), bad = series.failed[i] / max * (H - 4);
    if (ok > 0) root.append(svg("rect", { x: i * bw, y: H - ok, width: Math.max(bw - 0.3, 0.5), height: ok, fill: "#16a34a" }));
    if (bad > 0) root.append(svg("rect", { x: i * bw, y: H - ok - bad, width: Math.max(bw - 0.3, 0.5), height: bad, fill: "#dc2626" }));
  }
  return [root, "peak " + max + " jobs/s"];
}
function lineChart(series) {
  const vals = series.latencyMaxMillis.filter((v) => v !== null);
  const max = Math.max(1, ...vals);
  const n = series.latencyAvgMillis.length;
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img" });
  const line = (values, color, width) => {
    let d = "";
    values.forEach((v, i) => {
      if (v === null) return;
      const x = (i + 0.5) * W / n, y = H - v / max * (H - 4);
      d += (d === "" || values[i - 1] === null ? "M" : "L") + x.toFixed(1) + " " + y.toFixed(1) + " ";
    });
    if (d !== "") root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": width, "vector-effect": "non-scaling-stroke" }));
  };
  line(series.latencyMaxMillis, "#93c5fd", 1);
  line(series.latencyAvgMillis, "#2563eb", 2);
  return [root, vals.length === 0 ? "no jobs ended" : "peak " + ms(max) + " · avg dark, max light"];
}
const chart = (title, [plot, peak], minutes) => h("div", { class: "chart" }, h("h3", {}, title), plot,
  h("div", { class: "axis" }, h("span", {}, minutes + " min ago"), h("span", {}, peak), h("span", {}, "now")));
const stat = (name, value, key) => h("div", { class: "stat" }, h("b", { "data-stat": key }, value), h("span", {}, name));

function renderPool(p, minutes) {
  const s = p.stats;
  const state = p.report ? "shut down" : s.closed ? "shutting down" : s.paused ? "paused" : "running";
  const card = h("article", { class: "card", "data-pool": s.name },
    h("h2", {}, s.name, h("span", { class: "badge " + (state === "running" ? "live" : state === "paused" ? "warn" : "down"), "data-state": "" }, state)),
    h("div", { class: "stats" },
      stat("concurrency", s.concurrency, "concurrency"), stat("capacity", s.capacity === null ? "∞" : s.capacity, "capacity"),
      stat("queued", s.queued, "queued"), stat("running", s.running, "running"), stat("waiting submitters", s.waiting, "waiting"),
      stat("submitted", s.submitted, "submitted"), stat("succeeded", s.succeeded, "succeeded"), stat("failed", s.failed, "failed"),
      stat("timed out", s.timedOut, "timedOut"), stat("retries", s.retries, "retries"), stat("cancelled", s.cancelled, "cancelled"),
      stat("interrupted", s.interrupted, "interrupted"), stat("abandoned", s.abandoned, "abandoned"), stat("rejected", s.rejected, "rejected")),
    h("div", { class: "charts" },
      chart("throughput per second (green ok, red failed)", barChart(p.series), minutes),
      chart("latency, submit → end", lineChart(p.series), minutes)));
  const cancel = (id) => p.actions.cancel ? h("button", { class: "cancel secondary", onclick: () => act("pools", s.name, "cancel", id) }, "cancel") : null;
  card.append(h("h4", {}, "running jobs (" + p.runningJobs.length + ")"));
  card.append(p.runningJobs.length === 0 ? h("p", { class: "empty" }, "none") :
    h("table", { "data-running": "" }, h("tr", {}, h("th", {}, "job"), h("th", {}, "attempt"), h("th", {}, "age"), h("th", {}, "")),
      p.runningJobs.slice(0, 50).map((j) => h("tr", { "data-job": j.id }, h("td", {}, j.id), h("td", { class: "num" }, j.attempt), h("td", { class: "num" }, ms(j.ageMillis)), h("td", {}, cancel(j.id))))));
  card.append(h("h4", {}, "queued jobs (" + s.queued + ")"));
  card.append(p.queuedJobs.length === 0 ? h("p", { class: "empty" }, "none") :
    h("table", { "data-queued": "" }, h("tr", {}, h("th", {}, "job"), h("th", {}, "waiting"), h("th", {}, "")),
      p.queuedJobs.slice(0, 50).map((j) => h("tr", { "data-job": j.id }, h("td", {}, j.id), h("td", { class: "num" }, ms(j.ageMillis)), h("td", {}, cancel(j.id))))));
  card.append(h("h4", {}, "recent failures"));
  card.append(p.failures.length === 0 ? h("p", { class: "empty" }, "none") :
    h("table", { "data-failures": "" }, h("tr", {}, h("th", {}, "when"), h("th", {}, "job"), h("th", {}, "event"), h("th", {}, "attempt"), h("th", {}, "cause")),
      p.failures.slice(0, 10).map((f) => h("tr", {}, h("td", {}, time(f.at)), h("td", {}, f.id), h("td", {}, f.kind), h("td", { class: "num" }, f.attempt), h("td", {}, h("pre", {}, f.cause))))));
  if (p.report) {
    const r = p.report, j = r.jobs;
    card.append(h("h4", {}, "last shutdown report"));
    card.append(h("p", { "data-report": "" }, r.mode + " in " + ms(r.durationMillis) + (r.graceExpired ? ", grace period expired" : "") +
      " — of the jobs live then: " + j.succeeded.length + " succeeded, " + j.failed.length + " failed, " + j.timedOut.length + " timed out, " +
      j.interrupted.length + " interrupted, " + j.cancelled.length + " cancelled, " + j.abandoned.length + " abandoned"));
  }
  return card;
}

async function act(target, name, action, id) {
  const headers = { "content-type": "application/json" };
  if (tokenInput.value) headers.authorization = "Bearer " + tokenInput.value;
  const response = await fetch("api/" + target + "/" + encodeURIComponent(name) + "/" + action, { method: "POST", headers, body: JSON.stringify({ id }) });
  const body = await response.json().catch(() => ({}));
  message.textContent = response.status === 202 ? action + " " + id + ": requested, still in progress" : response.ok ? action + " " + id + ": done" : action + " " + id + ": " + response.status + " " + (body.error ? body.error.reason + " — " + body.error.message : "");
}

// What was typed in a queue's "cancel by id" field survives the re-render of each snapshot.
const cancelIds = new Map();
function renderQueue(q) {
  const card = h("article", { class: "card", "data-queue": q.name }, h("h2", {}, "queue " + q.name));
  if (q.error) card.append(h("p", { class: "empty" }, "cannot read the queue: " + q.error));
  if (q.counts) card.append(h("div", { class: "stats" }, Object.entries(q.counts).map(([k, v]) => stat(k, v, "count-" + k))));
  card.append(h("h4", {}, "dead letters (" + q.deadLetters.length + ")"));
  card.append(q.deadLetters.length === 0 ? h("p", { class: "empty" }, "none") :
    h("table", { "data-dead-letters": "" }, h("tr", {}, h("th", {}, "job"), h("th", {}, "type"), h("th", {}, "attempts"), h("th", {}, "failed at"), h("th", {}, "reason"), h("th", {}, "")),
      q.deadLetters.map((d) => h("tr", { "data-dead-letter": d.id }, h("td", {}, d.id), h("td", {}, d.type), h("td", { class: "num" }, d.attempts),
        h("td", {}, time(d.failedAt)), h("td", {}, h("pre", {}, d.error)),
        h("td", {}, q.actions.requeue ? h("button", { class: "requeue", onclick: () => act("queues", q.name, "requeue", d.id) }, "requeue") : null)))));
  if (q.actions.cancel) {
    card.append(h("h4", {}, "waiting jobs (" + q.jobs.length + ")"));
    card.append(q.jobs.length === 0 ? h("p", { class: "empty" }, "none listed") :
      h("table", { "data-jobs": "" }, h("tr", {}, h("th", {}, "job"), h("th", {}, "type"), h("th", {}, "state"), h("th", {}, "runs at"), h("th", {}, "")),
        q.jobs.map((j) => h("tr", { "data-job": j.id }, h("td", {}, j.id), h("td", {}, j.type), h("td", {}, j.state), h("td", {}, j.runAt === undefined ? "" : time(j.runAt)),
          h("td", {}, h("button", { class: "cancel secondary", onclick: () => act("queues", q.name, "cancel", j.id) }, "cancel"))))));
    const input = h("input", { type: "text", placeholder: "job id", autocomplete: "off", "data-cancel-id": "", value: cancelIds.get(q.name) || "",
      oninput: () => cancelIds.set(q.name, input.value) });
    card.append(h("form", { class: "cancel-by-id", onsubmit: (e) => { e.preventDefault(); if (input.value) act("queues", q.name, "cancel", input.value); } },
      "cancel a pending or delayed job by id ", input, " ", h("button", { class: "secondary", type: "submit" }, "cancel")));
  }
  return card;
}

const status = document.getElementById("status"), phase = document.getElementById("phase");
function render(snap) {
  window.__snapshot = snap;
  const minutes = Math.round(snap.windowSeconds / 60);
  document.getElementById("pools").replaceChildren(...snap.pools.map((p) => renderPool(p, minutes)));
  // Not while someone types a job id to cancel: a re-render would take the field's focus away.
  if (!(document.activeElement && document.activeElement.matches("[data-cancel-id]"))) {
    document.getElementById("queues").replaceChildren(...snap.queues.map(renderQueue));
  }
  phase.textContent = "process: " + (snap.phase || "no controller");
  phase.className = "badge " + (snap.phase === "running" || snap.phase === null ? "" : "down");
  status.textContent = "live · " + time(snap.now) + (snap.actions ? "" : " · actions disabled");
}
const events = new EventSource("api/events");
events.addEventListener("snapshot", (e) => { status.className = "badge live"; render(JSON.parse(e.data)); });
events.addEventListener("error", () => { status.className = "badge down"; status.textContent = "disconnected, retrying…"; });
`
