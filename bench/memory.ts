// `deno task bench:memory` (also part of a full `deno task bench`): the daemons' memory side by side,
// in one run (issue 15 item 3, issue 18 item 2). Every target — cxenstored, oxenstored (through the
// anchors' scripts) and dxenstored (memory backend, with compile/v8-flags) — is started fresh and, on
// its own, taken through:
//
//  1. idle: RSS after SETTLE seconds of quiet after start (as every other reading: a daemon's own
//     idle work — dxenstored's first collection and code-page trim — is done by then);
//  2. fill (xsbench --workload fill: /bench/fill/gNNNNN/nNN, 100 leaves per folder, 14-byte values):
//     1k leaves first (a warm-up), then 10k, 100k and 1M; RSS "added per leaf" = (RSS at N − idle
//     RSS) ÷ N (the measure), each RSS read after SETTLE seconds of quiet; peak = VmHWM after
//     the last fill ÷ the RSS it settled to;
//  3. RSS after removing /bench again, against the idle RSS (the empty store's);
//  4. cycles, RSS after each (issue 18): 20 000 watches on one connection, then close; 500
//     transactions opened, each writing, then abandoned (connection closed); 1 000 connections
//     opened, used and closed;
//  5. a host's usual trees: for G guests, the tree libxl writes (bench/host_trees.ts) and the 5 watches
//     each guest registers, here on one socket connection per guest (the anchors have no guests);
//     RSS added per guest, and RSS once the trees are removed and the connections closed.
// dxenstored also runs the same host under the simulated Xen (real INTRODUCE, ring connections, the
// guests' own watches), cycling: introduce G guests, release them all, RSS after each release.
//
// Alone: bin/deno run -A bench/memory.ts [--quick] [--only cxenstored,oxenstored,dxenstored]
// [--leaves 10000,100000,1000000] [--cycles N] [--settle S] [--guests G]
import { type Env, start, stop, type TargetSpec } from "./targets.ts";
import { SocketClient } from "./socket_client.ts";
import { GUEST_WATCHES, removeGuestTree, writeGuestTree } from "./host_trees.ts";
import { simGuestCycles, type SimHostResult } from "./memory_sim.ts";
import { memoryMarkdown } from "./memory_report.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const anchorsDir = Deno.env.get("ANCHORS_DIR") ?? `${root}/../shared/anchors`;
const anchorsBuild = `${root}/.build/anchors`;
const XSBENCH = `${anchorsBuild}/xsbench`;

export interface MemoryOptions {
  /** Fill sizes after the 1k warm-up. */
  readonly leaves: number[];
  readonly cycles: number;
  /** Quiet time before each RSS reading (s). */
  readonly settle: number;
  /** Give up a fill step after this long (s): cxenstored needs minutes per 100k leaves past 100k. */
  readonly fillLimit: number;
  readonly guests: number;
  readonly only?: string[];
  readonly cpu: "same" | "split" | "none";
}

export const DEFAULT_MEMORY_OPTIONS: MemoryOptions = {
  leaves: [10_000, 100_000, 1_000_000],
  cycles: 5,
  settle: 6,
  fillLimit: 240,
  guests: 1000,
  cpu: "same",
};

export const QUICK_MEMORY_OPTIONS: MemoryOptions = {
  ...DEFAULT_MEMORY_OPTIONS,
  leaves: [10_000, 100_000],
  cycles: 3,
  settle: 4,
  guests: 200,
};

export interface FillStep {
  readonly leaves: number;
  /** RSS (bytes) settled after the fill, or null if it was not reached. */
  readonly rss: number | null;
  readonly fillPerS?: number;
  readonly note?: string;
}

export interface TargetMemory {
  readonly name: string;
  readonly error?: string;
  idle?: number;
  warm?: number;
  fills: FillStep[];
  /** VmHWM after the last fill reached, and the RSS it settled to. */
  peak?: { hwm: number; settled: number; leaves: number };
  afterRemove?: number;
  /** RSS after each cycle, by kind (or why the kind could not run). */
  cycles: Record<string, number[] | string>;
  host?: { guests: number; before: number; loaded: number; after: number; errors: number };
  /** Parts that failed ("fill", a cycle kind, "host"): why. */
  errors: Record<string, string>;
}

export interface MemoryResult {
  readonly options: MemoryOptions;
  readonly targets: TargetMemory[];
  readonly sim?: SimHostResult | string;
  readonly load: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  if (m === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** xsbench's fill to `leaves` (additive), within `limitS`; its JSON line or why not. */
async function fill(socket: string, pid: number, leaves: number, limitS: number, pin: string[]) {
  const signal = AbortSignal.timeout(limitS * 1000);
  try {
    const out = await new Deno.Command(pin.length ? pin[0] : XSBENCH, {
      args: [
        ...(pin.length ? [...pin.slice(1), XSBENCH] : []),
        ...["--socket", socket, "--workload", "fill", "--store-nodes", String(leaves)],
        ...["--daemon-pid", String(pid)],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
    if (signal.aborted) return { ok: false, why: `not reached in ${limitS} s` };
    const line = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
    const r = line ? JSON.parse(line) as Record<string, unknown> : null;
    if (r?.ok !== true) {
      const err = String(r?.error ?? new TextDecoder().decode(out.stderr).trim());
      return { ok: false, why: err || `xsbench ended with code ${out.code}` };
    }
    return { ok: true, fillPerS: Number(r.fill_per_s) };
  } catch {
    return { ok: false, why: signal.aborted ? `not reached in ${limitS} s` : "xsbench failed" };
  }
}

/** Send `reqs` in batches (bounded, so neither side's buffers fill), reading every reply. */
function pipelined(s: SocketClient, reqs: Array<[number, string, number?]>, batch = 500): string[] {
  const replies: string[] = [];
  for (let i = 0; i < reqs.length; i += batch) {
    const part = reqs.slice(i, i + batch);
    for (const [t, p, tx] of part) s.send(t, p, tx ?? 0);
    for (let n = 0; n < part.length;) {
      const [t, p] = s.recv();
      if (t === 15) continue; // a watch event
      replies.push(t === 16 ? `E:${p}` : p);
      n++;
    }
  }
  return replies;
}

/** One cycle of each kind: make many, drop them all. Returns how many requests failed. */
const CYCLES: Record<string, (socket: string) => number> = {
  "20 000 watches on one connection, closed": (socket) => {
    const s = new SocketClient(socket);
    const reqs: Array<[number, string]> = [];
    for (let i = 0; i < 20_000; i++) {
      reqs.push([4, `/local/domain/${i % 1000}/device/vif/${i}/state\0tok${i}-0123456789abcdef\0`]);
    }
    const errors = pipelined(s, reqs).filter((r) => r.startsWith("E:")).length;
    s.close();
    return errors;
  },
  "500 transactions opened, written, abandoned": (socket) => {
    const s = new SocketClient(socket);
    const ids = pipelined(s, Array.from({ length: 500 }, () => [6, "\0"] as [number, string]));
    const ok = ids.filter((r) => !r.startsWith("E:")).map((r) => Number(r.replace("\0", "")));
    const writes = ok.map((tx) =>
      [11, `/bench-tx/${tx % 50}/k\0value-${tx}-0123456789`, tx] as [number, string, number]
    );
    const errors = ids.length - ok.length + pipelined(s, writes).filter((r) => r.startsWith("E:")).length;
    s.close();
    return errors;
  },
  "1 000 connections opened, used, closed": (socket) => {
    const cs: SocketClient[] = [];
    let errors = 0;
    for (let i = 0; i < 1000; i++) {
      const c = new SocketClient(socket);
      c.send(2, "/tool\0");
      cs.push(c);
    }
    for (const c of cs) {
      if (c.recv()[0] === 16) errors++;
      c.close();
    }
    return errors;
  },
};

async function measureTarget(
  spec: TargetSpec,
  dir: string,
  env: Env,
  o: MemoryOptions,
  log: (s: string) => void,
) {
  const t: TargetMemory = { name: spec.name, fills: [], cycles: {}, errors: {} };
  let started;
  try {
    started = await start(spec, dir, env);
  } catch (e) {
    return { ...t, error: `failed to start: ${(e as Error).message.split("\n")[0]}` };
  }
  const r = started;
  const pin = o.cpu === "same" ? ["taskset", "-c", "0"] : o.cpu === "split" ? ["taskset", "-c", "1"] : [];
  const rss = () => statusKb(r.pid, "VmRSS");
  const settle = () => sleep(o.settle * 1000);
  // Each part on its own: a part that fails is reported in its rows, the others still run.
  const part = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      t.errors[name] = (e as Error).message.split("\n")[0];
      log(`memory: ${spec.name} ${name}: ${t.errors[name]}`);
    }
  };
  try {
    await settle();
    t.idle = rss();
    await part("fill", async () => {
      const warm = await fill(r.socket, r.pid, 1000, o.fillLimit, pin);
      if (!warm.ok) throw new Error(`1k fill: ${warm.why}`);
      await settle();
      t.warm = rss();
      for (const n of o.leaves) {
        const f = await fill(r.socket, r.pid, n, o.fillLimit, pin);
        if (!f.ok) {
          t.fills.push({ leaves: n, rss: null, note: f.why });
          log(`memory: ${spec.name} ${n} leaves: ${f.why}`);
          break;
        }
        const hwm = statusKb(r.pid, "VmHWM");
        await settle();
        const settled = rss();
        t.fills.push({ leaves: n, rss: settled, fillPerS: f.fillPerS });
        t.peak = { hwm, settled, leaves: n };
        log(`memory: ${spec.name} ${n} leaves: RSS ${(settled / 1048576).toFixed(1)} MiB`);
      }
      const s = new SocketClient(r.socket);
      s.call(13, "/bench\0");
      s.close();
      await settle();
      t.afterRemove = rss();
    });
    for (const [kind, run] of Object.entries(CYCLES)) {
      await part(kind, async () => {
        const after: number[] = [];
        let errors = 0;
        for (let i = 0; i < o.cycles; i++) {
          errors += run(r.socket);
          await settle();
          after.push(rss());
        }
        t.cycles[kind] = errors > 0 ? `${errors} requests refused` : after;
      });
    }
    await part("host", async () => {
      t.host = await hostOverSocket(r.socket, rss, o);
    });
  } finally {
    await stop(r, env);
  }
  return t;
}

/** G guests' trees and watches over the socket, one connection per guest; then all removed. */
async function hostOverSocket(socket: string, rss: () => number, o: MemoryOptions) {
  const s = new SocketClient(socket);
  const before = rss();
  const conns: SocketClient[] = [];
  let errors = 0;
  for (let i = 1; i <= o.guests; i++) {
    writeGuestTree(s, i, false);
    const c = new SocketClient(socket);
    const w = pipelined(
      c,
      GUEST_WATCHES.map((p, k) => [4, `/local/domain/${i}/${p}\0w${k}\0`] as [number, string]),
    );
    errors += w.filter((x) => x.startsWith("E:")).length;
    conns.push(c);
  }
  await sleep(o.settle * 1000);
  const loaded = rss();
  for (const c of conns) c.close();
  for (let i = 1; i <= o.guests; i++) removeGuestTree(s, i);
  s.close();
  await sleep(o.settle * 1000);
  return { guests: o.guests, before, loaded, after: rss(), errors };
}

async function ensureAnchors(): Promise<void> {
  const out = await new Deno.Command("make", {
    args: ["-s", "-C", anchorsDir],
    env: { ANCHORS_BUILD: anchorsBuild },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`building the anchors failed: ${new TextDecoder().decode(out.stderr)}`);
}

export async function runMemoryBench(o: MemoryOptions, log: (s: string) => void): Promise<MemoryResult> {
  await ensureAnchors();
  const env: Env = {
    anchorSh: `${anchorsDir}/scripts/anchor.sh`,
    anchorsBuild,
    daemonCpu: o.cpu === "none" ? undefined : 0,
  };
  const dxCmd = Deno.env.get("DXENSTORED_CMD")?.trim().split(/\s+/) ??
    [`${root}/bin/dxenstored`, "--socket", "{socket}", "--backend", "memory"];
  const specs: TargetSpec[] = [
    { name: "cxenstored", kind: "cxenstored" },
    { name: "oxenstored", kind: "oxenstored" },
    { name: "dxenstored", kind: "custom", cmd: dxCmd },
  ].filter((s) => !o.only || o.only.includes(s.name)) as TargetSpec[];
  const work = Deno.makeTempDirSync({ prefix: "dxmem." });
  const targets: TargetMemory[] = [];
  try {
    for (const spec of specs) {
      log(`memory: ${spec.name}`);
      targets.push(await measureTarget(spec, `${work}/${spec.name}`, env, o, log));
    }
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
  let sim: SimHostResult | string | undefined;
  if (!o.only || o.only.includes("dxenstored")) {
    log(`memory: dxenstored under the simulated Xen, ${o.guests} guests × ${o.cycles} cycles`);
    try {
      sim = await simGuestCycles(o.guests, o.cycles, o.settle, o.cpu);
    } catch (e) {
      sim = (e as Error).message.split("\n")[0];
    }
  }
  return {
    options: o,
    targets,
    sim,
    load: Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  };
}

function parseArgs(argv: string[]): MemoryOptions {
  let o: MemoryOptions = argv.includes("--quick") ? QUICK_MEMORY_OPTIONS : DEFAULT_MEMORY_OPTIONS;
  const num = (v: string) => {
    const n = Number(v);
    if (!(n > 0)) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i] ?? "";
    switch (argv[i]) {
      case "--quick":
        break;
      case "--only":
        o = { ...o, only: v().split(",") };
        break;
      case "--leaves":
        o = { ...o, leaves: v().split(",").map(num) };
        break;
      case "--cycles":
        o = { ...o, cycles: num(v()) };
        break;
      case "--settle":
        o = { ...o, settle: num(v()) };
        break;
      case "--guests":
        o = { ...o, guests: num(v()) };
        break;
      default:
        throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return o;
}

if (import.meta.main) {
  const r = await runMemoryBench(parseArgs(Deno.args), (s) => console.error(s));
  console.log(memoryMarkdown(r));
}
