// The Plant overview, the landing page: the plant file's lines and machines with state and OEE now,
// one machine's declared values live, and links into history (Topics) and the line's MES dashboards.

import {$, ago, api, el, liveStream, percent, valueText} from "./lib.js";
import {category, stateColour} from "./mes_draw.js";

let plant = null;
let stream = null;
let selected = null; // [cell, line] shown in the machine panel
let refresh = null;

// a line card is its machines and its OEE: a line with neither cells nor an output (the demo's business connectors)
// has nothing to show
const shown = (line) => line.children.length > 0 || line.output_cell != null;
const lines = (node) => (node.kind === "line" ? [node].filter(shown) : node.children.flatMap(lines));

function lineCard(line, current) {
  const now = current.get(line.path);
  const kpi = (label, value) => el("span", {class: "kpi"}, el("b", {}, percent(value)), label);
  const machines = line.children.map((cell) => {
    const row = current.get(cell.path);
    // the same state colours as the MES page's timeline and legend (the catalog's categories)
    const style = row?.state == null ? undefined : `border-left-color:${stateColour(row.state)}`;
    return el("div", {class: "machine", "data-path": cell.path, "data-state": row?.state == null ? undefined : category(row.state),
      style, role: "button", tabindex: "0", title: cell.description || cell.name, onclick: () => showMachine(cell, line)},
      cell.name, el("small", {}, row?.state_name || "no state yet", row?.oee?.oee == null ? "" : ` · OEE ${percent(row.oee.oee)}`));
  });
  return el("section", {class: "line-card", "data-path": line.path},
    el("h3", {}, line.name),
    el("p", {class: "hint"}, line.path, now?.order_id ? ` · order ${now.order_id}` : "", now?.state_name ? ` · ${now.state_name}` : ""),
    el("div", {class: "kpis"}, kpi("OEE", now?.oee?.oee), kpi("availability", now?.oee?.availability),
      kpi("performance", now?.oee?.performance), kpi("quality", now?.oee?.quality)),
    el("div", {class: "machines"}, machines),
    el("p", {}, el("a", {href: `#mes?line=${encodeURIComponent(line.path)}`}, "OEE, downtime, orders, quality and lots of this line →")),
  );
}

async function drawLines() {
  const current = new Map();
  try {
    for (const row of (await api("/api/mes/current")).rows) current.set(row.path, row);
  } catch (error) {
    // the MES adapter may be off: the overview still shows the plant and its values
    if (!$("#mes-off")) $("#lines").before(el("p", {class: "hint", id: "mes-off"}, `OEE unavailable: ${error.message}`));
  }
  $("#lines").replaceChildren(...lines(plant).map((line) => lineCard(line, current)));
  const selected = $("#machine")?.dataset.path;
  if (selected) $(`.machine[data-path="${CSS.escape(selected)}"]`)?.classList.add("selected");
}

const metricTopic = (cell, metric) => `${cell.path}/data/${metric.name}`;

async function showMachine(cell, line) {
  selected = [cell, line];
  const panel = $("#machine");
  panel.hidden = false;
  panel.dataset.path = cell.path;
  for (const chip of document.querySelectorAll(".machine")) chip.classList.toggle("selected", chip.dataset.path === cell.path);
  const rows = cell.metrics.map((metric) => {
    const topic = metricTopic(cell, metric);
    return el("tr", {"data-topic": topic},
      el("td", {}, el("a", {href: `#topics?topic=${encodeURIComponent(topic)}`, title: "value, payload and history"}, metric.name)),
      el("td", {class: "value"}, "–"), el("td", {}, metric.unit || ""), el("td", {class: "age"}, ""), el("td", {}, metric.description));
  });
  panel.replaceChildren(
    el("h3", {}, `${cell.name} `, el("small", {class: "hint"}, cell.path)),
    cell.description ? el("p", {}, cell.description) : "",
    el("table", {}, el("thead", {}, el("tr", {}, ...["value", "now", "unit", "updated", "what"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
    el("p", {}, el("a", {href: `#topics?topic=${encodeURIComponent(cell.path)}`}, "all topics of this machine →"), " · ",
      el("a", {href: `#mes?line=${encodeURIComponent(line.path)}&cell=${encodeURIComponent(cell.path)}`}, "its OEE and downtime →")),
  );
  const found = await api(`/api/search?q=${encodeURIComponent(cell.path + "/data/")}&limit=500`);
  for (const info of found.topics) showValue(info);
  stream?.close();
  // the session-aware stream the Topics page uses: an ended session goes to the login page
  stream = liveStream(`/api/stream?prefix=${encodeURIComponent(cell.path)}`, {
    updates: (batch) => batch.updates.forEach(showValue),
  }, $("#live"));
}

function showValue(info) {
  const row = $(`#machine tr[data-topic="${CSS.escape(info.topic)}"]`);
  if (!row) return;
  const value = row.querySelector(".value");
  value.textContent = valueText(info) || "–";
  value.className = `value ${info.quality || ""}`;
  row.dataset.stamp = String(info.timestamp_ms || info.last_ms || "");
  ageOf(row);
}

function ageOf(row) {
  const stamp = Number(row.dataset.stamp);
  if (!stamp) return;
  row.querySelector(".age").textContent = ago(stamp, Date.now());
}

/** Show the overview (and keep its states and OEE fresh while it is shown). */
export async function loadPlant() {
  if (!plant) {
    plant = await api("/api/plant");
    $("#plant-title").textContent = `${plant.name}: ${plant.children.map((site) => site.name).join(", ")}`;
  }
  await drawLines();
  if (selected) showMachine(...selected); // back on the page: live values again
  clearInterval(refresh);
  refresh = setInterval(() => {
    if ($("#plant").hidden) {
      clearInterval(refresh);
      stream?.close();
      return;
    }
    drawLines();
    for (const row of document.querySelectorAll("#machine tr[data-stamp]")) ageOf(row);
  }, 5000);
}
