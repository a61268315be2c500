// The option table: every option of cxenstored 4.17 and oxenstored 4.17 and dxenstored's own, with
// where it comes from, what it does here ("mapped"), or why it only warns ("ignored"), and how its
// value is applied to the DaemonOptions (./options.ts, which parses the command line with it). One
// table drives parsing, --help and docs/operations.md's option reference.
import { isLogLevel } from "../common/log.ts";
import { BACKEND_SPECS_TEXT, parseBackendSpec, parseSyncMode, SYNC_MODES_TEXT } from "../backend/backend.ts";
import { CONTROL_QUOTAS } from "../quota/table.ts";
import { parseXenSpec } from "../xen/open.ts";
import { parseChainList } from "../policy/loader.ts";
import { DEFAULT_REDACT } from "../observe/access_log.ts";
import { DEFAULT_REFUSAL_RATE } from "../observe/refusals.ts";
import type { DaemonOptions, OptionSpec } from "./options.ts";

export class OptionError extends Error {
  override name = "OptionError";
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

/** Names -Q/--quota accepts: cxenstored 4.17's and master's spellings. */
const HARD_ALIASES: Readonly<Record<string, string>> = {
  "node-permissions": "permissions",
  "path-length": "path-max",
};

function hardQuotaName(name: string): string | null {
  const n = HARD_ALIASES[name] ?? name;
  return CONTROL_QUOTAS.hard.some((q) => q.controlName === n) ? n : null;
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
      if (!CONTROL_QUOTAS.soft.some((q) => q.controlName === what)) {
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
    help: "none | sim:<dir> | real: serve guest domains over Xen rings (default: real on a host with " +
      "/dev/xen or /proc/xen, else none: sockets only); see docs/domains.md",
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
