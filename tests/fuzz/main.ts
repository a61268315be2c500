/**
 * The decoder fuzzer's runner:
 *
 *   bin/deno task fuzz [--seconds S] [--target T[,T...]] [--seed N]     fuzz for S seconds in all
 *   bin/deno task fuzz --replay T:SEED:INDEX                            re-run one case, show it
 *
 * Each target runs in a Worker for its share of the time. The main thread watches it: a case index
 * that stops moving for HANG_SECONDS is a hang (the worker is terminated and the case reported), a
 * resident size beyond MEMORY_MIB is unbounded memory. Failures print the case's input and the command
 * that replays it; every one found gets a regression test (tests/fuzz/regressions_test.ts).
 */
import { hex, makeCase, replayCommand, runOne } from "./engine.ts";
import { targetNamed, TARGETS } from "./targets/index.ts";
import { SLOT_CASE, SLOT_DONE, SLOT_RSS_MIB, type WorkerJob, type WorkerResult } from "./worker.ts";

const HANG_SECONDS = 10;
const MEMORY_MIB = 1536;

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

interface Report {
  target: string;
  cases: number;
  ms: number;
  problems: string[];
}

async function runTarget(target: string, seed: number, seconds: number): Promise<Report> {
  const shared = new SharedArrayBuffer(16);
  const slots = new Int32Array(shared);
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  const done = new Promise<WorkerResult>((resolve, reject) => {
    w.onmessage = (e: MessageEvent<WorkerResult>) => resolve(e.data);
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
  });
  w.postMessage({ target, seed, seconds, shared } satisfies WorkerJob);
  let last = -1;
  let still = 0;
  let peak = 0;
  const start = performance.now();
  try {
    for (;;) {
      const r = await Promise.race([done, new Promise<null>((ok) => setTimeout(() => ok(null), 250))]);
      if (r !== null) {
        const problems = r.failures.map((f) =>
          `${f.kind} at case ${f.index}: ${f.message}\n    input ${hex(new Uint8Array(f.input))}\n` +
          `    replay: ${replayCommand({ target, seed, index: f.index })}`
        );
        if (peak > MEMORY_MIB) problems.push(`memory: resident size reached ${peak} MiB`);
        return { target, cases: r.cases, ms: r.ms, problems };
      }
      const i = Atomics.load(slots, SLOT_CASE);
      peak = Math.max(peak, Atomics.load(slots, SLOT_RSS_MIB));
      if (peak > MEMORY_MIB) {
        return fail(`memory: resident size ${peak} MiB near case ${i}`, i);
      }
      if (i === last && Atomics.load(slots, SLOT_DONE) === 0) {
        still += 0.25;
        if (still >= HANG_SECONDS) return fail(`hang: case ${i} ran for ${HANG_SECONDS} s`, i);
      } else {
        still = 0;
        last = i;
      }
    }
  } catch (e) {
    return fail(`the worker died: ${(e as Error).message}`, Atomics.load(slots, SLOT_CASE));
  } finally {
    w.terminate();
  }

  function fail(what: string, index: number): Report {
    return {
      target,
      cases: index,
      ms: performance.now() - start,
      problems: [`${what}\n    replay: ${replayCommand({ target, seed, index })}`],
    };
  }
}

function replay(spec: string): number {
  const [name, seedText, indexText] = spec.split(":");
  const t = targetNamed(name);
  const input = makeCase(t.corpus(), Number(seedText), Number(indexText));
  console.log(`${name} case ${indexText} of seed ${seedText}: ${input.length} bytes\n${hex(input, 4096)}`);
  const started = performance.now();
  const r = runOne(t, input);
  const ms = (performance.now() - started).toFixed(1);
  if (r === null) {
    console.log(`ok (${ms} ms): the decoder answered within its contract (${t.contract})`);
    return 0;
  }
  console.log(`${r.kind} (${ms} ms): ${r.message}`);
  try {
    t.run(input); // again, to show the whole stack
  } catch (e) {
    console.log((e as Error).stack ?? e);
  }
  return 1;
}

if (import.meta.main) {
  const spec = arg("replay");
  if (spec !== undefined) Deno.exit(replay(spec));
  const seconds = Number(arg("seconds") ?? 60);
  const seed = Number(arg("seed") ?? (Date.now() % 0x7fffffff));
  const names = arg("target")?.split(",") ?? TARGETS.map((t) => t.name);
  for (const n of names) targetNamed(n);
  const each = seconds / names.length;
  console.log(`fuzzing ${names.length} decoders for ${seconds} s (${each.toFixed(1)} s each), seed ${seed}`);
  let failed = 0;
  let total = 0;
  for (const name of names) {
    const r = await runTarget(name, seed, each);
    total += r.cases;
    const rate = r.ms > 0 ? Math.round(r.cases / (r.ms / 1000)) : 0;
    console.log(
      `${name.padEnd(13)} ${String(r.cases).padStart(10)} cases ${String(rate).padStart(9)} cases/s  ` +
        (r.problems.length === 0 ? "ok" : `${r.problems.length} problem(s)`),
    );
    for (const p of r.problems) console.log(`  ${p}`);
    failed += r.problems.length;
  }
  console.log(
    `${total} cases, ${failed} problem(s); again: bin/deno task fuzz --seconds ${seconds} --seed ${seed}`,
  );
  Deno.exit(failed > 0 ? 1 : 0);
}
