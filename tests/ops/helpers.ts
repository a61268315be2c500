/**
 * Helpers for the operator-facing tests: running bin/dxenstored the way an init system does (it forks:
 * output goes to files, since a daemon may keep an inherited pipe open), watching processes by pid,
 * and stopping exactly the daemons a test started (by the pid they wrote).
 */
const ROOT = new URL("../../", import.meta.url).pathname;
export const DXENSTORED = `${ROOT}bin/dxenstored`;
const dec = new TextDecoder();

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `argv` through bash with stdout/stderr sent to files (a forking daemon's inherited pipe would
 * keep a piped run open until it exits). `env` is added to the environment.
 */
export async function runToFiles(
  dir: string,
  argv: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<RunResult> {
  const out = `${dir}/run.${crypto.randomUUID()}`;
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const st = await new Deno.Command("bash", {
      args: ["-c", `exec ${quoted} >${out}.out 2>${out}.err </dev/null`],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      signal: ac.signal,
    }).output();
    const read = (p: string) => Deno.readTextFile(p).catch(() => "");
    return {
      code: ac.signal.aborted ? -1 : st.code,
      stdout: await read(`${out}.out`),
      stderr: await read(`${out}.err`),
    };
  } finally {
    clearTimeout(timer);
    await Deno.remove(`${out}.out`).catch(() => {});
    await Deno.remove(`${out}.err`).catch(() => {});
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]. */
function statFields(pid: number): string[] | null {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** True while `pid` runs (a zombie waiting to be reaped by init has exited). */
export function alive(pid: number): boolean {
  const f = statFields(pid);
  return f !== null && f[0] !== "Z" && f[0] !== "X";
}

/** The session id of `pid`, or null. */
export function sessionOf(pid: number): number | null {
  const f = statFields(pid);
  return f === null ? null : Number(f[3]);
}

/** The executable's command line of `pid`. */
export function cmdlineOf(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGTERM `pid` (if it is still the process we started) and wait until it has exited. */
export async function stopPid(pid: number, expectCmd = "main.ts"): Promise<void> {
  if (!alive(pid) || !cmdlineOf(pid).includes(expectCmd)) return;
  Deno.kill(pid, "SIGTERM");
  try {
    await waitFor(`pid ${pid} to exit`, () => !alive(pid), 10_000);
  } catch (e) {
    Deno.kill(pid, "SIGKILL");
    throw e;
  }
}

export function readPid(path: string): number | null {
  try {
    const t = Deno.readTextFileSync(path).trim();
    return /^[0-9]+$/.test(t) ? Number(t) : null;
  } catch {
    return null;
  }
}

export async function connectable(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Run a command, capturing its output (for tools that do not fork). */
export async function run(
  cmd: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  const o = await new Deno.Command(cmd, {
    args: [...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

export function which(cmd: string): string | null {
  for (const d of (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${d}/${cmd}`).isFile) return `${d}/${cmd}`;
    } catch { /* not here */ }
  }
  for (const d of ["/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(`${d}/${cmd}`).isFile) return `${d}/${cmd}`;
    } catch { /* not here */ }
  }
  return null;
}

export const isRoot = Deno.uid() === 0;

/** A fresh short temp dir (socket paths must fit 107 bytes). */
export function tempDir(prefix = "dxops-"): Promise<string> {
  return Deno.makeTempDir({ prefix });
}
