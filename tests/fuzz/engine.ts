/**
 * Mutation fuzzing of dxenstored's decoders: each target starts from valid inputs (its corpus), and
 * every case is one of them mutated AFL-style (bit flips, interesting bytes and integers, inserted,
 * deleted, repeated and spliced ranges), stacked 1–8 deep. Case `i` of seed `s` is generated from
 * (s, i) alone, so any case can be regenerated and replayed (`deno task fuzz --replay T:s:i`).
 *
 * What counts as a failure is the target's business (targets/*.ts): an exception its decoder may not
 * throw (a "crash": anything but the decoder's typed error), or a broken invariant (FuzzFailure).
 * Hangs and unbounded memory are caught by the runner (main.ts) around a Worker.
 */
import { mixSeed, Rng } from "../helpers/rng.ts";
import { checkStore } from "../../src/store/check.ts";
import { type Node, walk } from "../../src/store/tree.ts";
import { maxGen } from "../../src/backend/records.ts";

export interface Target {
  readonly name: string;
  /** What the target decodes, and what may escape it (its typed error), for the report. */
  readonly contract: string;
  /** Valid inputs to start from (built once per run). */
  corpus(): Uint8Array[];
  /** Decode one input and check its invariants; throws FuzzFailure, or whatever escapes the decoder. */
  run(input: Uint8Array): void;
  /** The decoder's typed errors: exceptions that are a correct answer to bad input. */
  expected(e: unknown): boolean;
  /** Cases in the CI slice (tests/fuzz/fuzz_test.ts): a second or so. */
  readonly ciCases: number;
}

/** An invariant the decoder's result broke (not an exception of the decoder itself). */
export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

export function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new FuzzFailure(what);
}

/**
 * What a store a reader accepted must be: sound by src/store/check.ts, every generation (the
 * counter's and each node's) a safe integer ≥ 0, none above the counter.
 */
export function checkLoaded(root: Node, gen: number, what: string): void {
  check(Number.isSafeInteger(gen) && gen >= 0, `${what}: generation counter ${gen}`);
  walk(
    root,
    "/",
    (p, n) => check(Number.isSafeInteger(n.gen) && n.gen >= 0, `${what}: ${p} has generation ${n.gen}`),
  );
  const problems = checkStore(root, Math.max(gen, maxGen(root)));
  check(problems.length === 0, `${what} is unsound: ${problems.slice(0, 3).join("; ")}`);
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x2f, 0x00, 0x40, 0x3d, 0x0a, 0x20, 0x2e];
const INTERESTING_32 = [
  0,
  1,
  2,
  16,
  0x7f,
  0xff,
  0x100,
  0xffff,
  0x10000,
  4095,
  4096,
  4097,
  4112,
  1024,
  1025,
  0x7ffffff0,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];

/** One mutation of `b` (a new array; `b` is left alone). `other` is for splicing. */
function mutateOnce(r: Rng, b: Uint8Array, other: Uint8Array): Uint8Array {
  const n = b.length;
  const pos = () => r.int(n + 1);
  switch (r.int(n === 0 ? 2 : 11)) {
    case 0: { // insert random bytes
      const k = 1 + r.int(r.chance(0.1) ? 256 : 8);
      const at = pos();
      const out = new Uint8Array(n + k);
      out.set(b.subarray(0, at));
      for (let i = 0; i < k; i++) out[at + i] = r.chance(0.5) ? r.pick(INTERESTING_8) : r.int(256);
      out.set(b.subarray(at), at + k);
      return out;
    }
    case 1: { // splice: a range of another input inserted here
      if (other.length === 0) return b.slice();
      const s = r.int(other.length);
      const e = s + 1 + r.int(Math.min(other.length - s, 512));
      const at = pos();
      const out = new Uint8Array(n + (e - s));
      out.set(b.subarray(0, at));
      out.set(other.subarray(s, e), at);
      out.set(b.subarray(at), at + (e - s));
      return out;
    }
    case 2: { // flip a bit
      const out = b.slice();
      out[r.int(n)] ^= 1 << r.int(8);
      return out;
    }
    case 3: { // a random byte
      const out = b.slice();
      out[r.int(n)] = r.int(256);
      return out;
    }
    case 4: { // an interesting byte
      const out = b.slice();
      out[r.int(n)] = r.pick(INTERESTING_8);
      return out;
    }
    case 5:
    case 6: { // an interesting 16- or 32-bit little-endian integer (lengths, counts, indices)
      const out = b.slice();
      const w = r.chance(0.3) ? 2 : 4;
      if (n < w) return out;
      const at = r.int(n - w + 1);
      const v = r.chance(0.8) ? r.pick(INTERESTING_32) : r.next();
      for (let i = 0; i < w; i++) out[at + i] = (v >>> (8 * i)) & 0xff;
      return out;
    }
    case 7: { // add or subtract a little from a byte (off-by-one lengths)
      const out = b.slice();
      const at = r.int(n);
      out[at] = (out[at] + (r.chance(0.5) ? 1 : -1) * (1 + r.int(4))) & 0xff;
      return out;
    }
    case 8: { // delete a range
      const s = r.int(n);
      const e = Math.min(n, s + 1 + r.int(r.chance(0.2) ? n : 16));
      const out = new Uint8Array(n - (e - s));
      out.set(b.subarray(0, s));
      out.set(b.subarray(e), s);
      return out;
    }
    case 9: { // repeat a range (long inputs, repeated structures)
      const s = r.int(n);
      const e = Math.min(n, s + 1 + r.int(64));
      const times = 1 + r.int(r.chance(0.1) ? 64 : 4);
      const chunk = b.subarray(s, e);
      const out = new Uint8Array(n + chunk.length * times);
      out.set(b.subarray(0, e));
      for (let t = 0; t < times; t++) out.set(chunk, e + t * chunk.length);
      out.set(b.subarray(e), e + times * chunk.length);
      return out;
    }
    default: { // truncate
      return b.slice(0, r.int(n));
    }
  }
}

/** Bound on a mutated input's size, so a case cannot grow without limit through stacked repeats. */
export const MAX_INPUT = 1 << 20;

/** The input of case `i` of seed `seed` for a corpus. */
export function makeCase(corpus: readonly Uint8Array[], seed: number, i: number): Uint8Array {
  const r = new Rng(mixSeed(seed, i));
  let b = r.pick(corpus);
  // A few unmutated cases keep the valid path exercised (and checked).
  if (r.chance(0.02)) return b.slice();
  const depth = 1 + r.int(r.chance(0.2) ? 8 : 3);
  for (let k = 0; k < depth; k++) {
    b = mutateOnce(r, b, r.pick(corpus));
    if (b.length > MAX_INPUT) b = b.subarray(0, MAX_INPUT);
  }
  return b;
}

export interface CaseFailure {
  readonly target: string;
  readonly seed: number;
  readonly index: number;
  readonly kind: "crash" | "invariant";
  readonly message: string;
  readonly input: Uint8Array;
}

/** Run one input; null if the decoder behaved, else what went wrong. */
export function runOne(
  t: Target,
  input: Uint8Array,
): { kind: "crash" | "invariant"; message: string } | null {
  try {
    t.run(input);
    return null;
  } catch (e) {
    if (e instanceof FuzzFailure) return { kind: "invariant", message: e.message };
    if (t.expected(e)) return null;
    const err = e as Error;
    const where = (err?.stack ?? "").split("\n").slice(1, 4).map((l) => l.trim()).join(" < ");
    return { kind: "crash", message: `${err?.name ?? typeof e}: ${err?.message ?? String(e)} (${where})` };
  }
}

/** One report per distinct failure: its kind and message with numbers blanked (lengths, offsets). */
export function failureKey(f: { kind: string; message: string }): string {
  return `${f.kind}:${f.message.replace(/[0-9]+/g, "#").slice(0, 160)}`;
}

export interface RunStats {
  cases: number;
  failures: CaseFailure[];
  ms: number;
}

/**
 * Run cases `from` … `from + count - 1` of `seed` (or until `deadline`, a performance.now() value).
 * `progress` is called before every case with its index (the runner's watchdog: keep it cheap).
 */
export function runCases(
  t: Target,
  corpus: readonly Uint8Array[],
  seed: number,
  from: number,
  count: number,
  deadline = Infinity,
  progress: (next: number) => void = () => {},
  maxFailures = 20,
): RunStats {
  const start = performance.now();
  const failures: CaseFailure[] = [];
  const seen = new Set<string>();
  let i = from;
  for (; i < from + count; i++) {
    progress(i);
    if ((i & 1023) === 0 && performance.now() > deadline) break;
    const input = makeCase(corpus, seed, i);
    const f = runOne(t, input);
    if (f === null) continue;
    const key = failureKey(f);
    if (seen.has(key)) continue;
    seen.add(key);
    failures.push({ target: t.name, seed, index: i, ...f, input });
    if (failures.length >= maxFailures) {
      i++;
      break;
    }
  }
  return { cases: i - from, failures, ms: performance.now() - start };
}

export function hex(b: Uint8Array, max = 256): string {
  let s = "";
  for (const x of b.subarray(0, max)) s += x.toString(16).padStart(2, "0");
  return s + (b.length > max ? `… (${b.length} bytes)` : "");
}

export function replayCommand(f: { target: string; seed: number; index: number }): string {
  return `bin/deno task fuzz --replay ${f.target}:${f.seed}:${f.index}`;
}
