// One process: `bin/deno task start` and `bin/dxenstored` run the daemon as the very process that was
// started (exec all the way: no `deno task` parent, no npm shim, no `deno run` child), named
// `dxenstored`; SIGTERM or SIGINT to that pid stops it cleanly (socket removed, the store's last
// commits on disk, exit 0). Plain `deno task start` (Deno's own task runner) keeps itself as the parent
// of exactly one process, the daemon, and forwards SIGTERM to it. And the fork re-executes the daemon
// exactly as it was started (selfCommand).
import assert from "../helpers/assert.ts";
import { runTool } from "../helpers/daemon.ts";
import { selfCommand } from "../../src/cli/daemonize.ts";
import { alive, cmdlineOf, connectable, exists, waitFor } from "./helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;

/** Pids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    try {
      const s = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

function argv0(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0];
}

function comm(pid: number): string {
  return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
}

interface Started {
  readonly child: Deno.ChildProcess;
  readonly socket: string;
}

/** Start `argv` with extra daemon args for a private socket and file store in `dir`; wait until it serves. */
async function start(argv: string[], dir: string, extra: string[] = []): Promise<Started> {
  const socket = `${dir}/socket`;
  const child = new Deno.Command(argv[0], {
    args: [...argv.slice(1), "--socket", socket, "--backend", `file:${dir}/state`, ...extra],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  await waitFor("the daemon to serve", async () => exited || await connectable(socket), 30_000);
  assert.ok(!exited, `${argv.join(" ")} exited before serving`);
  return { child, socket };
}

async function writeMany(socket: string, prefix: string, n: number): Promise<void> {
  const args: string[] = [];
  for (let i = 0; i < n; i++) args.push(`${prefix}/n${i}`, `v${i}`);
  const r = await runTool("xenstore-write", args, socket);
  assert.equal(r.code, 0, r.stderr);
}

async function stopAndCheck(s: Started, pid: number, signal: Deno.Signal): Promise<void> {
  Deno.kill(pid, signal);
  const st = await s.child.status;
  assert.equal(st.code, 0, `exit status after ${signal}`);
  await waitFor("the daemon to exit", () => !alive(pid));
  assert.ok(!exists(s.socket), `socket removed after ${signal}`);
}

for (
  const [what, argv] of [
    ["bin/deno task start", [`${ROOT}bin/deno`, "task", "start"]],
    ["bin/dxenstored --no-fork", [`${ROOT}bin/dxenstored`, "--no-fork"]],
  ] as const
) {
  Deno.test(`one process: ${what} is the daemon itself; SIGTERM and SIGINT stop it with nothing lost`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-one-" });
    try {
      for (const [signal, sync] of [["SIGTERM", "always"], ["SIGINT", "group:200"]] as const) {
        const s = await start([...argv], dir, ["--sync", sync]);
        const pid = s.child.pid;
        assert.equal(argv0(pid), "dxenstored", `argv[0]: ${cmdlineOf(pid)}`);
        assert.equal(comm(pid), "dxenstored", "comm");
        assert.ok(cmdlineOf(pid).includes("src/cli/main.ts"), cmdlineOf(pid));
        assert.deepEqual(childrenOf(pid), [], "no child processes");
        await writeMany(s.socket, `/one/${signal}`, 300);
        await stopAndCheck(s, pid, signal);
      }
      // Every write of both runs is in the store (the group-commit run was stopped right after its writes).
      const s = await start([...argv], dir);
      for (const signal of ["SIGTERM", "SIGINT"]) {
        const r = await runTool("xenstore-read", [`/one/${signal}/n0`, `/one/${signal}/n299`], s.socket);
        assert.equal(r.stdout, "v0\nv299\n", `${signal} run kept: ${r.stderr}`);
      }
      await stopAndCheck(s, s.child.pid, "SIGTERM");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("one process: plain `deno task start` is the task runner and one daemon child, which SIGTERM stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-task-" });
  try {
    const s = await start([DENO, "task", "--quiet", "start"], dir);
    const kids = childrenOf(s.child.pid);
    assert.equal(kids.length, 1, `deno task's children: ${kids.map(cmdlineOf).join(" | ")}`);
    const daemon = kids[0];
    assert.equal(argv0(daemon), "dxenstored", `the child is the daemon, no npm shim: ${cmdlineOf(daemon)}`);
    assert.deepEqual(childrenOf(daemon), []);
    await writeMany(s.socket, "/task", 10);
    await stopAndCheck(s, s.child.pid, "SIGTERM");
    await waitFor("the daemon to exit with its parent", () => !alive(daemon));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fork: the daemon is started again exactly as this process was (argv[0], Deno flags, program)", () => {
  const exe = "/opt/deno";
  const run = [
    "dxenstored",
    "run",
    "--v8-flags=--a,--b",
    "--allow-all",
    "--quiet",
    "/p/dxenstored.js",
    "-F",
    "pid",
  ];
  assert.deepEqual(selfCommand(["-F", "pid", "-N"], run, ["-F", "pid"], exe), {
    exe,
    argv0: "dxenstored",
    args: ["run", "--v8-flags=--a,--b", "--allow-all", "--quiet", "/p/dxenstored.js", "-F", "pid", "-N"],
  });
  // A `deno compile` executable: no runtime arguments.
  assert.deepEqual(selfCommand(["-N"], ["/usr/sbin/dxenstored", "-F", "x"], ["-F", "x"], exe), {
    exe,
    argv0: "/usr/sbin/dxenstored",
    args: ["-N"],
  });
  // An argument that is not the command line's tail (never seen): the plain `deno run`.
  const odd = selfCommand(["-N"], ["deno", "run", "x.ts", "-a"], ["-b"], exe);
  assert.deepEqual(odd.args.slice(0, 3), ["run", "--allow-all", "--quiet"]);
});
