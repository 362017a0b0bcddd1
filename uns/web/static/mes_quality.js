// SPC panel of the MES page: pick a characteristic inspected in scope, draw its control chart and range chart.

import {$, api, el, svg} from "./lib.js";
import {clock, hint, latest, num, scale} from "./mes_draw.js";

const q = encodeURIComponent;

/** Horizontal reference lines (centre, control and spec limits), each labelled at the right, labels kept apart. */
function limitLines(lines, y, left, right) {
  const shown = lines.filter(([value]) => value !== null && value !== undefined).sort((a, b) => y(a[0]) - y(b[0]));
  let lastLabel = -Infinity;
  return shown.flatMap(([value, name, kind]) => {
    const labelY = Math.max(y(value) + 4, lastLabel + 12);  // LSL next to LCL must stay readable
    lastLabel = labelY;
    return [
      svg("line", {x1: left, x2: right, y1: y(value), y2: y(value), class: `limit ${kind}`, "data-limit": name}),
      svg("text", {x: right + 4, y: labelY, class: `axis ${kind}`}, `${name} ${num(value)}`),
    ];
  });
}

/** One chart: points joined by a line over reference lines; points with rule hits in red. */
function controlChart({points, lines, height, title, mark, floor = -Infinity}) {
  const width = 1000, left = 56, right = 900, top = 22, bottom = height - 22;
  const values = [...points.map((p) => p.value), ...lines.map(([value]) => value)].filter((v) => v !== null && v !== undefined);
  let low = Math.min(...values), high = Math.max(...values);
  const margin = (high - low || Math.abs(high) || 1) * 0.08;
  low = Math.max(floor, low - margin);  // a range is never below 0
  high += margin;
  const x = scale(0, Math.max(1, points.length - 1), left + 6, right - 6);
  const y = scale(low, high, bottom, top);
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "spc", role: "img"},
    svg("text", {x: left + 6, y: 11, class: "axis"}, title),
    svg("text", {x: left - 4, y: top + 8, "text-anchor": "end", class: "axis"}, num(high)),
    svg("text", {x: left - 4, y: bottom, "text-anchor": "end", class: "axis"}, num(low)),
    limitLines(lines, y, left, right));
  const drawn = points.map((p, i) => ({...p, cx: x(i)})).filter((p) => p.value !== null && p.value !== undefined);
  chart.append(svg("polyline", {points: drawn.map((p) => `${p.cx},${y(p.value)}`).join(" "), class: "series"}));
  for (const p of drawn) {
    const broken = mark && p.violations.length > 0;
    chart.append(svg("circle", {cx: p.cx, cy: y(p.value), r: broken ? 5 : 3.5, class: broken ? "point violation" : "point",
      "data-value": p.value, "data-rules": mark ? p.violations.join(" ") : ""},
    svg("title", {}, `${num(p.value)} at ${clock(Date.parse(p.ts), true)}${broken ? `\nrules broken: ${p.violations.join(", ")}` : ""}`)));
  }
  if (points.length > 1) {
    chart.append(svg("text", {x: left + 6, y: height - 4, class: "axis"}, clock(Date.parse(points[0].ts), true)),
      svg("text", {x: right - 6, y: height - 4, "text-anchor": "end", class: "axis"}, clock(Date.parse(points.at(-1).ts), true)));
  }
  return chart;
}

function statsLine(chart) {
  const broken = chart.points.filter((p) => p.violations.length).length;
  const parts = [`${chart.chart}`, `n ${chart.count}`, `mean ${num(chart.mean)}`, `σ ${num(chart.sigma)}`,
    `UCL ${num(chart.ucl)}`, `LCL ${num(chart.lcl)}`, `LSL ${num(chart.lower_spec)}`, `USL ${num(chart.upper_spec)}`,
    `Cp ${num(chart.cp)}`, `Cpk ${num(chart.cpk)}`];
  return el("p", {id: "spc-stats"}, parts.join(" · "), " · ",
    el("strong", {class: broken ? "error" : "ok"}, broken ? `${broken} point(s) break a rule` : "in control"),
    chart.dropped ? ` · ${chart.dropped} trailing value(s) did not fill a subgroup` : "");
}

function pickers(scope, rows, chosen, subgroup) {
  const select = el("select", {id: "characteristic", onchange: (event) => scope.pickCharacteristic(event.target.value)},
    rows.map((row) => el("option", {value: row.characteristic, selected: row.characteristic === chosen},
      `${row.characteristic} (${row.measured} measured${row.failed ? `, ${row.failed} failed` : ""}, last ${num(row.last_value)}${row.unit ? " " + row.unit : ""})`)));
  const size = el("select", {id: "subgroup", onchange: () => renderSpc(scope)},
    [1, 2, 3, 4, 5].map((n) => el("option", {value: n, selected: n === subgroup}, n === 1 ? "individuals (I-MR)" : `X-bar/R, n = ${n}`)));
  return el("p", {class: "pickers"}, el("label", {}, "characteristic ", select), " ", el("label", {}, "chart ", size));
}

/** The SPC panel of the scope: characteristics inspected there, the chosen one's chart. */
export async function renderSpc(scope) {
  const subgroup = Number(($("#subgroup") || {}).value || 1);
  const listed = await latest("spc-list", () => api(`/api/mes/characteristics?path=${q(scope.path)}&start=${q(scope.start)}`));
  if (!listed) return;
  const target = $("#spc");
  const measured = listed.rows.filter((row) => row.measured > 0);
  if (!measured.length) {
    target.replaceChildren(hint(`No measured inspections at ${scope.path} in this range: record one below or `,
      `POST /api/mes/events/${scope.cells[0] || "<cell>"}/mes/quality_inspection {"characteristic", "value", "lower_limit", "upper_limit"}.`));
    return;
  }
  const chosen = measured.some((row) => row.characteristic === scope.characteristic) ? scope.characteristic : measured[0].characteristic;
  const url = `/api/mes/spc?characteristic=${q(chosen)}&path=${q(scope.path)}&start=${q(scope.start)}&subgroup=${subgroup}`;
  let chart;
  try {
    chart = await latest("spc", () => api(url));
  } catch (error) {
    // keep the pickers: a subgroup larger than the data is fixed by choosing another
    target.replaceChildren(pickers(scope, measured, chosen, subgroup), el("p", {class: "error"}, error.message));
    return;
  }
  if (!chart) return;
  const individuals = chart.subgroup_size === 1;
  target.replaceChildren(pickers(scope, measured, chosen, subgroup),
    controlChart({points: chart.points, height: 250, mark: true, title: individuals ? "individuals" : "subgroup means",
      lines: [[chart.mean, "CL", "centre"], [chart.ucl, "UCL", "control"], [chart.lcl, "LCL", "control"],
        [chart.upper_spec, "USL", "spec"], [chart.lower_spec, "LSL", "spec"]]}),
    controlChart({points: chart.points.map((p) => ({...p, value: p.range})), height: 150, mark: false, floor: 0,
      title: individuals ? "moving range" : "range",
      lines: [[chart.range_center, "R̄", "centre"], [chart.range_ucl, "UCL", "control"], [chart.range_lcl, "LCL", "control"]]}),
    statsLine(chart));
}
