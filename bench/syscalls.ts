// System calls per request, counted with strace (issue 20): how many epoll_wait, read, write,
// event-channel and other calls one READ round trip costs each side, on the Unix socket and on a
// simulated guest ring, for dxenstored and (socket only) the reference daemons. Counts do not depend
// on machine load, so they are comparable between runs where timings are not.
//
//   bin/deno run -A bench/syscalls.ts [--requests N] [--targets dx-socket,dx-ring,cxenstored,oxenstored]
//                                     [--perf DIR | --cpu] [--xsbench "ARGS" [--seconds S]]
//
// --xsbench "ARGS": the load is the anchors' xsbench with ARGS (e.g. "--workload txn --mode create
// --clients 16") instead of the READ loop, on the socket targets (dx-socket, cxenstored, oxenstored,
// echo: the floor): a 2 s unmeasured run first, then S seconds (default 3) traced; per request means
// per xsbench operation (a txn attempt is one operation of several requests). Only the daemon is
// traced (xsbench's own threads are not ours).
//
// --perf DIR: instead of strace, `perf record -e cpu-clock -g` samples the daemon while the client
// runs (dxenstored with V8's --perf-basic-prof, so JavaScript frames have names); DIR gets
// <target>.perf.txt, perf report's flat profile by symbol. CPU-clock samples count the daemon's own
// CPU time, so the shares hold on a busy machine.
//
// --cpu: no tracer; the CPU time of the daemon's threads (and the client's, for the READ loop) per
// request, from /proc/<pid>/task/*/schedstat: what a request costs, without any tracing overhead.
//
// Each target: the daemon starts, a client process (this file, --client) warms up with 2 000 READs,
// then strace attaches to every thread of the daemon and of the client, the client sends N READs one
// after another (a blocking loop: request, wait, reply), and strace detaches. Reported per request:
// every system call of the daemon's main thread (the loop) and of its other threads (V8's, Deno's),
// and of the client's main thread. The go/done handshake adds a few calls in all, negligible for
// N = 5 000.
import { SocketClient } from "./socket_client.ts";
import { toolstackCreate } from "./host_trees.ts";
import { createDomain } from "../src/xen/sim/control.ts";
import { SimGuest } from "../src/xen/sim/guest.ts";
import { GuestClient } from "../src/client/guest.ts";
import { alive, type Running, start, stop, type TargetSpec } from "./targets.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const ANCHORS = Deno.env.get("ANCHORS_DIR") ?? `${ROOT}/../shared/anchors`;
const WARMUP = 2000;
const PATH = "/local/domain/1/name";

type Kind = "dx-socket" | "dx-ring" | "cxenstored" | "oxenstored" | "echo";
const KINDS: Kind[] = ["dx-socket", "dx-ring", "cxenstored", "oxenstored", "echo"];
/** --cpu: measure CPU time instead of tracing. */
let cpuOnly = false;
const ENV = { anchorSh: `${ANCHORS}/scripts/anchor.sh`, anchorsBuild: `${ROOT}/.build/anchors` };

/** Calls per thread group: name → [calls, failed calls]. */
export type Counts = Map<string, [number, number]>;

export interface ThreadCounts {
  readonly main: Counts;
  readonly others: Counts;
}

/** Counts from `strace -f -o FILE` output: lines "TID name(args) = result", split main thread / others. */
export function parseStrace(text: string, mainTid: number): ThreadCounts {
  const main: Counts = new Map();
  const others: Counts = new Map();
  for (const line of text.split("\n")) {
    // "123 read(3, ..." starts a call; "123 <... read resumed>..." finishes one started earlier.
    const m = /^(\d+)\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()/.exec(line);
    if (m === null) continue;
    const into = Number(m[1]) === mainTid ? main : others;
    const name = m[2] ?? m[3];
    const c = into.get(name) ?? [0, 0];
    if (m[3] !== undefined) c[0]++;
    if (!line.includes("<unfinished ...>") && /= -1 E[A-Z]+/.test(line)) c[1]++;
    into.set(name, c);
  }
  return { main, others };
}

function taskIds(pid: number): number[] {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => Number(e.name));
  } catch {
    return [];
  }
}

function isTraced(tid: number, pid: number): boolean {
  try {
    return /TracerPid:\s+[1-9]/.test(Deno.readTextFileSync(`/proc/${pid}/task/${tid}/status`));
  } catch {
    return true; // gone
  }
}

/** strace attached to every thread of `pid`, writing to `out`. */
async function attach(pid: number, out: string): Promise<Deno.ChildProcess> {
  const s = new Deno.Command("strace", {
    args: ["-f", "-qq", "-o", out, "-p", String(pid)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !taskIds(pid).every((t) => isTraced(t, pid))) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return s;
}

async function detach(s: Deno.ChildProcess): Promise<void> {
  try {
    s.kill("SIGINT");
  } catch { /* ended */ }
  await s.status;
}

interface Measured {
  readonly kind: Kind;
  readonly n: number;
  /** --cpu: CPU time (µs) of the daemon's and the client's threads during the window. */
  readonly daemonCpuUs?: number;
  readonly clientCpuUs?: number;
  readonly daemon: ThreadCounts;
  readonly client: ThreadCounts;
}

const dec = new TextDecoder();

/** Reads lines from the client's stdout until `want`. */
async function expectLine(r: ReadableStreamDefaultReader<Uint8Array>, want: string): Promise<void> {
  let buf = "";
  while (!buf.includes(`${want}\n`)) {
    const { value, done } = await r.read();
    if (done) throw new Error(`client ended before "${want}": ${buf}`);
    buf += dec.decode(value);
  }
}

/** perf sampling the daemon's threads (cpu-clock, call graphs), writing `out`. */
async function perfAttach(pid: number, out: string): Promise<Deno.ChildProcess> {
  const p = new Deno.Command("perf", {
    args: ["record", "-q", "-e", "cpu-clock", "-F", "4000", "-g", "-o", out, "-p", String(pid)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await new Promise((r) => setTimeout(r, 500)); // perf has opened its events
  return p;
}

/** perf report: the flat profile by symbol (self time), and the share spent in the kernel. */
async function perfReport(data: string): Promise<string> {
  const r = await new Deno.Command("perf", {
    args: [
      "report",
      "-i",
      data,
      "--stdio",
      "--no-children",
      "--sort",
      "dso,sym",
      "-g",
      "none",
      "--percent-limit",
      "0.3",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return dec.decode(r.stdout);
}

function daemonSpec(kind: Kind, dir: string, perf: boolean): TargetSpec {
  if (!kind.startsWith("dx")) return { name: kind, kind: kind as "cxenstored" | "oxenstored" | "echo" };
  return {
    name: kind,
    kind: "custom",
    cmd: [
      Deno.execPath(),
      "run",
      "-A",
      ...(perf ? ["--v8-flags=--perf-basic-prof,--logfile=/dev/null"] : []),
      `${ROOT}/src/cli/main.ts`,
      "--socket",
      "{socket}",
      "--backend",
      "memory",
      "--log-level",
      "warn",
      ...(kind === "dx-ring" ? ["--xen", `sim:${dir}/xen`] : []),
    ],
  };
}

/**
 * Runs `load` (which calls `window` around its measured part) with strace or perf on the daemon
 * (and on `client`, if given) during the window.
 */
/** CPU time (µs) all threads of `pid` have run so far. */
function processCpuUs(pid: number): number {
  let ns = 0;
  for (const tid of taskIds(pid)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${tid}/schedstat`).split(" ")[0]);
    } catch { /* the thread ended */ }
  }
  return ns / 1000;
}

async function traced(
  kind: Kind,
  dir: string,
  daemonPid: number,
  perfDir: string | undefined,
  load: (window: (clientPid: number | null, body: () => Promise<void>) => Promise<void>) => Promise<number>,
): Promise<Measured> {
  let cpu: { daemon: number; client?: number } | undefined;
  const window = async (clientPid: number | null, body: () => Promise<void>) => {
    if (cpuOnly) {
      const d0 = processCpuUs(daemonPid);
      const c0 = clientPid === null ? 0 : processCpuUs(clientPid);
      await body();
      cpu = {
        daemon: processCpuUs(daemonPid) - d0,
        client: clientPid === null ? undefined : processCpuUs(clientPid) - c0,
      };
      return;
    }
    const tracers: Deno.ChildProcess[] = [];
    if (perfDir !== undefined) {
      tracers.push(await perfAttach(daemonPid, `${dir}/perf.data`));
      if (clientPid !== null) tracers.push(await perfAttach(clientPid, `${dir}/client.perf.data`));
    } else {
      tracers.push(await attach(daemonPid, `${dir}/daemon.strace`));
      if (clientPid !== null) tracers.push(await attach(clientPid, `${dir}/client.strace`));
    }
    await body();
    for (const t of tracers.reverse()) await detach(t);
  };
  const n = await load(window);
  if (perfDir !== undefined) {
    Deno.writeTextFileSync(
      `${perfDir}/${kind}.perf.txt`,
      `# ${n} requests traced\n${await perfReport(`${dir}/perf.data`)}`,
    );
    Deno.copyFileSync(`${dir}/perf.data`, `${perfDir}/${kind}.perf.data`);
    try {
      Deno.copyFileSync(`${dir}/client.perf.data`, `${perfDir}/${kind}.client.perf.data`);
    } catch { /* no client traced */ }
  }
  const read = (f: string) => {
    try {
      return Deno.readTextFileSync(f);
    } catch {
      return "";
    }
  };
  return {
    kind,
    n,
    daemonCpuUs: cpu?.daemon,
    clientCpuUs: cpu?.client,
    daemon: parseStrace(read(`${dir}/daemon.strace`), daemonPid),
    client: parseStrace(read(`${dir}/client.strace`), -1),
  };
}

async function measure(kind: Kind, n: number, work: string, perfDir?: string, xsbench?: XsbenchLoad) {
  const dir = `${work}/${kind}`;
  Deno.mkdirSync(dir, { recursive: true });
  const daemon: Running = await start(daemonSpec(kind, dir, perfDir !== undefined), dir, ENV);
  try {
    if (xsbench !== undefined) {
      return await traced(kind, dir, daemon.pid, perfDir, async (window) => {
        await runXsbench(daemon.socket, kind, xsbench.args, 2); // unmeasured: both JITs warm
        let ops = 0;
        await window(null, async () => {
          ops = await runXsbench(daemon.socket, kind, xsbench.args, xsbench.seconds);
        });
        return ops;
      });
    }
    // The node read, and for the ring the domain that reads it (its own name).
    const s = new SocketClient(daemon.socket);
    if (kind === "dx-ring") toolstackCreate(s, createDomain(`${dir}/xen`, 1));
    else s.call(11, `${PATH}\0guest1`);
    s.close();
    return await traced(
      kind,
      dir,
      daemon.pid,
      perfDir,
      (window) => readLoop(kind, daemon, dir, n, perfDir, window),
    );
  } finally {
    if (alive(daemon.pid) || daemon.child) await stop(daemon, ENV);
  }
}

/** The READ loop in a client process (this file, --client): warm-up, then N READs inside `window`. */
async function readLoop(
  kind: Kind,
  daemon: Running,
  dir: string,
  n: number,
  perfDir: string | undefined,
  window: (clientPid: number | null, body: () => Promise<void>) => Promise<void>,
): Promise<number> {
  const client = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(perfDir !== undefined ? ["--v8-flags=--perf-basic-prof,--logfile=/dev/null"] : []),
      new URL(import.meta.url).pathname,
      "--client",
      kind,
      daemon.socket,
      dir,
      String(n),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const out = client.stdout.getReader();
    const go = client.stdin.getWriter();
    await expectLine(out, "ready");
    await window(client.pid, async () => {
      await go.write(new TextEncoder().encode("go\n"));
      await expectLine(out, "done");
    });
    await go.write(new TextEncoder().encode("exit\n"));
    await go.close();
    out.releaseLock();
    await client.stdout.cancel();
    await client.status;
    return n;
  } catch (e) {
    try {
      client.kill("SIGKILL");
    } catch { /* gone */ }
    await client.status;
    throw e;
  }
}

interface XsbenchLoad {
  readonly args: string[];
  readonly seconds: number;
}

/** One xsbench run against `socket`; returns its operation count. */
async function runXsbench(socket: string, kind: Kind, args: string[], seconds: number): Promise<number> {
  const out = await new Deno.Command(`${ROOT}/.build/anchors/xsbench`, {
    args: [
      "--socket",
      socket,
      "--label",
      kind,
      "--seconds",
      String(seconds),
      "--warmup",
      "0",
      ...(kind === "echo" ? ["--floor"] : []),
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = dec.decode(out.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
  const r = line === undefined ? { ok: false, error: dec.decode(out.stderr) } : JSON.parse(line);
  if (r.ok !== true) throw new Error(`xsbench on ${kind}: ${r.error}`);
  return Number(r.ops);
}

/** The load generator: warm up, wait for "go", N READs, "done", wait for "exit". */
async function clientMain(kind: Kind, socket: string, dir: string, n: number): Promise<void> {
  const line = new Uint8Array(64);
  const waitLine = () => Deno.stdin.readSync(line);
  if (kind === "dx-ring") {
    const g = new GuestClient(new SimGuest(`${dir}/xen`, 1), { blocking: true, timeoutMs: 30_000 });
    await g.reconnect();
    const payload = "name\0";
    for (let i = 0; i < WARMUP; i++) g.callSync(2, payload);
    console.log("ready");
    waitLine();
    for (let i = 0; i < n; i++) g.callSync(2, payload);
    console.log("done");
    waitLine();
    g.close();
    return;
  }
  const s = new SocketClient(socket);
  const read = () => s.call(2, `${PATH}\0`);
  for (let i = 0; i < WARMUP; i++) read();
  console.log("ready");
  waitLine();
  for (let i = 0; i < n; i++) read();
  console.log("done");
  waitLine();
  s.close();
}

function table(results: Measured[]): string {
  const cols = results.map((r) => r.kind);
  const rows: Array<[string, string, (r: Measured) => Counts]> = [
    ["daemon loop", "daemon main thread", (r) => r.daemon.main],
    ["daemon other threads", "daemon other threads", (r) => r.daemon.others],
    ["client", "client (all threads)", (r) => mergeCounts(r.client.main, r.client.others)],
  ];
  const out = [
    `| system calls per request | ${cols.join(" | ")} |`,
    `| --- | ${cols.map(() => "---:").join(" | ")} |`,
  ];
  for (const [, label, pick] of rows) {
    const names = new Set(results.flatMap((r) => [...pick(r).keys()]));
    const total = (r: Measured) => [...pick(r).values()].reduce((a, [c]) => a + c, 0) / r.n;
    if (results.every((r) => total(r) === 0)) continue; // not traced (xsbench is not ours)
    out.push(`| **${label}, total** | ${results.map((r) => `**${total(r).toFixed(2)}**`).join(" | ")} |`);
    for (const name of [...names].sort()) {
      const per = results.map((r) => {
        const c = pick(r).get(name);
        if (c === undefined) return "";
        const v = c[0] / r.n;
        const e = c[1] / r.n;
        return v < 0.005 ? "" : `${v.toFixed(2)}${e >= 0.005 ? ` (${e.toFixed(2)} failed)` : ""}`;
      });
      if (per.every((p) => p === "")) continue;
      out.push(`| ${name} | ${per.join(" | ")} |`);
    }
  }
  return out.join("\n");
}

function cpuTable(results: Measured[]): string {
  const cell = (r: Measured, v: number | undefined) => v === undefined ? "" : (v / r.n).toFixed(2);
  return [
    `| CPU time per request (µs) | ${results.map((r) => r.kind).join(" | ")} |`,
    `| --- | ${results.map(() => "---:").join(" | ")} |`,
    `| daemon (all threads) | ${results.map((r) => cell(r, r.daemonCpuUs)).join(" | ")} |`,
    `| client (all threads) | ${results.map((r) => cell(r, r.clientCpuUs)).join(" | ")} |`,
    `| requests measured | ${results.map((r) => r.n).join(" | ")} |`,
  ].join("\n");
}

function mergeCounts(a: Counts, b: Counts): Counts {
  const m: Counts = new Map();
  for (const src of [a, b]) {
    for (const [k, [c, e]] of src) {
      const x = m.get(k) ?? [0, 0];
      m.set(k, [x[0] + c, x[1] + e]);
    }
  }
  return m;
}

if (import.meta.main && Deno.args[0] === "--client") {
  const [, kind, socket, dir, n] = Deno.args;
  await clientMain(kind as Kind, socket, dir, Number(n));
} else if (import.meta.main) {
  const args = Deno.args;
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const n = Number(opt("--requests") ?? 5000);
  const perfDir = opt("--perf");
  cpuOnly = args.includes("--cpu");
  if (perfDir !== undefined) Deno.mkdirSync(perfDir, { recursive: true });
  const xsArgs = opt("--xsbench");
  const xsbench = xsArgs === undefined
    ? undefined
    : { args: xsArgs.split(/\s+/).filter(Boolean), seconds: Number(opt("--seconds") ?? 3) };
  const kinds = (opt("--targets")?.split(",") ??
    KINDS.filter((k) => xsbench !== undefined ? k !== "dx-ring" : k !== "echo")) as Kind[];
  for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`unknown target ${k}`);
  if (xsbench !== undefined && kinds.includes("dx-ring")) {
    throw new Error("--xsbench runs on the socket only");
  }
  if (xsbench === undefined && kinds.includes("echo")) throw new Error("the echo floor takes --xsbench only");
  const make = await new Deno.Command("make", {
    args: ["-s", "-C", ANCHORS],
    env: { ANCHORS_BUILD: `${ROOT}/.build/anchors` },
    stdout: "null",
  }).output();
  if (!make.success && (xsbench !== undefined || kinds.some((k) => !k.startsWith("dx")))) {
    throw new Error("building the anchors failed");
  }
  const shm = (() => {
    try {
      return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
    } catch {
      return undefined;
    }
  })();
  const work = Deno.makeTempDirSync({ dir: shm, prefix: "dxsyscalls." });
  try {
    const results: Measured[] = [];
    for (const k of kinds) {
      console.error(`${k}: ${xsbench ? `xsbench ${xsbench.args.join(" ")}` : `${n} READs`}`);
      results.push(await measure(k, n, work, perfDir, xsbench));
    }
    if (cpuOnly) console.log(cpuTable(results));
    else if (perfDir === undefined) console.log(table(results));
    else console.log(`perf reports in ${perfDir}`);
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}
