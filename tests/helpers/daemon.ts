/**
 * Start and stop a real dxenstored for end-to-end tests, and run Debian's xenstore-* tools against it.
 *
 *   await using d = await startDaemon();   // fresh temp dir + socket; stopped and removed on scope exit
 *   const r = await runTool("xenstore-read", ["/tool/xenstored"], d.socket);
 *
 * The daemon is `deno run -A src/cli/main.ts --socket PATH` with the Deno running the tests.
 * DXENSTORED_TEST_CMD (e.g. "bin/dxenstored --socket {socket}") overrides the command.
 */
import { readV8Flags, v8FlagsArgs } from "../../compile/v8_flags.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = `${ROOT}src/cli/main.ts`;
const dec = new TextDecoder();

export interface StartOptions {
  /** Extra daemon arguments. */
  readonly args?: readonly string[];
  /** How long to wait for the socket to accept connections (default 20 s: a cold Deno cache is slow). */
  readonly startTimeoutMs?: number;
  /** Extra environment variables (e.g. XENSTORED_RUNDIR). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Run with the program's own V8 flags (compile/v8-flags: the young generation's cap, --expose-gc
   * and so the idle collector), as every launcher does; tests of memory bounds need them, since V8's
   * defaults let the young generation alone grow by tens of MiB.
   */
  readonly productionV8Flags?: boolean;
}

export class Daemon {
  private stopped = false;
  private readonly stderrChunks: Uint8Array[] = [];
  private readonly stderrDone: Promise<void>;
  private readonly stdoutDone: Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(readonly dir: string, readonly socket: string, readonly child: Deno.ChildProcess) {
    this.stderrDone = drain(child.stderr, this.stderrChunks);
    this.stdoutDone = drain(child.stdout, this.stderrChunks);
    this.status = child.status;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Everything the daemon wrote to stderr (and stdout) so far. */
  get stderr(): string {
    return this.stderrChunks.map((c) => dec.decode(c)).join("");
  }

  /** True while the process has not exited. */
  async alive(): Promise<boolean> {
    const r = await Promise.race([
      this.status.then(() => false),
      new Promise<boolean>((r) => setTimeout(r, 0, true)),
    ]);
    return r;
  }

  /**
   * SIGTERM, wait for the exit (SIGKILL after `timeoutMs`), and check the daemon exited 0 and removed
   * its socket. Always removes the temp dir. Throws (with the daemon's stderr) if any check failed.
   */
  async stop(timeoutMs = 10000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const problems: string[] = [];
    try {
      try {
        this.child.kill("SIGTERM");
      } catch { /* already exited */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<"timeout">((r) => timer = setTimeout(r, timeoutMs, "timeout"));
      const first = await Promise.race([this.status, killed]);
      clearTimeout(timer);
      if (first === "timeout") {
        problems.push(`daemon did not exit within ${timeoutMs} ms of SIGTERM; killed`);
        try {
          this.child.kill("SIGKILL");
        } catch { /* raced with exit */ }
      }
      const st = await this.status;
      await Promise.all([this.stderrDone, this.stdoutDone]);
      if (first !== "timeout" && !(st.success && st.code === 0)) {
        problems.push(`daemon exited with code ${st.code} signal ${st.signal}`);
      }
      if (exists(this.socket)) problems.push(`socket ${this.socket} still exists after the daemon stopped`);
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
    if (problems.length > 0) throw new Error(`${problems.join("; ")}\n--- daemon stderr ---\n${this.stderr}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function drain(stream: ReadableStream<Uint8Array>, into: Uint8Array[]): Promise<void> {
  try {
    for await (const c of stream) into.push(c);
  } catch { /* process gone */ }
}

function command(socket: string, extra: readonly string[], productionV8Flags: boolean): [string, string[]] {
  const custom = Deno.env.get("DXENSTORED_TEST_CMD");
  if (custom) {
    const parts = custom.split(/\s+/).filter((s) => s !== "").map((s) => s.replaceAll("{socket}", socket));
    return [parts[0], [...parts.slice(1), ...extra]];
  }
  const v8 = productionV8Flags ? v8FlagsArgs(readV8Flags()) : [];
  return [Deno.execPath(), ["run", "-A", ...v8, MAIN, "--socket", socket, ...extra]];
}

/** A fresh temp directory whose `socket` path fits in sun_path. */
export async function tempSocketDir(prefix = "dxs-test-"): Promise<{ dir: string; socket: string }> {
  const dir = await Deno.makeTempDir({ prefix });
  return { dir, socket: `${dir}/socket` };
}

/** Start a daemon on a fresh socket and wait until it accepts connections. */
export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  const { dir, socket } = await tempSocketDir();
  const [cmd, args] = command(socket, opts.args ?? [], opts.productionV8Flags === true);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      cwd: ROOT,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const d = new Daemon(dir, socket, child);
  const timeout = opts.startTimeoutMs ?? 20000;
  const deadline = Date.now() + timeout;
  let exited = false;
  d.status.then(() => exited = true);
  for (;;) {
    if (exited) {
      const st = await d.status;
      await d.stop().catch(() => {});
      throw new Error(
        `daemon exited (code ${st.code}) before accepting connections\n--- stderr ---\n${d.stderr}`,
      );
    }
    try {
      const c = await Deno.connect({ transport: "unix", path: socket });
      c.close();
      return d;
    } catch {
      // not yet listening
    }
    if (Date.now() > deadline) {
      const err = d.stderr;
      await d.stop().catch(() => {});
      throw new Error(
        `daemon did not accept connections on ${socket} within ${timeout} ms\n--- stderr ---\n${err}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Run `fn` with a fresh daemon; the daemon is stopped (and checked) even if `fn` throws. */
export async function withDaemon<T>(fn: (d: Daemon) => Promise<T>, opts: StartOptions = {}): Promise<T> {
  const d = await startDaemon(opts);
  let result: T;
  try {
    result = await fn(d);
  } catch (e) {
    await d.stop().catch(() => {});
    if (e instanceof Error) e.message += `\n--- daemon stderr ---\n${d.stderr}`;
    throw e;
  }
  await d.stop();
  return result;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run a xenstore-* tool (or any binary) with XENSTORED_PATH=socket. A tool still running after
 * `timeoutMs` is killed and reported with code -1 (so a hung client fails the test instead of hanging it).
 */
export async function runTool(
  name: string,
  args: readonly string[],
  socket: string,
  timeoutMs = 15000,
): Promise<ToolResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const out = await new Deno.Command(name, {
      args: [...args],
      env: { XENSTORED_PATH: socket },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const timedOut = ac.signal.aborted;
    return {
      code: timedOut ? -1 : out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr) + (timedOut ? `\n[killed after ${timeoutMs} ms]` : ""),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Path of a binary shipped by a Debian package (`dpkg -L pkg`), or null. */
export async function dpkgFile(pkg: string, suffix: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("dpkg", { args: ["-L", pkg], stdout: "piped", stderr: "null" })
      .output();
    if (!out.success) return null;
    return dec.decode(out.stdout).split("\n").find((l) => l.endsWith(suffix)) ?? null;
  } catch {
    return null;
  }
}
