// Forking the way Deno can: there is no fork(), so the process that was started (the "parent")
// starts this program again as the daemon, with a marker in its environment, and waits. The daemon
// calls setsid() first (a new session, no controlling terminal: the parent's exit, a closed terminal
// or the init script's process group cannot take it down), does everything a start needs (pid file,
// socket, dom0), and reports one line on its stdout, which is a pipe to the parent:
//
//   READY <pid>   serving: the parent checks that the socket accepts, prints the pid for -P, exits 0
//   BUSY <pid>    another daemon holds the pid file (or serves the socket): the parent exits 0
//   FAIL <status> <shown> <line>
//                 the start failed (startup_failure.ts): the parent prints the line on its stderr
//                 (the terminal or init script that started it) unless the daemon's log already
//                 wrote it to that same stderr (<shown> = 1), and exits with <status>
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

export function isDetachedChild(): boolean {
  return Deno.env.get(DETACHED_ENV) === "1";
}

/** How to start this program again: the executable, argv[0], and the arguments. */
export interface SelfCommand {
  readonly exe: string;
  readonly argv0: string;
  readonly args: string[];
}

/** This process's command line as the kernel has it (argv[0] first). */
function ownCmdline(): string[] {
  const parts = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/**
 * This program again with `args`: the command line this process was started with, its own arguments
 * replaced. So the daemon runs exactly as the started process: the same argv[0] (`dxenstored`, which
 * pidof matches), the same Deno flags (--v8-flags, permissions) and program (`deno run ... main.ts`,
 * the built dxenstored.js, or a `deno compile` executable, which has no runtime arguments).
 */
export function selfCommand(
  args: readonly string[],
  cmdline: readonly string[] = ownCmdline(),
  scriptArgs: readonly string[] = Deno.args,
  exe: string = Deno.execPath(),
): SelfCommand {
  const runtimeArgs = cmdline.length - scriptArgs.length;
  const same = runtimeArgs >= 1 && scriptArgs.every((a, i) => cmdline[runtimeArgs + i] === a);
  if (!same) {
    // Not seen in practice (Deno.args is the command line's tail); start it the plain way.
    return { exe, argv0: exe, args: ["run", "--allow-all", "--quiet", Deno.mainModule, ...args] };
  }
  return { exe, argv0: cmdline[0], args: [...cmdline.slice(1, runtimeArgs), ...args] };
}

export interface ParentOptions {
  readonly args: readonly string[];
  readonly socket: string;
  /** -P: print the daemon's pid on stdout. */
  readonly outputPid: boolean;
  readonly timeoutMs?: number;
}

/**
 * node:child_process, by a variable: its type declarations are @types/node's, which the project does
 * not install (so `deno check` would fail on a literal specifier); Child and Spawn type what is used.
 */
const CHILD_PROCESS_MODULE = "node:child_process";
type Spawn = (
  cmd: string,
  args: readonly string[],
  opts: { argv0: string; env: Record<string, string>; stdio: [string, string, string] },
) => Child;

/** The part of node:child_process's ChildProcess used here. */
interface Child {
  readonly pid?: number;
  readonly stdout: {
    setEncoding(e: string): void;
    on(ev: "data", f: (chunk: string) => void): void;
    on(ev: "end" | "close", f: () => void): void;
    on(ev: "error", f: (e: Error) => void): void;
    destroy(): void;
  } | null;
  once(ev: "exit", f: (code: number | null, signal: string | null) => void): void;
  once(ev: "error", f: (e: Error) => void): void;
  unref(): void;
}

/** The parent: start the daemon, wait for its report, return the exit code of the start. */
export async function runParent(o: ParentOptions): Promise<number> {
  const self = selfCommand(o.args);
  // node:child_process because Deno.Command cannot set argv[0]; loaded only by the starting process.
  const { spawn } = (await import(CHILD_PROCESS_MODULE)) as { spawn: Spawn };
  const child = spawn(self.exe, self.args, {
    argv0: self.argv0,
    env: { ...Deno.env.toObject(), [DETACHED_ENV]: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number>((resolve) => {
    child.once("exit", (code) => resolve(code ?? 1));
    child.once("error", (e) => {
      console.error(`dxenstored: cannot start the daemon (${self.exe}): ${e.message}`);
      resolve(1);
    });
  });
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
  if (report.kind === "fail") {
    if (!report.shown) console.error(`dxenstored: ${report.line}`);
    await exited;
    return report.status;
  }
  if (report.kind === "timeout") {
    console.error(
      `dxenstored: daemon ${child.pid} not ready after ${(o.timeoutMs ?? READY_TIMEOUT_MS) / 1000} s`,
    );
    return 1;
  }
  const code = await exited;
  return code !== 0 ? code : 1;
}

type Report =
  | { kind: "ready" | "busy"; pid: number }
  | { kind: "fail"; status: number; shown: boolean; line: string }
  | { kind: "eof" }
  | { kind: "timeout" };

/** One report line of the daemon (the protocol above), or null. */
export function parseReport(line: string): Report | null {
  const m = /^(READY|BUSY) ([0-9]+)$/.exec(line);
  if (m !== null) return { kind: m[1] === "READY" ? "ready" : "busy", pid: Number(m[2]) };
  const f = /^FAIL ([0-9]{1,3}) ([01]) (.*)$/.exec(line);
  if (f !== null) return { kind: "fail", status: Number(f[1]) || 1, shown: f[2] === "1", line: f[3] };
  return null;
}

function readReport(child: Child, timeoutMs: number): Promise<Report> {
  return new Promise((resolve) => {
    const out = child.stdout;
    if (out === null) return resolve({ kind: "eof" });
    let buf = "";
    let settled = false;
    const done = (r: Report) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Nothing more is read from the pipe: close it so the daemon is never blocked on it.
      out.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: "timeout" }), timeoutMs);
    out.setEncoding("latin1");
    out.on("data", (chunk) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) {
        if (buf.length > 8192) done({ kind: "eof" }); // not our protocol
        return;
      }
      done(parseReport(buf.slice(0, nl)) ?? { kind: "eof" });
    });
    out.on("end", () => done({ kind: "eof" }));
    out.on("close", () => done({ kind: "eof" }));
    out.on("error", () => done({ kind: "eof" }));
  });
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

  /** The start failed: `line` for the starting process (`shown`: already on the stderr it shares). */
  failed(status: number, line: string, shown: boolean): void {
    this.report(`FAIL ${status} ${shown ? 1 : 0} ${line.replace(/[\r\n]+/g, " ")}`);
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
