// Operator input of the MES page: downtime reason, inspection, clock on/off, material; the same MES events as the API.

import {$, duration, el, post, refusal} from "./lib.js";
import {clock, shortName} from "./mes_draw.js";

const NUMBERS = ["value", "lower_limit", "upper_limit", "quantity"];
let shownCells = "";
let chosenCell = "";

function eventBody(form) {
  const data = Object.fromEntries(new FormData(form));
  const now = Date.now();
  const body = {timestamp_ms: now, source: "web"};
  if (form.dataset.event === "downtime_reason") {
    // an interval picked on the timeline is exact; otherwise "minutes ago"
    body.start_ms = data.start_ms ? Number(data.start_ms) : now - Number(data.from_min) * 60_000;
    body.end_ms = data.end_ms ? Number(data.end_ms) : now - Number(data.to_min) * 60_000;
    body.reason_code = data.reason_code;
  } else {
    for (const [key, value] of Object.entries(data)) {
      if (key === "cell" || value === "") continue;
      body[key] = NUMBERS.includes(key) ? Number(value) : value;
    }
  }
  return [data.cell, body];
}

function clearInterval_() {
  const form = $("#reason");
  form.elements.start_ms.value = "";
  form.elements.end_ms.value = "";
  $("#reason-interval").textContent = "";
}

/** Wire the forms once; ``onStored`` runs after an event is stored (to refresh the views). */
export function setupForms(onStored) {
  for (const form of document.querySelectorAll("form.event")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const [cell, body] = eventBody(form);
      const reply = await post(`/api/mes/events/${cell}/mes/${form.dataset.event}`, body);
      $("#form-result").textContent = reply.ok ? `${form.dataset.event} ${reply.body.status}` : `refused (${reply.status}): ${refusal(reply)}`;
      $("#form-result").className = reply.ok ? "ok" : "error";
      if (reply.ok && form.id === "reason") clearInterval_();
      if (reply.ok) onStored();
    });
  }
  // typing minutes means the timeline's interval no longer applies
  for (const name of ["from_min", "to_min"]) $("#reason").elements[name].addEventListener("input", clearInterval_);
}

/** Offer every cell in the forms' selects; preselect the scope's cell when it changes. */
export function fillCells(cells, scopeCell) {
  const key = cells.join("\n");
  if (key !== shownCells) {
    shownCells = key;
    for (const select of document.querySelectorAll("select.cells")) {
      const keep = select.value;
      select.replaceChildren(...cells.map((cell) => el("option", {value: cell}, cell)));
      if (cells.includes(keep)) select.value = keep;
    }
  }
  if (scopeCell && scopeCell !== chosenCell) {
    for (const select of document.querySelectorAll("select.cells")) select.value = scopeCell;
  }
  chosenCell = scopeCell;
}

/** A stop clicked on the timeline: the reason form takes its cell and exact interval. */
export function prefillReason({path, start, end, state}) {
  const form = $("#reason");
  form.elements.cell.value = path;
  form.elements.start_ms.value = String(start);
  form.elements.end_ms.value = String(end);
  form.elements.from_min.value = String(Math.max(0, Math.ceil((Date.now() - start) / 60_000)));
  form.elements.to_min.value = String(Math.max(0, Math.floor((Date.now() - end) / 60_000)));
  $("#reason-interval").textContent =
    `${shortName(path)}: ${clock(start)} → ${clock(end)} (${duration((end - start) / 1000)}, state ${state})`;
  form.scrollIntoView({block: "center"});
  form.elements.reason_code.focus();
}
