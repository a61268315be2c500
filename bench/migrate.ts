// `deno task bench:migrate` (and the end of a full `deno task bench`): moving a live host's store with
// `dxenstored import|export --socket` (src/cli/host_store.ts), as an operator runs it — the CLI,
// Deno's start-up and the JSON lines included — against a live cxenstored, oxenstored and dxenstored,
// one row per daemon: import of N nodes (default 100 000, xsbench fill's layout) into the fresh
// daemon, then export of its whole store, checked against what was imported. The goal: under 10 s
// each (docs/backends.md, "Export and import"). Each row also shows the daemon's own speed, measured
// by the anchors' xsbench on another fresh instance in the same run: `fill` (WRITE of N new leaves, 64
// in flight — import sends a WRITE and a SET_PERMS per node) and `pipeline` READs (64 in flight;
// export needs three requests per node), so a slow row says whether the tool or the daemon is slow.
import { type Env, type Running, start, stop, type TargetSpec } from "./targets.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const anchorsDir = Deno.env.get("ANCHORS_DIR") ?? `${root}/../shared/anchors`;
const dxenstored = `${root}/bin/dxenstored`;

export interface MigrateBenchOptions {
  readonly nodes: number;
  readonly cpu: "same" | "split" | "none";
  readonly only?: readonly string[];
}

interface Row {
  readonly target: string;
  /** xsbench fill of N leaves, seconds. */
  readonly fillS?: number;
  /** Three pipelined READs per node at xsbench's pipeline rate, seconds. */
  readonly readFloorS?: number;
  readonly importS?: number;
  readonly exportS?: number;
  readonly exported?: number;
  /** What export said about the snapshot ("one transaction", "a watch on /, ..."). */
  readonly snapshot?: string;
  readonly error?: string;
}

const TARGETS: TargetSpec[] = [
  { name: "cxenstored", kind: "cxenstored" },
  { name: "oxenstored", kind: "oxenstored" },
  { name: "dxenstored", kind: "custom", cmd: [dxenstored, "--socket", "{socket}", "--backend", "memory"] },
];

/** xsbench fill's layout: /bench/fill/gNNNNN/nNN, 100 leaves per folder, 14-byte values. */
function fillLines(n: number): { text: string; nodes: number } {
  const lines = [
    JSON.stringify({ path: "/bench", value: "", perms: ["n0"] }),
    JSON.stringify({ path: "/bench/fill", value: "", perms: ["n0"] }),
  ];
  for (let g = 0; g * 100 < n; g++) {
    const gp = `/bench/fill/g${String(g).padStart(5, "0")}`;
    lines.push(JSON.stringify({ path: gp, value: "", perms: ["n0"] }));
    for (let i = 0; i < 100 && g * 100 + i < n; i++) {
      const v = `v${String(g * 100 + i).padStart(13, "0")}`;
      lines.push(
        JSON.stringify({ path: `${gp}/n${String(i).padStart(2, "0")}`, value: v, perms: ["n0", "r1"] }),
      );
    }
  }
  return { text: lines.join("\n") + "\n", nodes: lines.length };
}

const xsbench = `${root}/.build/anchors/xsbench`;

async function xsbenchJson(pin: string[], args: string[]): Promise<Record<string, number | boolean>> {
  const o = await new Deno.Command(pin.length > 0 ? pin[0] : xsbench, {
    args: pin.length > 0 ? [...pin.slice(1), xsbench, ...args] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const line = new TextDecoder().decode(o.stdout).split("\n").filter((l) => l.startsWith("{")).pop();
  if (line === undefined) throw new Error(`xsbench ${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  return JSON.parse(line);
}

/** The daemon's own speed on a fresh instance: fill N leaves, then pipelined READs. */
async function daemonSpeed(
  spec: TargetSpec,
  dir: string,
  env: Env,
  pin: string[],
  n: number,
): Promise<{ fillS: number; readOpsPerS: number }> {
  const r = await start(spec, dir, env);
  try {
    const fill = await xsbenchJson(pin, [
      "--socket",
      r.socket,
      "--workload",
      "fill",
      "--store-nodes",
      String(n),
    ]);
    const read = await xsbenchJson(pin, [
      "--socket",
      r.socket,
      "--workload",
      "pipeline",
      "--depth",
      "64",
      "--seconds",
      "2",
    ]);
    // xsbench reports a failed run as ok=false (then no rate): no floor rather than a wrong one.
    return {
      fillS: fill.ok === false ? NaN : Number(fill.fill_s),
      readOpsPerS: read.ok === false ? NaN : Number(read.ops_per_s),
    };
  } finally {
    await stop(r, env);
  }
}

async function timed(argv: string[], pin: string[]): Promise<{ s: number; err: string; ok: boolean }> {
  const t = performance.now();
  const o = await new Deno.Command(pin.length > 0 ? pin[0] : argv[0], {
    args: pin.length > 0 ? [...pin.slice(1), ...argv] : argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { s: (performance.now() - t) / 1000, err: new TextDecoder().decode(o.stderr).trim(), ok: o.success };
}

/** Every imported line is in the export (the daemon's own nodes besides). */
function verify(imported: string, exportFile: string): number | string {
  const got = new Map<string, string>();
  let n = 0;
  for (const l of Deno.readTextFileSync(exportFile).split("\n")) {
    if (!l.startsWith('{"path"')) continue;
    n++;
    const o = JSON.parse(l);
    got.set(o.path, JSON.stringify({ path: o.path, value: o.value, perms: o.perms }));
  }
  for (const l of imported.split("\n")) {
    if (l === "") continue;
    const path = JSON.parse(l).path;
    if (got.get(path) !== l) return `${path}: exported ${got.get(path) ?? "nothing"}`;
  }
  return n;
}

export async function runMigrateBench(
  o: MigrateBenchOptions,
  log = (s: string) => console.error(s),
): Promise<string> {
  const work = Deno.makeTempDirSync({ prefix: "dxbench-migrate." });
  const env: Env = {
    anchorSh: `${anchorsDir}/scripts/anchor.sh`,
    anchorsBuild: `${root}/.build/anchors`,
    daemonCpu: o.cpu === "none" ? undefined : 0,
  };
  const pin = o.cpu === "same" ? ["taskset", "-c", "0"] : o.cpu === "split" ? ["taskset", "-c", "1"] : [];
  const fill = fillLines(o.nodes);
  const input = `${work}/fill.jsonl`;
  Deno.writeTextFileSync(input, fill.text);
  const rows: Row[] = [];
  try {
    // Twice: the first run after a change of the sources also transpiles them into Deno's cache.
    await timed([dxenstored, "export", "--help"], pin);
    const cliStart = await timed([dxenstored, "export", "--help"], pin);
    for (const spec of TARGETS.filter((t) => o.only === undefined || o.only.includes(t.name))) {
      let r: Running | null = null;
      try {
        log(`migrate: ${spec.name}: xsbench fill of ${o.nodes} leaves, then pipelined READs`);
        const speed = await daemonSpeed(spec, `${work}/${spec.name}-xsbench`, env, pin, o.nodes);
        r = await start(spec, `${work}/${spec.name}`, env);
        log(`migrate: ${spec.name}: importing ${fill.nodes} nodes`);
        const imp = await timed([dxenstored, "import", "--socket", r.socket, input], pin);
        if (!imp.ok) throw new Error(`import: ${imp.err}`);
        log(`migrate: ${spec.name}: ${imp.err}`);
        const out = `${work}/${spec.name}.jsonl`;
        const exp = await timed([dxenstored, "export", "--socket", r.socket, "--output", out], pin);
        if (!exp.ok) throw new Error(`export: ${exp.err}`);
        log(`migrate: ${spec.name}: ${exp.err}`);
        const checked = verify(fill.text, out);
        if (typeof checked === "string") throw new Error(`export differs: ${checked}`);
        rows.push({
          target: spec.name,
          fillS: speed.fillS,
          readFloorS: 3 * checked / speed.readOpsPerS,
          importS: imp.s,
          exportS: exp.s,
          exported: checked,
          snapshot: /snapshot: (.*?) in [0-9.]+ s \(/.exec(exp.err)?.[1] ?? "?",
        });
      } catch (e) {
        rows.push({ target: spec.name, error: (e as Error).message.split("\n")[0] });
        log(`migrate: ${spec.name}: FAILED: ${(e as Error).message}`);
      } finally {
        if (r !== null) await stop(r, env);
      }
    }
    const fmt = (s?: number) => (s === undefined || !Number.isFinite(s) ? "–" : `${s.toFixed(2)} s`);
    const rate = (s?: number) => (s === undefined ? "–" : `${Math.round(fill.nodes / s)}`);
    const vs = (
      a?: number,
      b?: number,
    ) => (a === undefined || b === undefined ? "–" : `${(a / b).toFixed(2)}`);
    return [
      `## Export and import of ${fill.nodes} nodes over the socket (\`dxenstored import|export --socket\`)`,
      "",
      `- the CLI as an operator runs it (JSON lines file in, file out), cpu ${o.cpu}; ` +
      `its start-up alone (\`export --help\`): ${cliStart.s.toFixed(2)} s; goal: under 10 s each`,
      "- export is checked against the import (every node, value and permissions)",
      `- daemon fill: xsbench writing ${o.nodes} new leaves (64 in flight) on a fresh instance; ` +
      "READ floor: 3 requests per exported node at xsbench's pipelined READ rate (64 in flight)",
      "",
      "| daemon | import | nodes/s | daemon fill | import ÷ fill | export | nodes/s | READ floor | export ÷ floor | snapshot |",
      "| ------ | -----: | ------: | ----------: | ------------: | -----: | ------: | ---------: | -------------: | -------- |",
      ...rows.map((r) =>
        r.error !== undefined
          ? `| ${r.target} | FAILED: ${r.error.replaceAll("|", "\\|")} | | | | | | | | |`
          : `| ${r.target} | ${fmt(r.importS)} | ${rate(r.importS)} | ${fmt(r.fillS)} | ${
            vs(r.importS, r.fillS)
          } | ` +
            `${fmt(r.exportS)} | ${rate(r.exportS)} | ${fmt(r.readFloorS)} | ${
              vs(r.exportS, r.readFloorS)
            } | ` +
            `${r.snapshot} |`
      ),
      "",
    ].join("\n");
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}

if (import.meta.main) {
  let nodes = 100_000;
  let cpu: MigrateBenchOptions["cpu"] = "same";
  let only: string[] | undefined;
  for (let i = 0; i < Deno.args.length; i++) {
    const [flag, inline] = Deno.args[i].includes("=")
      ? Deno.args[i].split(/=(.*)/s)
      : [Deno.args[i], undefined];
    const value = () => inline ?? Deno.args[++i];
    if (flag === "--nodes") nodes = Number(value());
    else if (flag === "--cpu") cpu = value() as MigrateBenchOptions["cpu"];
    else if (flag === "--only") only = value().split(",").map((s) => s.trim());
    else {
      console.log(
        "usage: deno task bench:migrate [--nodes N] [--cpu same|split|none] [--only cxenstored,...]",
      );
      Deno.exit(flag === "-h" || flag === "--help" ? 0 : 2);
    }
  }
  if (!(nodes > 0)) throw new Error("--nodes must be > 0");
  const summary = await runMigrateBench({ nodes, cpu, only });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const out = `${root}/.build/bench/${stamp}-migrate`;
  Deno.mkdirSync(out, { recursive: true });
  Deno.writeTextFileSync(`${out}/summary.md`, summary);
  console.log(summary);
  console.error(`summary: ${out}/summary.md`);
}
