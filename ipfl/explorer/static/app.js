// The explorer page: reads the form, asks /api/compute, draws what the Python mechanism
// returned. No mechanism arithmetic here: only layout (pixels) and formatting.
"use strict";
const ROLE_COLOUR = { trader: "#4c78a8", seller: "#f58518", buyer: "#54a24b" };
const NS = "http://www.w3.org/2000/svg";
let version = 0, timer = null, request = 0;

const $ = (id) => document.getElementById(id);
const fmt = (x) => (typeof x === "string" ? x : Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3)
  ? x.toExponential(3) : x.toFixed(4));
function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function clientRow(i, cl, pt) {
  const tr = document.createElement("tr");
  tr.innerHTML = `<td>${i}</td>` + ["N", "c", "K", "x", "y"].map((f) =>
    `<td><input type="text" id="${f}-${i}"><span class="err" id="err-${f}-${i}"></span></td>`).join("");
  $("clients").tBodies[0].appendChild(tr);
  const vals = { N: cl.N, c: cl.c, K: cl.K, x: pt ? pt[0] : 0, y: pt ? pt[1] : 0 };
  for (const f in vals) $(`${f}-${i}`).value = String(vals[f]);
}

function nClients() { return $("clients").tBodies[0].rows.length; }

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
  return { market, client: $("client").value || 0, variant: $("variant").value,
           misreport: $("misreport").value, defence: $("defence").value };
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

function schedule() { clearTimeout(timer); timer = setTimeout(recompute, 200); }

async function recompute() {
  const mine = ++request;
  let res;
  const body = JSON.stringify(readForm());
  try {
    const r = await fetch("/api/compute", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body });
    res = await r.json();
  } catch (e) {
    $("err-market").textContent = "the server did not answer: " + e; return;
  }
  if (mine !== request) return;  // a newer edit is on its way
  clearErrors();
  if (!res.ok) { showErrors(res.errors); return; }
  render(res);
  version += 1;
  $("status").dataset.form = body;  // what this picture was computed from (for tests)
  $("status").dataset.version = String(version);
  $("status").textContent = `computed (${version})`;
}

function syncClientSelect(m, chosen) {
  const sel = $("client");
  if (sel.options.length !== m) {
    sel.innerHTML = "";
    for (let i = 0; i < m; i++) sel.add(new Option(String(i), String(i)));
  }
  sel.value = String(chosen);
}

function render(res) {
  syncClientSelect(res.m, res.client);
  renderTrace(res);
  drawGraph($("graph-greedy"), res, res.greedy, `Algorithm 2 ("${res.variant}")`);
  drawGraph($("graph-exact"), res, res.exact, "exact");
  renderPayments(res);
  renderMatrices(res);
  drawCurve(res);
}

function renderTrace(res) {
  const t = res.trace, i = res.client;
  let html = "<tr><th>step</th><th>j</th><th>N<sub>j</sub></th><th>w<sub>ij</sub></th><th>threshold</th>" +
    "<th>n before</th><th>n after</th><th>action</th><th style='text-align:left'>reason</th></tr>";
  for (const s of t.steps) {
    html += `<tr data-j="${s.j}" data-action="${s.action}"><td>${s.position}</td><td>${s.j}</td><td>${fmt(s.N_j)}</td>` +
      `<td>${fmt(s.w)}</td><td>${fmt(s.threshold)}</td><td>${fmt(s.total_before)}</td><td>${fmt(s.total_after)}</td>` +
      `<td class="${s.action.replace(" ", "")}">${s.action}</td><td class="reason">${s.reason}</td></tr>`;
  }
  $("trace").innerHTML = html;
  $("trace-summary").textContent = `client ${i} (${res.roles[i]}) imports ` +
    (t.imports.length ? `{${t.imports.join(", ")}}` : "nobody") + `; phi_${i} = ${fmt(t.phi)}`;
}

function drawGraph(svg, res, out, title) {
  svg.innerHTML = "";
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), R = Math.min(W, H) / 2 - 40;
  const cx = W / 2, cy = H / 2 + 8;
  const xy = res.layout.map(([x, y]) => [cx + R * x, cy - R * y]);
  const maxN = Math.max(...res.N), rad = res.N.map((n) => 9 + 14 * Math.sqrt(n / maxN));
  let maxR = 0;
  out.r.forEach((row) => row.forEach((v) => { if (v > maxR) maxR = v; }));
  const defs = el("defs");
  const mk = el("marker", { id: svg.id + "-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                            markerUnits: "userSpaceOnUse", markerWidth: 11, markerHeight: 11,
                            orient: "auto-start-reverse" });
  mk.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#555" }));
  defs.appendChild(mk); svg.appendChild(defs);
  svg.appendChild(el("text", { x: 6, y: 14 }, `${title}: ${out.edges} imports, welfare ${fmt(out.welfare)}`));
  for (let i = 0; i < res.m; i++) for (let j = 0; j < res.m; j++) {
    if (!out.A[i][j]) continue;
    const [x1, y1] = xy[i], [x2, y2] = xy[j];
    const dx = x2 - x1, dy = y2 - y1, L = Math.hypot(dx, dy) || 1;
    const ox = -dy / L * 4, oy = dx / L * 4;  // offset so i->j and j->i do not overlap
    const w = maxR > 0 ? 1 + 5 * Math.max(out.r[i][j], 0) / maxR : 1.5;
    const line = el("line", { x1: x1 + dx / L * rad[i] + ox, y1: y1 + dy / L * rad[i] + oy,
      x2: x2 - dx / L * (rad[j] + 2) + ox, y2: y2 - dy / L * (rad[j] + 2) + oy,
      stroke: "#555", "stroke-width": w.toFixed(2), "marker-end": `url(#${svg.id}-arrow)`,
      "data-edge": `${i}-${j}`, "data-r": String(out.r[i][j]) });
    line.appendChild(el("title", {}, `${i} imports ${j}: pays r = ${fmt(out.r[i][j])}`));
    svg.appendChild(line);
  }
  for (let i = 0; i < res.m; i++) {
    const [x, y] = xy[i];
    svg.appendChild(el("circle", { cx: x, cy: y, r: rad[i], fill: ROLE_COLOUR[res.roles[i]],
      stroke: out.ir[i] ? "#222" : "#d00", "stroke-width": out.ir[i] ? 1 : 3, "data-node": i }));
    svg.appendChild(el("text", { x: x, y: y + 4, "text-anchor": "middle", fill: "white",
      "font-weight": "bold" }, String(i)));
  }
}

function drawLegend() {
  const svg = $("legend");
  let y = 16;
  for (const [role, col] of Object.entries(ROLE_COLOUR)) {
    svg.appendChild(el("circle", { cx: 14, cy: y, r: 8, fill: col }));
    svg.appendChild(el("text", { x: 28, y: y + 4 }, { trader: "trader", seller: "pure seller (K = 0)",
      buyer: "pure buyer (c = inf)" }[role]));
    y += 22;
  }
  svg.appendChild(el("text", { x: 4, y: y + 4 }, "node size: data N"));
  svg.appendChild(el("text", { x: 4, y: y + 22 }, "arrow i -> j: i imports j,"));
  svg.appendChild(el("text", { x: 4, y: y + 36 }, "width: remittance r_ij"));
  svg.appendChild(el("text", { x: 4, y: y + 54, fill: "#d00" }, "red ring: U_i < 0 (IR fails)"));
}

function renderPayments(res) {
  let html = "<tr><th>client</th><th>role</th><th>imports (A2)</th><th>p (A2)</th><th>U (A2)</th><th>IR</th>" +
    "<th>imports (exact)</th><th>p (exact)</th><th>U (exact)</th><th>IR</th></tr>";
  for (let i = 0; i < res.m; i++) {
    const cells = [res.greedy, res.exact].map((o, k) => {
      const imp = o.A[i].map((a, j) => (a ? j : null)).filter((j) => j !== null);
      const tag = k === 0 ? "greedy" : "exact";
      return `<td>${imp.length ? imp.join(",") : "-"}</td>` +
        `<td data-${tag}-p="${o.p[i]}">${fmt(o.p[i])}</td><td data-${tag}-u="${o.U[i]}">${fmt(o.U[i])}</td>` +
        `<td>${o.ir[i] ? "yes" : "<b style='color:#b00020'>NO</b>"}</td>`;
    }).join("");
    html += `<tr data-client="${i}"><td>${i}</td><td>${res.roles[i]}</td>${cells}</tr>`;
  }
  $("payments").innerHTML = html;
  $("welfare").textContent = `social welfare: Algorithm 2 ${fmt(res.greedy.welfare)}, exact ${fmt(res.exact.welfare)} ` +
    `(${res.exact_status})`;
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

async function start() {
  drawLegend();
  const doc = await (await fetch("/api/market")).json();
  doc.clients.forEach((cl, i) => clientRow(i, cl, doc.points ? doc.points[i] : null));
  $("lam").value = String(doc.lam ?? 1);
  $("gain").value = doc.gain || "sqrt";
  if (doc.d && !doc.points) $("d").value = doc.d.map((r) => r.join(" ")).join("\n");
  document.body.addEventListener("input", (e) => { if (e.target.matches("input, textarea")) schedule(); });
  document.body.addEventListener("change", (e) => { if (e.target.matches("select")) schedule(); });
  $("add").addEventListener("click", () => { clientRow(nClients(), { N: 100, c: 0.1, K: 400 }, [0, 0]); schedule(); });
  $("remove").addEventListener("click", () => {
    const body = $("clients").tBodies[0];
    if (body.rows.length > 0) body.deleteRow(body.rows.length - 1);
    schedule();
  });
  recompute();
}
start();
