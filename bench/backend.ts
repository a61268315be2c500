// `deno task bench:backend` (also the last part of a full `deno task bench`): the storage backends
// side by side, in one run. For every backend and sync mode: WRITE ops/s with 16 clients and
// transaction commits/s with 16 clients (the anchors' xsbench), as ratios of the memory backend. For
// every persistent backend: restart time with 100 000 nodes and bytes on disk per node. "lmdb" is
// the LMDB storage module in C (`--backend so:build/backends/liblmdb_backend.so:<dir>`, built here
// if needed).
//
// Targets (issue 6): file with group commit ≥ 50 % of memory's WRITE throughput; restart with
// 100 000 nodes ≤ 2 s.
//
// Every daemon is `deno run -A src/cli/main.ts --socket S --backend B --sync M` in its own temp
// folder (on the same file system as the repo's .build, i.e. a real disk, not tmpfs). As in
// bench/main.ts, daemon and clients share CPU 0 by default (--cpu same), so the numbers compare
// like with like on a machine that has other work.
import { readV8Flags, v8FlagsArgs } from "../compile/v8_flags.ts";

import { ensureModule, MODULES } from "../backends/build.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${root}/src/cli/main.ts`;
const XSBENCH = `${root}/.build/anchors/xsbench`;
const FILL_NODES = 100_000;

export interface BackendBenchOptions {
  seconds: number;
  warmup: number;
  cpu: "same" | "split" | "none";
  /** Configurations to run (names as in CONFIGS); default all. */
  only?: string[];
  /** Skip the 100 000-node restart measurements. */
  noRestart?: boolean;
}

interface Config {
  readonly name: string;
  readonly backend: "memory" | "file" | "sqlite" | "tdb" | "lmdb";
  readonly sync: string;
  /** More daemon options. */
  readonly args?: readonly string[];
}

const CONFIGS: Config[] = [
  { name: "memory", backend: "memory", sync: "always" },
  { name: "file always", backend: "file", sync: "always" },
  { name: "file group:0", backend: "file", sync: "group:0" },
  // The same without AIO: the loop waits for each group's write (shows what --group-io=async buys).
  { name: "file group:0 inline", backend: "file", sync: "group:0", args: ["--group-io", "inline"] },
  { name: "file group:2", backend: "file", sync: "group:2" },
  { name: "file none", backend: "file", sync: "none" },
  { name: "sqlite always", backend: "sqlite", sync: "always" },
  { name: "sqlite group:2", backend: "sqlite", sync: "group:2" },
  { name: "sqlite none", backend: "sqlite", sync: "none" },
  { name: "tdb always", backend: "tdb", sync: "always" },
  { name: "tdb none", backend: "tdb", sync: "none" },
  { name: "lmdb always", backend: "lmdb", sync: "always" },
  { name: "lmdb group:0", backend: "lmdb", sync: "group:0" },
  { name: "lmdb group:2", backend: "lmdb", sync: "group:2" },
  { name: "lmdb none", backend: "lmdb", sync: "none" },
];

/** The LMDB module's shared object (built by runBackendBench when a configuration needs it). */
let lmdbModule = `${root}/${MODULES.lmdb.output}`;

function spec(backend: Config["backend"], dir: string): string {
  switch (backend) {
    case "memory":
      return "memory";
    case "file":
      return `file:${dir}/state`;
    case "lmdb":
      return `so:${lmdbModule}:${dir}/lmdb`;
    default:
      return `${backend}:${dir}/store.${backend}`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Daemon {
  child: Deno.ChildProcess;
  socket: string;
  /** Seconds from spawn until the socket accepted a connection. */
  startS: number;
  log: () => string;
}

async function startDaemon(
  dir: string,
  backend: string,
  sync: string,
  cpu: BackendBenchOptions["cpu"],
  args: readonly string[] = [],
) {
  const socket = `${dir}/sock`;
  try {
    Deno.removeSync(socket);
  } catch { /* none */ }
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    ...v8FlagsArgs(readV8Flags()),
    MAIN,
    "--socket",
    socket,
    "--backend",
    backend,
    `--sync=${sync}`,
    ...args,
  ];
  const pinned = cpu === "none" ? argv : ["taskset", "-c", "0", ...argv];
  const t0 = performance.now();
  const child = new Deno.Command(pinned[0], {
    args: pinned.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const chunks: Uint8Array[] = [];
  (async () => {
    for await (const c of child.stderr) chunks.push(c);
  })().catch(() => {});
  const log = () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = t0 + 120_000;
  for (;;) {
    if (exited) throw new Error(`daemon exited before serving:\n${log()}`);
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return { child, socket, startS: (performance.now() - t0) / 1000, log } satisfies Daemon;
    } catch { /* not yet */ }
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`daemon not serving after 120 s:\n${log()}`);
    }
    await sleep(2);
  }
}

async function stopDaemon(d: Daemon): Promise<void> {
  try {
    d.child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      d.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 30_000);
  await d.child.status;
  clearTimeout(timer);
}

async function xsbench(d: Daemon, args: string[], o: BackendBenchOptions): Promise<Record<string, unknown>> {
  const argv = [XSBENCH, "--socket", d.socket, "--daemon-pid", String(d.child.pid), ...args];
  const pinned = o.cpu === "same"
    ? ["taskset", "-c", "0", ...argv]
    : o.cpu === "split"
    ? ["taskset", "-c", "1", ...argv]
    : argv;
  const out = await new Deno.Command(pinned[0], {
    args: pinned.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const json = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
  if (json) return JSON.parse(json);
  return { ok: false, error: new TextDecoder().decode(out.stderr).trim() || `xsbench exit ${out.code}` };
}

function duBytes(dir: string): number {
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const e of Deno.readDirSync(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) stack.push(p);
      else if (e.isFile && e.name !== "sock") total += Deno.statSync(p).size;
    }
  }
  return total;
}

interface ThroughputRow {
  config: string;
  write?: number;
  commits?: number;
  error?: string;
}

interface RestartRow {
  backend: string;
  fillPerS?: number;
  bytes?: number;
  restartS?: number;
  loadS?: number;
  error?: string;
}

async function throughput(
  c: Config,
  o: BackendBenchOptions,
  log: (s: string) => void,
): Promise<ThroughputRow> {
  const dir = Deno.makeTempDirSync({ dir: `${root}/.build`, prefix: "bench-backend." });
  const row: ThroughputRow = { config: c.name };
  try {
    const d = await startDaemon(dir, spec(c.backend, dir), c.sync, o.cpu, c.args);
    try {
      const common = ["--seconds", String(o.seconds), "--warmup", String(o.warmup), "--clients", "16"];
      const w = await xsbench(d, ["--workload", "write", ...common], o);
      if (w.ok === true) row.write = w.ops_per_s as number;
      else row.error = String(w.error);
      const t = await xsbench(d, ["--workload", "txn", "--mode", "disjoint", ...common], o);
      if (t.ok === true && t.verified !== false) row.commits = t.commit_per_s as number;
      else row.error ??= String(t.error ?? "transaction counters not verified");
    } finally {
      await stopDaemon(d);
    }
  } catch (e) {
    row.error = (e as Error).message.split("\n")[0];
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  log(
    `${c.name}: write ${row.write?.toFixed(0) ?? "-"} ops/s, txn ${
      row.commits?.toFixed(0) ?? "-"
    } commits/s` +
      (row.error ? ` (${row.error})` : ""),
  );
  return row;
}

async function restart(
  backend: Config["backend"],
  baselineS: number,
  o: BackendBenchOptions,
  log: (s: string) => void,
): Promise<RestartRow> {
  const dir = Deno.makeTempDirSync({ dir: `${root}/.build`, prefix: "bench-backend." });
  const row: RestartRow = { backend };
  try {
    const s = spec(backend, dir);
    // Fill without fsyncs (the restart does not depend on how the nodes got there).
    let d = await startDaemon(dir, s, "none", o.cpu);
    try {
      const f = await xsbench(d, ["--workload", "fill", "--store-nodes", String(FILL_NODES)], o);
      if (f.ok !== true) throw new Error(`fill: ${f.error}`);
      row.fillPerS = f.fill_per_s as number;
    } finally {
      await stopDaemon(d);
    }
    row.bytes = duBytes(dir);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      d = await startDaemon(dir, s, "always", o.cpu);
      times.push(d.startS);
      try {
        const r = await xsbench(d, ["--workload", "fill", "--store-nodes", String(FILL_NODES)], o);
        if (r.ok !== true || r.fill_added !== 0) {
          throw new Error(`after restart the store lost nodes: ${JSON.stringify(r)}`);
        }
      } finally {
        await stopDaemon(d);
      }
    }
    times.sort((a, b) => a - b);
    row.restartS = times[1];
    row.loadS = Math.max(0, times[1] - baselineS);
  } catch (e) {
    row.error = (e as Error).message.split("\n")[0];
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  log(
    `${backend}: restart with ${FILL_NODES} nodes ${row.restartS?.toFixed(2) ?? "-"} s, ` +
      `${row.bytes !== undefined ? (row.bytes / FILL_NODES).toFixed(0) : "-"} bytes/node` +
      (row.error ? ` (${row.error})` : ""),
  );
  return row;
}

/**
 * Median fdatasync latency of the stores' file system (a small write into zero-filled space, as the
 * file backend does): group commit's throughput is bounded by 16 commits per (sync + work).
 */
function fsyncProbeUs(): number {
  const p = `${root}/.build/bench-backend.fsync-probe`;
  const f = Deno.openSync(p, { read: true, write: true, create: true, truncate: true });
  try {
    f.writeSync(new Uint8Array(1 << 20));
    f.syncSync();
    f.seekSync(0, Deno.SeekMode.Start);
    const b = new Uint8Array(1600).fill(1);
    const ts: number[] = [];
    for (let i = 0; i < 200; i++) {
      f.writeSync(b);
      const t = performance.now();
      f.syncDataSync();
      ts.push(performance.now() - t);
    }
    ts.sort((a, b) => a - b);
    return ts[100] * 1000;
  } finally {
    f.close();
    Deno.removeSync(p);
  }
}

const pct = (x: number | undefined, base: number | undefined) =>
  x === undefined || base === undefined || base === 0 ? "-" : `${((100 * x) / base).toFixed(0)} %`;
const num = (x: number | undefined, digits = 0) => (x === undefined ? "-" : x.toFixed(digits));

/** Run the backend benchmarks; returns the Markdown summary. */
export async function runBackendBench(
  o: BackendBenchOptions,
  log = (s: string) => console.error(s),
): Promise<string> {
  const configs = o.only
    ? CONFIGS.filter((c) => o.only!.includes(c.name) || o.only!.includes(c.backend))
    : CONFIGS;
  if (!configs.some((c) => c.name === "memory")) configs.unshift(CONFIGS[0]);
  if (configs.some((c) => c.backend === "lmdb")) lmdbModule = await ensureModule(MODULES.lmdb);
  const fsyncBefore = fsyncProbeUs();
  const rows: ThroughputRow[] = [];
  for (const c of configs) rows.push(await throughput(c, o, log));
  // The machine is shared: measure memory again at the end, and compare against the better of the two
  // (a slow first memory run must not flatter the other rows).
  if (configs.length > 1) rows.push({ ...(await throughput(CONFIGS[0], o, log)), config: "memory (again)" });
  const fsyncAfter = fsyncProbeUs();
  const memRows = rows.filter((r) => r.config.startsWith("memory"));
  const best = (xs: Array<number | undefined>) => {
    const ok = xs.filter((x): x is number => x !== undefined);
    return ok.length > 0 ? Math.max(...ok) : undefined;
  };
  const mem = { write: best(memRows.map((r) => r.write)), commits: best(memRows.map((r) => r.commits)) };
  const restarts: RestartRow[] = [];
  let baselineS = 0;
  if (!o.noRestart) {
    // Startup of an empty memory daemon: the part of a restart that is Deno, not the backend.
    const dir = Deno.makeTempDirSync({ dir: `${root}/.build`, prefix: "bench-backend." });
    try {
      const starts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const d = await startDaemon(dir, "memory", "always", o.cpu);
        starts.push(d.startS);
        await stopDaemon(d);
      }
      baselineS = starts.sort((a, b) => a - b)[1];
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
    const kinds = [...new Set(configs.map((c) => c.backend))].filter((b) => b !== "memory");
    for (const b of kinds) restarts.push(await restart(b, baselineS, o, log));
  }
  const fileGroup = rows.filter((r) => r.config.startsWith("file group") && r.write !== undefined);
  const bestRow = fileGroup.reduce<ThroughputRow | undefined>(
    (top, r) => top === undefined || r.write! > top.write! ? r : top,
    undefined,
  );
  const bestGroup = bestRow?.write;
  const lines = [
    `## dxenstored storage backends ${new Date().toISOString()}`,
    "",
    `- ${navigator.hardwareConcurrency} CPUs, kernel ${Deno.osRelease()}, deno ${Deno.version.deno}, cpu ${o.cpu}, ` +
    `${o.seconds} s measured + ${o.warmup} s warm-up per run; load average ${
      Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")
    } at the end`,
    "- WRITE: xsbench write, 16 clients, 16-byte values; txn: xsbench txn --mode disjoint, 16 clients " +
    "(commits/s). Ratios are against the memory backend in this run (measured first and last; the better of the " +
    "two).",
    `- fdatasync of 1600 bytes on the stores' file system: median ${fsyncBefore.toFixed(0)} µs before the ` +
    `throughput runs, ${
      fsyncAfter.toFixed(0)
    } µs after (group commit pays one per batch of up to 16 commits)`,
    "",
    "| backend, --sync | WRITE ops/s | vs memory | txn commits/s | vs memory |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.config} | ${num(r.write)} | ${pct(r.write, mem?.write)} | ${num(r.commits)} | ${
        pct(r.commits, mem?.commits)
      } |` +
      (r.error ? ` ${r.error}` : "")
    ),
    "",
  ];
  if (restarts.length > 0) {
    lines.push(
      `Restart with ${FILL_NODES} nodes (xsbench fill, written with --sync=none, restarted with --sync=always; ` +
        `median of 3; an empty memory daemon starts in ${baselineS.toFixed(2)} s):`,
      "",
      "| backend | fill nodes/s | restart s | of which loading s | on disk bytes/node |",
      "| --- | ---: | ---: | ---: | ---: |",
      ...restarts.map((r) =>
        `| ${r.backend} | ${num(r.fillPerS)} | ${num(r.restartS, 2)} | ${num(r.loadS, 2)} | ` +
        `${r.bytes !== undefined ? (r.bytes / FILL_NODES).toFixed(0) : "-"} |` +
        (r.error ? ` ${r.error}` : "")
      ),
      "",
    );
  }
  const worstRestart = Math.max(...restarts.map((r) => r.restartS ?? Infinity));
  const fileRestart = restarts.find((r) => r.backend === "file")?.restartS;
  lines.push(
    "Targets:",
    "",
    `- file with group commit ≥ 50 % of memory WRITE throughput: ${pct(bestGroup, mem?.write)} ` +
      `(${
        bestGroup !== undefined && mem?.write
          ? `${bestRow!.config}: ${bestGroup >= mem.write / 2 ? "met" : "NOT met"}`
          : "not measured"
      })`,
    `- restart with ${FILL_NODES} nodes ≤ 2 s: file ${num(fileRestart, 2)} s` +
      (restarts.length > 0 ? `; slowest backend ${num(worstRestart, 2)} s` : " (not measured)"),
    "",
  );
  return lines.join("\n");
}

function parse(argv: string[]): BackendBenchOptions {
  const o: BackendBenchOptions = { seconds: 3, warmup: 0.5, cpu: "same" };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    if (flag === "--seconds") o.seconds = Number(value());
    else if (flag === "--warmup") o.warmup = Number(value());
    else if (flag === "--quick") o.seconds = 1;
    else if (flag === "--only") o.only = value().split(",").map((s) => s.trim());
    else if (flag === "--no-restart") o.noRestart = true;
    else if (flag === "--cpu") o.cpu = value() as BackendBenchOptions["cpu"];
    else {
      console.log(`usage: deno task bench:backend [--quick] [--seconds N] [--warmup N] [--cpu same|split|none]
                                [--only memory,file,"file group:2",...] [--no-restart]
configurations: ${CONFIGS.map((c) => c.name).join(", ")}`);
      Deno.exit(flag === "-h" || flag === "--help" ? 0 : 2);
    }
  }
  return o;
}

if (import.meta.main) {
  const o = parse(Deno.args);
  const summary = await runBackendBench(o);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const out = `${root}/.build/bench/${stamp}-backends`;
  Deno.mkdirSync(out, { recursive: true });
  Deno.writeTextFileSync(`${out}/summary.md`, summary);
  console.log(summary);
  console.error(`summary: ${out}/summary.md`);
}
