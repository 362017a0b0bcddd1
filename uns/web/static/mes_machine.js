// Machine panels of the MES page: OEE per line and cell, the live state timeline, the downtime Pareto, order progress.

import {$, api, can, duration, el, percent, svg} from "./lib.js";
import {category, clock, hint, latest, legend, num, scale, shortName, stateColour, timeAxis} from "./mes_draw.js";

const q = encodeURIComponent;

// -- OEE per line and cell -------------------------------------------------------------------------

/** A factor as a small bar and its percentage. */
function meter(value, name) {
  const width = value === null || value === undefined ? 0 : Math.max(0, Math.min(1, value)) * 100;
  return el("td", {class: `factor ${name}`},
    el("span", {class: "meter"}, el("span", {style: `width:${width.toFixed(1)}%`})), " ", percent(value));
}

/** A line publishes no state of its own: say how many of its cells produce. */
function lineState(scope) {
  const cells = scope.current.filter((row) => scope.cells.includes(row.path));
  const producing = cells.filter((row) => ["producing", "producing_reduced"].includes(category(row.state))).length;
  const state = producing === cells.length ? 10000 : producing ? 20000 : 40000;
  return {state, state_name: `${producing} of ${cells.length} cells producing`};
}

function oeeRow(scope, row, now) {
  const live = row.path === scope.line && (!now || now.state === null) ? {...now, ...lineState(scope)} : now || {};
  const colour = stateColour(live.state);
  const selected = row.path === scope.cell || (!scope.cell && row.path === scope.line);
  return el("tr", {"data-path": row.path, class: `${row.path === scope.line ? "line" : "cell"}${selected ? " selected" : ""}`,
    style: `border-left: 6px solid ${colour}`, title: "click: narrow the page to this cell (click again: whole line)",
    onclick: () => scope.selectCell(row.path === scope.line ? "" : row.path)},
  el("td", {}, row.path === scope.line ? `${shortName(row.path)} (line)` : shortName(row.path)),
  el("td", {class: "state"}, el("i", {class: "chip", style: `background:${colour}`}),
    live.state_name || "–", live.reason_code ? ` (${live.reason_code})` : ""),
  el("td", {}, live.order_id || "–"),
  meter(row.availability, "availability"), meter(row.performance, "performance"), meter(row.quality, "quality"),
  el("td", {class: "oee"}, percent(row.oee)),
  el("td", {class: "units"}, `${row.good} / ${row.total}`));
}

/** OEE of the line and each of its cells over the scope's range, with the state and order now. */
export async function renderOee(scope) {
  const base = `/api/mes/oee?path=${q(scope.line)}&start=${q(scope.start)}`;
  const answers = await latest("oee", () => Promise.all([api(`${base}&by=line`), api(`${base}&by=cell`)]));
  if (!answers) return;
  const rows = [...answers[0].rows.filter((row) => row.path === scope.line), ...answers[1].rows];
  const now = Object.fromEntries(scope.current.map((row) => [row.path, row]));
  $("#oee tbody").replaceChildren(...rows.map((row) => oeeRow(scope, row, now[row.path])));
  $("#oee-state").replaceChildren(rows.length ? "" :
    hint(`No states or counts for ${scope.line} in this range: pick a longer range.`));
}

// -- live state timeline ---------------------------------------------------------------------------

const DOWN = new Set(["availability", "performance"]);

function segmentTitle(seg, from, to) {
  const seconds = (to - from) / 1000;
  return `${seg.name} (${seg.state})${seg.reason_code ? ` · reason ${seg.reason_code}` : ""} · ${seg.loss} loss\n` +
    `${clock(from)} → ${clock(to)} · ${duration(seconds)}${DOWN.has(seg.loss) && can("mes-event") ? "\nclick: assign a reason" : ""}`;
}

/** One row per cell of the scope: coloured state segments on a shared time axis. */
export async function renderTimeline(scope) {
  const answer = await latest("timeline", () => api(`/api/mes/timeline?path=${q(scope.path)}&start=${q(scope.start)}`));
  if (!answer) return;
  const paths = [...new Set([...scope.cells.filter((cell) => !scope.cell || cell === scope.cell), ...answer.rows.map((row) => row.path)])]
    .filter((path) => path !== scope.line || answer.rows.some((row) => row.path === path)).sort();
  const target = $("#timeline");
  if (!answer.rows.length) {
    target.replaceChildren(hint(`No machine states for ${scope.path} in this range: states come from mes.derive rules `,
      `or POST /api/mes/events/${scope.cells[0] || "<cell>"}/mes/machine_state.`));
    return;
  }
  const label = 150, width = 1000, rowHeight = 24, top = 4;
  const height = top + paths.length * rowHeight + 18;
  const x = scale(scope.from, scope.to, label, width - 4);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "timeline", role: "img"},
    timeAxis(scope.from, scope.to, x, top, top + paths.length * rowHeight));
  paths.forEach((path, index) => {
    const y = top + index * rowHeight;
    const row = svg("g", {class: "lane", "data-path": path},
      svg("text", {x: 4, y: y + 16, class: path === scope.cell ? "lane-name selected" : "lane-name"}, shortName(path)));
    for (const seg of answer.rows.filter((item) => item.path === path)) {
      const from = Math.max(Date.parse(seg.start), scope.from), to = Math.min(Date.parse(seg.end), scope.to);
      if (to <= from) continue;
      const rect = svg("rect", {x: x(from), y: y + 3, width: Math.max(0.6, x(to) - x(from)), height: rowHeight - 6,
        fill: stateColour(seg.state), class: `seg ${category(seg.state)} ${seg.loss}${DOWN.has(seg.loss) ? " down" : ""}`,
        "data-state": seg.state, "data-loss": seg.loss, "data-start": Date.parse(seg.start), "data-end": Date.parse(seg.end),
        "data-reason": seg.reason_code || ""},
      svg("title", {}, segmentTitle(seg, Date.parse(seg.start), Date.parse(seg.end))));
      if (DOWN.has(seg.loss) && can("mes-event")) {
        rect.addEventListener("click", () => scope.assignReason({path, start: Date.parse(seg.start), end: Date.parse(seg.end), state: seg.state}));
      }
      row.append(rect);
    }
    chart.append(row);
  });
  target.replaceChildren(chart, legend());
}

// -- downtime Pareto -------------------------------------------------------------------------------

/** Bars of lost time by reason, longest first, with the cumulative percentage as a line. */
export async function renderPareto(scope) {
  const answer = await latest("pareto", () => api(`/api/mes/downtime?path=${q(scope.path)}&start=${q(scope.start)}`));
  if (!answer) return;
  const target = $("#pareto");
  $("#pareto-scope").textContent = `${scope.cell ? shortName(scope.cell) : `${shortName(scope.line)} (whole line)`}`;
  if (!answer.rows.length) {
    target.replaceChildren(hint(`No downtime at ${scope.path} in this range. Reasons are assigned from the timeline `,
      "(click a stop) or the form below."));
    return;
  }
  const rows = answer.rows.slice(0, 15);
  const width = 1000, height = 260, left = 50, right = 44, top = 26, bottom = 206;
  const slot = (width - left - right) / rows.length;
  const barWidth = Math.min(80, slot * 0.7);
  const longest = Math.max(...rows.map((row) => row.duration_s));
  const y = scale(0, longest, bottom, top);
  const yPct = scale(0, 1, bottom, top);
  const centre = (index) => left + slot * index + slot / 2;
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "pareto", role: "img"},
    svg("line", {x1: left, x2: width - right, y1: bottom, y2: bottom, class: "tick"}),
    svg("text", {x: left - 4, y: top + 4, "text-anchor": "end", class: "axis"}, duration(longest)),
    svg("text", {x: width - right + 4, y: top + 4, class: "axis"}, "100 %"),
    svg("text", {x: width - right + 4, y: yPct(0.8) + 4, class: "axis"}, "80 %"),
    svg("line", {x1: left, x2: width - right, y1: yPct(0.8), y2: yPct(0.8), class: "tick eighty"}));
  rows.forEach((row, index) => {
    const name = row.text ? `${row.reason}: ${row.text}` : row.reason;
    const colour = stateColour(row.state);
    chart.append(svg("g", {class: "bar", "data-reason": row.reason, "data-loss": row.loss},
      svg("rect", {x: centre(index) - barWidth / 2, y: y(row.duration_s), width: barWidth, height: Math.max(1, bottom - y(row.duration_s)), fill: colour}),
      svg("text", {x: centre(index), y: y(row.duration_s) - 4, "text-anchor": "middle", class: "value"},
        `${duration(row.duration_s)} · ${row.count}×`),
      svg("text", {x: centre(index), y: bottom + 14, "text-anchor": "middle", class: "axis reason"}, name.length > 18 ? `${name.slice(0, 17)}…` : name),
      svg("text", {x: centre(index), y: bottom + 27, "text-anchor": "middle", class: "axis"}, percent(row.share)),
      svg("title", {}, `${name} (${row.loss} loss)\n${duration(row.duration_s)} lost in ${row.count} stop(s), ${percent(row.share)} (cumulative ${percent(row.cumulative_share)})`)));
  });
  const points = rows.map((row, index) => `${centre(index)},${yPct(row.cumulative_share)}`).join(" ");
  chart.append(svg("polyline", {points, class: "cumulative"}),
    ...rows.map((row, index) => svg("circle", {cx: centre(index), cy: yPct(row.cumulative_share), r: 3, class: "cumulative"})));
  target.replaceChildren(chart);
}

// -- order progress --------------------------------------------------------------------------------

function progress(row) {
  const planned = row.quantity || 0;
  const full = Math.max(planned, row.good + row.scrap, 1);
  return el("td", {class: "progress"},
    el("span", {class: "meter wide", title: `good ${row.good}, scrap ${row.scrap}, planned ${planned || "–"}`},
      el("span", {class: "good", style: `width:${(100 * row.good) / full}%`}),
      el("span", {class: "scrap", style: `width:${(100 * row.scrap) / full}%`})),
    ` ${row.good} good + ${row.scrap} scrap / ${planned ? num(planned) : "–"} ${row.unit || ""}`);
}

const when = (iso) => (iso ? clock(Date.parse(iso), true) : "–");

/** The line's orders: made (good, scrap) against planned, status, planned and projected end. */
export async function renderOrders(scope) {
  const answer = await latest("orders", () => api(`/api/mes/orders?line=${q(scope.line)}`));
  if (!answer) return;
  const rows = answer.rows.slice(-20).reverse();  // newest first, the last 20
  $("#orders tbody").replaceChildren(...rows.map((row) =>
    el("tr", {"data-order": row.order_id, class: row.status},
      el("td", {}, row.order_id), el("td", {}, row.product_id || "–"), el("td", {class: "status"}, row.status),
      progress(row), el("td", {}, row.percent_complete === null ? "–" : `${row.percent_complete.toFixed(1)} %`),
      el("td", {}, when(row.planned_end)),
      el("td", {}, row.status === "completed" ? `done ${when(row.actual_end)}` : when(row.projected_end)))));
  $("#orders-state").replaceChildren(rows.length ? "" : hint(`No work orders on ${scope.line}: an ERP connector releases them `,
    `with POST /api/mes/events/${scope.line}/mes/work_order {"order_id", "action": "release", "product_id", "quantity"}.`));
}
