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
import { applyHostDefaults, HOST, type HostProbe } from "./host_defaults.ts";
import { isatty, nullifyFd, socketAccepts } from "./sys.ts";
import { EXIT_USAGE, StartupError, StartupFailure } from "./startup_failure.ts";

export type Loaded =
  | {
    readonly kind: "run";
    readonly opts: DaemonOptions;
    readonly config: LoadedConfig | null;
    /** Built-in defaults that were taken and why (host_defaults.ts), logged at start. */
    readonly notes: readonly string[];
  }
  | { readonly kind: "exit"; readonly code: number };

export interface LoadedConfig {
  readonly file: string;
  readonly result: ConfigResult;
}

/**
 * Options from the defaults, the configuration file (--config-file, else /etc/xen/dxenstored.conf
 * if it exists) and the command line, in that order; then the built-in defaults that depend on the
 * host (`probe`: --xen) for what neither set. Usage errors print and give exit code 2.
 */
export function loadOptions(
  argv: readonly string[],
  env: (k: string) => string | undefined,
  probe: HostProbe = HOST,
): Loaded {
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
    const notes = applyHostDefaults(opts, probe);
    return { kind: "run", opts, config, notes };
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    const f = new StartupFailure(
      "start with these options",
      null,
      "EINVAL",
      `${e.message}; dxenstored --help lists them`,
      EXIT_USAGE,
    );
    console.error(`dxenstored: ${f.line()}`);
    logUsageError(argv, f.line());
    return { kind: "exit", code: f.status };
  }
}

/**
 * A usage error also goes to the log file or syslog a --log-file on the command line names, when it
 * can be found without the options (which did not parse): the line is then where the operator looks.
 */
function logUsageError(argv: readonly string[], message: string): void {
  let spec: string | undefined;
  argv.forEach((a, i) => {
    if (a === "--log-file") spec = argv[i + 1];
    else if (a.startsWith("--log-file=")) spec = a.slice("--log-file=".length);
  });
  const dest = spec === undefined ? null : parseLogDestination(spec);
  if (dest === null || typeof dest === "string" || dest.kind === "stderr") return;
  const out = new LogOutput(dest);
  if (out.install() === null) log("error", message);
  out.close();
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
export function setupLogging(o: DaemonOptions, detached: boolean): DaemonLog {
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
  const keepStderr = !(detached && (dropStderr || (dest.kind !== "stderr" && dest.kind !== "journal")));
  if (!keepStderr) nullifyFd(2);
  return { output: out, onStderr: keepStderr && (dest.kind === "stderr" || dest.kind === "journal") };
}

/** The daemon's log as installed. */
export interface DaemonLog {
  readonly output: LogOutput;
  /**
   * Log lines reach the stderr this process was started with (itself, or the journal stream it is):
   * a start-up failure logged is then already in front of whoever started it.
   */
  readonly onStderr: boolean;
}

/**
 * A start-up failure: one line, logged at error level (the configured log) and shown to whoever
 * started the daemon: the starting process prints it in the forking mode, stderr shows it otherwise.
 * Returns the exit status.
 */
export function reportStartupFailure(
  f: StartupFailure,
  daemonLog: DaemonLog,
  detached: DetachedDaemon | null,
): number {
  const line = f.line();
  log("error", line);
  if (detached !== null) detached.failed(f.status, line, daemonLog.onStderr);
  else if (!daemonLog.onStderr) console.error(`dxenstored: ${line}`);
  return f.status;
}

function existsSocket(path: string): boolean {
  try {
    return Deno.statSync(path).isSocket === true;
  } catch {
    return false;
  }
}

/** Log what the options and the configuration file said that is worth knowing. */
export function logStartupNotes(
  l: { opts: DaemonOptions; config: LoadedConfig | null; notes?: readonly string[] },
): void {
  for (const n of l.notes ?? []) log("info", n);
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
  | { readonly kind: "error"; readonly failure: StartupFailure };

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
    if (r.kind === "error") {
      return {
        kind: "error",
        failure: StartupFailure.of("lock the pid file", o.pidFile, new Error(r.message)),
      };
    }
    pidFile = r.pidFile;
  }
  // A live update (-U) inherits the socket: the connection would be ours.
  if (!inherited && await socketAccepts(o.socket)) {
    pidFile?.release();
    return { kind: "busy", message: `another daemon serves ${o.socket}; leaving it alone` };
  }
  return { kind: "ok", pidFile };
}

/**
 * Remove a stale socket file of a previous run (claimInstance found nobody serving it). Anything else
 * at that path is not ours to delete: the bind then fails with EADDRINUSE, said as such.
 */
export function removeStaleSocket(path: string): StartupFailure | null {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return StartupFailure.of("bind the socket", path, e);
  }
  if (st.isSocket !== true) {
    const kind = st.isDirectory
      ? "a directory"
      : st.isSymlink
      ? "a symbolic link"
      : "a file that is no socket";
    return StartupFailure.of(
      "bind the socket",
      path,
      new StartupError("EADDRINUSE", `the path is taken by ${kind}; dxenstored only replaces a stale socket`),
    );
  }
  try {
    Deno.removeSync(path);
    return null;
  } catch (e) {
    return StartupFailure.of("bind the socket", path, e);
  }
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
