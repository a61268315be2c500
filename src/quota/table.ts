// The quota table: one row per quota — its name (cxenstored master's GET_QUOTA/SET_QUOTA spelling) and
// cxenstored 4.17's `xenstore-control quota` spelling, whether it is hard (refuses) or soft (logs),
// what it bounds, the error a refusal gives, its default (cxenstored 4.17's) and the hard cap that
// holds for every domain, exempt or not. Everything else about quota values is derived from this
// table: the name lists, the defaults and caps, CONTROL's listings, the command-line names and the
// per-connection limits of src/quota/limits.ts. docs/quotas.md is the prose version of this file.
import type { Errno } from "../common/xs_error.ts";
import { ABS_PATH_MAX, REL_PATH_MAX } from "../protocol/wire.ts";

/** Every quota that can refuse something, in cxenstored master's `quota_adm[]` order. */
export const QUOTA_NAMES = [
  "nodes",
  "watches",
  "outstanding",
  "memory",
  "transactions",
  "transaction-nodes",
  "node-permissions",
  "path-max",
  "node-size",
] as const;
export type QuotaName = typeof QUOTA_NAMES[number];

/** The soft memory quota: crossing it only logs a warning (cxenstored's `soft-memory`). */
export const SOFT_MEMORY = "soft-memory";

/** Names GET_QUOTA/SET_QUOTA accept: the quotas plus `soft-memory`. */
export type SettingName = QuotaName | typeof SOFT_MEMORY;

export interface QuotaRow {
  readonly name: SettingName;
  /** cxenstored 4.17's `xenstore-control quota` / `quota-soft` name (and -Q/-q's). */
  readonly controlName: string;
  /** hard: refuses (or stalls) beyond it; soft: a warning in the log. */
  readonly kind: "hard" | "soft";
  /** What `xenstore-control quota` prints next to the value (cxenstored 4.17's wording). */
  readonly descr: string;
  /**
   * The error a refusal gives; null for `outstanding`, which is not an error (the transport stops
   * reading the domain's requests until replies drain, as cxenstored), and for the soft quota.
   */
  readonly errno: Errno | null;
  /** What one unit of the hard cap is counted over (the quota itself is always per domain). */
  readonly capScope: "domain" | "connection" | "transaction" | "request";
  /** cxenstored 4.17's default (`xenstore-control quota` on 4.17, docs/misc/xenstore.txt). */
  readonly dflt: number;
  /**
   * The hard cap: it bounds every domain, exempt ones included, whatever SET_QUOTA says (a quota can
   * be lowered below its cap, never raised above it). Sized so that a host with thousands of guests
   * never meets them in normal operation.
   */
  readonly cap: number;
}

/** The table, in GET_QUOTA's listing order (cxenstored master: the soft quota after the hard ones it shadows). */
export const QUOTA_TABLE: readonly QuotaRow[] = [
  {
    name: "nodes",
    controlName: "nodes",
    kind: "hard",
    descr: "Nodes per domain",
    errno: "ENOSPC",
    capScope: "domain",
    dflt: 1000,
    // A store of 4 million nodes takes ~300 MiB (docs/architecture.md, "Memory").
    cap: 4_000_000,
  },
  {
    name: "watches",
    controlName: "watches",
    kind: "hard",
    descr: "Watches per domain",
    // E2BIG as cxenstored 4.17 (master answers ENOSPC); libxenstore clients report "E2BIG".
    errno: "E2BIG",
    // Per connection: a privileged tool may hold many.
    capScope: "connection",
    dflt: 128,
    cap: 65536,
  },
  {
    name: "outstanding",
    controlName: "outstanding",
    kind: "hard",
    descr: "Outstanding requests per domain",
    errno: null,
    capScope: "domain",
    dflt: 20,
    cap: 1024,
  },
  {
    name: "memory",
    controlName: "memory",
    kind: "hard",
    descr: "Total Xenstore memory per domain (error level)",
    // ENOMEM as cxenstored (domain_memory_add): the memory quota is about memory, not space.
    errno: "ENOMEM",
    capScope: "domain",
    dflt: 2621440,
    cap: 1 << 30,
  },
  {
    name: SOFT_MEMORY,
    controlName: "memory",
    kind: "soft",
    descr: "Total Xenstore memory per domain (warning level)",
    errno: null,
    capScope: "domain",
    dflt: 2097152,
    cap: 1 << 30,
  },
  {
    name: "transactions",
    controlName: "transactions",
    kind: "hard",
    descr: "Transactions per domain",
    errno: "ENOSPC",
    capScope: "connection",
    dflt: 10,
    cap: 1024,
  },
  {
    name: "transaction-nodes",
    controlName: "transaction-nodes",
    kind: "hard",
    descr: "Max. number of accessed nodes per transaction",
    errno: "ENOSPC",
    capScope: "transaction",
    dflt: 1024,
    cap: 65536,
  },
  {
    name: "node-permissions",
    controlName: "permissions",
    kind: "hard",
    descr: "Max. number of permissions per node",
    errno: "ENOSPC",
    capScope: "request",
    dflt: 5,
    cap: 1024,
  },
  {
    name: "path-max",
    controlName: "path-max",
    kind: "hard",
    descr: "Max. length of a node path",
    // A path over the limit is an invalid path, as in cxenstored (canonicalize → EINVAL).
    errno: "EINVAL",
    capScope: "request",
    // cxenstored's default is XENSTORE_REL_PATH_MAX; the cap is the absolute path limit every
    // request obeys anyway.
    dflt: REL_PATH_MAX,
    cap: ABS_PATH_MAX,
  },
  {
    name: "node-size",
    controlName: "node-size",
    kind: "hard",
    descr: "Max. size of a node",
    errno: "ENOSPC",
    capScope: "request",
    dflt: 2048,
    // Only a bound for SET_QUOTA values: exempt domains are not size-checked (see docs/quotas.md).
    cap: 65536,
  },
];

/** cxenstored 4.17's `xenstore-control quota` listing order (hard quotas). */
const CONTROL_ORDER: readonly SettingName[] = [
  "nodes",
  "watches",
  "transactions",
  "outstanding",
  "transaction-nodes",
  "memory",
  "node-size",
  "path-max",
  "node-permissions",
];

const ROWS = new Map<SettingName, QuotaRow>(QUOTA_TABLE.map((r) => [r.name, r]));

/** The row of a quota. */
export function quotaRow(name: SettingName): QuotaRow {
  return ROWS.get(name)!;
}

/** GET_QUOTA without arguments lists these, in this order. */
export const SETTING_NAMES: readonly SettingName[] = QUOTA_TABLE.map((r) => r.name);

/** What CONTROL `quota` (hard) and `quota-soft` (soft) list, in cxenstored 4.17's order and naming. */
export const CONTROL_QUOTAS: Readonly<Record<"hard" | "soft", readonly QuotaRow[]>> = {
  hard: CONTROL_ORDER.map(quotaRow),
  soft: QUOTA_TABLE.filter((r) => r.kind === "soft"),
};

/** The setting a CONTROL name stands for in `kind`'s listing, or null. */
export function controlSetting(kind: "hard" | "soft", controlName: string): SettingName | null {
  return CONTROL_QUOTAS[kind].find((r) => r.controlName === controlName)?.name ?? null;
}

/**
 * Other spellings accepted on input: cxenstored 4.17's `xenstore-control quota` and docs/misc/
 * xenstore.txt call node-permissions "permissions".
 */
const ALIASES: Readonly<Record<string, SettingName>> = { permissions: "node-permissions" };

/** The canonical name for `s`, or null if it names no quota. */
export function settingName(s: string): SettingName | null {
  return ROWS.has(s as SettingName) ? s as SettingName : ALIASES[s] ?? null;
}

export type QuotaValues = Readonly<Record<SettingName, number>>;

function column(f: (r: QuotaRow) => number): QuotaValues {
  return Object.fromEntries(QUOTA_TABLE.map((r) => [r.name, f(r)])) as Record<SettingName, number>;
}

/** The defaults, by name. */
export const DEFAULT_QUOTAS: QuotaValues = column((r) => r.dflt);
/** The hard caps, by name. */
export const DEFAULT_CAPS: QuotaValues = column((r) => r.cap);

/** The value SET_QUOTA refuses (cxenstored's Q_VAL_DISABLED, UINT_MAX). */
export const VALUE_DISABLED = 0xffffffff;
