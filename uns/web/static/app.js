// uns-hub topic browser and MES dashboards: plain ES modules, no build step.
// Everything comes from the hub's JSON APIs; live values arrive as batched Server-Sent Events.

const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const answer = await fetch(path, {credentials: "same-origin", ...options});
  if (answer.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.hash)}`);
    throw new Error("signed out");
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(body.error || `${path}: HTTP ${answer.status}`);
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)} %`);
const valueText = (info) => {
  if (!info || info.value === null || info.value === undefined) return "";
  return typeof info.value === "number" && !Number.isInteger(info.value) ? String(Number(info.value.toPrecision(6))) : String(info.value);
};

// -- who am I -------------------------------------------------------------------------------------

async function showUser() {
  const me = await api("/api/me");
  $("#who").textContent = me.anonymous ? `not signed in: role ${me.role}` : `${me.user} (${me.role})`;
  if (me.warning) document.body.prepend(el("p", {class: "banner", id: "anonymous"}, me.warning));
}

// -- tabs ------------------------------------------------------------------------------------------

const loaders = {topics: () => {}, sparkplug: loadSparkplug, mes: loadMes};

function showTab() {
  const name = (location.hash || "#topics").slice(1);
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== name;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.tab === name);
  (loaders[name] || (() => {}))();
}

// -- topic tree --------------------------------------------------------------------------------------

const rows = new Map(); // topic -> the <li> showing it, for live updates

function nodeItem(node) {
  const label = el("span", {class: "name"}, node.name || "(empty)");
  const meta = el("span", {class: "meta"}, node.is_topic && node.children === 0 ? `${node.messages} msgs` : `${node.topics} topics`);
  const value = el("span", {class: `value ${node.topic?.quality || ""}`}, valueText(node.topic));
  const item = el("li", {"data-path": node.path}, label, value, meta);
  const children = el("ul", {class: "tree", hidden: ""});
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

$("#search").addEventListener("input", async (event) => {
  const text = event.target.value.trim();
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
});

// -- one topic: payload, history chart, table ---------------------------------------------------------

let currentTopic = null;
const ranges = {"15 min": ["-15m", "10s"], "1 h": ["-1h", "1m"], "1 day": ["-1d", "15m"], "7 days": ["-7d", "1h"], "30 days": ["-30d", "6h"]};

async function showTopic(topic) {
  currentTopic = topic;
  const answer = await api(`/api/topic?topic=${encodeURIComponent(topic)}&max_bytes=4096`);
  const copy = el("button", {type: "button", onclick: () => navigator.clipboard?.writeText(topic)}, "copy path");
  const payload = typeof answer.payload === "string" ? answer.payload : JSON.stringify(answer.payload, null, 2);
  const detail = $("#detail");
  detail.replaceChildren(
    el("h3", {}, topic, " ", copy),
    el("p", {}, `${answer.size} bytes, ${answer.encoding}`, answer.info.retained ? ", retained" : "", ` · value `, el("span", {id: "live-value"}, valueText(answer.info) || "(see payload)")),
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

// -- Sparkplug -------------------------------------------------------------------------------------------

async function loadSparkplug() {
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

// -- MES -------------------------------------------------------------------------------------------------

async function loadMes() {
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
  if (!select.childElementCount) {
    select.replaceChildren(...lines.map((line) => el("option", {value: line}, line)));
    select.addEventListener("change", () => loadPareto(select.value));
  }
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

for (const form of document.querySelectorAll("form.event")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [cell, body] = eventBody(form);
    const answer = await fetch(`/api/mes/events/${cell}/mes/${form.dataset.event}`, {
      method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const reply = await answer.json().catch(() => ({}));
    const detail = reply.detail ? reply.detail.map((d) => `${d.field}: ${d.reason}`).join("; ") : reply.error;
    $("#form-result").textContent = answer.ok ? `${form.dataset.event} ${reply.status}` : `refused (${answer.status}): ${detail || ""}`;
    $("#form-result").className = answer.ok ? "ok" : "error";
    if (answer.ok) loadMes();
  });
}

// -- start -----------------------------------------------------------------------------------------------

window.addEventListener("hashchange", showTab);
await showUser();
showTab();
await loadRoots();
follow();
