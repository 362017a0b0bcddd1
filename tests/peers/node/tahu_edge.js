// An Eclipse Tahu JS edge node (npm sparkplug-client) against uns-hub, driven by tests/peers/test_tahu.py.
// Usage: node tahu_edge.js <serverUrl> <group> <node> <device> [birthTs]
// birthTs (ms): the births stamp every metric with it instead of now, as a node whose tags carry the time
// their value last changed does (Ignition's MQTT Transmission); the payload's own timestamp stays now.
// Prints one JSON line per event on stdout: connected, birth (NBIRTH + DBIRTH sent), data (DDATA sent),
// rebirth (after a Node Control/Rebirth NCMD), error. Lives until killed, at most LIFETIME_MS.
"use strict";
const sparkplug = require("sparkplug-client");

const [serverUrl, groupId, edgeNode, deviceId, birthTs] = process.argv.slice(2);
const LIFETIME_MS = 60000; // a test that forgets to kill it leaves no orphan behind

function say(event, extra) {
  process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");
}

// The values the test expects back, one metric per Sparkplug datatype it checks.
const BIRTH = [
  { name: "Temperature", type: "Float", value: 100.25 },
  { name: "Pressure", type: "Double", value: 2.5 },
  { name: "Count", type: "Int32", value: 42 },
  { name: "Running", type: "Boolean", value: true },
  { name: "Product", type: "String", value: "cola" },
];
const DATA = [
  { name: "Temperature", type: "Float", value: 101.9 },
  { name: "Count", type: "Int32", value: -7 },
  { name: "Running", type: "Boolean", value: false },
];

const client = sparkplug.newClient({
  serverUrl,
  groupId,
  edgeNode,
  clientId: `tahu-${groupId}-${edgeNode}`,
  username: "", // Tahu requires both properties; "" is how its users say "anonymous"
  password: "",
  version: "spBv1.0",
  mqttOptions: { reconnectPeriod: 0 }, // a refused connection is reported, not retried for ever
});

let births = 0;
function publishBirths() {
  const now = Date.now();
  client.publishNodeBirth({
    timestamp: now,
    metrics: [
      { name: "Node Control/Rebirth", type: "Boolean", value: false },
      { name: "Properties/Client", type: "String", value: "tahu sparkplug-client 3.2.4" },
    ],
  });
  client.publishDeviceBirth(deviceId, {
    timestamp: now,
    metrics: BIRTH.map((m) => ({ ...m, timestamp: birthTs ? Number(birthTs) : now })),
  });
  births += 1;
  say("birth", { births });
}

client.on("birth", () => {
  say("connected");
  publishBirths();
  if (births === 1) {
    setTimeout(() => {
      const now = Date.now();
      client.publishDeviceData(deviceId, { timestamp: now, metrics: DATA.map((m) => ({ ...m, timestamp: now })) });
      say("data");
    }, 50); // a few ms after the birth: DATA is never stamped before the birth it follows
  }
});

client.on("ncmd", (payload) => {
  for (const metric of payload.metrics || []) {
    if (metric.name === "Node Control/Rebirth" && metric.value) {
      say("rebirth");
      publishBirths();
    }
  }
});

client.on("error", (error) => {
  say("error", { message: String(error && error.message), code: error && error.code });
  process.exit(2);
});

setTimeout(() => process.exit(3), LIFETIME_MS).unref();
