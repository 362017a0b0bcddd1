// The Topics page: a lazy, paged live tree over the server's last-value cache, filters, search,
// one topic's decoded payload beside its raw bytes, its history, and a test-message form.
// Only rows in expanded branches exist in the DOM, and the live stream follows only those.

import {$, ago, api, can, count, el, fromBase64, hexDump, liveStream, post, refusal, valueText} from "./lib.js";

const PAGE = 200; // rows per page of children ("show more" loads the next)
const SEARCH_ROWS = 100;
const MAX_WATCHED = 200; // the server's limit on followed nodes and topics per stream
const TAU_MS = 10_000; // the server's rate time constant: shown rates decay between updates

const rows = new Map(); // path -> {item, node, at}: every row shown, for live updates and the age ticker
const expanded = new Set(); // tree nodes whose children are shown: the stream follows their children
let searchTopics = []; // topics shown as search results: the stream follows them one by one
let currentTopic = null;
let stream = null;
let rewatchTimer = null;
let skewMs = 0; // server clock minus ours, so ages and rates use the server's "now"
let lastServerMs = 0;

const serverNow = () => Date.now() + skewMs;

function heardFrom(nowMs) {
  if (!nowMs) return;
  skewMs = nowMs - Date.now();
  lastServerMs = Math.max(lastServerMs, nowMs);
}

// -- filters -----------------------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  if ($("#filter-class").value) params.set("class", $("#filter-class").value);
  if ($("#filter-problems").checked) params.set("quality", "problem");
  if ($("#filter-changed").value) params.set("changed_s", $("#filter-changed").value);
  return params;
}

// -- rows --------------------------------------------------------------------------------------------

const decayed = (rate, atMs) => rate * Math.exp(-Math.max(0, serverNow() - atMs) / TAU_MS);
const rateText = (rate) => (rate >= 10 ? rate.toFixed(0) : rate >= 0.01 ? rate.toFixed(2) : "0");

function metaText(node, rate) {
  const leaf = node.is_topic && node.children === 0;
  const counts = leaf ? `${count(node.topic.count)} msgs` : `${count(node.topics)} topics · ${count(node.messages)} msgs`;
  return `${counts} · ${rateText(rate)}/s`;
}

/** Put a node's numbers into its row (on creation and on every live update). */
function fillRow(row, node, atMs) {
  row.node = node;
  row.at = atMs;
  const {item} = row;
  const info = node.topic;
  const value = item.querySelector(":scope > .value");
  value.textContent = valueText(info);
  value.className = `value ${info?.quality || ""}`;
  item.querySelector(":scope > .quality").textContent = info?.quality && info.quality !== "good" ? info.quality : "";
  item.querySelector(":scope > .problems").textContent = node.problems && !node.is_topic ? `⚠ ${count(node.problems)} stale/bad` : "";
  tickRow(row);
  if (currentTopic === node.path && $("#live-value")) $("#live-value").textContent = valueText(info) || "(see payload)";
}

/** Age and decaying rate: the only texts that change without a message. */
function tickRow(row) {
  const {item, node, at} = row;
  const meta = metaText(node, decayed(node.rate, at));
  const metaNode = item.querySelector(":scope > .meta");
  if (metaNode.textContent !== meta) metaNode.textContent = meta;
  const age = ago(node.last_ms, serverNow());
  const ageNode = item.querySelector(":scope > .age");
  if (ageNode.textContent !== age) ageNode.textContent = age;
}

function nodeRow(node, atMs, label = node.name) {
  const twisty = el("span", {class: "twisty"}, node.children > 0 ? "▸" : "");
  const item = el("li", {"data-path": node.path}, twisty, el("span", {class: "name"}, label || "(empty)"),
    el("span", {class: "value"}), el("span", {class: "quality"}), el("span", {class: "problems"}),
    el("span", {class: "meta"}), el("span", {class: "age"}));
  const row = {item, node, at: atMs};
  rows.set(node.path, row);
  fillRow(row, node, atMs);
  twisty.addEventListener("click", (event) => {
    event.stopPropagation();
    if (row.node.children > 0) toggle(row);
  });
  item.querySelector(".name").addEventListener("click", (event) => {
    event.stopPropagation();
    if (row.node.is_topic) showTopic(node.path);
    if (row.node.children > 0) toggle(row);
  });
  return item;
}

async function toggle(row) {
  const {item, node} = row;
  const list = item.querySelector(":scope > ul");
  if (list) {
    forget(node.path);
    list.remove();
    item.querySelector(".twisty").textContent = "▸";
  } else {
    const started = performance.now();
    const children = el("ul", {class: "tree"});
    item.append(children);
    item.querySelector(".twisty").textContent = "▾";
    expanded.add(node.path);
    await loadPage(node.path, children);
    performance.measure("uns:expand", {start: started, end: performance.now()}); // read by the scale test
  }
  rewatch();
}

/** Drop a collapsed branch's rows and stop following it. */
function forget(prefix) {
  const under = `${prefix}/`;
  for (const path of [...expanded]) if (path === prefix || path.startsWith(under)) expanded.delete(path);
  for (const path of [...rows.keys()]) if (path.startsWith(under)) rows.delete(path);
}

/** One page of children at the end of `list`, then a "show more (N more)" row if there are more. */
async function loadPage(prefix, list, after = null) {
  const params = filterParams();
  params.set("prefix", prefix);
  params.set("limit", PAGE);
  if (after !== null) params.set("after", after);
  const generation = list.dataset.generation;
  const answer = await api(`/api/tree?${params}`);
  heardFrom(answer.now_ms);
  // a reload (filter, search) or a collapse came first: this answer is for a list no longer shown
  if (!list.isConnected || list.dataset.generation !== generation) return answer;
  list.querySelector(":scope > li.more")?.remove();
  list.append(...answer.children.map((node) => nodeRow(node, answer.now_ms)));
  if (answer.more > 0) {
    const last = answer.children.at(-1).name;
    const more = el("li", {class: "more"}, el("button", {type: "button"}, `show more (${count(answer.more)} more)`));
    more.querySelector("button").addEventListener("click", () => loadPage(prefix, list, last));
    list.append(more);
  }
  return answer;
}

async function loadRoots() {
  for (const path of [...rows.keys()]) rows.delete(path);
  expanded.clear();
  expanded.add(""); // the root's children (enterprise ids, spBv1.0, ...) are always shown
  searchTopics = [];
  const started = performance.now();
  const tree = $("#tree");
  tree.replaceChildren();
  tree.dataset.generation = Number(tree.dataset.generation || 0) + 1;
  await loadPage("", tree);
  performance.measure("uns:roots", {start: started, end: performance.now()});
  rewatch();
}

async function search(text) {
  if (!text) return loadRoots();
  const params = filterParams();
  params.set("q", text);
  params.set("limit", SEARCH_ROWS);
  const started = performance.now();
  const found = await api(`/api/search?${params}`);
  if ($("#search").value.trim() !== text) return; // a later keystroke owns the list now
  $("#tree").dataset.generation = Number($("#tree").dataset.generation || 0) + 1;
  heardFrom(found.now_ms);
  for (const path of [...rows.keys()]) rows.delete(path);
  expanded.clear();
  searchTopics = found.topics.map((info) => info.topic);
  const asNode = (info) => ({name: info.topic, path: info.topic, topics: 1, messages: info.count, rate: info.rate,
    problems: 0, last_ms: info.last_ms, children: 0, is_topic: true, topic: info});
  const items = found.topics.map((info) => nodeRow(asNode(info), found.now_ms, info.topic));
  if (found.more) {
    // more: past the rows shown, or a filtered search that stopped looking before its matches ran out
    const hint = found.topics.length >= SEARCH_ROWS ? `more than ${SEARCH_ROWS} found` : "more names may match";
    items.push(el("li", {class: "more hint"}, `${hint}: type more of the name`));
  }
  if (!found.topics.length) items.push(el("li", {class: "hint"}, "nothing found"));
  $("#tree").replaceChildren(...items);
  performance.measure("uns:search", {start: started, end: performance.now()}); // read by the scale test
  rewatch();
}

// -- the live stream: follows exactly the rows shown ----------------------------------------------------

function rewatch() {
  clearTimeout(rewatchTimer);
  rewatchTimer = setTimeout(openStream, 150); // one reconnect for a burst of clicks
}

function openStream() {
  const params = new URLSearchParams();
  for (const path of expanded) params.append("watch", path);
  const topics = new Set(searchTopics);
  if (currentTopic) topics.add(currentTopic);
  for (const topic of [...topics].slice(0, MAX_WATCHED - expanded.size)) params.append("topic", topic);
  if (lastServerMs) params.set("since", lastServerMs - 1000); // what changed while we switched streams
  stream?.close();
  stream = liveStream(`/api/stream?${params}`, {nodes: applyNodes}, $("#live"));
}

function applyNodes(batch) {
  heardFrom(batch.now_ms);
  for (const node of batch.nodes) {
    const row = rows.get(node.path);
    if (row) fillRow(row, node, batch.now_ms);
  }
}

function tickAges() {
  for (const row of rows.values()) tickRow(row);
  const age = $("#topic-age");
  const shown = rows.get(currentTopic)?.node;
  if (age && shown) age.textContent = ago(shown.last_ms, serverNow());
}

// -- one topic: decoded payload and raw bytes, history ------------------------------------------------

const SHOWN_BYTES = 4096;

export async function showTopic(topic) {
  currentTopic = topic;
  const publishTopic = $("#publish input[name=topic]");
  if (publishTopic) publishTopic.value = topic;
  const answer = await api(`/api/topic?topic=${encodeURIComponent(topic)}&max_bytes=${SHOWN_BYTES}&raw=base64`);
  const copy = el("button", {type: "button", id: "copy-path", onclick: () => copyPath(topic)}, "copy path");
  const payload = typeof answer.payload === "string" ? answer.payload : JSON.stringify(answer.payload, null, 2);
  const info = answer.info;
  const detail = $("#detail");
  detail.replaceChildren(
    el("h3", {}, topic, " ", copy, " ", el("span", {id: "copied", class: "ok"})),
    el("p", {}, `${count(answer.size)} bytes, ${answer.encoding}`, info.retained ? ", retained" : "",
      ` · ${count(info.count)} msgs · value `, el("span", {id: "live-value"}, valueText(info) || "(see payload)"),
      info.quality ? ` · ${info.quality}` : "", " · updated ", el("span", {id: "topic-age"}, ago(info.last_ms, serverNow()))),
    el("div", {class: "inspect"},
      el("div", {}, el("h4", {}, "decoded"), el("pre", {id: "payload"}, payload)),
      el("div", {}, el("h4", {}, "raw (hex)"), el("pre", {id: "hex", class: "hex"}, hexDump(fromBase64(answer.raw_base64))))),
  );
  if (answer.error) detail.append(el("p", {class: "error"}, answer.error));
  if (answer.truncated || answer.raw_truncated) {
    const shownBytes = Math.min(answer.max_bytes, answer.size);
    detail.append(el("p", {class: "truncated"}, `… truncated: showing ${count(shownBytes)} of ${count(answer.size)} bytes`));
  }
  if (typeof info.value === "number" && /\/(data|kpi)\//.test(topic)) {
    const buttons = el("p", {class: "ranges"}, ...Object.keys(ranges).map((name) => el("button", {type: "button", onclick: () => drawHistory(topic, name)}, name)));
    detail.append(el("h4", {}, "History"), buttons, el("div", {id: "chart"}), el("table", {id: "history"}));
    drawHistory(topic, "1 h");
  }
  rewatch();
}

async function copyPath(topic) {
  try {
    await navigator.clipboard.writeText(topic);
    $("#copied").textContent = "copied";
  } catch {
    $("#copied").textContent = "copy refused by the browser: select the title";
  }
}

const ranges = {"15 min": ["-15m", "10s"], "1 h": ["-1h", "1m"], "1 day": ["-1d", "15m"], "7 days": ["-7d", "1h"], "30 days": ["-30d", "6h"]};

async function drawHistory(topic, rangeName) {
  const [start, bucket] = ranges[rangeName];
  const answer = await api(`/api/history/aggregate?topic=${encodeURIComponent(topic)}&start=${start}&bucket=${bucket}&agg=avg,min,max&fill=none`);
  const points = answer.rows.filter((row) => row.avg !== null);
  const chart = $("#chart");
  if (!chart) return;
  if (!points.length) {
    chart.replaceChildren(el("p", {class: "hint"}, "no history in this range"));
    return;
  }
  const times = points.map((row) => Date.parse(row.start));
  const lows = points.map((row) => row.min ?? row.avg);
  const highs = points.map((row) => row.max ?? row.avg);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const [v0, v1] = [Math.min(...lows), Math.max(...highs)];
  const x = (t) => (t1 === t0 ? 500 : ((t - t0) / (t1 - t0)) * 1000);
  const y = (v) => (v1 === v0 ? 100 : 190 - ((v - v0) / (v1 - v0)) * 180);
  const at = (index, v) => `${x(times[index]).toFixed(1)},${y(v).toFixed(1)}`;
  const line = points.map((row, index) => at(index, row.avg)).join(" ");
  // the min..max band shows what averaging hides (spikes, chatter) at long ranges
  const band = [...highs.map((v, index) => at(index, v)), ...lows.map((v, index) => at(index, v)).reverse()].join(" ");
  const stamp = (ms) => new Date(ms).toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
  const label = (v) => valueText({value: v});
  chart.innerHTML = `<div class="chart-frame"><div class="y-axis"><span>${label(v1)}</span><span>${label(v0)}</span></div>
    <svg class="chart" viewBox="0 0 1000 200" preserveAspectRatio="none" role="img" aria-label="history">
    <polygon fill="#2d6cdf22" stroke="none" points="${band}"/>
    <polyline fill="none" stroke="#2d6cdf" stroke-width="2" vector-effect="non-scaling-stroke" points="${line}"/></svg></div>
    <div class="x-axis"><span>${stamp(t0)}</span><span>${stamp(t1)}</span></div>
    <p class="hint">${rangeName}: ${points.length} buckets of ${answer.bucket}; line: average, band: min … max (${label(v0)} … ${label(v1)})</p>`;
  $("#history").replaceChildren(
    el("tr", {}, el("th", {}, "start"), el("th", {}, "avg"), el("th", {}, "min"), el("th", {}, "max")),
    ...points.slice(-20).map((row) => el("tr", {}, el("td", {}, row.start), ...[row.avg, row.min, row.max].map((v) => el("td", {}, valueText({value: v}))))),
  );
}

// -- publish a test message ---------------------------------------------------------------------------

async function publish(event) {
  event.preventDefault();
  const form = event.target;
  const body = {topic: form.topic.value.trim(), payload: form.payload.value, qos: Number(form.qos.value), retain: form.retain.checked};
  const result = $("#publish-result");
  const reply = await post("/api/publish", body);
  result.className = reply.ok ? "ok" : "error";
  result.textContent = reply.ok
    ? `published ${count(reply.body.bytes)} bytes on ${reply.body.topic} (qos ${reply.body.qos}${reply.body.retain ? ", retained" : ""})`
    : `refused (${reply.status}): ${refusal(reply)}`;
}

/** Open the tree down to `path` (a topic or a branch), mark it and show it: links from other pages land here. */
export async function reveal(path) {
  await started;
  if ($("#search").value) {
    $("#search").value = "";
    await loadRoots();
  }
  const levels = path.split("/");
  let row = null;
  for (let depth = 1; depth <= levels.length; depth++) {
    row = rows.get(levels.slice(0, depth).join("/"));
    if (!row) break;
    if (depth < levels.length && !row.item.querySelector(":scope > ul")) await toggle(row);
  }
  if (!row) {
    // past the first page of some level: the search finds it wherever it is
    $("#search").value = path;
    await search(path);
    row = rows.get(path);
  }
  for (const marked of document.querySelectorAll("#tree li.selected")) marked.classList.remove("selected");
  row?.item.classList.add("selected");
  row?.item.scrollIntoView({block: "center"});
  if (row?.node.is_topic) await showTopic(path);
}

/** Start the Topics page: the tree's first level, search, filters, the live stream and the age ticker. */
export async function startTopics() {
  let typing = null;
  const reload = () => {
    clearTimeout(typing);
    return search($("#search").value.trim());
  };
  $("#search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(reload, 120); // one request per pause in typing
  });
  for (const id of ["#filter-class", "#filter-problems", "#filter-changed"]) $(id).addEventListener("change", reload);
  if (can("publish")) $("#publish").addEventListener("submit", publish);
  setInterval(tickAges, 1000);
  await loadRoots();
  ready();
}

let ready;
const started = new Promise((resolve) => { ready = resolve; });

/** The Topics tab was opened; `#topics?topic=<path>` opens the tree at that path. */
export function loadTopics() {
  const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("topic");
  if (wanted) reveal(wanted);
}
