// The MES page: OEE now, downtime Pareto, order progress, and the operator forms (the same MES events as the API).

import {$, api, el, percent, post, refusal} from "./lib.js";

let started = false;

/** Fill (and refresh) the MES page. */
export async function loadMes() {
  if (!started) start();
  const current = await api("/api/mes/current");
  $("#oee tbody").replaceChildren(
    ...current.rows.map((row) =>
      el("tr", {"data-path": row.path}, el("td", {}, row.path), el("td", {}, row.state_name || "–"), el("td", {}, row.order_id || "–"),
        el("td", {}, percent(row.oee.availability)), el("td", {}, percent(row.oee.performance)), el("td", {}, percent(row.oee.quality)), el("td", {class: "oee"}, percent(row.oee.oee)))),
  );
  const lines = current.rows.filter((row) => row.kind === "line").map((row) => row.path);
  const cells = current.rows.filter((row) => row.kind === "cell").map((row) => row.path);
  for (const select of document.querySelectorAll("select.cells")) {
    if (!select.childElementCount) select.replaceChildren(...cells.map((cell) => el("option", {value: cell}, cell)));
  }
  const select = $("#line");
  if (!select.childElementCount) select.replaceChildren(...lines.map((line) => el("option", {value: line}, line)));
  if (lines.length) await loadPareto(select.value || lines[0]);
  const orders = await api("/api/mes/orders");
  $("#orders tbody").replaceChildren(
    ...orders.rows.map((row) => el("tr", {}, el("td", {}, row.order_id), el("td", {}, row.line), el("td", {}, row.status), el("td", {}, row.quantity ?? "–"), el("td", {}, row.good), el("td", {}, row.scrap), el("td", {}, percent(row.percent_complete === null ? null : row.percent_complete / 100)))),
  );
}

async function loadPareto(line) {
  const answer = await api(`/api/mes/downtime?path=${encodeURIComponent(line)}&start=-8h`);
  const longest = Math.max(1, ...answer.rows.map((row) => row.duration_s));
  $("#pareto").replaceChildren(
    ...answer.rows.map((row) =>
      el("div", {}, el("span", {class: "bar", style: `width:${(300 * row.duration_s) / longest}px`}), `${row.text || row.reason}: ${Math.round(row.duration_s)} s (${row.count})`)),
  );
  if (!answer.rows.length) $("#pareto").append(el("p", {class: "hint"}, "no downtime in the last 8 hours"));
}

// -- operator input: the same MES events as the API ----------------------------------------------------

function eventBody(form) {
  const data = Object.fromEntries(new FormData(form));
  const now = Date.now();
  const body = {timestamp_ms: now, source: "web"};
  if (form.dataset.event === "downtime_reason") {
    body.start_ms = now - Number(data.from_min) * 60_000;
    body.end_ms = now - Number(data.to_min) * 60_000;
    body.reason_code = data.reason_code;
  } else {
    for (const [key, value] of Object.entries(data)) {
      if (key === "cell" || value === "") continue;
      body[key] = ["value", "lower_limit", "upper_limit", "quantity"].includes(key) ? Number(value) : value;
    }
  }
  return [data.cell, body];
}

function start() {
  started = true;
  $("#line").addEventListener("change", (event) => loadPareto(event.target.value));
  for (const form of document.querySelectorAll("form.event")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const [cell, body] = eventBody(form);
      const reply = await post(`/api/mes/events/${cell}/mes/${form.dataset.event}`, body);
      $("#form-result").textContent = reply.ok ? `${form.dataset.event} ${reply.body.status}` : `refused (${reply.status}): ${refusal(reply)}`;
      $("#form-result").className = reply.ok ? "ok" : "error";
      if (reply.ok) loadMes();
    });
  }
}
