// Genealogy panel of the MES page: find a lot, see what went into it and where it went, drill down node by node.

import {$, api, el, valueText} from "./lib.js";
import {clock, hint, latest, num, shortName} from "./mes_draw.js";

const q = encodeURIComponent;
let scopeNow = null;  // the scope of the last render, for the search box's listener
let crumbs = [];  // roots drilled through, oldest first: the way back
let searchTimer = null;

function startSearch() {
  if (startSearch.done) return;
  startSearch.done = true;
  $("#lot-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadList(scopeNow).catch((error) => $("#lot-list").replaceChildren(el("li", {class: "error"}, error.message))), 250);
  });
  $("#lot-search").addEventListener("keydown", (event) => {
    // Enter opens the typed id as it is: raw lots are never "made" in scope, but they can be traced
    if (event.key === "Enter" && event.target.value.trim()) open(event.target.value.trim());
  });
}

/** A lot picked from the list or typed: a fresh trace, no way back. */
function open(lot) {
  crumbs = [];
  scopeNow.openLot(lot);
}

function drill(lot) {
  if (lot === scopeNow.lot) return;
  crumbs.push(scopeNow.lot);
  scopeNow.openLot(lot);
}

async function loadList(scope) {
  const text = $("#lot-search").value.trim();
  const url = `/api/mes/lots?path=${q(scope.path)}&start=${q(scope.start)}&q=${q(text)}&limit=20`;
  const answer = await latest("lot-list", () => api(url));
  if (!answer) return;
  $("#lot-list").replaceChildren(...answer.rows.map((row) =>
    el("li", {}, el("button", {type: "button", class: row.lot_id === scope.lot ? "lot active" : "lot", "data-lot": row.lot_id,
      onclick: () => open(row.lot_id)}, row.lot_id),
    ` ${row.product_id || ""} · ${num(row.quantity)} ${row.unit || ""} · ${row.order_id || "no order"} · ${shortName(row.path)} · ${clock(Date.parse(row.ts), true)}`)));
  if (!answer.rows.length) {
    $("#lot-list").replaceChildren(el("li", {class: "hint"}, text ? `No lot matching "${text}" made at ${scope.path} in this range; press Enter to trace "${text}" anyway.` :
      `No lots made at ${scope.path} in this range: lots come from POST /api/mes/events/<cell>/mes/lot_production {"lot_id", "product_id", "quantity", "input_lots": [{"lot_id"}]}.`));
  }
}

function describe(node) {
  const what = node.product_id || node.material_id || "";
  const failedCount = node.inspections.filter((i) => i.result === "fail").length;
  const cells = [...new Set([...node.made_at, ...node.consumed_at])].map(shortName).join(", ");
  return [what, node.quantity === null ? "" : `${num(node.quantity)} ${node.unit || ""}`, node.order_id ? `order ${node.order_id}` : "",
    cells ? `at ${cells}` : "", node.inspections.length ? `${node.inspections.length} inspection(s)${failedCount ? `, ${failedCount} failed` : ""}` : ""]
    .filter(Boolean).join(" · ");
}

/** The trace as nested lists from the root; a lot reached twice (shared input) is expanded once. */
function tree(doc, direction) {
  const byId = Object.fromEntries(doc.nodes.map((node) => [node.lot_id, node]));
  const next = {};
  for (const edge of doc.edges) {
    const [from, to] = direction === "backward" ? [edge.lot_id, edge.input_lot_id] : [edge.input_lot_id, edge.lot_id];
    (next[from] ||= []).push({lot: to, edge});
  }
  const seen = new Set();
  const build = (lot, edge) => {
    const node = byId[lot];
    const used = edge && (edge.quantity !== null || edge.material_id) ? ` (${[edge.material_id, edge.quantity === null ? "" : num(edge.quantity)].filter(Boolean).join(" ")})` : "";
    const item = el("li", {"data-lot": lot},
      el("button", {type: "button", class: lot === doc.root ? "lot root" : "lot", title: "make this lot the root", onclick: () => drill(lot)}, lot),
      el("span", {class: "node"}, ` ${node ? describe(node) : ""}${used}`));
    if (seen.has(lot)) {
      item.append(el("span", {class: "hint"}, " (expanded above)"));
      return item;
    }
    seen.add(lot);
    const children = next[lot] || [];
    if (children.length) item.append(el("ul", {}, children.map((child) => build(child.lot, child.edge))));
    return item;
  };
  const notes = [doc.truncated ? "deeper levels not shown" : "", doc.cycles.length ? `${doc.cycles.length} input(s) closing a cycle not followed (bad data)` : ""].filter(Boolean);
  return el("div", {class: `trace ${direction}`},
    el("h3", {}, direction === "backward" ? "Made from (backward)" : "Went into (forward)"),
    el("ul", {class: "lot-tree"}, build(doc.root, null)),
    next[doc.root] ? "" : hint(direction === "backward" ? "no input lots recorded" : "not used in any recorded lot"),
    notes.length ? hint(notes.join("; ")) : "");
}

function crumbBar(scope) {
  return el("nav", {id: "lot-crumbs"}, crumbs.flatMap((lot, index) => [
    el("button", {type: "button", class: "crumb", onclick: () => {
      crumbs = crumbs.slice(0, index);
      scope.openLot(lot);
    }}, lot), " › "]), el("strong", {id: "lot-root"}, scope.lot));
}

function inspections(node) {
  if (!node.inspections.length) return hint("No inspections name this lot (quality_inspection with lot_id).");
  return el("table", {class: "lot-inspections"},
    el("thead", {}, el("tr", {}, ["time", "cell", "characteristic", "value", "result", "defect"].map((h) => el("th", {}, h)))),
    el("tbody", {}, node.inspections.map((i) => el("tr", {class: i.result},
      el("td", {}, clock(Date.parse(i.ts), true)), el("td", {}, shortName(i.path)), el("td", {}, i.characteristic),
      el("td", {}, num(i.value)), el("td", {}, i.result), el("td", {}, i.defect_type || "")))));
}

async function processValues(lot) {
  try {
    const answer = await api(`/api/mes/process-values?lot=${q(lot)}`);
    if (!answer.rows.length) return hint("No historian samples at the cells that made this lot.");
    return el("table", {class: "process-values"},
      el("thead", {}, el("tr", {}, ["cell", "metric", "samples", "min", "avg", "max", "at creation"].map((h) => el("th", {}, h)))),
      el("tbody", {}, answer.rows.map((row) => el("tr", {},
        el("td", {}, shortName(row.path)), el("td", {}, `${row.metric}${row.unit ? ` (${row.unit})` : ""}`), el("td", {}, row.samples),
        el("td", {}, num(row.min)), el("td", {}, num(row.avg)), el("td", {}, num(row.max)), el("td", {}, valueText({value: row.at_creation}))))));
  } catch (error) {
    return hint(`Process values: ${error.message}`);
  }
}

/** The genealogy panel: the lot list of the scope, and the chosen lot's trees and details. */
export async function renderLots(scope) {
  scopeNow = scope;
  startSearch();
  await loadList(scope);
  const target = $("#lots");
  if (!scope.lot) {
    target.replaceChildren(hint("Pick a lot above (or type its id and press Enter) to see what went into it and where it went."));
    return;
  }
  const lot = q(scope.lot);
  const answers = await latest("lots", () => Promise.all([
    api(`/api/mes/genealogy?lot=${lot}&direction=backward`), api(`/api/mes/genealogy?lot=${lot}&direction=forward`), processValues(scope.lot)]));
  if (!answers) return;
  const [backward, forward, values] = answers;
  const root = backward.nodes[0];
  const made = root.created ? `made ${clock(Date.parse(root.created), true)} at ${root.made_at.join(", ")}` : "not made by a recorded lot_production (a raw or bought-in lot)";
  target.replaceChildren(crumbBar(scope), el("p", {class: "lot-summary"}, `${describe(root)} · ${made}`),
    el("div", {class: "traces"}, tree(backward, "backward"), tree(forward, "forward")),
    el("h3", {}, "Inspections of this lot"), inspections(root),
    el("h3", {}, "Process values while it was made"), values);
}
