/**
 * `deno task sim [--seeds N] [--seed S] [--from F] [--steps K]`: run the whole-daemon simulation
 * (docs/simulation.md) for N seeds starting at F (default 1), or one seed S with its statistics.
 * A failing seed prints the one-line command that replays it; the exit status is 1 if any failed.
 */
import { DEFAULT_STEPS, replayCommand, runSeed } from "./run.ts";

function arg(name: string): number | null {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return null;
  const v = Number(Deno.args[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) {
    console.error(`--${name} needs a whole number`);
    Deno.exit(2);
  }
  return v;
}

const steps = arg("steps") ?? DEFAULT_STEPS;
const one = arg("seed");
const seeds = one !== null
  ? [one]
  : Array.from({ length: arg("seeds") ?? 100 }, (_, i) => (arg("from") ?? 1) + i);
let failed = 0;
const totals: Record<string, number> = {};
const t0 = performance.now();
for (const seed of seeds) {
  const r = runSeed(seed, { steps });
  for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
  if (one !== null) {
    console.log(`seed ${seed}: ${r.config}\ndigest ${r.digest}\n${JSON.stringify(r.stats)}`);
  }
  if (r.violations.length > 0) {
    failed++;
    console.log(`FAIL seed ${seed} (${r.config})`);
    for (const v of r.violations) console.log(`  ${v}`);
    console.log(`  replay: ${replayCommand(seed, { steps })}`);
  }
}
const secs = ((performance.now() - t0) / 1000).toFixed(1);
console.log(`${seeds.length} seeds, ${steps} steps each, ${failed} failed, ${secs} s`);
console.log(JSON.stringify(totals));
Deno.exit(failed > 0 ? 1 : 0);
