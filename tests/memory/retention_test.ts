// Memory comes back after watches, transactions, connections, nodes and guests go (issue 18 item 2):
// nothing of a finished cycle stays reachable, and the heap after many cycles stays where the second
// left it. The probe runs in its own process with --expose-gc (retention_probe.ts says why). RSS —
// what the operator sees, incl. V8 giving pages back — is measured by `deno task bench` (memory).
import assert from "../helpers/assert.ts";

const PROBE = new URL("./retention_probe.ts", import.meta.url).pathname;
const CYCLES = 8;

async function probe(scenario: string): Promise<{ alive: number; tracked: number; heap: number[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", PROBE, scenario, String(CYCLES)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("{"));
  if (!out.success || line === undefined) {
    throw new Error(`probe ${scenario} failed:\n${text}\n${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(line);
}

for (const scenario of ["watches", "transactions", "connections", "nodes", "guests"]) {
  Deno.test(`${scenario}: nothing of a cycle stays, the heap stays flat over ${CYCLES} cycles`, async () => {
    const r = await probe(scenario);
    assert.ok(r.tracked > 0, "the probe watched some objects");
    assert.equal(r.alive, 0, `${r.alive} of ${r.tracked} objects of the last cycle still reachable`);
    const second = r.heap[1];
    const last = r.heap[r.heap.length - 1];
    // Slack for the engine's own growth (compiled code) and the tree's bounded string caches.
    const bound = second * 1.1 + (1 << 20);
    assert.ok(
      last <= bound,
      `heap after cycle ${CYCLES}: ${last} bytes, after cycle 2: ${second} (bound ${Math.round(bound)})`,
    );
  });
}
