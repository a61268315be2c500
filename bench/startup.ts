// `deno task bench:startup`: start-up time of the built program (compile/build.ts, run as the .deb's
// launcher runs it) with a 100 000-node store in the file backend: from exec until the socket accepts
// (the daemon listens only once the store is loaded and the policy chain is checked). Beside it, the
// same start from the sources (bin/dxenstored: `deno run src/cli/main.ts`) and an empty memory store,
// the part that is Deno and the program rather than the store. The first run of each has a cold Deno
// cache (V8's code cache; for the sources also the TypeScript transpilation); the median is of the
// warm runs after it.
//
//   bin/deno task bench:startup [--nodes N] [--runs R]
//
// Target (issue 15): ≤ 1 s for the built program with 100 000 nodes.
import { build } from "../compile/build.ts";
import { runCommand } from "../compile/program.ts";
import { readV8Flags } from "../compile/v8_flags.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/** A store of `n` leaves in the shape of a host's guests: /local/domain/<d>/data/<k>, owned by <d>. */
function storeJsonl(n: number): string {
  const lines = [JSON.stringify({ dxenstored: "export", version: 1, gen: null })];
  const node = (path: string, value: string, perms: string[]) =>
    lines.push(JSON.stringify({ path, value, perms }));
  node("/", "", ["n0"]);
  node("/local", "", ["n0"]);
  node("/local/domain", "", ["n0"]);
  const perDomain = 100;
  for (let d = 1; d * perDomain <= n; d++) {
    node(`/local/domain/${d}`, "", ["n0", `r${d}`]);
    node(`/local/domain/${d}/data`, "", [`n${d}`]);
    for (let k = 0; k < perDomain; k++) node(`/local/domain/${d}/data/k${k}`, `value-${d}-${k}`, [`n${d}`]);
  }
  return lines.join("\n") + "\n";
}

async function connectable(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) `pid` has used so far (/proc/PID/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Start {
  /** Wall-clock seconds from the spawn until the socket accepts. */
  readonly wall: number;
  /** CPU seconds the daemon used by then (on a loaded machine, wall grows; this does not). */
  readonly cpu: number;
}

/** Start `argv` (as `dxenstored`) and time it until `socket` accepts; the daemon is stopped after. */
async function startOnce(argv: string[], socket: string, env: Record<string, string>): Promise<Start> {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const t0 = performance.now();
  const child = new Deno.Command("bash", {
    args: ["-c", `exec -a dxenstored ${argv.map(q).join(" ")}`],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  while (!(await connectable(socket))) {
    if (exited) {
      throw new Error(`the daemon exited: ${new TextDecoder().decode((await child.output()).stderr)}`);
    }
    if (performance.now() - t0 > 60_000) throw new Error("not serving after 60 s");
    await new Promise((r) => setTimeout(r, 2));
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(child.pid);
  child.kill("SIGTERM");
  await child.status;
  await child.stderr.cancel().catch(() => {});
  return { wall, cpu };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (import.meta.main) {
  const nodes = arg("--nodes", 100_000);
  const runs = arg("--runs", 5);
  const dir = await Deno.makeTempDir({ dir: `${ROOT}.build`, prefix: "bench-startup." }).catch(async () => {
    await Deno.mkdir(`${ROOT}.build`, { recursive: true });
    return await Deno.makeTempDir({ dir: `${ROOT}.build`, prefix: "bench-startup." });
  });
  try {
    const out = await build(`${dir}/prog`);
    const flags = readV8Flags();
    const socket = `${dir}/socket`;
    await Deno.writeTextFile(`${dir}/store.jsonl`, storeJsonl(nodes));
    const imp = await new Deno.Command(DENO, {
      args: [
        ...runCommand(DENO, out.bundle, flags).slice(1),
        "import",
        "--backend",
        `file:${dir}/store`,
        "--sync",
        "none",
        `${dir}/store.jsonl`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!imp.success) throw new Error(new TextDecoder().decode(imp.stderr));
    const leaves = Math.floor(nodes / 100) * 100;
    console.log(`store: ${leaves} leaves (${leaves + 2 * (leaves / 100) + 3} nodes) in file:${dir}/store`);
    const cases: Array<[string, string[], Record<string, string>]> = [
      [
        "built program, file backend",
        [...runCommand(DENO, out.bundle, flags), "--socket", socket, "--backend", `file:${dir}/store`],
        { DENO_DIR: `${dir}/cache-built` },
      ],
      [
        "sources (bin/dxenstored), file backend",
        [`${ROOT}bin/dxenstored`, "--socket", socket, "--backend", `file:${dir}/store`],
        { DENO_DIR: `${dir}/cache-src` },
      ],
      [
        "built program, empty memory store",
        [...runCommand(DENO, out.bundle, flags), "--socket", socket, "--backend", "memory"],
        { DENO_DIR: `${dir}/cache-built` },
      ],
      [
        "sources (bin/dxenstored), empty memory store",
        [`${ROOT}bin/dxenstored`, "--socket", socket, "--backend", "memory"],
        { DENO_DIR: `${dir}/cache-src` },
      ],
    ];
    console.log(`load average: ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    console.log(
      "| start | first run (cold cache): wall s / CPU s | warm runs, median: wall s / CPU s | runs |",
    );
    console.log("|---|---|---|---|");
    for (const [name, argv, env] of cases) {
      const t: Start[] = [];
      for (let i = 0; i <= runs; i++) t.push(await startOnce(argv, socket, { ...env, NO_COLOR: "1" }));
      const warm = t.slice(1);
      console.log(
        `| ${name} | ${t[0].wall.toFixed(2)} / ${t[0].cpu.toFixed(2)} | ` +
          `${median(warm.map((x) => x.wall)).toFixed(2)} / ${
            median(warm.map((x) => x.cpu)).toFixed(2)
          } | ${runs} |`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
