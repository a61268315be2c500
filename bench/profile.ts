// Where one request's time goes in JavaScript, by function (issue 20): the scenarios of
// bench/instructions.ts under V8's sampling CPU profiler (the inspector's, through node:inspector),
// which names JIT-compiled functions and the functions TurboFan inlined into them — callgrind counts
// instructions exactly but cannot name V8's generated code. Self time per function, ranked, and the
// time under each function (self and callees).
//
//   bin/deno run -A --v8-flags=... bench/profile.ts [--scenario ring-read] [--requests N] [--top K]
//                                                  [--allocations]
//
// --allocations: V8's sampling heap profiler instead (every allocation is a chance sample): bytes
// allocated per request by the function that allocated them, objects that died young included.
//
// Pass the daemon's V8 flags (`$(compile/v8-flags.sh)`) for the code production runs. Samples are
// timings: their shares, not their microseconds, are the result, and a busy host blurs them.
import { type Scenario, setup } from "./instructions.ts";

/** The part of node:inspector's Session used here (imported by a computed name: type-checking a
 *  literal `node:` import would need @types/node, which the project does not install). */
interface InspectorSession {
  connect(): void;
  post(method: string, params: object, done: (e: unknown, r: unknown) => void): void;
}
const inspector = "node:inspector";
const { Session } = (await import(inspector)) as { Session: new () => InspectorSession };

const args = Deno.args;
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const scenario = (opt("--scenario") ?? "ring-read") as Scenario;
const n = Number(opt("--requests") ?? 500_000);
const top = Number(opt("--top") ?? 40);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const session = new Session();
session.connect();
const post = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve, reject) =>
    session.post(method, params, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r as T)))
  );

const one = await setup(scenario);
for (let i = 0; i < 10_000; i++) one(); // V8's optimizing tiers, as bench/instructions.ts

interface SamplingNode {
  callFrame: ProfileNode["callFrame"];
  selfSize: number;
  children: SamplingNode[];
}
if (args.includes("--allocations")) {
  await post("HeapProfiler.enable");
  // Samples every 64 bytes on average; young objects stay in the profile.
  await post("HeapProfiler.startSampling", {
    samplingInterval: 64,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < n; i++) one();
  const { profile } = await post<{ profile: { head: SamplingNode } }>("HeapProfiler.stopSampling");
  const bytes = new Map<string, number>();
  const walk = (p: SamplingNode, path: string) => {
    const f = p.callFrame;
    const here = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(src|bench|tests)\//, "$1/")}:${
      f.lineNumber + 1
    }`;
    if (p.selfSize > 0) bytes.set(here, (bytes.get(here) ?? 0) + p.selfSize);
    for (const c of p.children) walk(c, path);
  };
  walk(profile.head, "");
  let total = 0;
  for (const v of bytes.values()) total += v;
  console.log(`${scenario}: ${(total / n).toFixed(0)} bytes allocated per request (sampled)`);
  for (const [k, v] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(v / n).toFixed(1).padStart(8)}  ${k}`);
  }
  Deno.exit(0);
}
await post("Profiler.enable");
await post("Profiler.setSamplingInterval", { interval: 50 }); // µs
await post("Profiler.start");
for (let i = 0; i < n; i++) one();
const { profile } = await post<{ profile: Profile }>("Profiler.stop");

const byId = new Map(profile.nodes.map((p) => [p.id, p]));
const parent = new Map<number, number>();
for (const p of profile.nodes) for (const c of p.children ?? []) parent.set(c, p.id);
const name = (p: ProfileNode) => {
  const f = p.callFrame;
  const file = f.url.replace(/^.*\/(src|bench|tests)\//, "$1/");
  return `${f.functionName || "(anonymous)"} ${file}${f.url ? `:${f.lineNumber + 1}` : ""}`;
};
const self = new Map<string, number>();
const total = new Map<string, number>();
for (const id of profile.samples) {
  const leaf = byId.get(id)!;
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
  const seen = new Set<string>();
  for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
    const k = name(byId.get(p)!);
    if (!seen.has(k)) total.set(k, (total.get(k) ?? 0) + 1);
    seen.add(k);
  }
}
const samples = profile.samples.length;
const pct = (x: number) => (100 * x / samples).toFixed(1).padStart(5);
console.log(`${scenario}: ${samples} samples over ${n} requests`);
console.log("self %  total %  function");
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${pct(v)}  ${pct(total.get(k)!)}    ${k}`);
}
console.log("\nby time under the function (self and callees)");
for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
