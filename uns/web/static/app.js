// uns-hub topic browser and MES dashboards: plain ES modules, no build step.
// Everything comes from the hub's JSON APIs; live values arrive as batched Server-Sent Events.

import {loadAlarms} from "./alarms.js";
import {loadAutomation} from "./automation.js";
import {loadEdges} from "./edges.js";
import {loadSession} from "./lib.js";
import {loadMes} from "./mes.js";
import {loadPlant} from "./plant.js";
import {loadSparkplug} from "./sparkplug.js";
import {loadTopics, startTopics} from "./topics.js";

const loaders = {
  plant: loadPlant, topics: loadTopics, sparkplug: loadSparkplug, mes: loadMes, alarms: loadAlarms, automation: loadAutomation,
  edges: loadEdges,
};

function showTab() {
  const name = (location.hash || "#plant").slice(1).split("?")[0];
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== name;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.tab === name);
  (loaders[name] || (() => {}))();
}

/** Pages kept in their own HTML file (data-partial) are loaded once, before any module fills them. */
async function loadPartials() {
  await Promise.all([...document.querySelectorAll("[data-partial]")].map(async (section) => {
    const answer = await fetch(section.dataset.partial, {credentials: "same-origin"});
    section.innerHTML = await answer.text();
  }));
}

await loadPartials();
await loadSession();
window.addEventListener("hashchange", showTab);
showTab();
await startTopics();
