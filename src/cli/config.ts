// The configuration file, /etc/xen/dxenstored.conf: oxenstored.conf's syntax ("key = value" lines,
// "#" comment lines, the last occurrence of a key wins) and every key oxenstored 4.17 knows, each
// either mapped onto a dxenstored setting or accepted and ignored with a warning; plus dxenstored's
// own keys, named like its long options. An unknown key, a bad value or a line that is no "key = value"
// (nor a comment) is an error: --config-test
// exits 2 on it; a normal start logs it and keeps the default (as oxenstored), so a typo cannot keep
// a host from booting. Command-line options override the file.
import { type DaemonOptions, OptionError, OPTIONS } from "./options.ts";

export type ValueKind = "bool" | "int" | "float" | "string";

export interface ConfigKey {
  readonly key: string;
  readonly kind: ValueKind;
  readonly origin: "oxenstored" | "dxenstored";
  readonly status: "mapped" | "ignored";
  /** What it does in dxenstored, or why it is ignored. */
  readonly help: string;
  apply(o: DaemonOptions, v: string | number | boolean): void;
}

export interface ConfigProblem {
  readonly line: number;
  readonly key: string;
  readonly message: string;
}

export interface ConfigResult {
  /** Keys that were applied. */
  readonly applied: readonly string[];
  /** `policy...` keys: they belong to the policy loader (src/policy/loader.ts), which reads the same file. */
  readonly policyKeys: number;
  /** Ignored keys present in the file (one warning line at start). */
  readonly ignored: readonly string[];
  readonly errors: readonly ConfigProblem[];
}

const INT_MAX = 0x7fffffff;

/** OCaml's int_of_string: optional sign, decimal or 0x/0o/0b, underscores between digits. */
export function parseOcamlInt(s: string): number | null {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$/.exec(s);
  if (m === null) return null;
  const body = m[2].replaceAll("_", "");
  const n = /^0[oO]/.test(body) ? parseInt(body.slice(2), 8) : Number(body);
  if (!Number.isSafeInteger(n)) return null;
  return m[1] === "-" ? -n : n;
}

/** OCaml's float_of_string, close enough: decimal or exponent notation. */
export function parseOcamlFloat(s: string): number | null {
  if (!/^[+-]?([0-9][0-9_]*\.?[0-9_]*([eE][+-]?[0-9]+)?|\.[0-9]+)$/.test(s)) return null;
  const n = Number(s.replaceAll("_", ""));
  return Number.isFinite(n) ? n : null;
}

/** oxenstored quota values: negative means unlimited there; here the largest value. */
function quotaValue(v: number): number {
  return v < 0 ? INT_MAX : Math.min(v, INT_MAX);
}

function quota(key: string, name: string, help: string): ConfigKey {
  return {
    key,
    kind: "int",
    origin: "oxenstored",
    status: "mapped",
    help,
    apply: (o, v) => o.quotas[name] = quotaValue(v as number),
  };
}

function ignoredKey(key: string, kind: ValueKind, help: string): ConfigKey {
  return { key, kind, origin: "oxenstored", status: "ignored", help, apply: () => {} };
}

/** A dxenstored key that takes the same value as its long option. */
function fromOption(long: string, kind: ValueKind = "string"): ConfigKey {
  const spec = OPTIONS.find((o) => o.long === long);
  if (spec === undefined) throw new Error(`no option --${long}`);
  return {
    key: long,
    kind,
    origin: "dxenstored",
    status: "mapped",
    help: `as --${long}: ${spec.help}`,
    apply: (o, v) => {
      if (kind === "bool") {
        if (v === true) spec.apply(o, undefined, long);
      } else {
        spec.apply(o, String(v), long);
      }
    },
  };
}

const OX_LOG_LEVELS: Readonly<Record<string, "debug" | "info" | "warn" | "error">> = {
  debug: "debug",
  info: "info",
  warn: "warn",
  error: "error",
  // oxenstored's "null" turns logging off; the closest is errors only.
  null: "error",
};

export const CONFIG_KEYS: readonly ConfigKey[] = [
  // --- oxenstored.conf (xenstored.ml parse_config, 4.17) ----------------------------------------
  {
    key: "pid-file",
    kind: "string",
    origin: "oxenstored",
    status: "mapped",
    help: "pid file (--pid-file overrides it)",
    apply: (o, v) => o.pidFile = v as string,
  },
  quota("quota-maxentity", "nodes", "quota: nodes per domain (-E)"),
  quota("quota-maxsize", "node-size", "quota: size of a node (-S)"),
  quota("quota-maxwatch", "watches", "quota: watches per domain (-W)"),
  quota("quota-transaction", "transactions", "quota: transactions per domain (-t)"),
  quota(
    "quota-maxrequests",
    "transaction-nodes",
    "quota: operations per transaction; dxenstored counts the nodes a transaction accesses " +
      "(cxenstored's transaction-nodes)",
  ),
  quota("quota-path-max", "path-max", "quota: length of a node path (-M)"),
  quota("quota-maxoutstanding", "outstanding", "quota: outstanding requests per domain"),
  {
    key: "xenstored-log-file",
    kind: "string",
    origin: "oxenstored",
    status: "mapped",
    help: "the daemon log: a file, or syslog:<facility> (--log-file)",
    apply: (o, v) => o.logDest = v as string,
  },
  {
    key: "xenstored-log-level",
    kind: "string",
    origin: "oxenstored",
    status: "mapped",
    help: "debug | info | warn | error | null (null: errors only) (--log-level)",
    apply: (o, v) => {
      const l = OX_LOG_LEVELS[v as string];
      if (l === undefined) throw new OptionError(`unknown log level "${v}"`);
      o.logLevel = l;
    },
  },
  {
    key: "access-log-file",
    kind: "string",
    origin: "oxenstored",
    status: "mapped",
    help: "turns the access log on, in this file (-T; --no-access-log wins)",
    apply: (o, v) => o.accessLog.file = v as string,
  },
  {
    key: "access-log-read-ops",
    kind: "bool",
    origin: "oxenstored",
    status: "mapped",
    help: "log READ, DIRECTORY and GET_PERMS too (default false)",
    apply: (o, v) => o.accessLog.readOps = v as boolean,
  },
  {
    key: "access-log-transactions-ops",
    kind: "bool",
    origin: "oxenstored",
    status: "mapped",
    help: "log TRANSACTION_START/END (default false; commits and conflicts are always logged)",
    apply: (o, v) => o.accessLog.transactionOps = v as boolean,
  },
  {
    key: "access-log-special-ops",
    kind: "bool",
    origin: "oxenstored",
    status: "mapped",
    help: "log INTRODUCE, RELEASE, RESUME, GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED (default false)",
    apply: (o, v) => o.accessLog.specialOps = v as boolean,
  },
  {
    key: "access-log-nb-chars",
    kind: "int",
    origin: "oxenstored",
    status: "mapped",
    help: "access log lines are cut at this many characters (default 180)",
    apply: (o, v) => {
      if ((v as number) < 40) throw new OptionError("access-log-nb-chars must be at least 40");
      o.accessLog.maxLineChars = Math.min(v as number, 65536);
    },
  },
  ignoredKey(
    "merge-activate",
    "bool",
    "transaction coalescing: dxenstored's conflict rule is always precise",
  ),
  ignoredKey("conflict-burst-limit", "float", "conflict throttling of oxenstored"),
  ignoredKey("conflict-max-history-seconds", "float", "conflict throttling of oxenstored"),
  ignoredKey("conflict-rate-limit-is-aggregate", "bool", "conflict throttling of oxenstored"),
  ignoredKey("perms-activate", "bool", "permissions are always checked (the access policy decides)"),
  ignoredKey("perms-watch-activate", "bool", "watch events are always filtered by permissions"),
  ignoredKey("quota-activate", "bool", "quotas are always enforced for guests (set them high instead)"),
  ignoredKey(
    "quota-maxwatchevents",
    "int",
    "pending watch events are bounded per connection by max-watch-events (a disconnect, not a drop)",
  ),
  ignoredKey("gc-max-overhead", "int", "OCaml garbage collector setting"),
  ignoredKey("test-eagain", "bool", "oxenstored test mode (random EAGAIN)"),
  ignoredKey("persistent", "bool", "oxenstored's on-disk database; use backend = file:<dir>"),
  ignoredKey("xenstored-log-nb-files", "int", "log rotation is logrotate's job (SIGHUP reopens)"),
  ignoredKey("xenstored-log-nb-lines", "int", "log rotation is logrotate's job (SIGHUP reopens)"),
  ignoredKey("xenstored-log-nb-chars", "int", "log rotation is logrotate's job (SIGHUP reopens)"),
  ignoredKey("access-log-nb-files", "int", "log rotation is logrotate's job (SIGHUP reopens)"),
  ignoredKey("access-log-nb-lines", "int", "log rotation is logrotate's job (SIGHUP reopens)"),
  ignoredKey("allow-debug", "bool", "who may use CONTROL is the access policy's decision"),
  ignoredKey("ring-scan-interval", "int", "guest rings are served on their event channel"),
  ignoredKey("xenstored-kva", "string", "dom0's ring is always /proc/xen/xsd_kva"),
  ignoredKey("xenstored-port", "string", "dom0's event channel is always /proc/xen/xsd_port"),
  // --- dxenstored -------------------------------------------------------------------------------
  fromOption("log-level"),
  fromOption("log-file"),
  fromOption("max-out-bytes"),
  fromOption("max-watch-events"),
  fromOption("backend"),
  fromOption("sync"),
  fromOption("group-io", "string"),
  fromOption("recover", "bool"),
  fromOption("xen"),
  fromOption("metrics-file"),
  fromOption("metrics-interval"),
  fromOption("access-log-redact"),
  fromOption("refusal-log-burst"),
  fromOption("refusal-log-interval"),
];

function parseValue(kind: ValueKind, raw: string): string | number | boolean | null {
  switch (kind) {
    case "bool":
      // OCaml's bool_of_string: exactly "true" or "false".
      return raw === "true" ? true : raw === "false" ? false : null;
    case "int":
      return parseOcamlInt(raw);
    case "float":
      return parseOcamlFloat(raw);
    case "string":
      return raw;
  }
}

export interface ConfigLine {
  readonly line: number;
  readonly key: string;
  readonly value: string;
}

/**
 * oxenstored's line syntax: trimmed lines, "#" comments, "key = value" split at the first "=". A line
 * that is none of these (no "=") is returned in `malformed`: oxenstored skips it silently, which turns a
 * garbled file into defaults without a word; here it is an error.
 */
export function parseConfigText(text: string): { entries: ConfigLine[]; malformed: ConfigProblem[] } {
  const entries: ConfigLine[] = [];
  const malformed: ConfigProblem[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].replace(/^[ \t\r]+|[ \t\r]+$/g, "");
    if (l === "" || l.startsWith("#")) continue;
    const eq = l.indexOf("=");
    if (eq < 0) {
      const shown = l.length > 60 ? `${l.slice(0, 60)}...` : l;
      malformed.push({ line: i + 1, key: shown, message: 'not a "key = value" line (nor a # comment)' });
      continue;
    }
    entries.push({
      line: i + 1,
      key: l.slice(0, eq).replace(/[ \t]+$/, ""),
      value: l.slice(eq + 1).replace(/^[ \t]+/, ""),
    });
  }
  return { entries, malformed };
}

/** Apply a configuration file's text to `o`. Bad entries are reported, not applied. */
export function applyConfig(o: DaemonOptions, text: string): ConfigResult {
  const applied: string[] = [];
  const ignored: string[] = [];
  const { entries, malformed } = parseConfigText(text);
  const errors: ConfigProblem[] = [...malformed];
  let policyKeys = 0;
  for (const e of entries) {
    if (e.key.startsWith("policy")) {
      policyKeys++;
      continue;
    }
    const k = CONFIG_KEYS.find((x) => x.key === e.key);
    if (k === undefined) {
      errors.push({ line: e.line, key: e.key, message: "unknown key" });
      continue;
    }
    const v = parseValue(k.kind, e.value);
    if (v === null) {
      errors.push({ line: e.line, key: e.key, message: `expected ${article(k.kind)}, got "${e.value}"` });
      continue;
    }
    try {
      k.apply(o, v);
    } catch (err) {
      if (!(err instanceof OptionError)) throw err;
      errors.push({ line: e.line, key: e.key, message: err.message });
      continue;
    }
    if (k.status === "ignored") {
      if (!ignored.includes(k.key)) ignored.push(k.key);
    } else applied.push(k.key);
  }
  errors.sort((a, b) => a.line - b.line);
  return { applied, policyKeys, ignored, errors };
}

function article(kind: ValueKind): string {
  return kind === "bool"
    ? "true or false"
    : kind === "int"
    ? "an integer"
    : kind === "float"
    ? "a number"
    : "a string";
}

export function formatProblem(file: string, p: ConfigProblem): string {
  return `${file}:${p.line}: ${p.key}: ${p.message}`;
}
