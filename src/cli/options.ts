// The command line: every option of cxenstored 4.17 and oxenstored 4.17 (so that Debian's
// /etc/init.d/xen, upstream's launch-xenstore and existing XENSTORED_ARGS work unchanged), plus
// dxenstored's own. One table drives parsing, --help and docs/operations.md's option reference; each
// entry says where the option comes from and what it does here ("mapped"), or why it only warns
// ("ignored": accepted for compatibility, no effect). Parsing follows getopt_long: short options may
// be clustered (-NF file, -Ffile), long options take "--opt value" or "--opt=value" and may be
// abbreviated to a unique prefix.
import { isLogLevel, type LogLevel } from "../common/log.ts";
import {
  BACKEND_SPECS_TEXT,
  type BackendSpec,
  parseBackendSpec,
  parseSyncMode,
  SYNC_MODES_TEXT,
  type SyncMode,
} from "../backend/backend.ts";
import { HARD_QUOTAS, SOFT_QUOTAS } from "../dispatch/control.ts";
import { parseXenSpec, type XenSpec } from "../domains/attach.ts";
import { parseChainList } from "../policy/loader.ts";
import { DEFAULT_ACCESS_LOG, DEFAULT_REDACT } from "../observe/access_log.ts";
import { DEFAULT_REFUSAL_RATE } from "../observe/refusals.ts";

export interface AccessLogSettings {
  /** File, or null: no access log (the default). */
  file: string | null;
  /** --no-access-log: off even if a file is configured. */
  disabled: boolean;
  readOps: boolean;
  transactionOps: boolean;
  specialOps: boolean;
  redact: string[];
  maxLineChars: number;
}

export interface DaemonOptions {
  /** The Unix socket served. */
  socket: string;
  /** --socket was given: the development/test mode, which stays in the foreground. */
  socketFlag: boolean;
  /** Detach into the background (the default, as cxenstored/oxenstored); -N/--no-fork clears it. */
  fork: boolean;
  pidFile: string | null;
  /** -P: print the daemon's pid on stdout once it serves. */
  outputPid: boolean;
  /** -D/--no-domain-init clears it: dom0's ring is not set up (needs Xen). */
  domainInit: boolean;
  logLevel: LogLevel;
  /** "stderr" | "syslog[:facility]" | a file path; null = stderr. */
  logDest: string | null;
  /** Output limits of socket connections (docs/watches.md); unset = the server's defaults. */
  maxOutBytes?: number;
  maxWatchEvents?: number;
  /** Storage backend (docs/backends.md). */
  backend: BackendSpec;
  sync: SyncMode;
  /** Group commit: submit group writes through Linux AIO (async) or wait for each (inline). */
  groupIo: "async" | "inline";
  recover: boolean;
  /** Guest domains' transport (--xen; docs/domains.md); unset = none. */
  xen?: XenSpec;
  /** Policy plugin chain (--policy) and policy config file (--policy-config); docs/plugins.md. */
  policy?: string[];
  policyConfig?: string;
  /** Hard quota overrides by cxenstored name (-E -S -W -t -A -M -Q, config quota-*). */
  quotas: Record<string, number>;
  /** Soft quota overrides (-q). */
  softQuotas: Record<string, number>;
  /** -w watch-event=S (stored; dxenstored drops no pending events: no effect). */
  watchEventTimeoutS: number | null;
  keepOrphans: boolean;
  configFile: string | null;
  configTest: boolean;
  accessLog: AccessLogSettings;
  metricsFile: string | null;
  /** Seconds between metrics file writes. */
  metricsInterval: number;
  refusalBurst: number;
  refusalIntervalMs: number;
  /** XENSTORED_RUNDIR / XENSTORED_ROOTDIR (created at start, as cxenstored). */
  rundir: string;
  rootdir: string;
  /** -U: started by a live update: adopt the state in <rundir>/state_dump (docs/live-update.md). */
  liveUpdate: boolean;
  /** Non-fatal remarks (obsolete or ignored options), logged at start. */
  warnings: string[];
}

/** Kept for the tests and callers written before the option table. */
export type CliOptions = DaemonOptions;

export class OptionError extends Error {
  override name = "OptionError";
}

export type Origin = "cxenstored" | "oxenstored" | "dxenstored";
export type Status = "mapped" | "ignored" | "refused";

export interface OptionSpec {
  readonly long?: string;
  readonly short?: string;
  readonly arg: "none" | "required" | "optional";
  readonly metavar?: string;
  readonly origin: readonly Origin[];
  readonly status: Status;
  readonly help: string;
  /** Hidden from --help (obsolete spellings); still listed in docs. */
  readonly hidden?: boolean;
  apply(o: DaemonOptions, value: string | undefined, flag: string): void;
}

export const DEFAULT_RUNDIR = "/var/run/xenstored";
export const DEFAULT_ROOTDIR = "/var/lib/xenstored";
export const DEFAULT_CONFIG_FILE = "/etc/xen/dxenstored.conf";
const INT_MAX = 0x7fffffff;

/** A strictly positive decimal integer option value. */
export function positiveInt(flag: string, v: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new OptionError(`${flag} needs a positive integer, got "${v}"`);
  }
  return n;
}

/** cxenstored's get_optval_uint: a full decimal number in 0..INT_MAX. */
export function cxUint(flag: string, v: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!(n <= INT_MAX)) throw new OptionError(`${flag}: invalid parameter value "${v}"`);
  return n;
}

/** A positive number of seconds (fractions allowed: tests write metrics often). */
function seconds(flag: string, v: string): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : NaN;
  if (!(n > 0) || n > 86400) throw new OptionError(`${flag} needs seconds in (0, 86400], got "${v}"`);
  return n;
}

export function parseBool(flag: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new OptionError(`${flag} needs true or false, got "${v}"`);
}

/** Names -Q/--quota accepts: cxenstored 4.17's and master's spellings. */
const HARD_ALIASES: Readonly<Record<string, string>> = {
  "node-permissions": "permissions",
  "path-length": "path-max",
};

function hardQuotaName(name: string): string | null {
  const n = HARD_ALIASES[name] ?? name;
  return HARD_QUOTAS.some((q) => q.name === n) ? n : null;
}

/** "<what>=<nb>" of -Q, -q and -w. */
function whatEquals(flag: string, v: string): [string, string] {
  const eq = v.indexOf("=");
  if (eq <= 0) throw new OptionError(`${flag}: quotas must be specified via <what>=<nb>, got "${v}"`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}

function ignored(why: string): (o: DaemonOptions, v: string | undefined, flag: string) => void {
  return (o, v, flag) => {
    o.warnings.push(`${flag}${v !== undefined ? ` ${v}` : ""}: ignored (${why})`);
  };
}

function hardQuota(name: string) {
  return (o: DaemonOptions, v: string | undefined, flag: string) => {
    o.quotas[name] = cxUint(flag, v!);
  };
}

export const OPTIONS: readonly OptionSpec[] = [
  // --- cxenstored 4.17 ---------------------------------------------------------------------------
  {
    short: "D",
    long: "no-domain-init",
    arg: "none",
    origin: ["cxenstored", "oxenstored"],
    status: "mapped",
    help: "do not serve dom0's own ring (/proc/xen/xsd_kva) with --xen real|sim; dom0's tools use the " +
      "socket",
    apply: (o) => {
      o.domainInit = false;
    },
  },
  {
    short: "F",
    long: "pid-file",
    arg: "required",
    metavar: "FILE",
    origin: ["cxenstored", "oxenstored"],
    status: "mapped",
    help: "write the daemon's pid to FILE and hold a lock on it while running",
    apply: (o, v) => o.pidFile = v!,
  },
  {
    short: "H",
    long: "help",
    arg: "none",
    origin: ["cxenstored", "oxenstored"],
    status: "mapped",
    help: "this text",
    apply: () => {},
  },
  {
    short: "h",
    arg: "none",
    origin: ["dxenstored"],
    status: "mapped",
    help: "this text",
    hidden: true,
    apply: () => {},
  },
  {
    short: "N",
    long: "no-fork",
    arg: "none",
    origin: ["cxenstored", "oxenstored"],
    status: "mapped",
    help: "stay in the foreground (systemd Type=notify, tests)",
    apply: (o) => o.fork = false,
  },
  {
    short: "P",
    long: "output-pid",
    arg: "none",
    origin: ["cxenstored"],
    status: "mapped",
    help: "print the daemon's pid on stdout once it serves",
    apply: (o) => o.outputPid = true,
  },
  {
    short: "T",
    long: "trace-file",
    arg: "required",
    metavar: "FILE",
    origin: ["cxenstored", "oxenstored"],
    status: "mapped",
    help: "log every request to FILE (the access log, oxenstored's format)",
    apply: (o, v) => o.accessLog.file = v!,
  },
  {
    short: "E",
    long: "entry-nb",
    arg: "required",
    metavar: "NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: nodes per domain",
    apply: hardQuota("nodes"),
  },
  {
    short: "S",
    long: "entry-size",
    arg: "required",
    metavar: "SIZE",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: size of a node",
    apply: hardQuota("node-size"),
  },
  {
    short: "W",
    long: "watch-nb",
    arg: "required",
    metavar: "NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: watches per domain",
    apply: hardQuota("watches"),
  },
  {
    short: "t",
    long: "transaction",
    arg: "required",
    metavar: "NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: transactions per domain",
    apply: hardQuota("transactions"),
  },
  {
    short: "A",
    long: "perm-nb",
    arg: "required",
    metavar: "NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: permissions per node",
    apply: hardQuota("permissions"),
  },
  {
    short: "M",
    long: "path-max",
    arg: "required",
    metavar: "CHARS",
    origin: ["cxenstored"],
    status: "mapped",
    help: "quota: length of a node path",
    apply: hardQuota("path-max"),
  },
  {
    short: "Q",
    long: "quota",
    arg: "required",
    metavar: "WHAT=NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "set a hard quota (names of `xenstore-control quota`)",
    apply: (o, v, flag) => {
      const [what, nb] = whatEquals(flag, v!);
      const name = hardQuotaName(what);
      if (name === null) throw new OptionError(`${flag}: unknown quota "${what}"`);
      o.quotas[name] = cxUint(flag, nb);
    },
  },
  {
    short: "q",
    long: "quota-soft",
    arg: "required",
    metavar: "WHAT=NB",
    origin: ["cxenstored"],
    status: "mapped",
    help: "set a soft quota (memory: a warning in the log)",
    apply: (o, v, flag) => {
      const [what, nb] = whatEquals(flag, v!);
      if (!SOFT_QUOTAS.some((q) => q.name === what)) {
        throw new OptionError(`${flag}: unknown quota "${what}"`);
      }
      o.softQuotas[what] = cxUint(flag, nb);
    },
  },
  {
    short: "w",
    long: "timeout",
    arg: "required",
    metavar: "WHAT=SECONDS",
    origin: ["cxenstored"],
    status: "ignored",
    help: "watch-event=S: accepted; dxenstored bounds unread events by --max-watch-events instead",
    apply: (o, v, flag) => {
      const [what, s] = whatEquals(flag, v!);
      if (what !== "watch-event") throw new OptionError(`${flag}: unknown timeout "${what}"`);
      o.watchEventTimeoutS = cxUint(flag, s);
      o.warnings.push(`${flag} ${v}: no effect (unread events are bounded by --max-watch-events)`);
    },
  },
  {
    short: "R",
    long: "no-recovery",
    arg: "none",
    origin: ["cxenstored"],
    status: "ignored",
    help: "obsolete (TDB recovery); see --recover",
    apply: ignored("obsolete cxenstored TDB option"),
  },
  {
    short: "I",
    long: "internal-db",
    arg: "optional",
    metavar: "on|off",
    origin: ["cxenstored"],
    status: "ignored",
    help: "obsolete (TDB in memory or on disk); see --backend",
    apply: (o, v, flag) => {
      if (v !== undefined && v !== "on" && v !== "off") throw new OptionError(`${flag} takes on or off`);
      ignored("obsolete cxenstored TDB option; the store is chosen with --backend")(o, v, flag);
    },
  },
  {
    short: "K",
    long: "keep-orphans",
    arg: "none",
    origin: ["cxenstored"],
    status: "mapped",
    help: "give the nodes of a domain that goes away to dom0 instead of deleting them (a security risk)",
    apply: (o, _v, flag) => {
      o.keepOrphans = true;
      o.warnings.push(`${flag}: a dead domain's nodes are kept (owned by dom0): a security risk`);
    },
  },
  {
    short: "V",
    long: "verbose",
    arg: "none",
    origin: ["cxenstored"],
    status: "mapped",
    help: "debug logging (same as --log-level debug)",
    apply: (o) => o.logLevel = "debug",
  },
  {
    short: "U",
    long: "live-update",
    arg: "none",
    origin: ["cxenstored"],
    status: "mapped",
    help: "started by a live update (xenstore-control live-update): adopt the connections, watches " +
      "and store in <rundir>/state_dump instead of starting afresh; never forks",
    hidden: true,
    apply: (o) => o.liveUpdate = true,
  },
  {
    long: "event",
    arg: "required",
    metavar: "PORT",
    origin: ["cxenstored"],
    status: "ignored",
    help: "stub-domain event channel (not applicable to a dom0 daemon)",
    hidden: true,
    apply: ignored("stub-domain option"),
  },
  {
    long: "master-domid",
    arg: "required",
    metavar: "DOMID",
    origin: ["cxenstored"],
    status: "ignored",
    help: "stub-domain option (not applicable to a dom0 daemon)",
    hidden: true,
    apply: ignored("stub-domain option"),
  },
  {
    long: "priv-domid",
    arg: "required",
    metavar: "DOMID",
    origin: ["cxenstored"],
    status: "ignored",
    help: "disaggregation option (use a policy instead)",
    hidden: true,
    apply: ignored("disaggregation option; the access policy decides"),
  },
  // --- oxenstored 4.17 ---------------------------------------------------------------------------
  {
    long: "config-file",
    arg: "required",
    metavar: "FILE",
    origin: ["oxenstored"],
    status: "mapped",
    help: `configuration file (default: ${DEFAULT_CONFIG_FILE}; oxenstored.conf keys are accepted)`,
    apply: (o, v) => o.configFile = v!,
  },
  {
    long: "config-test",
    arg: "none",
    origin: ["oxenstored"],
    status: "mapped",
    help: "check the configuration file and the options, then exit (0: valid, 2: invalid)",
    apply: (o) => o.configTest = true,
  },
  {
    long: "no-access-log",
    arg: "none",
    origin: ["oxenstored"],
    status: "mapped",
    help: "no access log, even if one is configured",
    apply: (o) => o.accessLog.disabled = true,
  },
  {
    long: "reraise-top-level",
    arg: "none",
    origin: ["oxenstored"],
    status: "ignored",
    help: "OCaml exception debugging",
    hidden: true,
    apply: ignored("OCaml debugging option"),
  },
  {
    long: "restart",
    arg: "none",
    origin: ["oxenstored"],
    status: "ignored",
    help: "reload oxenstored's dump; dxenstored's persistent backends reload by themselves",
    hidden: true,
    apply: ignored("oxenstored dump reload; use a persistent --backend"),
  },
  {
    long: "live",
    arg: "none",
    origin: ["oxenstored"],
    status: "refused",
    help: "oxenstored's live update, which dxenstored does not support (exit 2)",
    hidden: true,
    apply: () => {
      throw new OptionError("live update is not supported by dxenstored");
    },
  },
  {
    long: "disable-socket",
    arg: "none",
    origin: ["oxenstored"],
    status: "ignored",
    help: "serve guests only (dxenstored always serves its socket)",
    hidden: true,
    apply: ignored("the socket is always served"),
  },
  // --- dxenstored --------------------------------------------------------------------------------
  {
    long: "socket",
    arg: "required",
    metavar: "PATH",
    origin: ["dxenstored"],
    status: "mapped",
    help: "serve PATH in the foreground (implies --no-fork: development and tests); " +
      "the daemon's socket is otherwise $XENSTORED_PATH, $XENSTORED_RUNDIR/socket or " +
      `${DEFAULT_RUNDIR}/socket`,
    apply: (o, v) => {
      o.socket = v!;
      o.socketFlag = true;
    },
  },
  {
    long: "log-level",
    arg: "required",
    metavar: "LEVEL",
    origin: ["dxenstored"],
    status: "mapped",
    help: "error | warn | info | debug (default: info)",
    apply: (o, v) => {
      if (!isLogLevel(v!)) throw new OptionError(`unknown log level "${v}"`);
      o.logLevel = v;
    },
  },
  {
    long: "log-file",
    arg: "required",
    metavar: "DEST",
    origin: ["dxenstored"],
    status: "mapped",
    help: "stderr (default) | syslog[:facility] | a file, reopened on SIGHUP",
    apply: (o, v) => o.logDest = v!,
  },
  {
    long: "max-out-bytes",
    arg: "required",
    metavar: "N",
    origin: ["dxenstored"],
    status: "mapped",
    help: "unread output bytes after which a socket client is disconnected as stuck (default: 8388608)",
    apply: (o, v, flag) => o.maxOutBytes = positiveInt(flag, v!),
  },
  {
    long: "max-watch-events",
    arg: "required",
    metavar: "N",
    origin: ["dxenstored"],
    status: "mapped",
    help: "unread watch events after which a socket client is disconnected as stuck (default: 65536)",
    apply: (o, v, flag) => o.maxWatchEvents = positiveInt(flag, v!),
  },
  {
    long: "backend",
    arg: "required",
    metavar: "SPEC",
    origin: ["dxenstored"],
    status: "mapped",
    help: `${BACKEND_SPECS_TEXT} (default: memory); see docs/backends.md`,
    apply: (o, v) => {
      const b = parseBackendSpec(v!);
      if (typeof b === "string") throw new OptionError(b);
      o.backend = b;
    },
  },
  {
    long: "sync",
    arg: "required",
    metavar: "MODE",
    origin: ["dxenstored"],
    status: "mapped",
    help: "always: fsync each commit before replying; group:<ms>: one fsync shared by a burst; " +
      "none (default: always)",
    apply: (o, v) => {
      const m = parseSyncMode(v!);
      if (m === null) throw new OptionError(`--sync must be ${SYNC_MODES_TEXT}`);
      o.sync = m;
    },
  },
  {
    long: "group-io",
    arg: "required",
    metavar: "HOW",
    origin: ["dxenstored"],
    status: "mapped",
    help: "group commit writes: async (Linux AIO, the loop keeps serving during the disk flush) or " +
      "inline (the loop waits for each); default: async",
    apply: (o, v) => {
      if (v !== "async" && v !== "inline") throw new OptionError("--group-io must be async or inline");
      o.groupIo = v;
    },
  },
  {
    long: "recover",
    arg: "none",
    origin: ["dxenstored"],
    status: "mapped",
    help: "start from the valid prefix of a damaged store",
    apply: (o) => o.recover = true,
  },
  {
    long: "xen",
    arg: "required",
    metavar: "SPEC",
    origin: ["dxenstored"],
    status: "mapped",
    help: "none | sim:<dir> | real: serve guest domains over Xen rings (default: none); see docs/domains.md",
    apply: (o, v) => {
      const x = parseXenSpec(v!);
      if (typeof x === "string") throw new OptionError(x);
      o.xen = x;
    },
  },
  {
    long: "policy",
    arg: "required",
    metavar: "LIST",
    origin: ["dxenstored"],
    status: "mapped",
    help: "access-control policy plugins, in chain order (default: legacy); see docs/plugins.md",
    apply: (o, v) => {
      const names = parseChainList(v!);
      if (typeof names === "string") throw new OptionError(`--policy: ${names}`);
      o.policy = names;
    },
  },
  {
    long: "policy-config",
    arg: "required",
    metavar: "FILE",
    origin: ["dxenstored"],
    status: "mapped",
    help: "policy keys (policy, policy-config.NAME.KEY...); re-read on SIGHUP",
    apply: (o, v) => o.policyConfig = v!,
  },
  {
    long: "metrics-file",
    arg: "required",
    metavar: "PATH",
    origin: ["dxenstored"],
    status: "mapped",
    help: "write metrics (Prometheus text format) to PATH, replaced atomically",
    apply: (o, v) => o.metricsFile = v!,
  },
  {
    long: "metrics-interval",
    arg: "required",
    metavar: "SECONDS",
    origin: ["dxenstored"],
    status: "mapped",
    help: "seconds between metrics file writes (default: 10)",
    apply: (o, v, flag) => o.metricsInterval = seconds(flag, v!),
  },
  {
    long: "access-log-read-ops",
    arg: "none",
    origin: ["dxenstored"],
    status: "mapped",
    help: "log reads (READ, DIRECTORY, GET_PERMS) in the access log too",
    apply: (o) => o.accessLog.readOps = true,
  },
  {
    long: "access-log-redact",
    arg: "required",
    metavar: "GLOBS",
    origin: ["dxenstored"],
    status: "mapped",
    help: `comma-separated paths whose written values the access log omits (default: ${
      DEFAULT_REDACT.join(",")
    }; "" for none)`,
    apply: (o, v) => o.accessLog.redact = v!.split(",").map((s) => s.trim()).filter((s) => s !== ""),
  },
  {
    long: "refusal-log-burst",
    arg: "required",
    metavar: "N",
    origin: ["dxenstored"],
    status: "mapped",
    help: `refusal lines a domain may log at once (default: ${DEFAULT_REFUSAL_RATE.burst})`,
    apply: (o, v, flag) => o.refusalBurst = positiveInt(flag, v!),
  },
  {
    long: "refusal-log-interval",
    arg: "required",
    metavar: "MS",
    origin: ["dxenstored"],
    status: "mapped",
    help:
      `then one refusal line per MS milliseconds per domain (default: ${DEFAULT_REFUSAL_RATE.intervalMs})`,
    apply: (o, v, flag) => o.refusalIntervalMs = positiveInt(flag, v!),
  },
];

/** The defaults, with the socket and folders from the environment (libxenstore's rules). */
export function defaultOptions(env: (k: string) => string | undefined): DaemonOptions {
  const rundir = env("XENSTORED_RUNDIR") || DEFAULT_RUNDIR;
  return {
    socket: env("XENSTORED_PATH") || `${rundir}/socket`,
    socketFlag: false,
    fork: true,
    pidFile: null,
    outputPid: false,
    domainInit: true,
    logLevel: "info",
    logDest: null,
    backend: { kind: "memory" },
    sync: "always",
    groupIo: "async",
    recover: false,
    quotas: {},
    softQuotas: {},
    watchEventTimeoutS: null,
    keepOrphans: false,
    configFile: null,
    configTest: false,
    accessLog: {
      file: null,
      disabled: false,
      readOps: DEFAULT_ACCESS_LOG.readOps,
      transactionOps: DEFAULT_ACCESS_LOG.transactionOps,
      specialOps: DEFAULT_ACCESS_LOG.specialOps,
      redact: [...DEFAULT_REDACT],
      maxLineChars: DEFAULT_ACCESS_LOG.maxLineChars,
    },
    metricsFile: null,
    metricsInterval: 10,
    refusalBurst: DEFAULT_REFUSAL_RATE.burst,
    refusalIntervalMs: DEFAULT_REFUSAL_RATE.intervalMs,
    rundir,
    rootdir: env("XENSTORED_ROOTDIR") || DEFAULT_ROOTDIR,
    liveUpdate: false,
    warnings: [],
  };
}

/** One option occurrence on the command line. */
export interface Occurrence {
  readonly spec: OptionSpec;
  /** As written ("-F", "--pid-file"), for messages. */
  readonly flag: string;
  readonly value: string | undefined;
}

function findLong(name: string): OptionSpec {
  const exact = OPTIONS.find((o) => o.long === name);
  if (exact) return exact;
  // getopt_long: a unique prefix names an option.
  const matches = OPTIONS.filter((o) => o.long !== undefined && o.long.startsWith(name));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new OptionError(
      `option "--${name}" is ambiguous (${matches.map((m) => "--" + m.long).join(", ")})`,
    );
  }
  throw new OptionError(`unknown option "--${name}"`);
}

/** Split argv into option occurrences (getopt_long rules). Throws OptionError. */
export function tokenize(argv: readonly string[]): Occurrence[] {
  const out: Occurrence[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      if (i + 1 < argv.length) throw new OptionError(`no arguments desired, got "${argv[i + 1]}"`);
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const inline = eq > 0 ? a.slice(eq + 1) : undefined;
      const spec = findLong(name);
      const flag = `--${spec.long}`;
      let value = inline;
      if (spec.arg === "none" && inline !== undefined) throw new OptionError(`${flag} takes no value`);
      if (spec.arg === "required" && value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new OptionError(`${flag} needs a value`);
      }
      // cxenstored's help writes "--internal-db [on|off]": take a following on/off too.
      if (spec.arg === "optional" && value === undefined && (argv[i + 1] === "on" || argv[i + 1] === "off")) {
        value = argv[++i];
      }
      out.push({ spec, flag, value });
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j];
        const spec = OPTIONS.find((o) => o.short === ch);
        if (spec === undefined) throw new OptionError(`unknown option "-${ch}"`);
        const flag = `-${ch}`;
        if (spec.arg === "none") {
          out.push({ spec, flag, value: undefined });
          continue;
        }
        const rest = a.slice(j + 1);
        if (spec.arg === "optional") {
          out.push({ spec, flag, value: rest === "" ? undefined : rest });
          break;
        }
        let value: string | undefined = rest;
        if (rest === "") {
          value = argv[++i];
          if (value === undefined) throw new OptionError(`${flag} needs a value`);
        }
        out.push({ spec, flag, value });
        break;
      }
      continue;
    }
    throw new OptionError(`no arguments desired, got "${a}"`);
  }
  return out;
}

export function isHelp(occ: readonly Occurrence[]): boolean {
  return occ.some((o) => o.spec.short === "H" || o.spec.short === "h");
}

/** Apply command-line occurrences on top of `o` (after the configuration file). */
export function applyOccurrences(o: DaemonOptions, occ: readonly Occurrence[]): DaemonOptions {
  for (const x of occ) x.spec.apply(o, x.value, x.flag);
  // --socket is the development mode: a foreground process a test harness can stop.
  if (o.socketFlag) o.fork = false;
  return o;
}

/**
 * Parse the command line alone (no configuration file): the options, "help", or an error message.
 * The daemon's own entry point (main.ts) also reads the configuration file in between.
 */
export function parseArgs(
  argv: readonly string[],
  env: (k: string) => string | undefined,
): DaemonOptions | string {
  try {
    const occ = tokenize(argv);
    if (isHelp(occ)) return "help";
    return applyOccurrences(defaultOptions(env), occ);
  } catch (e) {
    if (e instanceof OptionError) return e.message;
    throw e;
  }
}

/** --help text, generated from the table. */
export function usage(): string {
  const lines = [
    "Usage: dxenstored [options]",
    "       dxenstored export|import ...   (see dxenstored export --help)",
    "",
  ];
  const groups: Array<[string, Origin]> = [
    ["Options of Xen's cxenstored/oxenstored:", "cxenstored"],
    ["dxenstored options:", "dxenstored"],
  ];
  for (const [title, origin] of groups) {
    lines.push(title);
    for (const o of OPTIONS) {
      if (o.hidden) continue;
      const mine = origin === "dxenstored"
        ? o.origin.length === 1 && o.origin[0] === "dxenstored"
        : !(o.origin.length === 1 && o.origin[0] === "dxenstored");
      if (!mine) continue;
      const names = [o.short ? `-${o.short}` : null, o.long ? `--${o.long}` : null].filter((s) => s !== null)
        .join(", ");
      const arg = o.arg === "required"
        ? ` ${o.metavar ?? "VALUE"}`
        : o.arg === "optional"
        ? ` [${o.metavar}]`
        : "";
      const head = `  ${names}${arg}`;
      const help = o.status === "ignored" ? `${o.help} [accepted, no effect]` : o.help;
      lines.push(head.length < 30 ? head.padEnd(30) + help : `${head}\n${"".padEnd(30)}${help}`);
    }
    lines.push("");
  }
  lines.push(
    "Environment: XENSTORED_PATH (socket), XENSTORED_RUNDIR (default /var/run/xenstored),",
    "XENSTORED_ROOTDIR (default /var/lib/xenstored), NOTIFY_SOCKET (systemd readiness).",
    "Signals: SIGTERM/SIGINT stop, SIGHUP reopens the log files. See docs/operations.md.",
  );
  return lines.join("\n") + "\n";
}
