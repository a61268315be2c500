// The command line: every option of cxenstored 4.17 and oxenstored 4.17 (so that Debian's
// /etc/init.d/xen, upstream's launch-xenstore and existing XENSTORED_ARGS work unchanged), plus
// dxenstored's own. One table (./option_table.ts) drives parsing, --help and docs/operations.md's option
// reference; each entry says where the option comes from and what it does here ("mapped"), or why it
// only warns ("ignored": accepted for compatibility, no effect). Parsing follows getopt_long: short options may
// be clustered (-NF file, -Ffile), long options take "--opt value" or "--opt=value" and may be
// abbreviated to a unique prefix.
import type { LogLevel } from "../common/log.ts";
import type { BackendSpec, SyncMode } from "../backend/backend.ts";
import type { XenSpec } from "../xen/open.ts";
import { DEFAULT_ACCESS_LOG, DEFAULT_REDACT } from "../observe/access_log.ts";
import { DEFAULT_REFUSAL_RATE } from "../observe/refusals.ts";
import {
  DEFAULT_CONFIG_FILE,
  DEFAULT_ROOTDIR,
  DEFAULT_RUNDIR,
  OptionError,
  OPTIONS,
} from "./option_table.ts";

// The table and its constants are defined in ./option_table.ts (a data module of its own).
export { DEFAULT_CONFIG_FILE, DEFAULT_ROOTDIR, DEFAULT_RUNDIR, OptionError, OPTIONS };

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
  /** Guest domains' transport (--xen; docs/domains.md); unset = the host's default (host_defaults.ts). */
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
    "Each setting comes from the command line, else the configuration file, else the built-in default",
    "shown above (bin/dxenstored in a checkout adds nothing: `deno task start` passes its --backend).",
    "Exit status: 0 serving (or already running), 1 the start failed (one line says what, which path",
    "and the errno), 2 bad options or configuration.",
  );
  return lines.join("\n") + "\n";
}
