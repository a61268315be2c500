// Forking the way Deno can: there is no fork(), so the process that was started (the "parent")
// starts this program again as the daemon, with a marker in its environment, and waits. The daemon
// calls setsid() first (a new session, no controlling terminal: the parent's exit, a closed terminal
// or the init script's process group cannot take it down), does everything a start needs (pid file,
// socket, dom0), and reports one line on its stdout, which is a pipe to the parent:
//
//   READY <pid>   serving: the parent checks that the socket accepts, prints the pid for -P, exits 0
//   BUSY <pid>    another daemon holds the pid file (or serves the socket): the parent exits 0
//
// then points its stdout at /dev/null. If the daemon exits without a line, the parent exits with its
// status, so a start that fails is seen by start-stop-daemon. This is the contract Debian's
// /etc/init.d/xen relies on: `start-stop-daemon --start` without --background returns once the
// daemon serves.
import { nullifyFd, setsid, socketAccepts } from "./sys.ts";

/** Set in the daemon's environment by the parent; removed by the daemon at once. */
export const DETACHED_ENV = "DXENSTORED_DETACHED";
/** How long the parent waits for READY before giving up (the daemon may still come up). */
export const READY_TIMEOUT_MS = 120_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function isDetachedChild(): boolean {
  return Deno.env.get(DETACHED_ENV) === "1";
}

/** This program again: `deno run <main module> args`, or a `deno compile` binary with the args. */
export function selfCommand(args: readonly string[]): [string, string[]] {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (base === "deno") return [exe, ["run", "--allow-all", "--quiet", Deno.mainModule, ...args]];
  return [exe, [...args]];
}

export interface ParentOptions {
  readonly args: readonly string[];
  readonly socket: string;
  /** -P: print the daemon's pid on stdout. */
  readonly outputPid: boolean;
  readonly timeoutMs?: number;
}

/** The parent: start the daemon, wait for its report, return the exit code of the start. */
export async function runParent(o: ParentOptions): Promise<number> {
  const [cmd, args] = selfCommand(o.args);
  const child = new Deno.Command(cmd, {
    args,
    env: { [DETACHED_ENV]: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const report = await readReport(child, o.timeoutMs ?? READY_TIMEOUT_MS);
  child.unref();
  if (report.kind === "ready") {
    if (!(await socketAccepts(o.socket))) {
      console.error(
        `dxenstored: daemon ${report.pid} reported ready but ${o.socket} does not accept connections`,
      );
      return 1;
    }
    if (o.outputPid) console.log(report.pid);
    return 0;
  }
  if (report.kind === "busy") return 0;
  if (report.kind === "timeout") {
    console.error(
      `dxenstored: daemon ${child.pid} not ready after ${(o.timeoutMs ?? READY_TIMEOUT_MS) / 1000} s`,
    );
    return 1;
  }
  const st = await child.status;
  return st.code !== 0 ? st.code : 1;
}

type Report = { kind: "ready" | "busy"; pid: number } | { kind: "eof" } | { kind: "timeout" };

async function readReport(child: Deno.ChildProcess, timeoutMs: number): Promise<Report> {
  const reader = child.stdout.getReader();
  let buf = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(r, timeoutMs, "timeout"));
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === "timeout") return { kind: "timeout" };
      if (r.done) return { kind: "eof" };
      buf += dec.decode(r.value, { stream: true });
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > 256) return { kind: "eof" }; // not our protocol
        continue;
      }
      const m = /^(READY|BUSY) ([0-9]+)$/.exec(buf.slice(0, nl));
      if (m === null) return { kind: "eof" };
      return { kind: m[1] === "READY" ? "ready" : "busy", pid: Number(m[2]) };
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
    // Nothing more is read from the pipe: close it so the daemon is never blocked on it.
    await child.stdout.cancel().catch(() => {});
  }
}

/** The daemon's side of the handshake. */
export class DetachedDaemon {
  private reported = false;

  /** Become a session leader and forget the marker (a restart by the daemon must fork again). */
  static start(): DetachedDaemon {
    Deno.env.delete(DETACHED_ENV);
    setsid();
    nullifyFd(0);
    return new DetachedDaemon();
  }

  ready(pid = Deno.pid): void {
    this.report(`READY ${pid}`);
  }

  busy(pid: number | null): void {
    this.report(`BUSY ${pid ?? 0}`);
  }

  private report(line: string): void {
    if (this.reported) return;
    this.reported = true;
    try {
      Deno.stdout.writeSync(enc.encode(line + "\n"));
    } catch { /* the parent is gone: nobody to tell */ }
    nullifyFd(1);
  }
}
