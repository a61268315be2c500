// Starting and stopping the daemons under test, each on its own socket in
// its own folder. The echo floor and Debian's two daemons go through the
// anchors' own scripts/anchor.sh (it knows the fake-Xen shim, the socket
// redirection and oxenstored's config), so they run exactly as in
// anchors/RESULTS.md. dxenstored is started here: it may need longer than
// anchor.sh's 5 s to come up, and we want to see how it exits on SIGTERM.

export type Kind = "echo" | "cxenstored" | "oxenstored" | "custom";

export interface TargetSpec {
  name: string;
  kind: Kind;
  /** custom only: argv, "{socket}" replaced by the socket path. */
  cmd?: string[];
}

export interface Running {
  spec: TargetSpec;
  dir: string;
  socket: string;
  pid: number;
  /** custom only: our own child (the others are children of anchor.sh). */
  child?: Deno.ChildProcess;
  exited?: Deno.CommandStatus;
}

export interface Env {
  anchorSh: string;
  anchorsBuild: string;
  /** CPU to pin daemons to, or undefined for no pinning. */
  daemonCpu?: number;
}

/** A live process (a zombie waiting to be reaped is not). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Starts one target in dir; throws an Error saying why it did not come up. */
export async function start(spec: TargetSpec, dir: string, env: Env): Promise<Running> {
  Deno.mkdirSync(dir, { recursive: true });
  return spec.kind === "custom" ? await startCustom(spec, dir, env) : await startAnchor(spec, dir, env);
}

async function startAnchor(spec: TargetSpec, dir: string, env: Env): Promise<Running> {
  const vars: Record<string, string> = { ANCHORS_BUILD: env.anchorsBuild };
  if (env.daemonCpu !== undefined) vars.ANCHOR_CPU = String(env.daemonCpu);
  // setsid: its own session, as dxenstored's (startCustom). With the kernel's autogroup scheduling
  // (sched_autogroup_enabled) a session is a scheduling group of its own, so every daemon competes for
  // the CPU in the same standing — none shares a group with the xsbench clients.
  const out = await new Deno.Command("setsid", {
    args: [env.anchorSh, "start", spec.kind, dir],
    env: vars,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /socket=(\S+) pid=(\d+)/.exec(text);
  if (!out.success || !m) {
    throw new Error(`anchor.sh start ${spec.kind} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return { spec, dir, socket: m[1], pid: Number(m[2]) };
}

async function startCustom(spec: TargetSpec, dir: string, env: Env): Promise<Running> {
  const socket = `${dir}/socket`;
  const log = `${dir}/daemon.log`;
  const argv = (spec.cmd ?? []).map((a) => a.replaceAll("{socket}", socket));
  try {
    Deno.removeSync(socket);
  } catch { /* not there */ }
  // setsid: its own process group, so stop() can clean up anything it forks.
  // bash only redirects output to the log and execs (taskset execs too), so
  // the pid we get is the daemon's own, as --daemon-pid needs for RSS.
  const pin = env.daemonCpu !== undefined ? `taskset -c ${env.daemonCpu} ` : "";
  const child = new Deno.Command("setsid", {
    args: ["bash", "-c", `exec ${pin}"$@" >"$0" 2>&1`, log, ...argv],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const r: Running = { spec, dir, socket, pid: child.pid, child };
  child.status.then((s) => r.exited = s);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (isSocket(socket)) return r;
    if (r.exited) break;
    await sleep(50);
  }
  const why = r.exited ? `exited (${describe(r.exited)})` : "no socket after 30 s";
  await stop(r, env);
  throw new Error(`${argv.join(" ")}: ${why}\n${tail(log)}`);
}

function isSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

export function describe(s: Deno.CommandStatus): string {
  return s.signal ? `killed by ${s.signal}` : `exit code ${s.code}`;
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * Stops a target. For dxenstored returns how it ended after SIGTERM (the
 * daemon should catch it and exit 0); "" for the anchors.
 */
export async function stop(r: Running, env: Env): Promise<string> {
  if (!r.child) {
    await new Deno.Command(env.anchorSh, {
      args: ["stop", r.dir],
      env: { ANCHORS_BUILD: env.anchorsBuild },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return "";
  }
  let how: string;
  if (r.exited) {
    how = `had already ended (${describe(r.exited)})`;
  } else {
    killQuietly(r.pid, "SIGTERM");
    const deadline = Date.now() + 5_000;
    while (!r.exited && Date.now() < deadline) await sleep(20);
    how = r.exited ? `SIGTERM → ${describe(r.exited)}` : "ignored SIGTERM for 5 s (SIGKILLed)";
  }
  killQuietly(-r.pid, "SIGKILL"); // whatever is left in its process group
  await r.child.status;
  return how;
}

function killQuietly(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

export function logTail(r: Running): string {
  return tail(`${r.dir}/daemon.log`);
}
