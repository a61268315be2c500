// deno task conformance --socket PATH [--xen-sim DIR] [--only ID,ID...]
//
// Checks a XenStore daemon listening on PATH against the requirements of docs/spec/ and prints one line
// per requirement (pass / fail / n/a) and a summary. Guest-side requirements need the daemon to run on the
// project's simulated Xen (dxenstored --xen=sim:DIR): pass that DIR with --xen-sim; without it they are
// "not applicable". The suite writes under /conformance and removes what it wrote: run it against a test
// daemon, not a production one. Exit status: 0 if no MUST requirement failed, 1 otherwise, 2 on bad usage.
import { formatResult, formatSummary, runSuite, summarize } from "./run.ts";

function usage(msg: string): never {
  console.error(
    `conformance: ${msg}\nusage: deno task conformance --socket PATH [--xen-sim DIR] [--only ID,...]`,
  );
  Deno.exit(2);
}

let socket: string | undefined;
let simDir: string | undefined;
let only: Set<string> | undefined;
const args = [...Deno.args];
while (args.length > 0) {
  const a = args.shift()!;
  const value = () => args.shift() ?? usage(`${a} needs a value`);
  if (a === "--socket") socket = value();
  else if (a === "--xen-sim") simDir = value();
  else if (a === "--only") only = new Set(value().split(",").map((s) => s.trim().toUpperCase()));
  else if (a === "-h" || a === "--help") usage("help");
  else usage(`unknown argument ${a}`);
}
if (socket === undefined) usage("--socket is required");

const results = await runSuite({ socket, simDir }, { only });
for (const r of results) console.log(formatResult(r));
console.log(formatSummary(results));
Deno.exit(summarize(results).fail > 0 ? 1 : 0);
