// The MES page: a scope bar (line, cell, time range, kept in location.hash) over the dashboards
// (OEE, state timeline, downtime Pareto, orders, maintenance, SPC, lot genealogy) and the operator forms.

import {$, api, el} from "./lib.js";
import {failed, hint, shortName} from "./mes_draw.js";
import {fillCells, prefillReason, setupForms} from "./mes_forms.js";
import {renderLots} from "./mes_lots.js";
import {renderMaintenance} from "./mes_maintenance.js";
import {renderOee, renderOrders, renderPareto, renderTimeline} from "./mes_machine.js";
import {renderSpc} from "./mes_quality.js";

const RANGES = {"1h": 3_600_000, "8h": 8 * 3_600_000, "24h": 24 * 3_600_000, "7d": 7 * 86_400_000};
const RANGE_LABELS = {shift: "shift", "1h": "1 h", "8h": "8 h", "24h": "24 h", "7d": "7 d"};
const REFRESH_MS = 10_000;

/** What every panel shows: the chosen line, cell (or "" for the whole line) and time range. */
const scope = {line: "", cell: "", range: "", characteristic: "", lot: "", lines: [], cells: [], current: [], shiftStart: null};
let started = false;
let refreshing = false;

/** Fill (and refresh) the MES page; called by app.js whenever the tab is shown or the hash changes. */
export async function loadMes() {
  if (!started) start();
  readHash();
  await refreshCurrent();
  renderScopeBar();
  writeHash();
  await renderAll();
}

function start() {
  started = true;
  setupForms(() => refreshLive());
  $("#line").addEventListener("change", (event) => setScope({line: event.target.value, cell: "", lot: "", characteristic: ""}));
  $("#cell").addEventListener("change", (event) => setScope({cell: event.target.value}));
  // live while the MES tab is on screen; a hidden browser tab or another page costs nothing
  setInterval(() => {
    if (!document.hidden && !$("#mes").hidden) refreshLive();
  }, REFRESH_MS);
}

// -- the scope: hash <-> state ---------------------------------------------------------------------

const HASH_KEYS = {line: "line", cell: "cell", range: "range", characteristic: "char", lot: "lot"};

function readHash() {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  for (const [key, name] of Object.entries(HASH_KEYS)) if (query.has(name)) scope[key] = query.get(name);
}

function writeHash() {
  // slashes left readable so a shared link shows the line: #mes?line=acme/dallas/bottling/line1&range=8h
  const parts = Object.entries(HASH_KEYS).filter(([key]) => scope[key])
    .map(([key, name]) => `${name}=${encodeURIComponent(scope[key]).replaceAll("%2F", "/")}`);
  const hash = `#mes${parts.length ? "?" + parts.join("&") : ""}`;
  // replaceState: no hashchange, so no second load
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

/** Change the scope from a control or a click, then redraw what depends on it. */
export function setScope(changes) {
  Object.assign(scope, changes);
  applyCurrent();
  renderScopeBar();
  writeHash();
  renderAll();
}

/** The window every view is asked for: an API start and the axis [from, to] in ms. */
function window_() {
  const to = Date.now();
  if (scope.range === "shift" && scope.shiftStart) return {start: scope.shiftStart, from: Date.parse(scope.shiftStart), to};
  const span = RANGES[scope.range] || RANGES["8h"];
  return {start: `-${scope.range in RANGES ? scope.range : "8h"}`, from: to - span, to};
}

/** The scope as panels get it: path (the cell, else the line), window, and the callbacks they may use. */
function view() {
  return {
    ...scope, ...window_(), path: scope.cell || scope.line,
    selectCell: (cell) => setScope({cell: cell === scope.cell ? "" : cell}),
    pickCharacteristic: (characteristic) => setScope({characteristic}),
    openLot: (lot) => setScope({lot}),
    assignReason: prefillReason,
  };
}

// -- loading ---------------------------------------------------------------------------------------

async function refreshCurrent() {
  try {
    scope.current = (await api("/api/mes/current")).rows;
  } catch (error) {
    scope.current = [];
    failed($("#oee-state"), error);
    return;
  }
  applyCurrent();
}

/** Lines, the chosen line's cells and its running shift, from the last /api/mes/current. */
function applyCurrent() {
  scope.lines = scope.current.filter((row) => row.kind === "line").map((row) => row.path).sort();
  if (!scope.lines.includes(scope.line)) scope.line = scope.lines[0] || "";
  scope.cells = scope.current.filter((row) => row.kind === "cell" && row.path.startsWith(scope.line + "/")).map((row) => row.path);
  if (scope.cell && !scope.cells.includes(scope.cell)) scope.cell = "";
  const lineRow = scope.current.find((row) => row.path === scope.line);
  scope.shiftStart = lineRow && lineRow.shift_id ? lineRow.oee.start : null;
  if (!scope.range || (scope.range === "shift" && !scope.shiftStart)) scope.range = scope.shiftStart ? "shift" : "8h";
  fillCells(scope.current.filter((row) => row.kind === "cell").map((row) => row.path), scope.cell);
}

function renderScopeBar() {
  $("#line").replaceChildren(...scope.lines.map((line) => el("option", {value: line, selected: line === scope.line}, line)));
  $("#cell").replaceChildren(el("option", {value: ""}, "whole line"),
    ...scope.cells.map((cell) => el("option", {value: cell, selected: cell === scope.cell}, shortName(cell))));
  const names = Object.keys(RANGE_LABELS).filter((name) => name !== "shift" || scope.shiftStart);
  $("#ranges").replaceChildren(...names.map((name) =>
    el("button", {type: "button", "data-range": name, class: name === scope.range ? "active" : null,
      onclick: () => setScope({range: name})}, RANGE_LABELS[name])));
  const lineRow = scope.current.find((row) => row.path === scope.line);
  $("#scope-text").textContent = !scope.line ? "" :
    `${scope.cell || scope.line}${lineRow && lineRow.shift_id ? ` · shift ${lineRow.shift_id}` : ""}`;
  if (!scope.lines.length && !$("#oee-state .error")) {
    $("#oee-state").replaceChildren(hint("No MES data yet: lines appear once cells report states or counts ",
      "(mes.derive rules over the bridges' data, or POST /api/mes/events/<cell>/mes/machine_state)."));
  } else if (scope.lines.length) $("#oee-state").replaceChildren();
}

async function guarded(target, render) {
  try {
    await render();
  } catch (error) {
    failed(target, error);
  }
}

/** The panels that change by the minute: OEE, timeline, Pareto, orders. */
async function renderLive(scoped) {
  if (!scope.line) return;
  await Promise.all([
    guarded($("#oee-state"), () => renderOee(scoped)),
    guarded($("#timeline"), () => renderTimeline(scoped)),
    guarded($("#pareto"), () => renderPareto(scoped)),
    guarded($("#orders-state"), () => renderOrders(scoped)),
    guarded($("#maintenance-state"), () => renderMaintenance(scoped)),
  ]);
}

async function renderAll() {
  const scoped = view();
  await Promise.all([
    renderLive(scoped),
    guarded($("#spc"), () => renderSpc(scoped)),
    guarded($("#lots"), () => renderLots(scoped)),
  ]);
}

async function refreshLive() {
  if (refreshing) return;  // a slow hub must not pile up refreshes
  refreshing = true;
  try {
    await refreshCurrent();
    renderScopeBar();
    await renderLive(view());
  } finally {
    refreshing = false;
  }
}
