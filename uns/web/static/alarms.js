// Alarms page: the rules' alarms (GET /api/alarms), acknowledge (POST /api/alarms/ack), and their history.

import {$, api, can, el, post, refusal} from "./lib.js";

const REFRESH_MS = 2000;
let timer = null;

const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const stateText = (alarm) =>
  alarm.state === "active" ? (alarm.acknowledged ? "active, acknowledged" : "ACTIVE") :
  alarm.state === "cleared" ? "cleared, not acknowledged" : alarm.state;

async function acknowledge(alarm) {
  const reply = await post("/api/alarms/ack", {path: alarm.path, name: alarm.name});
  $("#alarm-result").textContent = reply.ok ? `acknowledged ${alarm.path}/alarm/${alarm.name}` : refusal(reply);
  await render();
}

function row(alarm) {
  const button = !alarm.acknowledged && can("mes-event") ?
    el("button", {type: "button", class: "ack", onclick: () => acknowledge(alarm)}, "Acknowledge") : "";
  return el("tr", {"data-topic": `${alarm.path}/alarm/${alarm.name}`, class: `${alarm.state}${alarm.acknowledged ? " acked" : ""}`},
    el("td", {class: "priority"}, String(alarm.priority)),
    el("td", {}, alarm.path),
    el("td", {class: "name"}, alarm.name),
    el("td", {class: "state"}, stateText(alarm)),
    el("td", {}, alarm.message),
    el("td", {}, when(alarm.raised_ms)),
    el("td", {class: "acked-by"}, alarm.acked_by ? `${alarm.acked_by}, ${when(alarm.acked_ms)}` : "–"),
    el("td", {}, button));
}

function historyRow(change) {
  return el("tr", {},
    el("td", {}, when(change.timestamp_ms)),
    el("td", {}, change.path),
    el("td", {}, change.name),
    el("td", {}, `${change.state}${change.acknowledged ? ", acknowledged" : ""}`),
    el("td", {}, change.acked_by || ""));
}

async function render() {
  const answer = await api("/api/alarms");
  const rows = answer.alarms.map(row);
  $("#alarm-list tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", {colspan: "8", class: "hint"}, "No alarms."))]));
  try {
    const history = await api("/api/alarms/history?limit=50");
    $("#alarm-history tbody").replaceChildren(...history.rows.map(historyRow));
  } catch (error) {
    $("#alarm-history tbody").replaceChildren(el("tr", {}, el("td", {colspan: "5", class: "hint"}, error.message)));
  }
}

/** Show the page and refresh it while it is open. */
export async function loadAlarms() {
  clearInterval(timer);
  await render();
  timer = setInterval(() => {
    if ($("#alarms").hidden) clearInterval(timer);
    else render();
  }, REFRESH_MS);
}
