/**
 * The built program (compile/build.ts) as an operator gets it: build/dxenstored.js and the deno binary
 * copied alone into a fresh folder, run from another, empty folder with a cleared environment, the way
 * the .deb's launcher runs it (compile/program.ts: runCommand, exec'd as `dxenstored` or
 * `dxenstore-guest`). Nothing of the source tree or node_modules is reachable from there by path.
 */
import { build } from "../../compile/build.ts";
import { runCommand } from "../../compile/program.ts";
import { readV8Flags } from "../../compile/v8_flags.ts";
import { alive, connectable, waitFor } from "../ops/helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

export interface BuiltProgram {
  /** Folder holding only `deno` and `dxenstored.js`. */
  readonly dir: string;
  readonly deno: string;
  readonly program: string;
  /** The bundle's text. */
  readonly text: string;
  /** Deno's cache for these runs (outside the empty working folders). */
  readonly cache: string;
}

let built: Promise<BuiltProgram> | null = null;

/** Build once per test file; the folder is removed at process exit by the test's own cleanup. */
export function builtProgram(): Promise<BuiltProgram> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "dxs-built-" });
    const out = await build(`${dir}/out`);
    const program = `${dir}/prog/dxenstored.js`;
    const deno = `${dir}/prog/deno`;
    await Deno.mkdir(`${dir}/prog`);
    await Deno.copyFile(out.bundle, program);
    await Deno.copyFile(`${ROOT}node_modules/@deno/linux-x64-glibc/deno`, deno);
    await Deno.chmod(deno, 0o755);
    await Deno.mkdir(`${dir}/cache`);
    const text = await Deno.readTextFile(program);
    await Deno.remove(`${dir}/out`, { recursive: true });
    return { dir, deno, program, text, cache: `${dir}/cache` };
  })();
  return built;
}

/** Remove the built program's folder (call from the last test of a file). */
export async function removeBuilt(): Promise<void> {
  if (built === null) return;
  const b = await built;
  built = null;
  await Deno.remove(b.dir, { recursive: true }).catch(() => {});
}

/**
 * Where it can (root, unshare), the program runs in a private mount namespace where the repository is
 * an empty tmpfs: a read of anything beside the sources fails there instead of quietly working.
 */
const HIDE_SOURCES = Deno.uid() === 0 &&
  (await new Deno.Command("unshare", { args: ["-m", "true"], stderr: "null" }).output().catch(() => null))
      ?.success ===
    true;

/**
 * The command that runs the program as `name` with `args`: bash exec's Deno (and unshare exec's bash),
 * so the process started is the program.
 */
function command(b: BuiltProgram, name: string, args: readonly string[]): [string, string[]] {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const run = `exec -a ${q(name)} ${
    [...runCommand(b.deno, b.program, readV8Flags()), ...args].map(q).join(" ")
  }`;
  if (!HIDE_SOURCES) return ["bash", ["-c", run]];
  const hide = `mount -t tmpfs -o size=1m,mode=755 dxs-no-sources ${q(ROOT)}`;
  return ["unshare", ["-m", "--propagation", "private", "bash", "-c", `${hide} && ${run}`]];
}

function cleanEnv(b: BuiltProgram, cwd: string, extra: Record<string, string>): Record<string, string> {
  return { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: cwd, DENO_DIR: b.cache, NO_COLOR: "1", ...extra };
}

export interface ToolRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the program to completion as `name` (a subcommand, the guest CLI, a start that fails...). */
export async function runBuilt(
  name: string,
  args: readonly string[],
  opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number } = { cwd: "/" },
): Promise<ToolRun> {
  const b = await builtProgram();
  const [cmd, argv] = command(b, name, args);
  const o = await new Deno.Command(cmd, {
    args: argv,
    cwd: opts.cwd,
    clearEnv: true,
    env: cleanEnv(b, opts.cwd, opts.env ?? {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 60_000),
  }).output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

/** Start the program as `name` with stdout piped (a long-running client, e.g. a guest's watch). */
export async function spawnBuilt(
  name: string,
  args: readonly string[],
  cwd: string,
): Promise<Deno.ChildProcess> {
  const b = await builtProgram();
  const [cmd, argv] = command(b, name, args);
  return new Deno.Command(cmd, {
    args: argv,
    cwd,
    clearEnv: true,
    env: cleanEnv(b, cwd, {}),
    stdin: "null",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
}

/** A daemon of the built program in the foreground (`--socket`), in its own empty working folder. */
export class BuiltDaemon {
  private readonly chunks: Uint8Array[] = [];
  private readonly drained: Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(readonly cwd: string, readonly socket: string, readonly child: Deno.ChildProcess) {
    this.drained = (async () => {
      for await (const c of child.stderr) this.chunks.push(c);
    })().catch(() => {});
    this.status = child.status;
  }

  get pid(): number {
    return this.child.pid;
  }

  get log(): string {
    return this.chunks.map((c) => dec.decode(c)).join("");
  }

  /** Start it in `cwd` (an empty folder) serving `cwd`/socket; resolves once the socket accepts. */
  static async start(
    cwd: string,
    args: readonly string[],
    env: Record<string, string> = {},
  ): Promise<BuiltDaemon> {
    const b = await builtProgram();
    const socket = `${cwd}/socket`;
    const [cmd, argv] = command(b, "dxenstored", ["--socket", socket, ...args]);
    const child = new Deno.Command(cmd, {
      args: argv,
      cwd,
      clearEnv: true,
      env: cleanEnv(b, cwd, env),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const d = new BuiltDaemon(cwd, socket, child);
    let exited = false;
    d.status.then(() => exited = true);
    try {
      await waitFor("the built daemon to serve", async () => exited || await connectable(socket), 30_000);
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    }
    if (exited) {
      await d.drained;
      throw new Error(`the built daemon exited before serving:\n${d.log}`);
    }
    return d;
  }

  /** SIGTERM (or `signal`); resolves to the exit code once it has exited and its stderr is read. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    if (alive(this.pid)) this.child.kill(signal);
    const st = await this.status;
    await this.drained;
    return st.code;
  }
}
