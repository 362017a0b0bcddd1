// The Sparkplug page: every edge node and device as the host application tracks them.

import {$, api, el} from "./lib.js";

/** Fill the table of edge nodes and devices. */
export async function loadSparkplug() {
  const answer = await api("/api/sparkplug/nodes");
  const stamp = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
  const body = [];
  for (const node of answer.nodes) {
    body.push(el("tr", {}, el("td", {}, node.group_id), el("td", {}, node.edge_node_id), el("td", {}, node.online ? "online" : "offline"), el("td", {}, node.bd_seq ?? "–"), el("td", {}, stamp(node.last_birth_ms)), el("td", {}, node.births)));
    for (const device of node.devices) {
      body.push(el("tr", {class: "device"}, el("td", {}, ""), el("td", {}, `↳ ${device.device_id}`), el("td", {}, device.online ? "online" : "offline"), el("td", {}, ""), el("td", {}, stamp(device.last_birth_ms)), el("td", {}, device.births)));
    }
  }
  $("#nodes tbody").replaceChildren(...body);
}
