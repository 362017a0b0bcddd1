// The original C Snap7 server (npm node-snap7) on 127.0.0.1, driven by tests/bridges/s7/test_c_snap7.py.
// Usage: node s7_server.js '<areas JSON>'  where areas maps "DB<n>", "MK", "PE", "PA", "TM", "CT" to hex contents.
// node-snap7's StartTo() takes no port, but SetParam(LocalPort) sets the listener's port before the start; the
// C server cannot report a port it picked itself, so this script asks the OS for a free one first (and retries
// if another process takes it in between). Prints one JSON line per event: ready {port}, area {hex},
// cpu {status}, error. Reads commands as JSON lines on stdin: {"get": "DB1"}, {"cpu": "stop"|"run"}.
// Lives until killed or stdin closes, at most LIFETIME_MS.
"use strict";
const net = require("net");
const readline = require("readline");
const snap7 = require("node-snap7");

const LIFETIME_MS = 120000;
const areas = JSON.parse(process.argv[2] || "{}");
const server = new snap7.S7Server();
const buffers = {};

function say(event, extra) {
  process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");
}

function code(name) {
  if (name.startsWith("DB")) return [server.srvAreaDB, Number(name.slice(2))];
  const table = { MK: server.srvAreaMK, PE: server.srvAreaPE, PA: server.srvAreaPA, TM: server.srvAreaTM, CT: server.srvAreaCT };
  if (!(name in table)) throw new Error(`unknown area ${name}`);
  return [table[name], 0];
}

for (const [name, hex] of Object.entries(areas)) {
  const [area, index] = code(name);
  buffers[name] = Buffer.from(hex, "hex");
  const done = name.startsWith("DB") ? server.RegisterArea(area, index, buffers[name]) : server.RegisterArea(area, buffers[name]);
  if (!done) throw new Error(`RegisterArea ${name} failed`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function start() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    server.SetParam(server.LocalPort, port);
    if (server.StartTo("127.0.0.1") !== false) return port;
  }
  throw new Error("could not start the S7 server on a free port");
}

start()
  .then((port) => {
    server.SetCpuStatus(server.S7CpuStatusRun);
    say("ready", { port });
    const input = readline.createInterface({ input: process.stdin });
    input.on("line", (line) => {
      try {
        const command = JSON.parse(line);
        if (command.get) {
          const [area, index] = code(command.get);
          const content = command.get.startsWith("DB") ? server.GetArea(area, index) : server.GetArea(area);
          say("area", { name: command.get, hex: content.toString("hex") });
        } else if (command.cpu) {
          server.SetCpuStatus(command.cpu === "stop" ? server.S7CpuStatusStop : server.S7CpuStatusRun);
          say("cpu", { status: command.cpu });
        }
      } catch (error) {
        say("error", { message: String(error) });
      }
    });
    input.on("close", () => {
      server.Stop();
      process.exit(0);
    });
  })
  .catch((error) => {
    say("error", { message: String(error) });
    process.exit(1);
  });

setTimeout(() => process.exit(0), LIFETIME_MS).unref();
