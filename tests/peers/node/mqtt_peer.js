// An MQTT.js client against uns-hub over TCP or WebSocket, driven by tests/peers/test_mqtt_js.py.
// Usage: node mqtt_peer.js '<json plan>'; the plan:
//   {"url": "mqtt://127.0.0.1:1883" | "ws://...", "protocolVersion": 4, "properties": {v5 CONNECT properties},
//    "subscribe": ["acme/#"],
//    "publish": [{"topic", "payload", "retain"}], "until": "<topic to wait for>", "timeoutMs": 5000}
// Prints one JSON line per event on stdout: connack (with ms since start), subscribed, message
// (topic, retain, payload), error (code, message, ms), close (ms), done. Exits when `until` arrives,
// on error or close, or after timeoutMs.
"use strict";
const mqtt = require("mqtt");

const plan = JSON.parse(process.argv[2]);
const started = Date.now();
const ms = () => Date.now() - started;

function say(event, extra) {
  process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");
}

let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  say("done", { ms: ms() });
  client.end(true, () => process.exit(code));
  setTimeout(() => process.exit(code), 500).unref();
}

const client = mqtt.connect(plan.url, {
  protocolVersion: plan.protocolVersion || 4,
  clientId: `mqttjs-${process.pid}`,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: plan.timeoutMs || 5000,
  ...(plan.properties ? { properties: plan.properties } : {}),
});

client.on("connect", (connack) => {
  say("connack", { ms: ms(), returnCode: connack.returnCode, reasonCode: connack.reasonCode });
  client.subscribe(plan.subscribe || [], { qos: 0 }, (error, granted) => {
    if (error) {
      say("error", { message: String(error.message), ms: ms() });
      finish(2);
      return;
    }
    say("subscribed", { granted: (granted || []).map((g) => g.qos) });
    for (const p of plan.publish || []) {
      client.publish(p.topic, p.payload, { qos: 0, retain: Boolean(p.retain) });
    }
    if (!plan.until) finish(0);
  });
});

client.on("message", (topic, payload, packet) => {
  say("message", { topic, retain: packet.retain, payload: payload.toString("utf8") });
  if (topic === plan.until) finish(0);
});

client.on("error", (error) => {
  say("error", { code: error.code, message: String(error.message), ms: ms() });
  finish(2);
});

client.on("close", () => {
  if (finished) return; // our own end()
  say("close", { ms: ms() });
  finish(2);
});

setTimeout(() => {
  say("timeout", { ms: ms() });
  finish(4);
}, plan.timeoutMs || 5000).unref();
