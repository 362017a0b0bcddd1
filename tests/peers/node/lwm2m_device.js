// An LwM2M 1.0 client from npm lwm2m-node-lib 1.4 (Telefonica; AGPL, test-only, never imported by the
// product) against uns-hub's LwM2M server, driven by tests/peers/test_lwm2m_node.py.
// Usage: node lwm2m_device.js <host> <port> <endpoint> <lifetime_s>
// Objects: temperature /3303/0 (5700 value, 5750 application type), humidity /3304/0 (5700), device /3/0 (4 reboot).
// Reads stdin lines of JSON commands: {"cmd":"set","uri":"/3303/0","res":"5700","value":"22.5"},
// {"cmd":"update"}, {"cmd":"unregister"}. Prints one JSON line per event on stdout: registered, write,
// execute, set, updated, unregistered, error. Lives until killed, at most LIFETIME_MS.
"use strict";
const lwm2m = require("lwm2m-node-lib");
const readline = require("readline");

const [host, port, endpoint, lifetime] = process.argv.slice(2);
const LIFETIME_MS = 60000; // a test that forgets to kill it leaves no orphan behind
const client = lwm2m.client;
let device = null;

function say(event, extra) {
  process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");
}

function fail(where) {
  return (error) => {
    if (error) {
      say("error", { where, message: String(error && (error.message || error.name || error)) });
      return true;
    }
    return false;
  };
}

require("logops").setLevel("FATAL"); // the library logs JSON on stdout, where our events go

client.init({
  logLevel: "FATAL",
  client: { lifetime: String(lifetime), version: "1.0", logLevel: "FATAL", observe: { period: 3000 },
            ipProtocol: "udp4", serverProtocol: "udp4" },
});

const OBJECTS = [
  ["/3303/0", [["5700", "21.5"], ["5750", "cold store"]]],
  ["/3304/0", [["5700", "40"]]],
  ["/3/0", [["4", ""]]],
];

function create(index, done) {
  if (index === OBJECTS.length) return done();
  const [uri, resources] = OBJECTS[index];
  client.registry.create(uri, (error) => {
    if (fail("create " + uri)(error)) return;
    let left = resources.length;
    for (const [res, value] of resources) {
      client.registry.setResource(uri, res, value, (err) => {
        if (fail("set " + uri + "/" + res)(err)) return;
        if (--left === 0) create(index + 1, done);
      });
    }
  });
}

create(0, () => {
  client.register(host, Number(port), null, endpoint, (error, info) => {
    if (fail("register")(error)) return;
    device = info;
    client.setHandler(info.serverInfo, "write", (objectType, objectId, resourceId, value, callback) => {
      say("write", { uri: `/${objectType}/${objectId}/${resourceId}`, value: String(value) });
      callback();
    });
    client.setHandler(info.serverInfo, "execute", (objectType, objectId, resourceId, args, callback) => {
      say("execute", { uri: `/${objectType}/${objectId}/${resourceId}` });
      callback();
    });
    say("registered", { location: info.location, port: info.localPort });
  });
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "set") {
    client.registry.setResource(command.uri, command.res, command.value, (error) => {
      if (!fail("set")(error)) say("set", { uri: command.uri, res: command.res, value: command.value });
    });
  } else if (command.cmd === "update") {
    client.update(device, (error) => {
      if (!fail("update")(error)) say("updated", { location: device.location });
    });
  } else if (command.cmd === "unregister") {
    client.unregister(device, (error) => {
      if (!fail("unregister")(error)) say("unregistered", {});
    });
  }
});

setTimeout(() => process.exit(0), LIFETIME_MS);
