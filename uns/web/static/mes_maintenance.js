// Maintenance panel of the MES page: MTBF and MTTR per line and cell, the fault-code Pareto and the work orders.

import {$, api, duration, el, percent} from "./lib.js";
import {clock, hint, latest, shortName} from "./mes_draw.js";

const q = encodeURIComponent;
const seconds = (value) => (value === null || value === undefined ? "–" : duration(value));
/** The list's filters: status (open, closed, any) and a fault code picked on the Pareto ("" for all). */
const filters = {status: "open", fault: ""};
let lastScope = null;

function reliabilityRow(scope, row) {
  const line = row.path === scope.line;
  return el("tr", {"data-path": row.path, class: line ? "line" : "cell"},
    el("td", {}, line ? `${shortName(row.path)} (line)` : shortName(row.path)),
    el("td", {class: "failures"}, String(row.failures), row.open_failures ? ` (${row.open_failures} open)` : ""),
    el("td", {class: "mtbf"}, seconds(row.mtbf_s)),
    el("td", {class: "mttr"}, seconds(row.mttr_s)),
    el("td", {}, seconds(row.operating_s)),
    el("td", {class: "repairs"}, String(row.repair_orders)),
    el("td", {}, seconds(row.mean_repair_s)),
    el("td", {}, seconds(row.mean_response_s)));
}

async function renderReliability(scope) {
  const base = `/api/mes/reliability?path=${q(scope.line)}&start=${q(scope.start)}`;
  const answers = await latest("reliability", () => Promise.all([api(`${base}&by=line`), api(`${base}&by=cell`)]));
  if (!answers) return;
  const rows = [...answers[0].rows, ...answers[1].rows].filter((row) => !scope.cell || row.path === scope.cell || row.path === scope.line);
  $("#reliability tbody").replaceChildren(...rows.map((row) => reliabilityRow(scope, row)));
}

function faultBar(bar, longest) {
  const code = bar.fault_code ?? "";
  const width = longest ? (bar.duration_s / longest) * 100 : 0;
  return el("li", {class: `fault${filters.fault === code && code ? " active" : ""}`, "data-fault": code,
    title: `${bar.orders} order(s), ${bar.open} open; ${seconds(bar.duration_s)} reported to handed back, ` +
      `${seconds(bar.repair_s)} repairing; ${percent(bar.share)} of the time (cumulative ${percent(bar.cumulative_share)})`,
    onclick: () => pickFault(code)},
  el("span", {class: "code"}, code || "(no code)"),
  el("span", {class: "meter wide"}, el("span", {style: `width:${width.toFixed(1)}%`})),
  el("span", {class: "figures"}, `${seconds(bar.duration_s)} · ${bar.orders}×${bar.open ? ` (${bar.open} open)` : ""}`));
}

async function renderFaults(scope) {
  const answer = await latest("faults", () => api(`/api/mes/faults?path=${q(scope.path)}&start=${q(scope.start)}`));
  if (!answer) return;
  if (!answer.rows.length) {
    $("#faults").replaceChildren(hint(`No corrective maintenance orders opened at ${scope.path} in this range.`));
    return;
  }
  const longest = Math.max(...answer.rows.map((bar) => bar.duration_s));
  $("#faults").replaceChildren(el("ul", {class: "faults"}, answer.rows.slice(0, 12).map((bar) => faultBar(bar, longest))));
}

function orderRow(row) {
  const at = (text) => (text ? clock(Date.parse(text), true) : "–");
  const when = row.closed ? `closed ${at(row.closed)}` : row.started ? `started ${at(row.started)}` :
    row.planned_start ? `planned ${at(row.planned_start)}` : "";
  return el("tr", {"data-id": row.maintenance_id, class: row.status},
    el("td", {}, row.maintenance_id),
    el("td", {}, shortName(row.path)),
    el("td", {class: "status"}, row.status),
    el("td", {}, row.planned ? "planned" : "corrective"),
    el("td", {class: "code"}, row.fault_code || "–"),
    el("td", {}, row.priority === null ? "–" : String(row.priority)),
    el("td", {}, row.technician || "–"),
    el("td", {}, at(row.opened)),
    el("td", {}, when),
    el("td", {}, row.repair_s !== null ? seconds(row.repair_s) : row.age_s !== null ? `open ${seconds(row.age_s)}` : "–"),
    el("td", {class: "text"}, row.description || ""));
}

async function renderOrders(scope) {
  let url = `/api/mes/maintenance?path=${q(scope.path)}&start=${q(scope.start)}&status=${filters.status}`;
  if (filters.fault) url += `&fault_code=${q(filters.fault)}`;
  const answer = await latest("maintenance", () => api(url));
  if (!answer) return;
  $("#maintenance-fault").textContent = filters.fault ? `fault ${filters.fault} only (click its bar again for all)` : "";
  $("#maintenance tbody").replaceChildren(...answer.rows.map(orderRow));
  $("#maintenance-state").replaceChildren(answer.rows.length ? "" :
    hint(`No ${filters.status === "any" ? "" : filters.status + " "}maintenance orders at ${scope.path} in this range`,
      filters.fault ? ` with fault ${filters.fault}.` : "."));
}

function pickFault(code) {
  filters.fault = filters.fault === code ? "" : code;
  if (lastScope) renderMaintenance(lastScope);
}

/** The maintenance panel of the scope: reliability of the line and its cells, fault Pareto, the order list. */
export async function renderMaintenance(scope) {
  lastScope = scope;
  const select = $("#maintenance-status");
  if (!select.dataset.wired) {
    select.dataset.wired = "1";
    select.addEventListener("change", () => {
      filters.status = select.value;
      if (lastScope) renderOrders(lastScope);
    });
  }
  select.value = filters.status;
  await Promise.all([renderReliability(scope), renderFaults(scope), renderOrders(scope)]);
}
