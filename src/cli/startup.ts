// The steps of a start before the store is opened: options (command line over configuration file),
// --config-test, logging, and claiming the instance (pid file lock, live-socket check), so that a
// second start never disturbs a running daemon.
import { log, setLogLevel } from "../common/log.ts";
import { applyConfig, type ConfigResult, formatProblem } from "./config.ts";
import type { DetachedDaemon } from "./daemonize.ts";
import {
  type LogDestination,
  LogOutput,
  parseLogDestination,
  stderrIsJournal,
  SYSLOG_SOCKET,
} from "./log_sink.ts";
import {
  applyOccurrences,
  type DaemonOptions,
  DEFAULT_CONFIG_FILE,
  defaultOptions,
  isHelp,
  OptionError,
  tokenize,
  usage,
} from "./options.ts";
import { PidFile } from "./pidfile.ts";
import { isatty, nullifyFd, socketAccepts } from "./sys.ts";

export type Loaded =
  | { readonly kind: "run"; readonly opts: DaemonOptions; readonly config: LoadedConfig | null }
  | { readonly kind: "exit"; readonly code: number };

export interface LoadedConfig {
  readonly file: string;
  readonly result: ConfigResult;
}

/**
 * Options from the defaults, the configuration file (--config-file, else /etc/xen/dxenstored.conf
 * if it exists) and the command line, in that order. Usage errors print and give exit code 2.
 */
export function loadOptions(argv: readonly string[], env: (k: string) => string | undefined): Loaded {
  try {
    const occ = tokenize(argv);
    if (isHelp(occ)) {
      console.log(usage());
      return { kind: "exit", code: 0 };
    }
    const opts = defaultOptions(env);
    // The configuration file named on the command line (the last one wins, as for any option).
    const cf = occ.filter((x) => x.spec.long === "config-file").map((x) => x.value!).pop();
    const file = cf ?? DEFAULT_CONFIG_FILE;
    let config: LoadedConfig | null = null;
    let text: string | null = null;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      // A missing default file is normal; a missing named one is an error, as for any bad option.
      if (cf !== undefined) throw new OptionError(`--config-file ${file}: ${(e as Error).message}`);
    }
    if (text !== null) config = { file, result: applyConfig(opts, text) };
    applyOccurrences(opts, occ);
    // Policy keys in the same file are the policy loader's (unless --policy-config names another file).
    if (config !== null && config.result.policyKeys > 0 && opts.policyConfig === undefined) {
      opts.policyConfig = file;
    }
    return { kind: "run", opts, config };
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    console.error(`dxenstored: ${e.message}\n(dxenstored --help lists the options)`);
    return { kind: "exit", code: 2 };
  }
}

/** --config-test: oxenstored's behaviour (a line on success, exit 0); errors exit 2. */
export function configTest(l: { opts: DaemonOptions; config: LoadedConfig | null }): number {
  const c = l.config;
  const file = c?.file ?? l.opts.configFile ?? DEFAULT_CONFIG_FILE;
  for (const w of l.opts.warnings) console.error(`dxenstored: warning: ${w}`);
  if (c !== null) {
    for (const k of c.result.ignored) console.error(`${file}: ${k}: accepted, no effect in dxenstored`);
    for (const p of c.result.errors) console.error(formatProblem(file, p));
    if (c.result.errors.length > 0) {
      console.error(`Configuration invalid at ${file}: ${c.result.errors.length} error(s)`);
      return 2;
    }
  }
  const dest = l.opts.logDest === null ? null : parseLogDestination(l.opts.logDest);
  if (typeof dest === "string") {
    console.error(`log destination: ${dest}`);
    return 2;
  }
  console.log(
    c === null ? `No configuration file at ${file}; options valid` : `Configuration valid at ${file}`,
  );
  return 0;
}

/** What the inherited stderr is: the journal (a socket), a file, a pipe or a terminal. */
export function stderrKind(): "socket" | "file" | "pipe" | "tty" | "other" {
  if (isatty(2)) return "tty";
  let target: string;
  try {
    target = Deno.readLinkSync("/proc/self/fd/2");
  } catch {
    return "other";
  }
  if (target.startsWith("socket:")) return "socket";
  if (target.startsWith("pipe:")) return "pipe";
  return target.startsWith("/") && target !== "/dev/null" ? "file" : "other";
}

/**
 * Install the daemon's log output. A detached daemon keeps the inherited stderr when it is the
 * journal (a socket: systemd running /etc/init.d/xen) or a file. A terminal or a pipe it lets go of,
 * as cxenstored does, so that a shell or a `$(...)` capture is not held open by the daemon: it then
 * logs to syslog (/dev/log) if there is one, else nowhere unless --log-file says where. With a log
 * file, stderr is let go of too. Logging to a stderr that is the journal becomes native journal
 * entries (log_sink.ts), so they carry dxenstored's identifier.
 */
export function setupLogging(o: DaemonOptions, detached: boolean): LogOutput {
  setLogLevel(o.logLevel);
  let spec = o.logDest ?? "stderr";
  let dropStderr = false;
  if (detached && spec === "stderr") {
    const kind = stderrKind();
    // A live update (-U) inherits the stderr its predecessor left: /dev/null ("other") when that one
    // had let go of a terminal or pipe and logged to syslog — so log to syslog again.
    if (kind === "tty" || kind === "pipe" || (o.liveUpdate && kind === "other")) {
      dropStderr = true;
      if (existsSocket(SYSLOG_SOCKET)) spec = "syslog";
      else log("warn", "no syslog socket: the detached daemon logs nowhere (use --log-file)");
    }
  }
  const parsed = parseLogDestination(spec);
  let dest: LogDestination = typeof parsed === "string" ? { kind: "stderr" } : parsed;
  if (dest.kind === "stderr" && !dropStderr && stderrIsJournal()) dest = { kind: "journal" };
  const out = new LogOutput(dest);
  const err = out.install();
  if (typeof parsed === "string") log("error", `log destination: ${parsed}; logging to stderr`);
  if (err !== null) log("error", `log file: ${err}`);
  // The journal's stream stays stderr: a line journald refuses, or an uncaught error, goes there.
  if (detached && (dropStderr || (dest.kind !== "stderr" && dest.kind !== "journal"))) nullifyFd(2);
  return out;
}

function existsSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

/** Log what the options and the configuration file said that is worth knowing. */
export function logStartupNotes(l: { opts: DaemonOptions; config: LoadedConfig | null }): void {
  for (const w of l.opts.warnings) log("warn", w);
  const c = l.config;
  if (c === null) return;
  for (const p of c.result.errors) log("error", `${formatProblem(c.file, p)} (ignored; run --config-test)`);
  if (c.result.ignored.length > 0) {
    log("warn", `${c.file}: accepted without effect in dxenstored: ${c.result.ignored.join(", ")}`);
  }
}

export type Claim =
  | { readonly kind: "ok"; readonly pidFile: PidFile | null }
  | { readonly kind: "busy"; readonly message: string }
  | { readonly kind: "error"; readonly message: string };

/**
 * Make sure this is the only daemon: lock the pid file (if any), and refuse to take over a socket
 * another daemon still accepts connections on (cxenstored unlinks it: "FIXME: don't mug running
 * daemon"). A stale socket file is removed by the caller as before.
 */
export async function claimInstance(o: DaemonOptions, inherited = false): Promise<Claim> {
  let pidFile: PidFile | null = null;
  if (o.pidFile !== null) {
    const r = PidFile.acquire(o.pidFile);
    if (r.kind === "busy") {
      return {
        kind: "busy",
        message: `already running (pid ${r.pid ?? "?"} holds ${o.pidFile}); leaving it alone`,
      };
    }
    if (r.kind === "error") return { kind: "error", message: `pid file: ${r.message}` };
    pidFile = r.pidFile;
  }
  // A live update (-U) inherits the socket: the connection would be ours.
  if (!inherited && await socketAccepts(o.socket)) {
    pidFile?.release();
    return { kind: "busy", message: `another daemon serves ${o.socket}; leaving it alone` };
  }
  return { kind: "ok", pidFile };
}

/** cxenstored creates its run and root folders at start (errors are reported later, when used). */
export function makeFolders(o: DaemonOptions): void {
  const dirs = [o.socket.includes("/") ? o.socket.slice(0, o.socket.lastIndexOf("/")) : "."];
  if (!o.socketFlag) dirs.push(o.rundir, o.rootdir);
  for (const d of dirs) {
    if (d === "" || d === ".") continue;
    try {
      Deno.mkdirSync(d, { recursive: true, mode: 0o755 });
    } catch { /* reported when the socket is bound */ }
  }
}

export type { DetachedDaemon };
