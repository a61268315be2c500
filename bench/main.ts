// `deno task bench [options]`: measures dxenstored against the echo floor,
// cxenstored and oxenstored with the anchors' xsbench, in one run, and
// prints one table per workload plus derived ratios.
//
// Like anchors/scripts/run-bench.sh: every target is started once and runs
// side by side (each idle while another is measured); each workload then
// runs against every target back to back, in an order that rotates, so
// background load hits all targets alike. A workload may run several rounds
// (--repeat; those with an issue's target at least TARGET_REPEAT): every
// target once per round, the order rotating from round to round, and ratios
// are taken within a round and reported as the median over the rounds. A
// target that fails to start, errors or dies is reported in its row; the rest
// of the run goes on.

import { selectWorkloads, TARGET_REPEAT, WORKLOADS } from "./workloads.ts";
import { alive, type Env, logTail, type Running, start, stop, type TargetSpec } from "./targets.ts";
import {
  derivedTable,
  FLOOR,
  LOAD_RELIABLE,
  type Rounds,
  type Row,
  targetTable,
  workloadTable,
} from "./report.ts";
import { runBackendBench } from "./backend.ts";
import { guestBenchMarkdown, runGuestBench } from "./guests.ts";
import { runMigrateBench } from "./migrate.ts";
import { DEFAULT_MEMORY_OPTIONS, QUICK_MEMORY_OPTIONS, runMemoryBench } from "./memory.ts";
import { memoryMarkdown } from "./memory_report.ts";

const USAGE = `usage: deno task bench [options]

  --quick              a few workloads, 1 s each (smoke test)
  --seconds N          measured seconds per workload and target (default 3; --quick: 1)
  --warmup N           unmeasured seconds first (default 0.5)
  --repeat N           rounds per workload, every target once per round (default 1; workloads with an
                       issue's target: at least ${TARGET_REPEAT}, except with --quick); ratios are the
                       median of the rounds' ratios
  --only a,b           targets: echo (or floor), cxenstored, oxenstored, dxenstored (default: all)
  --workloads a,b      workload ids, or prefixes such as "txn" (default: all; see below)
  --cpu same|split|none  same: daemon and client both on CPU 0 (default; see anchors/README.md)

dxenstored is started as "bin/dxenstored --socket {socket} --backend memory" (which passes
compile/v8-flags); DXENSTORED_CMD overrides it. DXENSTORED_BASELINE_CMD adds a target "baseline" (another build, same run).
A full run (no --only, no --workloads) ends with the storage backends (bench/backend.ts), memory
against the anchors (bench/memory.ts), guest domains over the simulated Xen (bench/guests.ts) and
export/import of 100 000 nodes over each daemon's socket (bench/migrate.ts; --quick: 10 000).
Workloads: ${WORKLOADS.map((w) => w.id).join(", ")}
Output: .build/bench/<stamp>/{raw.jsonl,summary.md,<target>-daemon.log}`;

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const anchorsDir = Deno.env.get("ANCHORS_DIR") ?? `${root}/../shared/anchors`;
const anchorsBuild = `${root}/.build/anchors`;
const xsbench = `${anchorsBuild}/xsbench`;

interface Options {
  quick: boolean;
  seconds: number;
  warmup: number;
  /** Rounds per workload (at least; see roundsFor). */
  repeat: number;
  only?: string[];
  workloads?: string[];
  cpu: "same" | "split" | "none";
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, seconds: NaN, warmup: 0.5, repeat: 1, cpu: "same" };
  const list = (v: string | undefined) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--quick":
        o.quick = true;
        break;
      case "--seconds":
        o.seconds = Number(value());
        break;
      case "--warmup":
        o.warmup = Number(value());
        break;
      case "--repeat":
        o.repeat = Number(value());
        break;
      case "--only":
        o.only = list(value()).map((t) => t === "floor" ? FLOOR : t);
        break;
      case "--workloads":
        o.workloads = list(value());
        break;
      case "--cpu": {
        const c = value();
        if (c !== "same" && c !== "split" && c !== "none") {
          throw new Error("--cpu must be same, split or none");
        }
        o.cpu = c;
        break;
      }
      case "-h":
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (Number.isNaN(o.seconds)) o.seconds = o.quick ? 1 : 3;
  if (!(o.seconds > 0) || !(o.warmup >= 0)) throw new Error("--seconds must be > 0 and --warmup >= 0");
  if (!Number.isInteger(o.repeat) || o.repeat < 1) throw new Error("--repeat must be a whole number ≥ 1");
  return o;
}

/** Rounds of workload `w`: --repeat, and at least TARGET_REPEAT where an issue's target is judged. */
function roundsFor(w: { target?: unknown }, o: Options): number {
  return Math.max(o.repeat, w.target !== undefined && !o.quick ? TARGET_REPEAT : 1);
}

function targetSpecs(only: string[] | undefined): TargetSpec[] {
  const dxCmd = Deno.env.get("DXENSTORED_CMD")?.trim().split(/\s+/) ??
    [`${root}/bin/dxenstored`, "--socket", "{socket}", "--backend", "memory"];
  const all: TargetSpec[] = [
    { name: FLOOR, kind: "echo" },
    { name: "cxenstored", kind: "cxenstored" },
    { name: "oxenstored", kind: "oxenstored" },
    { name: "dxenstored", kind: "custom", cmd: dxCmd },
  ];
  // Another build measured in the same run (e.g. main's, to compare a change under the same load):
  // its ratios come from raw.jsonl. The command gets its own environment (use `env` to set flags).
  const baseline = Deno.env.get("DXENSTORED_BASELINE_CMD")?.trim().split(/\s+/);
  if (baseline) all.push({ name: "baseline", kind: "custom", cmd: baseline });
  const unknown = (only ?? []).filter((n) => !all.some((t) => t.name === n));
  if (unknown.length) {
    throw new Error(`unknown target ${unknown.join(", ")}; known: ${all.map((t) => t.name).join(", ")}`);
  }
  return all.filter((t) => !only || only.includes(t.name));
}

const log = (s: string) => console.error(s);

async function sh(cmd: string, args: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { ok: out.success, text: text.trim() };
}

/** The anchors' tools into .build/anchors (the anchors folder may be read-only). */
async function buildAnchors() {
  const r = await sh("make", ["-s", "-C", anchorsDir], { ANCHORS_BUILD: anchorsBuild });
  if (!r.ok) throw new Error(`building the anchors in ${anchorsDir} failed:\n${r.text}`);
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

async function runXsbench(r: Running, floor: boolean, args: string[], o: Options, clientPin: string[]) {
  const cmd = [
    ...clientPin,
    xsbench,
    "--socket",
    r.socket,
    "--label",
    r.spec.name,
    "--daemon-pid",
    String(r.pid),
    "--seconds",
    String(o.seconds),
    "--warmup",
    String(o.warmup),
    ...(floor ? ["--floor"] : []),
    ...args,
  ];
  // xsbench gives up on a reply after 20 s itself; this only guards against
  // a wedged fill or setup (a 100k fill takes cxenstored ~20 s).
  const signal = AbortSignal.timeout((o.seconds + o.warmup + 240) * 1000);
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).output();
    const json = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
    if (json) return JSON.parse(json) as Record<string, unknown>;
    const err = new TextDecoder().decode(out.stderr).trim();
    return { ok: false, error: err || `xsbench ended with code ${out.code} ${out.signal ?? ""}` };
  } catch (e) {
    return { ok: false, error: signal.aborted ? "xsbench timed out" : String(e) };
  }
}

async function main() {
  const o = parseArgs(Deno.args);
  const workloads = selectWorkloads(o.workloads, o.quick);
  const specs = targetSpecs(o.only);
  const out = `${root}/.build/bench/${stamp()}`;
  Deno.mkdirSync(out, { recursive: true });
  // Short socket paths (sun_path is 108 bytes): run folders live in /tmp.
  const work = Deno.makeTempDirSync({ prefix: "dxbench." });
  const rawPath = `${out}/raw.jsonl`;
  const env: Env = {
    anchorSh: `${anchorsDir}/scripts/anchor.sh`,
    anchorsBuild,
    daemonCpu: o.cpu === "none" ? undefined : 0,
  };
  const clientPin = o.cpu === "same"
    ? ["taskset", "-c", "0"]
    : o.cpu === "split"
    ? ["taskset", "-c", "1"]
    : [];

  log(`building anchors into ${anchorsBuild}`);
  await buildAnchors();

  // Targets: running, or why not. Dead ones are restarted (a few times)
  // before the next workload, so one crash does not blank the whole run.
  const running = new Map<string, Running>();
  const down = new Map<string, string>();
  const starts = new Map<string, number>();
  const exits = new Map<string, string>();
  const stopOne = async (name: string) => {
    const r = running.get(name);
    if (!r) return;
    running.delete(name);
    const how = await stop(r, env);
    if (how) exits.set(name, how);
  };
  const ensure = async (s: TargetSpec) => {
    if (running.has(s.name)) return;
    const n = (starts.get(s.name) ?? 0) + 1;
    if (n > 3) return; // keep the last reason in `down`
    starts.set(s.name, n);
    // A missing bin/dxenstored is reported once, not retried (bare command names come from PATH).
    if (s.kind === "custom" && s.cmd![0].includes("/") && !exists(s.cmd![0])) {
      down.set(s.name, `${s.cmd![0]} not found`);
      starts.set(s.name, 99);
      return;
    }
    try {
      const r = await start(s, `${work}/${s.name}-${n}`, env);
      running.set(s.name, r);
      down.delete(s.name);
      log(`${s.name}: started${n > 1 ? ` again (#${n})` : ""}, socket=${r.socket} pid=${r.pid}`);
    } catch (e) {
      down.set(s.name, `failed to start: ${(e as Error).message}`);
      log(`${s.name}: ${down.get(s.name)}`);
    }
  };

  let stopping = false;
  const cleanup = async () => {
    stopping = true;
    for (const name of [...running.keys()]) await stopOne(name);
    Deno.removeSync(work, { recursive: true });
  };
  const onSignal = () => {
    log("interrupted: stopping targets");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  /** One run of workload `w` (round `rep`) against target `s`. */
  const measure = async (s: TargetSpec, w: (typeof workloads)[number], rep: number): Promise<Row> => {
    await ensure(s);
    const r = running.get(s.name);
    if (!r) {
      return {
        ok: false,
        target: s.name,
        wl: w.id,
        rep,
        skipped: true,
        error: down.get(s.name) ?? "not running",
      };
    }
    const cpu0 = cpuNs(r.pid);
    const res = await runXsbench(r, s.kind === "echo", w.args, o, clientPin);
    const cpu1 = cpuNs(r.pid);
    const load1 = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
    const row = { ...res, ok: res.ok === true, target: s.name, wl: w.id, rep, cpu: o.cpu, load1 } as Row;
    // The daemon's CPU time per operation: what another process on the CPU does not change (much),
    // where ops/s on a shared machine measures the machine. The warm-up is counted at the measured
    // rate (xsbench reports only the measured operations).
    const ops = Number(res.ops_per_s) * (o.seconds + o.warmup);
    if (cpu0 !== null && cpu1 !== null && ops > 0) row.daemon_cpu_us_per_op = (cpu1 - cpu0) / 1000 / ops;
    if (!alive(r.pid) || r.exited) {
      row.daemon_died = true;
      const tail = logTail(r);
      Deno.writeTextFileSync(`${out}/${s.name}-daemon.log`, `--- during ${w.id}\n${tail}\n`, {
        append: true,
      });
      down.set(s.name, `died during ${w.id}`);
      await stopOne(s.name);
    }
    return row;
  };

  const results = new Map<string, Rounds>();
  const raw = await Deno.open(rawPath, { create: true, append: true });
  const t0 = Date.now();
  try {
    for (const s of specs) await ensure(s);
    for (const [wi, w] of workloads.entries()) {
      const rounds: Rounds = new Map(specs.map((s) => [s.name, []]));
      results.set(w.id, rounds);
      const n = roundsFor(w, o);
      for (let rep = 0; rep < n && !stopping; rep++) {
        // The order rotates with the workload and the round: no target is always first or last.
        for (let j = 0; j < specs.length && !stopping; j++) {
          const s = specs[(j + wi + rep) % specs.length];
          const row = await measure(s, w, rep);
          rounds.get(s.name)!.push(row);
          await raw.write(new TextEncoder().encode(JSON.stringify(row) + "\n"));
          log(
            `[${w.id}${n > 1 ? ` ${rep + 1}/${n}` : ""}] ${s.name}: ` + (row.ok
              ? `${Math.round(row.ops_per_s as number)} ops/s, p50 ${row.p50_us} µs`
              : `FAILED: ${String(row.error).split("\n")[0]}`) +
              (row.daemon_died ? " (daemon died)" : ""),
          );
        }
      }
    }
  } finally {
    raw.close();
    if (!stopping) await cleanup();
    // Listeners would keep Deno's event loop (and so the process) alive.
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  const names = specs.map((s) => s.name);
  const maxLoad = Math.max(
    0,
    ...[...results.values()].flatMap((m) => [...m.values()].flat().map((r) => Number(r.load1 ?? 0))),
  );
  const meta = await machine();
  const summary = [
    `## dxenstored bench ${new Date().toISOString()}`,
    "",
    `- ${meta}`,
    `- cpu ${o.cpu}, ${o.seconds} s measured + ${o.warmup} s warm-up per run, ${
      o.repeat > 1 ? `${o.repeat} rounds` : "one round"
    } per workload${o.quick ? "" : ` (${TARGET_REPEAT} where an issue's target is judged)`}, ` +
    `${((Date.now() - t0) / 1000).toFixed(0)} s in all`,
    "- × floor = echo-floor ops/s ÷ target ops/s (lower is better); raw data: raw.jsonl",
    // Other work on the machine shows up as stalls (pinned runs share CPU 0 with it).
    ...(maxLoad > LOAD_RELIABLE
      ? [`- **noisy**: load average reached ${maxLoad} during the run (other processes)`]
      : []),
    ...[...down].map(([n, why]) => `- **${n}**: ${why.split("\n")[0]}`),
    "",
    ...workloads.filter((w) => results.has(w.id)).map((w) =>
      workloadTable(w, results.get(w.id)!, names) + "\n"
    ),
    derivedTable(results, names, exits),
    "",
    targetTable(workloads, results, maxLoad),
    "",
  ].join("\n");
  Deno.writeTextFileSync(`${out}/summary.md`, summary);
  console.log(summary);
  log(`raw: ${rawPath}\nsummary: ${out}/summary.md`);
  // A full run also compares the storage backends (bench/backend.ts; alone: deno task bench:backend).
  if (o.only === undefined && o.workloads === undefined) {
    const backends = await runBackendBench({ seconds: o.seconds, warmup: o.warmup, cpu: o.cpu }, log);
    Deno.writeTextFileSync(`${out}/backends.md`, backends);
    console.log(backends);
  }
  // Memory against the anchors (bench/memory.ts): idle, per node, peak, after removal, cycles, hosts.
  if (o.only === undefined && o.workloads === undefined) {
    log("memory: every daemon started fresh, filled, emptied and cycled");
    const mem = memoryMarkdown(
      await runMemoryBench({ ...(o.quick ? QUICK_MEMORY_OPTIONS : DEFAULT_MEMORY_OPTIONS), cpu: o.cpu }, log),
    );
    Deno.writeTextFileSync(`${out}/memory.md`, mem);
    console.log(mem);
  }
  // Guest domains over the simulated Xen (bench/guests.ts): ring vs socket, 1 000 domains.
  if (o.only === undefined && o.workloads === undefined) {
    log("guest domains: ring round trips and 1 000 simulated domains");
    const guests = guestBenchMarkdown(await runGuestBench(o.quick ? 100 : 1000, o.quick ? 1000 : 5000));
    Deno.writeTextFileSync(`${out}/guests.md`, guests);
    console.log(guests);
  }
  // Moving a live host's store: `dxenstored import|export --socket` per daemon (bench/migrate.ts).
  if (o.only === undefined && o.workloads === undefined) {
    const migrate = await runMigrateBench({ nodes: o.quick ? 10_000 : 100_000, cpu: o.cpu }, log);
    Deno.writeTextFileSync(`${out}/migrate.md`, migrate);
    console.log(migrate);
  }
}

/** CPU time (ns) of every thread of process `pid` so far (/proc/<pid>/task/<tid>/schedstat), or null. */
function cpuNs(pid: number): number | null {
  try {
    let ns = 0;
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
      } catch { /* the thread ended */ }
    }
    return ns;
  } catch {
    return null;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function machine(): Promise<string> {
  const pkg = await sh("dpkg-query", ["-W", "-f", "${Package} ${Version}", "xen-utils-4.17"]);
  const kernel = Deno.osRelease();
  return `${navigator.hardwareConcurrency} CPUs, kernel ${kernel}, ${
    pkg.ok ? pkg.text : "xen-utils-4.17 missing"
  }, ` +
    `deno ${Deno.version.deno}`;
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  Deno.exit(1);
}
