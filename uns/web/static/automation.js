// Automation page: computed tags and rules with their live state (GET /api/automation), and the YAML editor:
// save (checked, written into the settings file, reloaded), test on current values, replay history, enable/disable.

import {$, api, can, el, post, valueText} from "./lib.js";

const REFRESH_MS = 2000;
const SUGGEST_MS = 150;
const TOKEN = /[A-Za-z0-9_\-/+#.]/;
let timer = null;
let editing = null; // {kind, key}: the item in the editor (key null: a new one)
let suggestAt = 0;
let editable = false; // the hub has a settings file to write to (uns up --config)

const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const KINDS = {transforms: "computed tag", rules: "rule"};

const NEW_TAG = `name: Computed/NewTag
path: acme/dallas/bottling/line1/filler
expression: round(x, 2)
inputs:
  x: 
unit: 
description: ""
`;
const NEW_RULE = `name: new-rule
trigger: {kind: value, topic: , above: 80, hysteresis: 2, for_s: 30}
actions:
  - {kind: alarm, path: "\${path}", name: new-alarm, priority: 500, message: "value \${value}"}
`;

const mayEdit = () => can("write") && editable;

function rowButtons(kind, item) {
  if (!mayEdit()) return [el("button", {type: "button", class: "view", onclick: () => openEditor(kind, item)}, "View")];
  return [
    el("button", {type: "button", class: "edit", onclick: () => openEditor(kind, item)}, "Edit"),
    el("button", {type: "button", class: "toggle", onclick: () => toggle(kind, item)}, item.enabled ? "Disable" : "Enable"),
  ];
}

function tagRow(tag) {
  const status = tag.status || {};
  const value = tag.enabled ? `${valueText(tag)}${tag.unit && tag.value !== null ? ` ${tag.unit}` : ""}` : "disabled";
  return el("tr", {"data-key": tag.key, class: tag.enabled ? "" : "disabled"},
    el("td", {class: "name", title: tag.description || tag.topic}, tag.topic),
    el("td", {}, el("code", {}, tag.expression)),
    el("td", {class: "value"}, value),
    el("td", {class: "quality"}, tag.quality || ""),
    el("td", {class: "time"}, when(tag.timestamp_ms)),
    el("td", {class: "evaluations"}, String(status.evaluations ?? "–")),
    el("td", {class: "errors"}, String(status.errors ?? "–")),
    el("td", {class: "error"}, status.last_error || status.reason || ""),
    el("td", {}, rowButtons("transforms", tag)));
}

function ruleRow(rule) {
  const s = rule.stats;
  return el("tr", {"data-key": rule.key, class: rule.enabled ? "" : "disabled"},
    el("td", {class: "name"}, rule.name, rule.enabled ? "" : " (disabled)"),
    el("td", {}, rule.trigger),
    el("td", {}, rule.actions.join(", ")),
    el("td", {class: "fired"}, String(s.fired)),
    el("td", {}, String(s.cleared)),
    el("td", {}, String(s.skipped)),
    el("td", {class: "errors"}, String(s.errors)),
    el("td", {}, when(s.last_fired_ms)),
    el("td", {class: "error"}, s.last_error || ""),
    el("td", {}, rowButtons("rules", rule)));
}

const empty = (columns, text) => el("tr", {}, el("td", {colspan: String(columns), class: "hint"}, text));

async function render() {
  let answer;
  try {
    answer = await api("/api/automation");
  } catch (error) {
    // `uns web` alone has no rules or computed tags: they run in `uns up`
    $("#automation-note").hidden = false;
    $("#automation-note").textContent = error.status === 404 ? "Rules and computed tags run in uns up, not in this process." : error.message;
    for (const id of ["#new-tag", "#new-rule"]) $(id).hidden = true;
    return null;
  }
  const note = answer.note || (answer.rules_running ? "" : "The rules do not run in this process.");
  $("#automation-note").hidden = !note;
  $("#automation-note").textContent = note || "";
  editable = answer.editable;
  for (const id of ["#new-tag", "#new-rule"]) $(id).hidden = !mayEdit();
  const tags = answer.transforms.map(tagRow);
  $("#tag-list tbody").replaceChildren(...(tags.length ? tags : [empty(9, "No computed tags.")]));
  const rules = answer.rules.map(ruleRow);
  $("#rule-list tbody").replaceChildren(...(rules.length ? rules : [empty(10, "No rules.")]));
  $("#editor-replay").disabled = !answer.replay;
  return answer;
}

function openEditor(kind, item) {
  editing = {kind, key: item ? item.key : null};
  $("#editor").hidden = false;
  $("#editor-title").textContent = item ? `${KINDS[kind]} ${item.key}` : `New ${KINDS[kind]}`;
  $("#editor-yaml").value = item ? item.yaml : kind === "transforms" ? NEW_TAG : NEW_RULE;
  $("#editor-yaml").readOnly = !can("write");
  $("#editor-save").hidden = !mayEdit();
  $("#editor-delete").hidden = !mayEdit() || !item || !item.in_file;
  showProblems([]);
  $("#editor-result").replaceChildren();
  $("#suggestions").hidden = true;
  $("#editor-yaml").focus();
}

function showProblems(problems) {
  $("#editor-yaml").classList.toggle("invalid", problems.length > 0);
  $("#editor-problems").replaceChildren(...problems.map((p) => el("li", {"data-field": p.field || ""},
    el("span", {class: "where"}, [p.line ? `line ${p.line}` : "", p.field].filter(Boolean).join(" · ")),
    p.line || p.field ? ": " : "", p.message)));
}

function refused(reply) {
  const problems = reply.body.problems && reply.body.problems.length ? reply.body.problems :
    [{field: "", line: null, message: reply.status === 403 ? `not allowed: ${reply.body.error || ""}` : reply.body.error || `HTTP ${reply.status}`}];
  showProblems(problems);
  $("#editor-result").replaceChildren(el("p", {class: "error"}, reply.body.error || `refused (HTTP ${reply.status})`));
}

function applied(reply, what) {
  showProblems([]);
  $("#editor-result").replaceChildren(el("p", {class: "ok"}, `${what}: ${reply.body.changes.join(", ")}`));
}

async function save() {
  const reply = await post("/api/automation/save", {kind: editing.kind, key: editing.key, yaml: $("#editor-yaml").value});
  if (!reply.ok) return refused(reply);
  editing.key = reply.body.key;
  $("#editor-title").textContent = `${KINDS[editing.kind]} ${editing.key}`;
  applied(reply, "saved and applied");
  await render();
}

async function toggle(kind, item) {
  const reply = await post("/api/automation/enable", {kind, key: item.key, enabled: !item.enabled});
  $("#automation-note").hidden = reply.ok;
  if (!reply.ok) $("#automation-note").textContent = reply.body.error || `HTTP ${reply.status}`;
  await render();
}

async function remove() {
  if (!editing.key) return;
  const reply = await post("/api/automation/delete", {kind: editing.kind, key: editing.key});
  if (!reply.ok) return refused(reply);
  applied(reply, "deleted");
  editing.key = null;
  await render();
}

const firingItem = (f) => el("li", {}, `${when(f.at_ms)}: ${f.phase === "clear" ? "clears" : f.acted ? "fires" : "skipped"}`,
  f.topic ? ` on ${f.topic}` : "", f.value !== null && f.value !== undefined ? ` (value ${JSON.stringify(f.value)})` : "",
  f.note ? ` — ${f.note}` : "");

function ruleSummary(result, replay) {
  const fires = result.firings.filter((f) => f.phase === "fire" && f.acted);
  const times = fires.slice(0, 10).map((f) => when(f.at_ms)).join(", ");
  const lead = replay ?
    `This rule would have fired ${result.fired} time${result.fired === 1 ? "" : "s"}${result.fired ? `: at ${times}${result.fired > 10 ? ", …" : ""}` : ""}.` :
    result.fired ? `It would fire now (${result.fired}×), on the current values of ${result.topics} topic(s).` :
    `It would not fire on the current values of ${result.topics} topic(s).`;
  const more = `${result.messages} message(s) read; cleared ${result.cleared}, skipped by the condition ${result.skipped}, errors ${result.errors}` +
    (result.last_error ? ` (${result.last_error})` : "") + (result.cut ? "; the stretch was cut at its limit" : "");
  return [el("p", {class: "summary"}, lead), el("p", {class: "hint"}, more), el("ol", {}, result.firings.map(firingItem))];
}

function tagSummary(result, replay) {
  const last = result.points.length ? result.points[result.points.length - 1] : null;
  const missing = result.missing.length ? [el("p", {class: "error"}, `no value yet for ${result.missing.join(", ")}`)] : [];
  const error = result.last_error ? [el("p", {class: "error"}, `last error: ${result.last_error}`)] : [];
  if (!replay) {
    const text = last ? `Result now: ${valueText({value: last[1]})} (${last[2]})${result.reason ? `: ${result.reason}` : ""}` : "No result.";
    return [el("p", {class: "summary"}, text), ...missing, ...error];
  }
  const range = result.minimum !== null ? `, from ${valueText({value: result.minimum})} to ${valueText({value: result.maximum})}` : "";
  return [el("p", {class: "summary"}, `${result.results} result(s) over ${result.messages} input message(s)${range}; ${result.errors} error(s).`),
    ...missing, ...error,
    el("ol", {}, result.points.slice(-10).map((p) => el("li", {}, `${when(p[0])}: ${valueText({value: p[1]})} (${p[2]})`)))];
}

async function run(path, extra = {}) {
  const replay = path.endsWith("replay");
  $("#editor-result").replaceChildren(el("p", {class: "hint"}, replay ? "replaying…" : "testing…"));
  const reply = await post(path, {kind: editing.kind, yaml: $("#editor-yaml").value, ...extra});
  if (!reply.ok) return refused(reply);
  showProblems([]);
  const body = reply.body;
  $("#editor-result").replaceChildren(...(editing.kind === "rules" ? ruleSummary(body, replay) : tagSummary(body, replay)));
}

// -- topic autocomplete from the live tree (GET /api/search) ------------------------------------------

function tokenAt(text, caret) {
  let start = caret;
  while (start > 0 && TOKEN.test(text[start - 1])) start -= 1;
  let end = caret;
  while (end < text.length && TOKEN.test(text[end])) end += 1;
  return {start, end, text: text.slice(start, caret)};
}

async function suggest() {
  const area = $("#editor-yaml");
  const token = tokenAt(area.value, area.selectionStart);
  const list = $("#suggestions");
  if (area.readOnly || token.text.length < 3 || !/[/_]|[A-Z]/.test(token.text)) {
    list.hidden = true;
    return;
  }
  const asked = ++suggestAt;
  const found = await api(`/api/search?q=${encodeURIComponent(token.text)}&limit=12`);
  if (asked !== suggestAt) return; // a later keystroke asked again
  const topics = found.topics.map((info) => info.topic).filter((topic) => topic !== token.text);
  list.replaceChildren(...topics.map((topic) => el("li", {"data-topic": topic, onmousedown: (event) => {
    event.preventDefault(); // keep the caret in the text
    take(topic);
  }}, topic)));
  list.hidden = topics.length === 0;
}

function take(topic) {
  const area = $("#editor-yaml");
  const token = tokenAt(area.value, area.selectionStart);
  area.value = area.value.slice(0, token.start) + topic + area.value.slice(token.end);
  area.selectionStart = area.selectionEnd = token.start + topic.length;
  $("#suggestions").hidden = true;
  area.focus();
}

let suggestTimer = null;
function wire() {
  if ($("#editor-yaml").dataset.wired) return;
  $("#editor-yaml").dataset.wired = "1";
  $("#editor-yaml").addEventListener("input", () => {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(suggest, SUGGEST_MS);
  });
  $("#editor-yaml").addEventListener("keydown", (event) => {
    const first = $("#suggestions li");
    if (event.key === "Tab" && first && !$("#suggestions").hidden) {
      event.preventDefault();
      take(first.dataset.topic);
    } else if (event.key === "Escape") {
      $("#suggestions").hidden = true;
    }
  });
  $("#new-tag").addEventListener("click", () => openEditor("transforms", null));
  $("#new-rule").addEventListener("click", () => openEditor("rules", null));
  $("#editor-save").addEventListener("click", save);
  $("#editor-test").addEventListener("click", () => run("/api/automation/test"));
  $("#editor-replay").addEventListener("click", () => run("/api/automation/replay", {hours: Number($("#replay-hours").value)}));
  $("#editor-delete").addEventListener("click", remove);
  $("#editor-close").addEventListener("click", () => { $("#editor").hidden = true; editing = null; });
}

/** Show the page and refresh the lists while it is open. */
export async function loadAutomation() {
  clearInterval(timer);
  wire();
  await render();
  timer = setInterval(() => {
    if ($("#automation").hidden) clearInterval(timer);
    else render();
  }, REFRESH_MS);
}
