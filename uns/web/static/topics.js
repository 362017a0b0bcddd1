// The Topics page: the live tree (lazy, from the server's last-value cache), search, one topic's payload and history.

import {$, api, el, valueText} from "./lib.js";

const rows = new Map(); // topic -> the <li> showing it, for live updates
let currentTopic = null;

function nodeItem(node) {
  const label = el("span", {class: "name"}, node.name || "(empty)");
  const meta = el("span", {class: "meta"}, node.is_topic && node.children === 0 ? `${node.messages} msgs` : `${node.topics} topics`);
  const value = el("span", {class: `value ${node.topic?.quality || ""}`}, valueText(node.topic));
  const item = el("li", {"data-path": node.path}, label, value, meta);
  const children = el("ul", {class: "tree", hidden: true});
  item.append(children);
  if (node.is_topic) rows.set(node.path, item);
  label.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (node.is_topic) showTopic(node.path);
    if (node.children > 0) {
      if (children.hidden && !children.childElementCount) await loadChildren(node.path, children);
      children.hidden = !children.hidden;
    }
  });
  return item;
}

async function loadChildren(prefix, list) {
  const answer = await api(`/api/tree?prefix=${encodeURIComponent(prefix)}`);
  list.replaceChildren(...answer.children.map(nodeItem));
}

async function loadRoots() {
  const answer = await api("/api/tree?prefix=");
  // the root node's children are the first topic levels (enterprise ids, spBv1.0, ...)
  $("#tree").replaceChildren(...answer.children.map(nodeItem));
}

function follow() {
  const stream = new EventSource("/api/stream?prefix=");
  stream.addEventListener("updates", (event) => {
    for (const update of JSON.parse(event.data).updates) {
      const item = rows.get(update.topic);
      if (!item) continue;
      const value = item.querySelector(".value");
      if (value) {
        value.textContent = valueText(update);
        value.className = `value ${update.quality || ""}`;
      }
      const meta = item.querySelector(".meta");
      if (meta) meta.textContent = `${update.count} msgs`;
      const live = $("#live-value");
      if (live && currentTopic === update.topic) live.textContent = valueText(update) || "(see payload)";
    }
  });
}

async function search(text) {
  if (!text) return loadRoots();
  const found = await api(`/api/search?q=${encodeURIComponent(text)}&limit=200`);
  $("#tree").replaceChildren(
    ...found.topics.map((info) => {
      const item = el("li", {"data-path": info.topic}, el("span", {class: "name"}, info.topic), el("span", {class: "value"}, valueText(info)));
      item.addEventListener("click", () => showTopic(info.topic));
      rows.set(info.topic, item);
      return item;
    }),
  );
}

// -- one topic: payload, history chart, table ---------------------------------------------------------

const ranges = {"15 min": ["-15m", "10s"], "1 h": ["-1h", "1m"], "1 day": ["-1d", "15m"], "7 days": ["-7d", "1h"], "30 days": ["-30d", "6h"]};

export async function showTopic(topic) {
  currentTopic = topic;
  const answer = await api(`/api/topic?topic=${encodeURIComponent(topic)}&max_bytes=4096`);
  const copy = el("button", {type: "button", onclick: () => navigator.clipboard?.writeText(topic)}, "copy path");
  const payload = typeof answer.payload === "string" ? answer.payload : JSON.stringify(answer.payload, null, 2);
  const detail = $("#detail");
  detail.replaceChildren(
    el("h3", {}, topic, " ", copy),
    el("p", {}, `${answer.size} bytes, ${answer.encoding}`, answer.info.retained ? ", retained" : "", " · value ", el("span", {id: "live-value"}, valueText(answer.info) || "(see payload)")),
    el("pre", {id: "payload"}, payload),
  );
  if (answer.truncated) detail.append(el("p", {class: "truncated"}, `… truncated: showing ${answer.max_bytes} of ${answer.size} bytes`));
  if (typeof answer.info.value === "number" && /\/(data|kpi)\//.test(topic)) {
    const buttons = el("p", {class: "ranges"}, ...Object.keys(ranges).map((name) => el("button", {type: "button", onclick: () => drawHistory(topic, name)}, name)));
    detail.append(el("h4", {}, "History"), buttons, el("div", {id: "chart"}), el("table", {id: "history"}));
    drawHistory(topic, "1 h");
  }
}

async function drawHistory(topic, rangeName) {
  const [start, bucket] = ranges[rangeName];
  const answer = await api(`/api/history/aggregate?topic=${encodeURIComponent(topic)}&start=${start}&bucket=${bucket}&agg=avg,min,max&fill=none`);
  const points = answer.rows.filter((row) => row.avg !== null);
  const chart = $("#chart");
  if (!points.length) {
    chart.replaceChildren(el("p", {class: "hint"}, "no history in this range"));
    return;
  }
  const times = points.map((row) => Date.parse(row.start));
  const values = points.map((row) => row.avg);
  const [t0, t1] = [Math.min(...times), Math.max(...times) || 1];
  const [v0, v1] = [Math.min(...values), Math.max(...values)];
  const x = (t) => (t1 === t0 ? 500 : ((t - t0) / (t1 - t0)) * 1000);
  const y = (v) => (v1 === v0 ? 100 : 190 - ((v - v0) / (v1 - v0)) * 180);
  const line = points.map((row, index) => `${x(times[index]).toFixed(1)},${y(values[index]).toFixed(1)}`).join(" ");
  chart.innerHTML = `<svg class="chart" viewBox="0 0 1000 200" preserveAspectRatio="none" role="img" aria-label="history of ${topic}">
    <polyline fill="none" stroke="#2d6cdf" stroke-width="2" points="${line}"/></svg>
    <p class="hint">${rangeName}: ${points.length} buckets of ${answer.bucket}, ${v0.toFixed(2)} … ${v1.toFixed(2)}</p>`;
  $("#history").replaceChildren(
    el("tr", {}, el("th", {}, "start"), el("th", {}, "avg"), el("th", {}, "min"), el("th", {}, "max")),
    ...points.slice(-20).map((row) => el("tr", {}, el("td", {}, row.start), ...[row.avg, row.min, row.max].map((v) => el("td", {}, valueText({value: v}))))),
  );
}

/** Start the Topics page: the tree's first level, search, and the live stream. */
export async function startTopics() {
  $("#search").addEventListener("input", (event) => search(event.target.value.trim()));
  await loadRoots();
  follow();
}
