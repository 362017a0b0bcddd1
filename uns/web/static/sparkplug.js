// The Sparkplug page: every edge node and device as the hub tracks them, a rebirth request per edge
// node (for roles that may), and a node's or device's latest birth and data, decoded by topic.

import {$, api, can, el, post, refusal, valueText} from "./lib.js";

const REFRESH_MS = 3000;
const BIRTH_WAIT_MS = 15_000;
let refreshTimer = null;
let latest = []; // the last /api/sparkplug/nodes answer's nodes

const stamp = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
const dash = (value) => (value === null || value === undefined ? "–" : String(value));

/** online/offline, and "degraded" with what the hub refused past a bound (hover for the reasons). */
function statusCell(node) {
  const state = node.online ? "online" : "offline";
  const reasons = Object.entries(node.degraded || {}).map(([what, why]) => `${what}: ${why}`);
  if (!reasons.length) return el("td", {class: node.online ? "ok" : "error"}, state);
  return el("td", {class: "error degraded", title: reasons.join("\n")}, `${state}, degraded`);
}

function nodeRow(node) {
  const button = can("rebirth")
    ? el("button", {type: "button", class: "rebirth", "data-needs": "rebirth", onclick: (event) => rebirth(node, event)}, "Rebirth")
    : "";
  const row = el("tr", {class: "node", "data-node": `${node.group_id}/${node.edge_node_id}`},
    el("td", {}, node.group_id), el("td", {}, node.edge_node_id),
    statusCell(node),
    el("td", {}, dash(node.bd_seq)), el("td", {}, dash(node.last_seq)), el("td", {}, stamp(node.last_birth_ms)),
    el("td", {class: "births"}, node.births), el("td", {}, node.rebirths), el("td", {}, node.stale_deaths),
    el("td", {}, button));
  row.addEventListener("click", () => showMessages(node.group_id, node.edge_node_id, null));
  return row;
}

function deviceRow(node, device) {
  const row = el("tr", {class: "device", "data-device": `${node.group_id}/${node.edge_node_id}/${device.device_id}`},
    el("td", {}, ""), el("td", {}, `↳ ${device.device_id}`),
    el("td", {class: device.online ? "ok" : "error"}, device.online ? "online" : "offline"),
    el("td", {}, ""), el("td", {}, ""), el("td", {}, stamp(device.last_birth_ms)),
    el("td", {class: "births"}, device.births), el("td", {}, device.rebirths), el("td", {}, ""), el("td", {}, ""));
  row.addEventListener("click", () => showMessages(node.group_id, node.edge_node_id, device.device_id));
  return row;
}

/** The page for a role that may not read raw Sparkplug: the server's reason (what grants it) instead of the table. */
function refused(error) {
  latest = [];
  $("#hosts").textContent = "";
  $("#nodes tbody").replaceChildren(el("tr", {}, el("td", {colspan: 10, class: "error refused"}, error.message)));
}

async function refresh() {
  let answer;
  try {
    answer = await api("/api/sparkplug/nodes");
  } catch (error) {
    if (error.status !== 403) throw error;
    refused(error);
    return false;
  }
  latest = answer.nodes;
  const body = answer.nodes.flatMap((node) => [nodeRow(node), ...node.devices.map((device) => deviceRow(node, device))]);
  if (!body.length) body.push(el("tr", {}, el("td", {colspan: 10, class: "hint"}, "no Sparkplug edge node seen yet")));
  $("#nodes tbody").replaceChildren(...body);
  const hosts = answer.hosts.map((host) => `${host.host_id} ${host.online ? "online" : "offline"}`);
  $("#hosts").textContent = hosts.length ? `host applications (STATE): ${hosts.join(", ")}` : "no host application STATE seen";
  return true;
}

/** Ask an edge node to rebirth, then watch its births count go up. */
async function rebirth(node, event) {
  event.stopPropagation();
  const button = event.currentTarget;
  const result = $("#rebirth-result");
  const before = node.births;
  button.disabled = true;
  try {
    const reply = await post("/api/sparkplug/rebirth", {group: node.group_id, node: node.edge_node_id});
    if (!reply.ok) {
      result.className = "error";
      result.textContent = `rebirth refused (${reply.status}): ${refusal(reply)}`;
      return;
    }
    result.className = "";
    result.textContent = `rebirth requested on ${reply.body.topic}: waiting for a new NBIRTH…`;
    const deadline = Date.now() + BIRTH_WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      await refresh();
      const now = latest.find((each) => each.group_id === node.group_id && each.edge_node_id === node.edge_node_id);
      if (now && now.births > before) {
        result.className = "ok";
        result.textContent = `new NBIRTH from ${node.group_id}/${node.edge_node_id}: births ${before} → ${now.births}`;
        return;
      }
    }
    result.className = "error";
    result.textContent = `no NBIRTH from ${node.group_id}/${node.edge_node_id} within ${BIRTH_WAIT_MS / 1000} s`;
  } finally {
    button.disabled = false;
  }
}

/** The latest birth and data of a node (NBIRTH, NDATA) or device (DBIRTH, DDATA), decoded by the server. */
async function showMessages(group, node, device) {
  const detail = $("#sp-detail");
  const kinds = device === null ? ["NBIRTH", "NDATA"] : ["DBIRTH", "DDATA"];
  const title = device === null ? `${group}/${node}` : `${group}/${node}/${device}`;
  const parts = await Promise.all(kinds.map((kind) => messageTable(`spBv1.0/${group}/${kind}/${node}${device === null ? "" : `/${device}`}`, kind)));
  detail.replaceChildren(el("h3", {}, title), ...parts);
  detail.hidden = false;
}

async function messageTable(topic, kind) {
  let answer;
  try {
    answer = await api(`/api/topic?topic=${encodeURIComponent(topic)}&max_bytes=65536`);
  } catch (error) {
    if (error.status === 404) return el("p", {class: "hint"}, `${kind}: none seen yet on ${topic}`);
    throw error;
  }
  const heading = el("h4", {}, kind, " ", el("span", {class: "hint"}, topic));
  if (answer.encoding !== "sparkplug") {
    return el("div", {class: kind.toLowerCase()}, heading, el("p", {class: "error"}, answer.error || "not decoded"));
  }
  const body = answer.payload;
  const summary = `seq ${dash(body.seq)} · ${stamp(body.timestamp)} · ${answer.metrics_total} metrics${answer.truncated ? " (first ones shown)" : ""}`;
  const table = el("table", {class: "metrics"},
    el("tr", {}, el("th", {}, "metric"), el("th", {}, "alias"), el("th", {}, "datatype"), el("th", {}, "value")),
    ...body.metrics.map((metric) => el("tr", {},
      el("td", {}, metric.name ?? "(alias only)"), el("td", {}, dash(metric.alias)), el("td", {}, dash(metric.datatype)),
      el("td", {}, metric.is_null ? "null" : valueText({value: metric.value})))));
  const problems = answer.problems.length ? el("p", {class: "error"}, answer.problems.map((p) => JSON.stringify(p)).join("; ")) : "";
  return el("div", {class: kind.toLowerCase()}, heading, el("p", {class: "hint"}, summary), table, problems);
}

/** Fill the table and keep it fresh while the page is shown. */
export async function loadSparkplug() {
  if (!(await refresh())) return; // refused: nothing to keep fresh
  if (refreshTimer) return;
  refreshTimer = setInterval(() => {
    if ($("#sparkplug").hidden) {
      clearInterval(refreshTimer);
      refreshTimer = null;
    } else {
      refresh();
    }
  }, REFRESH_MS);
}
