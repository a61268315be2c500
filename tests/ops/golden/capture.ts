// Captures the golden CONTROL outputs of Debian's cxenstored 4.17 (run through shared/anchors) that
// tests/ops/control_test.ts byte-compares dxenstored with. Run by hand when the reference changes:
//
//   bin/deno run -A tests/ops/golden/capture.ts      # writes tests/ops/golden/cxenstored-control.json
//
// Each step runs Debian's xenstore-control (or another xenstore-* tool) against a fresh cxenstored,
// in order (state carries over: `quota set` shows up in the next `quota`), and records its exit
// code, stdout and stderr, plus the raw CONTROL reply (type and payload) seen by a wire client.
import { startAnchor } from "../../helpers/anchor.ts";
import { runTool } from "../../helpers/daemon.ts";
import { WireClient } from "../../helpers/wire.ts";
import { CONTROL_STEPS, XENSTORE_CONTROL } from "./steps.ts";

const out = new URL("./cxenstored-control.json", import.meta.url).pathname;
const ref = await startAnchor("cxenstored");
const results: unknown[] = [];
try {
  for (const step of CONTROL_STEPS) {
    const args = step.args.map((a) => a.replaceAll("{dir}", ref.dir));
    if (step.tool !== undefined) {
      const r = await runTool(step.tool, args, ref.socket);
      if (r.code !== 0) throw new Error(`${step.tool} ${args.join(" ")} failed: ${r.stderr}`);
      continue;
    }
    const raw = step.raw === false ? null : await rawControl(ref.socket, args);
    const r = await runTool(XENSTORE_CONTROL, args, ref.socket);
    results.push({ name: step.name, args: step.args, code: r.code, stdout: r.stdout, stderr: r.stderr, raw });
  }
} finally {
  await ref.stop();
}
const version = new TextDecoder().decode(
  (await new Deno.Command("dpkg-query", {
    args: ["-W", "-f", "${Version}", "xen-utils-4.17"],
    stdout: "piped",
  })
    .output()).stdout,
);
await Deno.writeTextFile(
  out,
  JSON.stringify({ reference: `cxenstored ${version}`, steps: results }, null, 1) + "\n",
);
console.log(`wrote ${results.length} steps to ${out}`);

/** The raw reply to CONTROL with xenstore-control's payload layout: every argument NUL-terminated. */
async function rawControl(socket: string, args: string[]): Promise<{ type: number; payload: string }> {
  const c = await WireClient.connect(socket);
  try {
    const r = await c.request(0, args.map((a) => a + "\0").join(""));
    return { type: r.type, payload: r.payload };
  } finally {
    c.close();
  }
}
