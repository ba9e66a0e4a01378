// The explorer page: reads the form, asks /api/compute, draws what the Python mechanism
// returned. No mechanism arithmetic here: only slider scales, layout (pixels) and formatting.
"use strict";
const ROLE_COLOUR = { trader: "#4c78a8", seller: "#f58518", buyer: "#54a24b" };
const STEP_COLOUR = { accept: "#1a7f37", stop: "#b00020", skip: "#b00020", "not tried": "#999" };
const NS = "http://www.w3.org/2000/svg";
// Recompute at most once per THROTTLE_MS while a slider is dragged or a field typed in,
// never with a request still in flight, and always once more for the last value (the
// edits in between are coalesced).
const THROTTLE_MS = 150;
let version = 0, timer = null, dirty = false, inFlight = false, request = 0, shown = 0;
let last = null, stepAt = 0, names = [];

const $ = (id) => document.getElementById(id);
const fmt = (x) => (typeof x === "string" ? x : Number.isInteger(x) && Math.abs(x) < 1e7 ? String(x)
  : Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4));
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---------------------------------------------------------------- slider scales (pixels only)
// Each maps a range input's integer position to the text a number field holds and back.
const log10 = (v) => Math.log(v) / Math.LN10;
const SCALES = {
  N: { min: 0, max: 400, value: (p) => String(Math.max(1, Math.round(10 ** (p / 100)))),
       pos: (v) => (v > 0 ? 100 * log10(v) : 0) },                      // 1 .. 10^4, log
  c: { min: 0, max: 201, value: (p) => (p >= 201 ? "inf" : String(p / 100)),
       pos: (v) => (v === Infinity ? 201 : 100 * v) },                  // 0 .. 2, then inf
  K: { min: 0, max: 500, value: (p) => (p <= 0 ? "0" : String(Math.round(10 ** (p / 100)))),
       pos: (v) => (v >= 1 ? 100 * log10(v) : 0) },                     // 0, 1 .. 10^5, log
  lam: { min: 0, max: 300, value: (p) => String(p / 100), pos: (v) => 100 * v },  // 0 .. 3
  "liar-N": { min: -100, max: 100, value: (p) => String(+(10 ** (p / 100)).toPrecision(3)),
              pos: (v) => (v > 0 ? 100 * log10(v) : -100) },            // 0.1 .. 10, log
};
const scaleOf = (id) => SCALES[id.replace(/-\d+$/, "")];

function parseField(text) {
  const t = String(text).trim().toLowerCase();
  if (t === "inf" || t === "infinity") return Infinity;
  return t === "" ? NaN : Number(t);
}

function sliderFromField(id) {
  const range = $(`${id}-range`), sc = scaleOf(id), v = parseField($(id).value);
  if (!range || !sc || Number.isNaN(v)) return;
  range.value = String(Math.min(sc.max, Math.max(sc.min, Math.round(sc.pos(v)))));
}

function fieldFromSlider(range) {
  const id = range.id.replace(/-range$/, "");
  $(id).value = scaleOf(id).value(+range.value);
}

// ---------------------------------------------------------------- the form
function sliderCell(f, i) {
  const sc = SCALES[f];
  return `<td><input type="range" id="${f}-${i}-range" min="${sc.min}" max="${sc.max}" step="1" ` +
    `aria-label="${f} of client ${i}"><input type="text" id="${f}-${i}">` +
    `<span class="err" id="err-${f}-${i}"></span></td>`;
}

function clientRow(i, cl, pt) {
  const tr = document.createElement("tr");
  tr.dataset.row = String(i);
  tr.innerHTML = `<td class="who" id="who-${i}"></td>` + ["N", "c", "K"].map((f) => sliderCell(f, i)).join("") +
    ["x", "y"].map((f) => `<td><input type="text" class="xy" id="${f}-${i}"><span class="err" id="err-${f}-${i}">` +
      "</span></td>").join("");
  $("clients").tBodies[0].appendChild(tr);
  names[i] = cl.name || "";
  $(`who-${i}`).textContent = String(i) + (cl.name ? ` ${cl.name}` : "");
  $(`who-${i}`).title = cl.name || `client ${i}`;
  const vals = { N: cl.N, c: cl.c, K: cl.K, x: pt ? pt[0] : 0, y: pt ? pt[1] : 0 };
  for (const f in vals) $(`${f}-${i}`).value = String(vals[f]);
  for (const f of ["N", "c", "K"]) sliderFromField(`${f}-${i}`);
}

function nClients() { return $("clients").tBodies[0].rows.length; }

function syncSelect(sel, m, keepNone) {
  const want = m + (keepNone ? 1 : 0);
  if (sel.options.length === want) return;
  const old = sel.value;
  sel.innerHTML = keepNone ? '<option value="">none</option>' : "";
  for (let i = 0; i < m; i++) sel.add(new Option(String(i), String(i)));
  sel.value = Number(old) < m ? old : (keepNone ? "" : "0");
}

function readForm() {
  const m = nClients(), clients = [], points = [];
  for (let i = 0; i < m; i++) {
    clients.push({ N: $(`N-${i}`).value, c: $(`c-${i}`).value, K: $(`K-${i}`).value });
    points.push([$(`x-${i}`).value, $(`y-${i}`).value]);
  }
  const market = { lam: $("lam").value, gain: $("gain").value, clients };
  const dtext = $("d").value.trim();
  if (dtext) market.d = dtext.split("\n").map((r) => r.trim().split(/[\s,]+/));
  else market.points = points;
  const form = { market, client: $("client").value || 0, variant: $("variant").value,
                 misreport: $("misreport").value, defence: $("defence").value };
  if ($("liar-client").value !== "") form.liar = { client: $("liar-client").value, N: $("liar-N").value };
  return form;
}

function clearErrors() {
  document.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll(".bad").forEach((e) => e.classList.remove("bad"));
}

function showErrors(errors) {
  for (const err of errors) {
    const span = $(`err-${err.field}`) || $("err-market");
    span.textContent = err.message;
    const input = $(err.field);
    if (input) input.classList.add("bad");
  }
  $("status").textContent = "not computed: fix the field marked in red";
}

function flush() {
  timer = null;
  if (dirty && !inFlight) { dirty = false; recompute(); }
}

function schedule() {
  dirty = true;
  if (timer === null && !inFlight) timer = setTimeout(flush, THROTTLE_MS);
}

async function recompute() {
  const mine = ++request;
  let res;
  const body = JSON.stringify(readForm());
  inFlight = true;
  try {
    const r = await fetch("/api/compute", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body });
    res = await r.json();
  } catch (e) {
    $("err-market").textContent = "the server did not answer: " + e; return;
  } finally {
    inFlight = false;
    if (dirty && timer === null) timer = setTimeout(flush, THROTTLE_MS);  // edits made meanwhile
  }
  if (mine < shown) return;  // an answer to a newer request is already drawn
  shown = mine;
  clearErrors();
  if (!res.ok) { showErrors(res.errors); return; }
  render(res);
  version += 1;
  $("status").dataset.form = body;  // what this picture was computed from (for tests)
  $("status").dataset.version = String(version);
  $("status").textContent = `computed (${version})`;
}

// ---------------------------------------------------------------- drawing
function render(res) {
  if (!last || last.client !== res.client || last.m !== res.m || last.variant !== res.variant) stepAt = 0;
  last = res;
  stepAt = Math.min(stepAt, Math.max(res.steps.length - 1, 0));
  syncSelect($("client"), res.m, false);
  $("client").value = String(res.client);
  renderTrace(res);
  renderStep();
  drawGraph($("graph-exact"), res, res.exact, "exact optimum of eq. (8)", null);
  renderPayments(res);
  renderLiar(res);
  renderMatrices(res);
  drawCurve(res);
}

function renderTrace(res) {
  const t = res.trace, i = res.client;
  let html = "<tr><th>step</th><th>j</th><th>N<sub>j</sub></th><th>w<sub>ij</sub></th><th>threshold</th>" +
    "<th>n before</th><th>n after</th><th>action</th><th style='text-align:left'>reason</th></tr>";
  for (const s of t.steps) {
    html += `<tr data-j="${s.j}" data-action="${s.action}" data-step="${s.position}"><td>${s.position + 1}</td>` +
      `<td>${s.j}</td><td>${fmt(s.N_j)}</td><td>${fmt(s.w)}</td><td>${fmt(s.threshold)}</td>` +
      `<td>${fmt(s.total_before)}</td><td>${fmt(s.total_after)}</td>` +
      `<td class="${s.action.replace(" ", "")}">${s.action}</td><td class="reason">${s.reason}</td></tr>`;
  }
  $("trace").innerHTML = html;
  $("trace-summary").textContent = `client ${i} (${res.roles[i]}) imports ` +
    (t.imports.length ? `{${t.imports.join(", ")}}` : "nobody") + `; phi_${i} = ${fmt(t.phi)}`;
}

function renderStep() {
  const res = last;
  if (!res) return;
  const steps = res.steps, i = res.client, card = $("step-card");
  document.querySelectorAll("#trace tr.current").forEach((r) => r.classList.remove("current"));
  if (!steps.length) {
    card.className = ""; $("step-head").textContent = "no candidates"; $("step-count").textContent = "";
    ["price", "test", "gain", "verdict"].forEach((k) => { $(`step-${k}`).textContent = ""; });
  } else {
    const s = steps[stepAt];
    card.className = s.action.replace(" ", "");
    card.dataset.step = String(stepAt);
    card.dataset.j = String(s.j);
    card.dataset.action = s.action;
    $("step-head").textContent = `step ${stepAt + 1} of ${steps.length}: client ${i} considers client ${s.j}` +
      (names[s.j] ? ` (${names[s.j]})` : ` (${res.roles[s.j]})`);
    $("step-price").textContent = s.price;
    $("step-test").textContent = s.test;
    $("step-gain").textContent = s.gain;
    const set = (a) => (a.length ? `{${a.join(", ")}}` : "nobody");
    $("step-verdict").textContent = `${s.action.toUpperCase()}: ${s.reason}; client ${i} imports ${set(s.after)}`;
    $("step-count").textContent = `${stepAt + 1} / ${steps.length}`;
    const row = document.querySelector(`#trace tr[data-step="${stepAt}"]`);
    if (row) row.classList.add("current");
  }
  drawGraph($("graph-greedy"), res, res.greedy, `Algorithm 2 ("${res.variant}")`, steps[stepAt] || null);
}

function moveStep(to) {
  if (!last || !last.steps.length) return;
  stepAt = Math.min(Math.max(to, 0), last.steps.length - 1);
  renderStep();
}

function drawGraph(svg, res, out, title, step) {
  svg.innerHTML = "";
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), R = Math.min(W, H) / 2 - 36;
  const cx = W / 2, cy = H / 2 + 10;
  const xy = res.layout.map(([x, y]) => [cx + R * x, cy - R * y]);
  const maxN = Math.max(...res.N), rad = res.N.map((n) => 8 + 12 * Math.sqrt(n / maxN));
  let maxR = 0;
  out.r.forEach((row) => row.forEach((v) => { if (v > maxR) maxR = v; }));
  const defs = el("defs");
  for (const [name, col] of [["arrow", "#555"], ["accept", STEP_COLOUR.accept], ["stop", STEP_COLOUR.stop],
                             ["nottried", STEP_COLOUR["not tried"]]]) {
    const mk = el("marker", { id: `${svg.id}-${name}`, viewBox: "0 0 10 10", refX: 9, refY: 5,
                              markerUnits: "userSpaceOnUse", markerWidth: 11, markerHeight: 11,
                              orient: "auto-start-reverse" });
    mk.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", fill: col }));
    defs.appendChild(mk);
  }
  svg.appendChild(defs);
  svg.appendChild(el("text", { x: 4, y: 13, "font-weight": "bold" }, title));
  svg.appendChild(el("text", { x: 4, y: 27 }, `${out.edges} imports, welfare ${fmt(out.welfare)}`));
  const seg = (i, j, off) => {
    const [x1, y1] = xy[i], [x2, y2] = xy[j];
    const dx = x2 - x1, dy = y2 - y1, L = Math.hypot(dx, dy) || 1;
    const ox = -dy / L * off, oy = dx / L * off;  // offset so i->j and j->i do not overlap
    return { x1: x1 + dx / L * rad[i] + ox, y1: y1 + dy / L * rad[i] + oy,
             x2: x2 - dx / L * (rad[j] + 2) + ox, y2: y2 - dy / L * (rad[j] + 2) + oy };
  };
  const before = new Set(step ? step.before : []);
  for (let i = 0; i < res.m; i++) for (let j = 0; j < res.m; j++) {
    if (!out.A[i][j]) continue;
    const w = maxR > 0 ? 1 + 5 * Math.max(out.r[i][j], 0) / maxR : 1.5;
    const taken = step && i === res.client && before.has(j);
    const line = el("line", { ...seg(i, j, 4), stroke: taken ? STEP_COLOUR.accept : "#555",
      "stroke-width": w.toFixed(2), "marker-end": `url(#${svg.id}-${taken ? "accept" : "arrow"})`,
      "data-edge": `${i}-${j}`, "data-r": String(out.r[i][j]) });
    line.appendChild(el("title", {}, `${i} imports ${j}: pays r = ${fmt(out.r[i][j])}`));
    svg.appendChild(line);
  }
  if (step) {  // the candidate the step-through is at: dashed, coloured by the test's outcome
    const kind = step.action === "accept" ? "accept" : step.action === "not tried" ? "nottried" : "stop";
    const line = el("line", { ...seg(res.client, step.j, 4), stroke: STEP_COLOUR[step.action],
      "stroke-width": 3, "stroke-dasharray": "6 4", "marker-end": `url(#${svg.id}-${kind})`,
      "data-candidate": `${res.client}-${step.j}`, "data-action": step.action });
    line.appendChild(el("title", {}, `step ${stepAt + 1}: ${step.test}`));
    svg.appendChild(line);
  }
  for (let i = 0; i < res.m; i++) {
    const [x, y] = xy[i];
    const node = el("circle", { cx: x, cy: y, r: rad[i], fill: ROLE_COLOUR[res.roles[i]],
      stroke: out.ir[i] ? "#222" : "#d00", "stroke-width": out.ir[i] ? 1 : 3, "data-node": i });
    node.appendChild(el("title", {}, `client ${i}${names[i] ? " (" + names[i] + ")" : ""}: ${res.roles[i]}, ` +
      `N = ${fmt(res.N[i])}, U = ${fmt(out.U[i])}`));
    svg.appendChild(node);
    if (step && (i === res.client || i === step.j)) {
      svg.appendChild(el("circle", { cx: x, cy: y, r: rad[i] + 4, fill: "none", stroke: "#222",
        "stroke-width": 2, "stroke-dasharray": i === res.client ? "" : "3 2" }));
    }
    svg.appendChild(el("text", { x: x, y: y + 4, "text-anchor": "middle", fill: "white",
      "font-weight": "bold", "pointer-events": "none" }, String(i)));
  }
}

function drawLegend() {
  const svg = $("legend");
  let x = 2;
  const item = (draw, label) => {
    draw(x);
    const t = el("text", { x: x + 14, y: 13 }, label);
    svg.appendChild(t);
    x += 26 + t.getComputedTextLength();
  };
  for (const [role, col] of Object.entries(ROLE_COLOUR)) {
    item((x0) => svg.appendChild(el("circle", { cx: x0 + 5, cy: 9, r: 6, fill: col })),
         { trader: "trader", seller: "pure seller (K = 0)", buyer: "pure buyer (c = inf)" }[role]);
  }
  item((x0) => svg.appendChild(el("circle", { cx: x0 + 5, cy: 9, r: 6, fill: "#ccc", stroke: "#d00", "stroke-width": 2.5 })),
       "U < 0: IR fails");
  item((x0) => svg.appendChild(el("line", { x1: x0, y1: 9, x2: x0 + 11, y2: 9, stroke: "#555", "stroke-width": 3 })),
       "width: payment r_ij, size: N");
  item((x0) => svg.appendChild(el("line", { x1: x0, y1: 9, x2: x0 + 11, y2: 9, stroke: STEP_COLOUR.accept,
    "stroke-width": 3, "stroke-dasharray": "4 2" })), "step-through");
}

function renderPayments(res) {
  let html = "<tr><th>client</th><th>role</th><th>imports (A2)</th><th>p (A2)</th><th>U (A2)</th><th>IR</th>" +
    "<th>imports (exact)</th><th>p (exact)</th><th>U (exact)</th><th>IR</th></tr>";
  const liar = res.liar ? res.liar.client : -1;
  for (let i = 0; i < res.m; i++) {
    const cells = [res.greedy, res.exact].map((o, k) => {
      const imp = o.A[i].map((a, j) => (a ? j : null)).filter((j) => j !== null);
      const tag = k === 0 ? "greedy" : "exact";
      return `<td>${imp.length ? imp.join(",") : "-"}</td>` +
        `<td data-${tag}-p="${o.p[i]}">${fmt(o.p[i])}</td><td data-${tag}-u="${o.U[i]}">${fmt(o.U[i])}</td>` +
        `<td>${o.ir[i] ? "yes" : "<b style='color:#b00020'>NO</b>"}</td>`;
    }).join("");
    const who = `<span class="dot" style="background:${ROLE_COLOUR[res.roles[i]]}"></span>${i}`;
    html += `<tr data-client="${i}"><td class="who" title="${names[i] || "client " + i}">${who}</td><td>${res.roles[i]}${i === liar ? " (liar)" : ""}</td>${cells}</tr>`;
  }
  $("payments").innerHTML = html;
  $("welfare").textContent = `p: net payment (paid minus received); U: utility as the mechanism computes it from the ` +
    `reports. Social welfare: Algorithm 2 ${fmt(res.greedy.welfare)}, exact ${fmt(res.exact.welfare)} (${res.exact_status})`;
}

function renderLiar(res) {
  const box = $("liar-box"), L = res.liar;
  if (!L) { box.innerHTML = ""; return; }
  const set = (a) => (a.length ? `{${a.join(", ")}}` : "nobody");
  const u = (t) => `gain ${fmt(t.gain)} &minus; sharing cost ${fmt(t.cost)} &minus; bill ${fmt(t.p)} = <b>${fmt(t.U)}</b>`;
  box.innerHTML = `<b>Liar:</b> client ${L.client} has N = ${fmt(L.true.N)} and reports ${fmt(L.reported.N)}; ` +
    `the table above is what the mechanism computes from the report (it believes U = ${fmt(L.believed_U)}).<br>` +
    `true utility lying: imports ${set(L.imports_lying)}, imported by ${set(L.importers_lying)}: ${u(L.lying)}<br>` +
    `true utility truthful: imports ${set(L.imports_truthful)}, imported by ${set(L.importers_truthful)}: ${u(L.truthful)}<br>` +
    `<span data-liar-pays="${L.pays}" class="${L.pays ? "stop" : "accept"}">` +
    (L.pays ? `lying pays: +${fmt(L.gain_from_lying)} this round` : `lying does not pay (${fmt(L.gain_from_lying)})`) + "</span>";
}

function renderMatrices(res) {
  let html = "<tr><th>i \\ j</th>" + res.N.map((_, j) => `<th>${j}</th>`).join("") + "</tr>";
  for (let i = 0; i < res.m; i++) {
    html += `<tr><th>${i}</th>` + res.N.map((_, j) => (i === j ? "<td>.</td>" :
      `<td title="w_${i}${j}">${fmt(res.weights[i][j])}<br><span class="note">${fmt(res.thresholds[i][j])}</span></td>`)).join("") + "</tr>";
  }
  $("matrices").innerHTML = html + "<tr><td colspan='99' class='note' style='text-align:left'>top: price w_ij; " +
    "below: threshold N^Th_ij (0: not worth it even alone)</td></tr>";
}

function drawCurve(res) {
  const svg = $("curve"), mr = res.misreport;
  svg.innerHTML = "";
  $("curve-client").textContent = String(res.client);
  $("curve-note").textContent = mr.note || "";
  if (!mr.reports.length) return;
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), L = 56, B = 34, T = 10, Rm = 10;
  const xs = mr.reports, ys = mr.U, logx = mr.truth > 0;
  const fx = logx ? Math.log : (v) => v;
  const x0 = fx(xs[0]), x1 = fx(xs[xs.length - 1]);
  let y0 = Math.min(...ys, 0), y1 = Math.max(...ys, 0);
  if (y1 - y0 < 1e-12) { y1 += 1; }
  const X = (v) => L + (W - L - Rm) * (fx(v) - x0) / (x1 - x0), Y = (u) => H - B - (H - B - T) * (u - y0) / (y1 - y0);
  svg.appendChild(el("line", { x1: L, y1: H - B, x2: W - Rm, y2: H - B, stroke: "#999" }));
  svg.appendChild(el("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
  svg.appendChild(el("line", { x1: L, y1: Y(0), x2: W - Rm, y2: Y(0), stroke: "#ccc", "stroke-dasharray": "3 3" }));
  svg.appendChild(el("polyline", { points: xs.map((v, k) => `${X(v)},${Y(ys[k])}`).join(" "),
    fill: "none", stroke: "#4c78a8", "stroke-width": 2 }));
  svg.appendChild(el("line", { x1: L, y1: Y(mr.U_truth), x2: W - Rm, y2: Y(mr.U_truth), stroke: "#d62728",
    "stroke-dasharray": "5 3" }));
  svg.appendChild(el("circle", { cx: X(mr.truth), cy: Y(mr.U_truth), r: 5, fill: "#d62728" }));
  if (mr.report !== undefined && typeof mr.report === "number" && mr.report >= xs[0] && mr.report <= xs[xs.length - 1]) {
    svg.appendChild(el("line", { x1: X(mr.report), y1: T, x2: X(mr.report), y2: H - B, stroke: "#f58518",
      "stroke-width": 2, "stroke-dasharray": "4 3" }));
    const right = X(mr.report) > (L + W) / 2;  // label on the side with room
    svg.appendChild(el("text", { x: X(mr.report) + (right ? -4 : 4), y: T + 10, fill: "#b35806",
      "text-anchor": right ? "end" : "start" }, "the liar's report"));
  }
  svg.appendChild(el("text", { x: L, y: H - 6 }, `${fmt(xs[0])}`));
  svg.appendChild(el("text", { x: W - Rm, y: H - 6, "text-anchor": "end" }, `${fmt(xs[xs.length - 1])}`));
  svg.appendChild(el("text", { x: (L + W) / 2, y: H - 6, "text-anchor": "middle" },
    `reported ${mr.field}${logx ? " (log scale)" : ""}; red: the truth`));
  svg.appendChild(el("text", { x: 4, y: Y(y1) + 10 }, fmt(y1)));
  svg.appendChild(el("text", { x: 4, y: Y(y0) }, fmt(y0)));
  svg.appendChild(el("text", { x: 4, y: (T + H - B) / 2 }, "true U"));
  const best = Math.max(...ys);
  $("curve-note").textContent = best > mr.U_truth + 1e-9 * Math.max(1, Math.abs(mr.U_truth))
    ? `lying pays: best report ${fmt(xs[ys.indexOf(best)])} gives U = ${fmt(best)} > ${fmt(mr.U_truth)} (truth)`
    : `no report in this range beats the truth (U = ${fmt(mr.U_truth)})`;
}

// ---------------------------------------------------------------- loading a market or a preset
function loadMarket(doc) {
  $("clients").tBodies[0].innerHTML = "";
  names = [];
  doc.clients.forEach((cl, i) => clientRow(i, cl, doc.points ? doc.points[i] : null));
  $("lam").value = String(doc.lam ?? 1);
  sliderFromField("lam");
  $("gain").value = doc.gain || "sqrt";
  $("d").value = doc.d && !doc.points ? doc.d.map((r) => r.join(" ")).join("\n") : "";
  syncSelect($("client"), doc.clients.length, false);
  syncSelect($("liar-client"), doc.clients.length, true);
}

function loadPreset(p) {
  loadMarket(p.market);
  $("client").value = String(p.client);
  $("liar-client").value = p.liar ? String(p.liar.client) : "";
  $("liar-N").value = p.liar ? String(p.liar.N) : "1";
  sliderFromField("liar-N");
  if (p.liar) $("misreport").value = "N";
  $("what").textContent = p.what;
  document.querySelectorAll("#presets button").forEach((b) => b.classList.toggle("current", b.dataset.preset === p.name));
  stepAt = 0; last = null;
  recompute();
}

function clientsChanged() {
  syncSelect($("liar-client"), nClients(), true);
  syncSelect($("client"), nClients(), false);
  schedule();
}

async function start() {
  drawLegend();
  const doc = await (await fetch("/api/market")).json();
  loadMarket(doc);
  $("what").textContent = doc.description || "Drag a slider or type a number: the page recomputes as you go. " +
    "Or load a preset. Algorithm 2's graph is on the left, the exact optimum of eq. (8) on the right.";
  $("liar-N").value = "1";
  sliderFromField("liar-N");
  const presets = await (await fetch("/api/presets")).json();
  for (const p of presets) {
    const b = document.createElement("button");
    b.textContent = p.title; b.dataset.preset = p.name; b.id = `preset-${p.name}`;
    b.addEventListener("click", () => loadPreset(p));
    $("presets").appendChild(b);
  }
  document.body.addEventListener("input", (e) => {
    const t = e.target;
    if (t.matches("input[type=range]")) fieldFromSlider(t);
    else if (t.matches("input[type=text]")) sliderFromField(t.id);
    if (t.matches("input, textarea")) schedule();
  });
  document.body.addEventListener("change", (e) => { if (e.target.matches("select")) schedule(); });
  $("add").addEventListener("click", () => { clientRow(nClients(), { N: 100, c: 0.1, K: 400 }, [0, 0]); clientsChanged(); });
  $("remove").addEventListener("click", () => {
    const body = $("clients").tBodies[0];
    if (body.rows.length > 0) body.deleteRow(body.rows.length - 1);
    names.length = nClients();
    clientsChanged();
  });
  $("step-first").addEventListener("click", () => moveStep(0));
  $("step-prev").addEventListener("click", () => moveStep(stepAt - 1));
  $("step-next").addEventListener("click", () => moveStep(stepAt + 1));
  $("step-last").addEventListener("click", () => moveStep(Infinity));
  $("step-buttons").addEventListener("keydown", (e) => {
    const to = { ArrowLeft: stepAt - 1, ArrowRight: stepAt + 1, Home: 0, End: Infinity }[e.key];
    if (to !== undefined) { e.preventDefault(); moveStep(to); }
  });
  $("trace").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-step]");
    if (row) moveStep(+row.dataset.step);
  });
  recompute();
}
start();
