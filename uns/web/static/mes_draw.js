// Drawing helpers of the MES page: state colours (UMH catalog ranges), scales, a time axis, short labels.

import {el, svg} from "./lib.js";

// the catalog's ranges (uns/mes/states.py), with the colour each category gets everywhere on the page
const CATEGORIES = [
  [10000, 19999, "producing", "#2e9d5b"],
  [20000, 29999, "producing_reduced", "#8cc79b"],
  [30000, 39999, "unknown", "#b0b6c2"],
  [40000, 49999, "unspecified", "#e3b341"],
  [50000, 59999, "microstop", "#b58ad8"],
  [60000, 99999, "material", "#e8833a"],
  [100000, 139999, "process", "#4a8fd6"],
  [140000, 159999, "operator", "#47b5b0"],
  [160000, 179999, "planning", "#9db8d9"],
  [180000, 229999, "technical", "#d64545"],
];

/** The category of a state code ("unknown" outside every range, as the server says). */
export function category(code) {
  if (code === null || code === undefined) return "unknown";
  const found = CATEGORIES.find(([low, high]) => low <= code && code <= high);
  return found ? found[2] : "unknown";
}

/** The colour of a state code's category. */
export function stateColour(code) {
  const name = category(code);
  return CATEGORIES.find((entry) => entry[2] === name)[3];
}

/** A row of colour chips naming every category (planned downtime drawn faded). */
export function legend() {
  return el("p", {class: "legend"},
    CATEGORIES.map(([, , name, colour]) => el("span", {}, el("i", {style: `background:${colour}`}), name.replace("_", " "))),
    el("span", {}, el("i", {class: "planned"}), "planned downtime (faded)"));
}

/** A linear map from [d0, d1] to [r0, r1]; a flat domain maps to the middle. */
export function scale(d0, d1, r0, r1) {
  return (value) => (d1 === d0 ? (r0 + r1) / 2 : r0 + ((value - d0) * (r1 - r0)) / (d1 - d0));
}

const pad = (n) => String(n).padStart(2, "0");

/** A local clock time; with the date when the range spans more than a day. */
export function clock(ms, withDate = false) {
  const t = new Date(ms);
  const time = `${pad(t.getHours())}:${pad(t.getMinutes())}`;
  return withDate ? `${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${time}` : `${time}:${pad(t.getSeconds())}`;
}

/** The last level of an equipment path (the cell or line name). */
export const shortName = (path) => (path ? path.split("/").pop() : "");

/** A number with at most 4 significant digits, "–" for none. */
export const num = (value) => (value === null || value === undefined ? "–" : String(Number(value.toPrecision(4))));

const STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880];

/** Tick lines and labels of a time axis over [from, to] drawn at y (as SVG nodes). */
export function timeAxis(from, to, x, top, bottom) {
  const spanMin = (to - from) / 60_000;
  const step = (STEPS_MIN.find((m) => spanMin / m <= 8) || 2880) * 60_000;
  const offset = new Date(from).getTimezoneOffset() * 60_000;  // ticks on local round times
  const long = to - from > 86_400_000;
  const nodes = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) {
    nodes.push(svg("line", {x1: x(t), x2: x(t), y1: top, y2: bottom, class: "tick"}),
      svg("text", {x: x(t), y: bottom + 12, "text-anchor": "middle", class: "axis"}, long ? clock(t, true) : clock(t).slice(0, 5)));
  }
  return nodes;
}

/** An empty-state line: what is missing and what to do. */
export const hint = (...text) => el("p", {class: "hint"}, ...text);

/** Run a panel's loader, keeping only the latest answer per key (a slow old scope must not win). */
const tickets = new Map();
export async function latest(key, load) {
  const ticket = (tickets.get(key) || 0) + 1;
  tickets.set(key, ticket);
  const value = await load();
  return tickets.get(key) === ticket ? value : undefined;
}

/** Show an error in a panel instead of throwing (a failed view must not break the page). */
export function failed(target, error) {
  target.replaceChildren(el("p", {class: "error"}, error.message || String(error)));
}
