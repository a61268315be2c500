/// <reference lib="deno.worker" />
// One fuzz target in a Worker (main.ts): runs cases until its deadline, reporting each case index and
// the process's resident size through shared memory so the main thread can tell a hang (the index stops)
// and unbounded memory (RSS beyond the limit) and stop it from outside.
import { setLogSink } from "../../src/common/log.ts";
import { failureKey, runCases } from "./engine.ts";
import { targetNamed } from "./targets/index.ts";

/** Shared slots: 0 the case index being run, 1 RSS in MiB, 2 set to 1 when done. */
export const SLOT_CASE = 0;
export const SLOT_RSS_MIB = 1;
export const SLOT_DONE = 2;

export interface WorkerJob {
  readonly target: string;
  readonly seed: number;
  readonly seconds: number;
  readonly shared: SharedArrayBuffer;
}

export interface WorkerResult {
  readonly cases: number;
  readonly ms: number;
  readonly failures: ReadonlyArray<{ index: number; kind: string; message: string; input: number[] }>;
}

self.onmessage = (e: MessageEvent<WorkerJob>) => {
  const job = e.data;
  setLogSink(() => {}); // decoders log what they refuse; millions of lines otherwise
  const slots = new Int32Array(job.shared);
  const t = targetNamed(job.target);
  const corpus = t.corpus();
  const deadline = performance.now() + job.seconds * 1000;
  let from = 0;
  let ms = 0;
  const failures: WorkerResult["failures"][number][] = [];
  const seen = new Set<string>();
  // The resident size is sampled every 50 ms at most (Deno.memoryUsage() is too dear per case).
  let sampled = 0;
  const progress = (i: number) => {
    Atomics.store(slots, SLOT_CASE, i);
    if ((i & 7) !== 0) return;
    const now = performance.now();
    if (now - sampled < 50) return;
    sampled = now;
    Atomics.store(slots, SLOT_RSS_MIB, Math.round(Deno.memoryUsage().rss / 1048576));
  };
  while (performance.now() < deadline && failures.length < 20) {
    const r = runCases(t, corpus, job.seed, from, 1024, deadline, progress);
    from += r.cases;
    ms += r.ms;
    for (const f of r.failures) {
      if (seen.has(failureKey(f))) continue;
      seen.add(failureKey(f));
      failures.push({
        index: f.index,
        kind: f.kind,
        message: f.message,
        input: [...f.input.subarray(0, 4096)],
      });
    }
  }
  Atomics.store(slots, SLOT_DONE, 1);
  self.postMessage({ cases: from, ms, failures } satisfies WorkerResult);
};
