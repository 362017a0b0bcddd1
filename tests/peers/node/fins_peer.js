// npm omron-fins 0.5.0 as an independent FINS client of our simulated PLC.
// usage: node fins_peer.js <port> <udp|tcp> '<json list of steps>'
// steps: {"op":"read","address":"D100","count":2} | {"op":"write","address":"D102","values":[7]}
//        | {"op":"readMultiple","addresses":"D100,W10.05"} | {"op":"cpu"}
// Prints one JSON line per event: {"event":"open"}, {"event":"reply",...} per step, {"event":"done"}.
const fins = require("omron-fins");

const [port, protocol, stepsJson] = process.argv.slice(2);
const steps = JSON.parse(stepsJson);
const out = (event) => process.stdout.write(JSON.stringify(event) + "\n");

const client = fins.FinsClient(Number(port), "127.0.0.1", { protocol, timeout: 3000, autoConnect: true });
client.on("error", (error) => out({ event: "error", error: String(error) }));
client.on("timeout", (host) => out({ event: "timeout", host: String(host) }));

function reply(step) {
  return (err, msg) => {
    if (err) {
      out({ event: "reply", op: step.op, error: String(err) });
    } else {
      const response = msg.response || {};
      out({
        event: "reply",
        op: step.op,
        address: step.address || step.addresses || null,
        endCode: response.endCode,
        values: response.values === undefined ? null : Array.from(response.values),
        model: response.result ? response.result.CPUUnitModel : null,
        largestEmBank: response.result ? response.result.SystemUse.LargestEMBankNumber : null,
      });
    }
    next();
  };
}

function next() {
  const step = steps.shift();
  if (!step) {
    out({ event: "done" });
    client.disconnect();
    process.exit(0);
  }
  if (step.op === "read") client.read(step.address, step.count, reply(step));
  else if (step.op === "write") client.write(step.address, step.values, reply(step));
  else if (step.op === "readMultiple") client.readMultiple(step.addresses, reply(step));
  else if (step.op === "cpu") client.cpuUnitDataRead(reply(step));
  else throw new Error(`unknown step ${step.op}`);
}

client.once("open", () => {
  out({ event: "open" });
  setImmediate(next); // omron-fins emits "open" before it marks itself connected
});
