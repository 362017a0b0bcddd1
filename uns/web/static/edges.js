// Edges page: the fleet of `uns edge` agents (GET /api/fleet/agents), their versions, and deploy / roll back
// (POST /api/fleet/deploy, /api/fleet/rollback), each sent first as a dry run whose diff the user confirms.

import {$, ago, api, can, el, post, refusal} from "./lib.js";

const REFRESH_MS = 2000;
const ALL = "*all*";
let timer = null;
let shownVersions = null; // the agent whose versions are open

const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const number = (value, unit = "") => (value === null || value === undefined ? "–" : `${Math.round(value * 10) / 10}${unit}`);

function stateCell(agent) {
  const text = agent.online ? `online, ${agent.status}` : agent.status;
  return el("td", {class: `state ${agent.online ? (agent.status === "failed" ? "failed" : "online") : "offline"}`}, text);
}

function reportedCell(agent) {
  const reported = agent.reported;
  if (!reported) return el("td", {class: "reported"}, "–");
  return el("td", {class: `reported${agent.in_sync ? "" : " out-of-sync"}`}, reported.version ? `v${reported.version}` : "none",
    reported.reason ? el("span", {class: "reason"}, reported.reason) : "");
}

function row(agent) {
  const health = agent.health || {};
  const desired = agent.desired;
  const history = el("a", {href: "#edges", class: "versions", onclick: (event) => {
    event.preventDefault();
    showVersions(agent.agent);
  }}, "versions");
  return el("tr", {"data-agent": agent.agent},
    el("td", {class: "agent"}, agent.agent, agent.account && agent.account.state !== "none" ? ` (${agent.account.state})` : ""),
    stateCell(agent),
    el("td", {class: "desired"}, desired ? `v${desired.version}` : "–", desired ? ` by ${desired.author}` : ""),
    reportedCell(agent),
    el("td", {class: "buffer"}, number(health.buffer_depth)),
    el("td", {class: "latency"}, number(health.read_latency_ms, " ms")),
    el("td", {class: "errors"}, number(health.errors)),
    el("td", {class: "last-read"}, health.last_seen_ms ? ago(health.last_seen_ms, Date.now()) : "–"),
    el("td", {class: "bridges"}, health.bridges === undefined ? "–" : `${health.bridges_online}/${health.bridges} online`),
    el("td", {class: "problems"}, el("ul", {},
      agent.problems.slice(0, 3).map((problem) => el("li", {}, `${when(problem.time_ms)}: ${problem.text}`)))),
    el("td", {}, history, " ", revokeButton(agent)));
}

function revokeButton(agent) {
  const state = agent.account ? agent.account.state : "none";
  if (!can("write") || (state !== "pending" && state !== "enrolled")) return "";
  return el("button", {type: "button", class: "revoke", onclick: () => confirmThen(
    `Revoke ${agent.agent}: its broker account is refused from now on and its connections are dropped`,
    [el("p", {class: "hint"}, "Its versions stay; enrol it again to admit it.")],
    async () => {
      const done = await post("/api/fleet/revoke", {agent: agent.agent});
      $("#edge-result").textContent = done.ok ? `revoked ${agent.agent}` : refusal(done);
    })}, "Revoke");
}

function fillTargets(agents) {
  const select = $("#edge-deploy select[name=to]");
  const chosen = select.value;
  const options = [...agents.map((agent) => el("option", {value: agent.agent}, agent.agent)), el("option", {value: ALL}, "all agents")];
  select.replaceChildren(...options);
  if (chosen) select.value = chosen;
}

async function render() {
  const answer = await api("/api/fleet/agents");
  const rows = answer.agents.map(row);
  $("#edge-list tbody").replaceChildren(...(rows.length ? rows :
    [el("tr", {}, el("td", {colspan: "11", class: "hint"}, "No edge agents yet: deploy to one, or start uns edge --id ID."))]));
  fillTargets(answer.agents);
  const stopped = answer.rollouts.find((rollout) => rollout.state === "stopped");
  if (stopped && !$("#edge-result").textContent) $("#edge-result").textContent = `staged rollout stopped: ${stopped.reason}`;
  if (shownVersions) await showVersions(shownVersions);
}

async function showVersions(agent) {
  shownVersions = agent;
  const answer = await api(`/api/fleet/agents/${encodeURIComponent(agent)}/versions`);
  $("#edge-versions-title").textContent = `Versions of ${agent}`;
  const latest = answer.versions.length ? answer.versions[0].version : null;
  $("#edge-versions tbody").replaceChildren(...answer.versions.map((version) => el("tr", {"data-version": String(version.version)},
    el("td", {}, `v${version.version}`),
    el("td", {}, version.hash.slice(0, 12)),
    el("td", {}, version.author),
    el("td", {}, when(version.time_ms)),
    el("td", {}, version.note),
    el("td", {}, can("write") && version.version !== latest ?
      el("button", {type: "button", class: "rollback", onclick: () => review("rollback", {agent, to: version.version})},
        `Roll back to v${version.version}`) : ""))));
  $("#edge-versions").hidden = false;
}

function diffView(diff) {
  if (!diff) return el("p", {class: "hint"}, "No change.");
  return el("pre", {class: "diff"}, diff.split("\n").map((line) =>
    el("span", {class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : ""},
      `${line}\n`)));
}

/** Send ``body`` as a dry run, show the diff per agent, and send it for real only once confirmed. */
async function review(action, body) {
  const reply = await post(`/api/fleet/${action}`, {...body, dry_run: true});
  if (!reply.ok) {
    $("#edge-result").textContent = reply.body.problems ? `${reply.body.error}: ${reply.body.problems.join("; ")}` : refusal(reply);
    return;
  }
  const what = action === "rollback" ? `Roll ${body.agent} back to v${body.to}` : `Deploy to ${reply.body.agents.map((a) => a.agent).join(", ")}`;
  const diffs = reply.body.agents.map((agent) => el("div", {class: "agent-diff", "data-agent": agent.agent},
    el("h4", {}, agent.agent), diffView(agent.diff)));
  confirmThen(`${what}: review the changes`, diffs, async () => {
    const done = await post(`/api/fleet/${action}`, body);
    $("#edge-result").textContent = done.ok ?
      (done.body.staged ? `staged: v${done.body.staged.version} to ${done.body.staged.first} first` :
        `published ${done.body.deployed.map((v) => `${v.agent} v${v.version}`).join(", ")}`) : refusal(done);
  });
}

/** Show ``title`` and ``content``; ``go`` runs only on Confirm. */
function confirmThen(title, content, go) {
  $("#edge-confirm-title").textContent = title;
  $("#edge-diffs").replaceChildren(...content);
  $("#edge-confirm").hidden = false;
  $("#edge-confirm-go").onclick = async () => {
    $("#edge-confirm").hidden = true;
    await go();
    await render();
  };
  $("#edge-confirm-cancel").onclick = () => {
    $("#edge-confirm").hidden = true;
    $("#edge-result").textContent = "cancelled: nothing was changed";
  };
}

async function submitEnrol(event) {
  event.preventDefault();
  const form = event.target;
  const labels = Object.fromEntries(form.elements.namedItem("labels").value.split(/[\s,]+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    return at > 0 ? [pair.slice(0, at), pair.slice(at + 1)] : [pair, ""];
  }));
  const done = await post("/api/fleet/enrol", {agent: form.elements.namedItem("agent").value.trim(), labels});
  $("#edge-result").replaceChildren(done.ok ?
    el("span", {}, `${done.body.agent}: run uns edge --id ${done.body.agent} --enrol-token `,
      el("code", {class: "token"}, done.body.token), " (shown once)") : refusal(done));
  if (done.ok) form.reset();
  await render();
}

async function submitDeploy(event) {
  event.preventDefault();
  const form = event.target;
  const target = form.elements.namedItem("to").value;
  const body = {config_yaml: form.config.value, note: form.note.value, staged: form.staged.checked};
  if (target === ALL) body.all = true;
  else body.agents = [target];
  $("#edge-result").textContent = "";
  await review("deploy", body);
}

/** Show the page and refresh it while it is open. */
export async function loadEdges() {
  clearInterval(timer);
  $("#edge-deploy").onsubmit = submitDeploy;
  $("#edge-enrol").onsubmit = submitEnrol;
  await render();
  timer = setInterval(() => {
    if ($("#edges").hidden) clearInterval(timer);
    else render();
  }, REFRESH_MS);
}
