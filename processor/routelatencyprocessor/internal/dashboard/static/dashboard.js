// The route dashboard's script: reads the JSON API and draws every chart as SVG, with no library. Charts carry
// their data on their elements (data-value, data-count) and their scale on the <svg> (data-plot-top,
// data-plot-height, data-ymax), so a test can check that what is drawn is what the API said.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// ---- numbers a person can read --------------------------------------------------------------------------------

function sig(v) {
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// fmtMs picks the unit (µs, ms, s) and three significant digits.
function fmtMs(ms) {
  if (ms == null || !isFinite(ms)) return "–";
  if (ms === 0) return "0";
  if (ms < 1) return sig(ms * 1000) + " µs";
  if (ms < 1000) return sig(ms) + " ms";
  return sig(ms / 1000) + " s";
}

function fmtCount(n) {
  if (n == null) return "–";
  if (n >= 1e6) return sig(n / 1e6) + " M";
  if (n >= 1e4) return sig(n / 1e3) + " k";
  return String(Math.round(n));
}

// rateUnit picks one unit for a set of rates (requests per minute), so that a column of them reads at a glance.
function rateUnit(perMinutes) {
  return Math.max(0, ...perMinutes.filter(v => v != null)) >= 600 ? "/s" : "/min";
}

function fmtRate(perMinute, unit = rateUnit([perMinute])) {
  if (perMinute == null) return "–";
  const v = unit === "/s" ? perMinute / 60 : perMinute;
  return (v > 0 && v < 1 ? String(Number(v.toPrecision(2))) : sig(v)) + unit;
}

function fmtPct(f) {
  if (f == null) return "–";
  const p = 100 * f;
  return (p > 0 && p < 0.1 ? "<0.1" : p.toFixed(1)) + " %";
}

function fmtSpan(seconds) {
  if (seconds >= 2 * 86400) return sig(seconds / 86400) + " d";
  if (seconds >= 2 * 3600) return sig(seconds / 3600) + " h";
  if (seconds < 60) return Math.round(seconds) + " s";
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return s ? `${m} min ${s} s` : `${m} min`;
}

function fmtTime(d, withSeconds) {
  const t = new Date(d);
  const hh = String(t.getHours()).padStart(2, "0"), mm = String(t.getMinutes()).padStart(2, "0");
  return withSeconds ? `${hh}:${mm}:${String(t.getSeconds()).padStart(2, "0")}` : `${hh}:${mm}`;
}

// ---- state in the URL -----------------------------------------------------------------------------------------

function readState(defaults) {
  const q = new URLSearchParams(location.search);
  const s = {};
  for (const [k, v] of Object.entries(defaults)) s[k] = q.has(k) ? q.get(k) : v;
  return s;
}

// writeState puts the state in the address (pushState: back and forward step through views). The window and the subject are always written; other settings only when they differ from their default.
function writeState(state, defaults, replace) {
  const q = new URLSearchParams();
  const always = ["window", "service", "environment", "method", "route"];
  for (const [k, v] of Object.entries(state)) if (v !== "" && v != null && (always.includes(k) || v !== defaults[k])) q.set(k, v);
  const url = location.pathname + (q.toString() ? "?" + q : "");
  if (url === location.pathname + location.search) return;
  (replace ? history.replaceState : history.pushState).call(history, null, "", url);
}

async function getJSON(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

function freshness(body) {
  const parts = [];
  if (body.updated) parts.push("data as of " + fmtTime(body.updated, true));
  else parts.push("no data yet");
  if (body.flush_seconds) parts.push(`new data every ${fmtSpan(body.flush_seconds)}`);
  if (body.covered_seconds < body.window_seconds) parts.push(`history covers ${fmtSpan(body.covered_seconds)} of the ${body.window} window`);
  return parts.join(" · ");
}

// refresher reloads every `seconds` (0: never).
function refresher(load) {
  let timer = null;
  return (seconds) => {
    clearInterval(timer);
    if (+seconds > 0) timer = setInterval(load, 1000 * seconds);
  };
}

// ---- SVG ------------------------------------------------------------------------------------------------------

function el(name, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  if (parent) parent.append(e);
  return e;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const TIME_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map(s => s * 1000);

// fmtTick labels a time axis tick: seconds below a minute's step, the date once steps reach a day (the 1 d and 7 d
// windows), the date with the time for steps of hours on multi-day windows.
function fmtTick(t, step, span) {
  const d = new Date(t), date = `${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  if (step >= 86400000) return date;
  if (span > 86400000) return `${date} ${fmtTime(t, false)}`;
  return fmtTime(t, step < 60000);
}

// sliceStarts lists the window's slices as the API does: from (now - window) rounded down to a slice, to now.
function sliceStarts(body) {
  const slice = body.slice_seconds * 1000, now = Date.parse(body.now);
  const out = [];
  for (let t = Math.floor((now - body.window_seconds * 1000) / slice) * slice; t < now; t += slice) out.push(t);
  return out;
}

// timeChart draws, per slice of the window, stacked bars and/or lines. bars: [{key, label, color, value(point)}];
// lines: [{key, label, color, dash, radius, value(point)}]; yFormat formats the y axis; tip(point) the hover text.
function timeChart(container, body, points, { bars = [], lines = [], yFormat, tip, label, markers = body.versions || [] }) {
  const W = 640, H = 220, L = 64, R = 12, T = 12, B = 26, plotW = W - L - R, plotH = H - T - B;
  const starts = sliceStarts(body);
  const slice = body.slice_seconds * 1000;
  const x0 = starts[0], x1 = starts[starts.length - 1] + slice;
  const xOf = (t) => L + plotW * (t - x0) / (x1 - x0);
  const colW = plotW * slice / (x1 - x0);
  const bySlice = new Map(points.map(p => [Date.parse(p.start), p]));
  let top = 0;
  for (const p of points) {
    top = Math.max(top, bars.reduce((s, b) => s + b.value(p), 0));
    for (const l of lines) top = Math.max(top, l.value(p));
  }
  const ymax = niceMax(top);
  const yOf = (v) => T + plotH * (1 - v / ymax);

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart",
    "data-plot-top": T, "data-plot-height": plotH, "data-ymax": ymax });
  // Grid and y labels: five steps from 0 to ymax, labels inside the left margin (never clipped).
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, y = yOf(v);
    el("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }, svg);
    el("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "tick" }, svg, yFormat(v));
  }
  // Time labels at a round step that leaves room for them (at most 7).
  const step = TIME_STEPS.find(s => (x1 - x0) / s <= 7) || 86400000;
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
    const x = xOf(t);
    el("line", { x1: x, x2: x, y1: T, y2: T + plotH, class: "grid vgrid" }, svg);
    const anchor = x > W - R - 24 ? "end" : x < L + 24 ? "start" : "middle";
    el("text", { x, y: H - 8, "text-anchor": anchor, class: "tick" }, svg, fmtTick(t, step, x1 - x0));
  }
  el("line", { x1: L, x2: W - R, y1: T + plotH, y2: T + plotH, class: "axis" }, svg);
  // Version markers: where a version was first seen.
  for (const m of markers) {
    const t = Date.parse(m.at);
    if (t < x0 || t > x1) continue;
    const x = xOf(t);
    const g = el("g", { class: "marker", "data-version": m.version, "data-at": m.at }, svg);
    el("line", { x1: x, x2: x, y1: T, y2: T + plotH, stroke: "#6e7781", "stroke-dasharray": "3 3" }, g);
    el("text", { x: x + 3, y: T + 10, class: "tick" }, g, m.version);
    el("title", {}, g, `${m.version} first seen ${fmtTime(t, true)}`);
  }

  for (const t of starts) {
    const p = bySlice.get(t);
    if (!p) continue;
    let base = 0;
    for (const b of bars) {
      const v = b.value(p);
      if (v > 0) {
        const r = el("rect", { class: "bar", "data-series": b.key, "data-slice": p.start, "data-value": v,
          x: xOf(t) + colW * 0.1, width: Math.max(colW * 0.8, 1), y: yOf(base + v), height: yOf(base) - yOf(base + v), fill: b.color }, svg);
        el("title", {}, r, `${fmtTime(t, true)} ${b.label}: ${v}`);
      }
      base += v;
    }
  }
  // Lines broken where a slice has no traffic; drawn widest first so that equal lines all stay visible.
  for (const l of lines) {
    let run = [];
    const flush = () => {
      if (run.length > 1) el("polyline", { points: run.join(" "), fill: "none", stroke: l.color, "stroke-width": 2,
        "stroke-dasharray": l.dash || "", class: "line", "data-series": l.key }, svg);
      run = [];
    };
    for (const t of starts) {
      const p = bySlice.get(t);
      if (!p) { flush(); continue; }
      const x = xOf(t) + colW / 2, y = yOf(l.value(p));
      run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
      const c = el("circle", { class: "pt", "data-series": l.key, "data-slice": p.start, "data-value": l.value(p),
        cx: x.toFixed(1), cy: y.toFixed(2), r: l.radius || 3, fill: l.color }, svg);
      el("title", {}, c, `${fmtTime(t, true)} ${l.label}: ${yFormat(l.value(p))}`);
    }
    flush();
  }
  // Hover: one column per slice; the tooltip lists every value of the slice.
  const tipEl = document.createElement("div");
  tipEl.className = "tip";
  tipEl.hidden = true;
  for (const t of starts) {
    const p = bySlice.get(t);
    if (!p) continue;
    const hit = el("rect", { x: xOf(t), width: colW, y: T, height: plotH, class: "hit" }, svg);
    hit.addEventListener("mouseenter", () => {
      tipEl.hidden = false;
      tipEl.textContent = `${fmtTime(t, true)} · ` + tip(p);
    });
    hit.addEventListener("mouseleave", () => { tipEl.hidden = true; });
  }
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const s of [...bars, ...lines]) {
    const item = document.createElement("span");
    item.innerHTML = `<i style="background:${s.color}"></i>`;
    item.append(s.label);
    legend.append(item);
  }
  container.replaceChildren(svg, legend, tipEl);
}

// heatmapChart: one column per slice, one row per bucket of the window's distribution (log scale, lowest at the
// bottom), each cell as dark as its share of the busiest cell: the view that shows a bimodal route or a slow tail
// that percentile lines hide.
function heatmapChart(container, body, points) {
  const W = 640, H = 220, L = 64, R = 12, T = 12, B = 26, plotW = W - L - R, plotH = H - T - B;
  const buckets = body.distribution;
  const starts = sliceStarts(body), slice = body.slice_seconds * 1000;
  const x0 = starts[0], x1 = starts[starts.length - 1] + slice;
  const xOf = (t) => L + plotW * (t - x0) / (x1 - x0), colW = plotW * slice / (x1 - x0);
  const rowH = plotH / Math.max(buckets.length, 1);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "latency heatmap", class: "chart heatmap" });
  let top = 0;
  for (const p of points) for (const n of p.heatmap || []) top = Math.max(top, n);
  for (const p of points) {
    const x = xOf(Date.parse(p.start));
    (p.heatmap || []).forEach((n, i) => {
      if (!n) return;
      const c = el("rect", { class: "cell", "data-slice": p.start, "data-bucket": i, "data-count": n, x, width: Math.max(colW, 1),
        y: T + plotH - (i + 1) * rowH, height: rowH, fill: `rgba(9, 105, 218, ${(0.12 + 0.88 * n / top).toFixed(3)})` }, svg);
      el("title", {}, c, `${fmtTime(Date.parse(p.start), true)} · ${fmtMs(buckets[i].lower_ms)}–${fmtMs(buckets[i].upper_ms)}: ${n} requests`);
    });
  }
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  buckets.forEach((b, i) => {
    if (i % every) return;
    el("text", { x: L - 6, y: T + plotH - i * rowH, "text-anchor": "end", class: "tick" }, svg, fmtMs(b.lower_ms));
  });
  const step = TIME_STEPS.find(s => (x1 - x0) / s <= 7) || 86400000;
  for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
    const x = xOf(t), anchor = x > W - R - 24 ? "end" : x < L + 24 ? "start" : "middle";
    el("text", { x, y: H - 8, "text-anchor": anchor, class: "tick" }, svg, fmtTick(t, step, x1 - x0));
  }
  el("line", { x1: L, x2: W - R, y1: T + plotH, y2: T + plotH, class: "axis" }, svg);
  container.replaceChildren(svg);
}

// sparkline: requests as bars or p99 as a line, one per slice of the window, nulls left empty.
function sparkline(values, kind, color, label) {
  const W = 90, H = 22;
  const top = Math.max(0, ...values.filter(v => v != null));
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img", "aria-label": label });
  if (!top) return svg;
  const w = W / values.length;
  let run = [];
  values.forEach((v, i) => {
    if (v == null) {
      if (run.length > 1) el("polyline", { points: run.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }, svg);
      run = [];
      return;
    }
    const h = (H - 2) * v / top;
    if (kind === "bars") el("rect", { x: i * w, width: Math.max(w * 0.8, 0.8), y: H - h, height: h, fill: color, "data-value": v }, svg);
    else run.push(`${(i * w + w / 2).toFixed(1)},${(H - 1 - h).toFixed(1)}`);
  });
  if (run.length > 1) el("polyline", { points: run.join(" "), fill: "none", stroke: color, "stroke-width": 1.5 }, svg);
  if (run.length === 1) {
    const [x, y] = run[0].split(",");
    el("circle", { cx: x, cy: y, r: 1.5, fill: color }, svg);
  }
  el("title", {}, svg, label);
  return svg;
}

// distributionChart: the latency histogram from the sketch, ten buckets per decade (a log scale), with the p50,
// p95 and p99 marked.
function distributionChart(container, buckets, summary) {
  const W = 640, H = 200, L = 56, R = 12, T = 12, B = 26, plotW = W - L - R, plotH = H - T - B;
  const top = niceMax(Math.max(0, ...buckets.map(b => b.count)));
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "latency distribution",
    "data-plot-top": T, "data-plot-height": plotH, "data-ymax": top });
  if (!buckets.length) { container.replaceChildren(svg); return; }
  const lo = Math.log10(buckets[0].lower_ms), hi = Math.log10(buckets[buckets.length - 1].upper_ms);
  const xOf = (ms) => L + plotW * (Math.log10(ms) - lo) / (hi - lo);
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4, y = T + plotH * (1 - i / 4);
    el("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }, svg);
    el("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "tick" }, svg, fmtCount(v));
  }
  // Labels at 1, 2 and 5 x 10^k when the range is narrow, at the decades when it is wide.
  const marks = hi - lo > 3 ? [1] : [1, 2, 5];
  for (let d = Math.floor(lo); d <= Math.ceil(hi); d++) {
    for (const m of marks) {
      const v = m * Math.pow(10, d), lv = Math.log10(v);
      if (lv < lo || lv > hi) continue;
      const x = xOf(v);
      el("line", { x1: x, x2: x, y1: T, y2: T + plotH, class: "grid vgrid" }, svg);
      el("text", { x, y: H - 8, "text-anchor": x > W - R - 24 ? "end" : "middle", class: "tick" }, svg, fmtMs(v));
    }
  }
  for (const b of buckets) {
    const x = xOf(b.lower_ms), w = xOf(b.upper_ms) - x, h = plotH * b.count / top;
    const r = el("rect", { class: "bucket", "data-count": b.count, x: x + 0.5, width: Math.max(w - 1, 1), y: T + plotH - h, height: h, fill: "#5b8def" }, svg);
    el("title", {}, r, `${fmtMs(b.lower_ms)} – ${fmtMs(b.upper_ms)}: ${b.count} requests`);
  }
  for (const [key, color] of [["p50", "#2b7bb9"], ["p95", "#e08a1e"], ["p99", "#c0392b"]]) {
    const v = summary[key + "_ms"];
    if (!(v > 0)) continue;
    const x = xOf(Math.min(Math.max(v, Math.pow(10, lo)), Math.pow(10, hi)));
    el("line", { x1: x, x2: x, y1: T, y2: T + plotH, stroke: color, "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "marker", "data-series": key }, svg);
    el("text", { x: x + 3, y: T + 10, class: "tick", fill: color }, svg, key);
  }
  el("line", { x1: L, x2: W - R, y1: T + plotH, y2: T + plotH, class: "axis" }, svg);
  container.replaceChildren(svg);
}

const LATENCY_LINES = [
  { key: "p99", label: "p99", color: "#c0392b", radius: 3.5, value: p => p.p99_ms },
  { key: "p95", label: "p95", color: "#e08a1e", dash: "7 4", radius: 2.7, value: p => p.p95_ms },
  { key: "p50", label: "p50", color: "#2b7bb9", dash: "2 3", radius: 2, value: p => p.p50_ms },
];
const REQUEST_BARS = [
  { key: "ok", label: "requests without error", color: "#8fb3de", value: p => p.requests - p.errors },
  { key: "errors", label: "errors", color: "#d9534f", value: p => p.errors },
];
const STATUS_BARS = [
  { key: "2xx", label: "2xx", color: "#5aa469", value: p => p.status["2xx"] },
  { key: "3xx", label: "3xx", color: "#5b8def", value: p => p.status["3xx"] },
  { key: "4xx", label: "4xx", color: "#e0a030", value: p => p.status["4xx"] },
  { key: "5xx", label: "5xx", color: "#d9534f", value: p => p.status["5xx"] },
  { key: "other", label: "1xx / none", color: "#aaa", value: p => p.status["1xx"] + p.status.other },
];
// withTraffic leaves out the slices that hold only breakdowns (a request's breakdown is recorded a grace after it
// arrived, possibly in a later slice): they have no requests, hence no latency to draw.
const withTraffic = points => points.filter(p => p.requests > 0);

// The breakdown's categories, stacked in this order: each bar is the slice's mean time per request in it.
const BREAKDOWN_BARS = [
  { key: "db", label: "database", color: "#7e57c2" },
  { key: "http", label: "downstream HTTP", color: "#26a69a" },
  { key: "rpc", label: "RPC", color: "#5b8def" },
  { key: "messaging", label: "messaging", color: "#e0a030" },
  { key: "internal", label: "own spans", color: "#8d6e63" },
  { key: "self", label: "request's own time", color: "#b0bec5" },
].map(b => ({ ...b, value: p => (p.breakdown_ms || {})[b.key] || 0 }));
const breakdownTip = p => p.breakdown_requests
  ? `${p.breakdown_requests} requests: ` + BREAKDOWN_BARS.filter(b => b.value(p) > 0).map(b => `${b.label} ${fmtMs(b.value(p))}`).join(", ")
  : "no breakdown recorded";

// breakdownTables fills the parts and statements tables, the N+1 badge and its example traces.
function breakdownTables(bd) {
  const row = (tbody, cells, data) => {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    Object.assign(tr.dataset, data);
    tbody.append(tr);
  };
  const parts = $("breakdown-parts"), statements = $("breakdown-statements");
  parts.replaceChildren();
  statements.replaceChildren();
  for (const p of bd.parts) {
    row(parts, [[p.category, "text"], [p.target || "–", "text"], [fmtPct(p.request_share)],
      [p.category === "self" ? "–" : sig(p.calls_per_request)], [p.category === "self" ? "–" : String(Math.round(p.calls_per_request_p95))],
      [fmtMs(p.p50_ms)], [fmtMs(p.p95_ms)], [fmtMs(p.p99_ms)], [fmtPct(p.time_share)]],
      { part: p.category + " " + p.target, timeShare: p.time_share });
  }
  for (const s of bd.statements.slice(0, 10)) {
    row(statements, [[s.target, "text statement"], [fmtPct(s.request_share)], [sig(s.calls_per_request)], [fmtMs(s.p95_ms)], [fmtPct(s.time_share)]],
      { statement: s.target });
  }
  const np = bd.n_plus_one;
  $("nplusone").hidden = !np.requests;
  $("nplusone").textContent = np.requests ? `N+1: ${fmtPct(np.share)} of requests run one statement up to ${np.max_repeats} times` : "";
  const ex = $("nplusone-examples");
  ex.hidden = !np.requests;
  ex.replaceChildren();
  if (np.requests) {
    ex.append(`N+1 statement: ${np.statement} (median ${sig(np.repeats_p50 || 0)} runs per flagged request). Example traces: `);
    for (const e of np.examples) {
      const a = Object.assign(document.createElement(e.jaeger_url ? "a" : "span"), { textContent: e.trace_id.slice(0, 16) + "… " });
      if (e.jaeger_url) { a.href = e.jaeger_url; a.target = "_blank"; }
      a.dataset.traceId = e.trace_id;
      ex.append(a);
    }
  }
}

const latencyTip = p => `p50 ${fmtMs(p.p50_ms)}, p95 ${fmtMs(p.p95_ms)}, p99 ${fmtMs(p.p99_ms)}`;
const requestTip = p => `${p.requests} requests, ${p.errors} errors`;

function tiles(container, summary, previous) {
  const items = [
    ["Requests", fmtCount(summary.requests), "requests"],
    ["Rate", fmtRate(summary.requests_per_minute), "rate"],
    ["Errors", `${fmtCount(summary.errors)} (${fmtPct(summary.error_rate)})`, "errors"],
    ["p50", fmtMs(summary.p50_ms), "p50"],
    ["p95", fmtMs(summary.p95_ms), "p95"],
    ["p99", fmtMs(summary.p99_ms), "p99"],
  ];
  container.replaceChildren(...items.map(([name, value, key]) => {
    const d = document.createElement("div");
    d.className = "tile";
    d.dataset.key = key;
    d.innerHTML = `<div class="name"></div><div class="value"></div>`;
    d.firstChild.textContent = name;
    d.lastChild.textContent = value;
    if (previous && key === "p99" && previous.p99_ms > 0) {
      const s = document.createElement("div");
      s.className = "prev";
      s.textContent = `previous window ${fmtMs(previous.p99_ms)} (${change(summary.p99_ms, previous.p99_ms)})`;
      d.append(s);
    }
    return d;
  }));
}

function change(now, before) {
  if (!(before > 0) || now == null) return "–";
  const c = 100 * (now - before) / before;
  return (c >= 0 ? "+" : "") + c.toFixed(0) + " %";
}

// ---- the overview: one service and environment -----------------------------------------------------------------

// appendCells adds a td per [class, text] to tr.
function appendCells(tr, cells) {
  for (const [cls, text] of cells) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.append(td);
  }
}

// sloTable fills tbody with one row per route under an objective, as /api/slos gives them. Compliance and budget are
// over the history the page holds (covered), not the objective's window: the Prometheus rules have that.
const SLO_STATE_COLORS = { ok: "#1a7f37", increasing: "#bf8700", recovering: "#0969da", critical: "#cf222e", "too few requests": "#57606a" };
function fmtBurn(b) { return b.rate == null ? "–" : sig(b.rate) + "×"; }
function sloTable(section, body, withRoute) {
  const tbody = section.querySelector("tbody");
  tbody.replaceChildren();
  section.hidden = body.objectives.length === 0;
  section.querySelector(".slo-covered").textContent =
    `Compliance and budget over the ${fmtSpan(body.covered_seconds)} the page holds (the objectives' windows are in Prometheus, from make slo-rules); burn rates beyond it are not shown.`;
  for (const o of body.objectives) {
    const tr = document.createElement("tr");
    tr.dataset.slo = o.name;
    tr.dataset.route = `${o.method} ${o.route}`;
    const target = o.indicator === "latency" ? `${o.target} % ≤ ${fmtMs(o.threshold_ms)}` : `${o.target} % available`;
    const burn5 = o.burn.find(b => b.window === "5m"), burn1h = o.burn.find(b => b.window === "1h");
    const cells = [
      ["text name", o.name], ...(withRoute ? [["text route", `${o.service} · ${o.method} ${o.route}`]] : []),
      ["text target", target], ["good-requests", fmtCount(o.good)], ["bad-requests", fmtCount(o.bad)],
      ["compliance", o.compliance == null ? "–" : fmtPct(o.compliance)],
      ["budget", o.budget_left < 0 ? "exhausted" : fmtPct(o.budget_left)],
      ["burn5m", fmtBurn(burn5)], ["burn1h", fmtBurn(burn1h)],
      ["text state", o.state],
      ["exhaustion", o.exhaustion_seconds == null ? "–" : o.budget_left <= 0 ? "now" : fmtSpan(o.exhaustion_seconds)],
    ];
    appendCells(tr, cells);
    tr.querySelector(".state").style.color = SLO_STATE_COLORS[o.state] || "";
    if (o.too_few) tr.querySelector(".state").title = `${sig(o.requests_per_hour)} requests an hour: too few to judge`;
    tbody.append(tr);
  }
}

// versionsTable fills the overview's versions section from /api/versions: newest first, what each brought and
// changed against the version before it.
function versionsTable(section, body) {
  const tbody = section.querySelector("tbody");
  tbody.replaceChildren();
  section.hidden = body.versions.length === 0;
  for (const v of body.versions) {
    const tr = document.createElement("tr");
    tr.dataset.version = v.version;
    const changed = v.changed.map(c => `${c.Method} ${c.Route}: ${c.what} (p99 ${fmtMs(c.p99_before_ms)} → ${fmtMs(c.p99_after_ms)}, errors ${fmtPct(c.error_rate_before)} → ${fmtPct(c.error_rate_after)})`);
    appendCells(tr, [["text version", v.version], ["text first", fmtTime(Date.parse(v.first_seen), true)],
      ["text last", fmtTime(Date.parse(v.last_seen), true)], ["requests", fmtCount(v.requests)], ["error-rate", fmtPct(v.error_rate)],
      ["p50", fmtMs(v.p50_ms)], ["p95", fmtMs(v.p95_ms)], ["p99", fmtMs(v.p99_ms)],
      ["text new-routes", v.new_routes.join(", ") || "–"], ["text changed", changed.join("; ") || "–"]]);
    tbody.append(tr);
  }
}

// versionCompare fills the route page's comparison of its last two versions.
function versionCompare(section, body) {
  const tbody = section.querySelector("tbody");
  tbody.replaceChildren();
  const rows = (body.compare || []).filter(c => c.route);
  section.hidden = rows.length < 2;
  for (const c of rows) {
    const tr = document.createElement("tr");
    tr.dataset.version = c.version;
    appendCells(tr, [["text version", c.version], ["requests", fmtCount(c.route.requests)], ["error-rate", fmtPct(c.route.error_rate)],
      ["p50", fmtMs(c.route.p50_ms)], ["p95", fmtMs(c.route.p95_ms)], ["p99", fmtMs(c.route.p99_ms)]]);
    tbody.append(tr);
  }
}

// errorsTable fills an errors section from /api/errors: one row per group, its stack trace behind a toggle.
function errorsTable(section, body, withRoute) {
  const tbody = section.querySelector("tbody");
  tbody.replaceChildren();
  section.hidden = body.groups.length === 0;
  for (const g of body.groups) {
    const tr = document.createElement("tr");
    tr.dataset.fingerprint = g.fingerprint;
    tr.dataset.route = `${g.method} ${g.route}`;
    const cells = [["text type", g.type], ...(withRoute ? [["text route", `${g.method} ${g.route}`]] : []),
      ["text frame", g.top_frame || "–"], ["text message", g.example_message || "–"], ["count", fmtCount(g.count)],
      ["failed", fmtCount(g.failed)], ["handled", fmtCount(g.handled)], ["share", fmtPct(g.share)],
      ["text first", fmtTime(Date.parse(g.first_seen), true)], ["text version", g.first_version || "–"]];
    appendCells(tr, cells);
    if (g.new) {
      const badge = document.createElement("span");
      badge.className = "new-badge";
      badge.textContent = "new";
      tr.querySelector(".version").append(" ", badge);
    }
    const traces = document.createElement("td");
    traces.className = "text traces";
    for (const e of g.examples) {
      const a = document.createElement(e.jaeger_url ? "a" : "span");
      if (e.jaeger_url) { a.href = e.jaeger_url; a.target = "_blank"; }
      a.textContent = e.trace_id.slice(0, 8);
      a.dataset.traceId = e.trace_id;
      traces.append(a, " ");
    }
    tr.append(traces);
    tbody.append(tr);
    if (g.example_stacktrace) {
      const st = document.createElement("tr");
      st.className = "stack";
      const td = document.createElement("td");
      td.colSpan = tr.cells.length;
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "stack trace";
      const pre = document.createElement("pre");
      pre.textContent = g.example_stacktrace;
      details.append(summary, pre);
      td.append(details);
      st.append(td);
      tbody.append(st);
    }
  }
}

const OVERVIEW_DEFAULTS = { window: "5m", service: "", environment: "", sort: "impact", dir: "desc", scope: "replica", refresh: "", junk: "" };

function initOverview() {
  let state = readState(OVERVIEW_DEFAULTS);
  const setRefresh = refresher(() => load());
  let flushSeconds = 15;

  function controls() {
    $("window").value = state.window;
    $("scope").value = state.scope;
    refreshOptions($("refresh"), flushSeconds, state.refresh || String(flushSeconds));
    $("junk-toggle").setAttribute("aria-expanded", state.junk === "1");
  }
  function go(change, replace) {
    state = { ...state, ...change };
    writeState(state, OVERVIEW_DEFAULTS, replace);
    load();
  }

  async function load() {
    controls();
    try {
      const q = new URLSearchParams({ window: state.window });
      if (state.scope === "fleet") q.set("scope", "fleet");
      const all = await getJSON("api/routes?" + q);
      flushSeconds = all.flush_seconds || flushSeconds;
      refreshOptions($("refresh"), flushSeconds, state.refresh || String(flushSeconds));
      $("scope-control").hidden = !all.fleet;
      const missing = (all.peers || []).filter(p => p.state === "missing");
      $("missing").hidden = missing.length === 0;
      $("missing").textContent = "Not in these figures (no answer): " + missing.map(p => p.address + (p.error ? " (" + p.error + ")" : "")).join(", ");
      // Services and environments by traffic; the busiest is the default subject.
      const traffic = new Map();
      for (const r of all.routes) traffic.set(r.service, (traffic.get(r.service) || 0) + r.requests);
      const services = [...traffic.keys()].sort((a, b) => traffic.get(b) - traffic.get(a));
      fillSelect($("service"), services, false);
      if (!state.service && services.length) { state.service = services[0]; writeState(state, OVERVIEW_DEFAULTS, true); }
      $("service").value = state.service;
      const envs = [...new Set(all.routes.filter(r => r.service === state.service).map(r => r.environment))].sort();
      fillSelect($("environment"), envs, true);
      $("environment").value = state.environment;
      $("status").textContent = freshness(all);
      setRefresh(state.refresh || flushSeconds);
      if (!state.service) { $("empty").hidden = false; return; }
      $("empty").hidden = true;
      const rows = all.routes.filter(r => r.service === state.service && (!state.environment || r.environment === state.environment));
      // The environment column only when the table mixes environments.
      document.getElementById("routes").classList.toggle("one-env", new Set(rows.map(r => r.environment)).size < 2);
      renderTable(rows, all);
      const slos = await getJSON("api/slos?" + new URLSearchParams({ service: state.service, environment: state.environment || "" }));
      sloTable($("slo-section"), slos, true);
      versionsTable($("versions-section"), await getJSON("api/versions?" + new URLSearchParams({ service: state.service, environment: state.environment || "" })));
      errorsTable($("errors-section"), await getJSON("api/errors?" + new URLSearchParams({ service: state.service, environment: state.environment || "" })), true);
      if (state.scope === "fleet") { $("overview").hidden = true; return; }
      $("overview").hidden = false;
      const sq = new URLSearchParams({ window: state.window, service: state.service });
      if (state.environment) sq.set("environment", state.environment);
      const series = await getJSON("api/series?" + sq);
      $("overview-title").textContent = `${state.service}${state.environment ? " · " + state.environment : ""}`;
      tiles($("tiles"), series.summary, series.previous);
      const slices = withTraffic(series.points);
      timeChart($("requests-chart"), series, slices, { bars: REQUEST_BARS, yFormat: fmtCount, tip: requestTip, label: "requests and errors per slice" });
      timeChart($("latency-chart"), series, slices, { lines: LATENCY_LINES, yFormat: fmtMs, tip: latencyTip, label: "latency percentiles per slice" });
    } catch (e) {
      $("status").textContent = "error: " + e.message;
    }
  }

  function renderTable(rows, body) {
    const key = state.sort, desc = state.dir !== "asc";
    const main = rows.filter(r => !r.junk), junk = rows.filter(r => r.junk);
    main.sort((a, b) => {
      const x = a[key], y = b[key];
      const c = typeof x === "string" ? x.localeCompare(y) : (x ?? -1) - (y ?? -1);
      return desc ? -c : c;
    });
    const unit = rateUnit(rows.map(r => r.requests_per_minute));
    fillRows($("routes-main"), main, body, unit);
    fillRows($("routes-junk"), junk, body, unit);
    $("junk-row").hidden = junk.length === 0;
    $("junk-toggle").textContent = (state.junk === "1" ? "Hide " : "Show ") + `${junk.length} catch-all and low-traffic guessed routes (${fmtCount(junk.reduce((s, r) => s + r.requests, 0))} requests)`;
    $("routes-junk").hidden = state.junk !== "1";
    document.querySelectorAll("th[data-key]").forEach(th => {
      th.classList.toggle("sorted", th.dataset.key === key);
      th.dataset.dir = desc ? " ▼" : " ▲";
      th.setAttribute("aria-sort", th.dataset.key === key ? (desc ? "descending" : "ascending") : "none");
    });
  }

  function fillRows(tbody, rows, body, unit) {
    tbody.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.dataset.route = r.method + " " + r.route;
      tr.dataset.requests = r.requests;
      if (r.junk) tr.classList.add("junk");
      const detail = "route?" + new URLSearchParams({ service: r.service, environment: r.environment, method: r.method, route: r.route, window: state.window });
      const cell = (content, cls) => {
        const td = document.createElement("td");
        td.className = cls || "";
        if (content instanceof Node) td.append(content); else td.textContent = content;
        tr.append(td);
        return td;
      };
      cell(r.environment, "text c-env");
      cell(r.method, "text c-method");
      const a = document.createElement("a");
      a.href = detail;
      a.textContent = r.route;
      const rc = cell(a, "text c-route");
      if (r.guessed) rc.append(Object.assign(document.createElement("span"), { className: "badge", textContent: "guessed", title: "templated from raw paths" }));
      if (r.undocumented) rc.append(Object.assign(document.createElement("span"), { className: "badge", textContent: "undocumented", title: "not in the service's OpenAPI documents" }));
      cell(fmtRate(r.requests_per_minute, unit), "c-rate");
      cell(String(r.requests), "c-requests");
      cell(String(r.errors), "c-errors" + (r.errors ? " bad" : ""));
      cell(fmtPct(r.error_rate), "c-error-rate" + (r.errors ? " bad" : ""));
      cell(fmtMs(r.p50_ms), "c-p50");
      cell(fmtMs(r.p95_ms), "c-p95");
      cell(fmtMs(r.p99_ms), "c-p99").dataset.value = r.p99_ms;
      const prev = cell(r.prev_p99_ms != null ? change(r.p99_ms, r.prev_p99_ms) : "–", "c-prev");
      prev.title = r.prev_p99_ms != null ? `p99 in the previous ${body.window}: ${fmtMs(r.prev_p99_ms)}` : "the history does not cover the previous window";
      cell(fmtPct(r.impact), "c-impact").dataset.value = r.impact;
      cell(r.spark_p99_ms ? sparkline(r.spark_p99_ms, "line", "#c0392b", `p99 per slice of ${r.route}`) : "", "c-spark-p99");
      cell(r.spark_requests ? sparkline(r.spark_requests, "bars", "#8fb3de", `requests per slice of ${r.route}`) : "", "c-spark-requests");
      const traces = cell("", "text c-traces");
      if (r.jaeger_url) traces.append(Object.assign(document.createElement("a"), { href: r.jaeger_url, target: "_blank", textContent: "slower than p99" }));
      tbody.append(tr);
    }
  }

  document.querySelectorAll("th[data-key]").forEach(th => th.addEventListener("click", () => {
    const key = th.dataset.key;
    const dir = state.sort === key ? (state.dir === "asc" ? "desc" : "asc") : (th.classList.contains("text") ? "asc" : "desc");
    go({ sort: key, dir });
  }));
  $("window").addEventListener("change", e => go({ window: e.target.value }));
  $("service").addEventListener("change", e => go({ service: e.target.value, environment: "" }));
  $("environment").addEventListener("change", e => go({ environment: e.target.value }));
  $("scope").addEventListener("change", e => go({ scope: e.target.value }));
  $("refresh").addEventListener("change", e => go({ refresh: e.target.value === String(flushSeconds) ? "" : e.target.value }));
  $("junk-toggle").addEventListener("click", () => go({ junk: state.junk === "1" ? "" : "1" }));
  window.addEventListener("popstate", () => { state = readState(OVERVIEW_DEFAULTS); load(); });
  load();
}

// refreshOptions offers "each flush" (the default: data changes no more often), slower steps, and off.
function refreshOptions(select, flushSeconds, current) {
  const opts = [["0", "off"], [String(flushSeconds), `every ${fmtSpan(flushSeconds)} (each flush)`]];
  for (const s of [30, 60, 300]) if (s > flushSeconds) opts.push([String(s), `every ${fmtSpan(s)}`]);
  if (select.dataset.flush !== String(flushSeconds)) {
    select.replaceChildren(...opts.map(([v, t]) => new Option(t, v)));
    select.dataset.flush = String(flushSeconds);
  }
  select.value = current;
}

function fillSelect(select, values, withAll) {
  const current = select.value;
  select.replaceChildren();
  if (withAll) select.add(new Option("all", ""));
  for (const v of values) select.add(new Option(v, v));
  select.value = values.includes(current) ? current : "";
}

// ---- the route page -------------------------------------------------------------------------------------------

const ROUTE_DEFAULTS = { window: "15m", service: "", environment: "", method: "", route: "", refresh: "" };

function initRoute() {
  let state = readState(ROUTE_DEFAULTS);
  const setRefresh = refresher(() => load());
  let flushSeconds = 15;
  function go(change) {
    state = { ...state, ...change };
    writeState(state, ROUTE_DEFAULTS, false);
    load();
  }
  async function load() {
    $("window").value = state.window;
    refreshOptions($("refresh"), flushSeconds, state.refresh || String(flushSeconds));
    $("title").textContent = `${state.method} ${state.route}`;
    document.title = `${state.method} ${state.route} · otelcol-apm`;
    $("subject").textContent = state.service + (state.environment ? " · " + state.environment : "");
    $("back").href = "./?" + new URLSearchParams({ service: state.service, environment: state.environment, window: state.window });
    try {
      const q = new URLSearchParams({ window: state.window, service: state.service, method: state.method, route: state.route });
      if (state.environment) q.set("environment", state.environment);
      const body = await getJSON("api/series?" + q);
      flushSeconds = body.flush_seconds || flushSeconds;
      refreshOptions($("refresh"), flushSeconds, state.refresh || String(flushSeconds));
      setRefresh(state.refresh || flushSeconds);
      $("status").textContent = freshness(body);
      $("jaeger").hidden = !body.jaeger_url;
      if (body.jaeger_url) $("jaeger").href = body.jaeger_url;
      const traffic = withTraffic(body.points);
      $("content").hidden = traffic.length === 0;
      $("empty").hidden = traffic.length > 0;
      tiles($("tiles"), body.summary, body.previous);
      const slos = await getJSON("api/slos?" + new URLSearchParams({ service: state.service, environment: state.environment || "", method: state.method, route: state.route }));
      sloTable($("slo-section"), slos, false);
      versionCompare($("compare-section"), await getJSON("api/versions?" + new URLSearchParams({ service: state.service,
        environment: state.environment || "", method: state.method, route: state.route })));
      errorsTable($("errors-section"), await getJSON("api/errors?" + new URLSearchParams({ service: state.service,
        environment: state.environment || "", method: state.method, route: state.route })), false);
      // Each latency objective's threshold across the latency chart.
      const thresholds = slos.objectives.filter(o => o.threshold_ms != null).map(o => ({
        key: "threshold-" + o.name, label: `${o.name} threshold`, color: "#8250df", dash: "6 3", radius: 0, value: () => o.threshold_ms }));
      timeChart($("latency-chart"), body, traffic, { lines: [...LATENCY_LINES, ...thresholds], yFormat: fmtMs, tip: latencyTip, label: "latency percentiles per slice" });
      timeChart($("requests-chart"), body, traffic, { bars: REQUEST_BARS, yFormat: fmtCount, tip: requestTip, label: "requests and errors per slice" });
      timeChart($("status-chart"), body, traffic, { bars: STATUS_BARS, yFormat: fmtCount,
        tip: p => Object.entries(p.status).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", "), label: "status classes per slice" });
      distributionChart($("distribution-chart"), body.distribution, body.summary);
      heatmapChart($("heatmap-chart"), body, traffic);
      const withBreakdown = body.points.filter(p => p.breakdown_requests > 0);
      $("breakdown-empty").hidden = withBreakdown.length > 0;
      $("breakdown-chart").hidden = withBreakdown.length === 0;
      if (withBreakdown.length) timeChart($("breakdown-chart"), body, withBreakdown, { bars: BREAKDOWN_BARS, yFormat: fmtMs, tip: breakdownTip, label: "where the time goes per slice" });
      if (body.breakdown) breakdownTables(body.breakdown);
      const tb = $("slowest");
      tb.replaceChildren();
      for (const s of body.slowest) {
        const tr = document.createElement("tr");
        const link = s.jaeger_url ? `<a href="${s.jaeger_url}" target="_blank"></a>` : "<span></span>";
        tr.innerHTML = `<td class="text"></td><td></td><td class="text trace">${link}</td>`;
        tr.cells[0].textContent = fmtTime(s.time, true);
        tr.cells[1].textContent = fmtMs(s.duration_ms);
        tr.cells[2].firstChild.textContent = s.trace_id;
        tr.dataset.traceId = s.trace_id;
        tb.append(tr);
      }
      $("slowest-empty").hidden = body.slowest.length > 0;
    } catch (e) {
      $("status").textContent = "error: " + e.message;
    }
  }
  $("window").addEventListener("change", e => go({ window: e.target.value }));
  $("refresh").addEventListener("change", e => go({ refresh: e.target.value === String(flushSeconds) ? "" : e.target.value }));
  window.addEventListener("popstate", () => { state = readState(ROUTE_DEFAULTS); load(); });
  load();
}
