// The quota table: names (cxenstored master's GET_QUOTA/SET_QUOTA spelling), what each bounds, the
// error a refusal gives, the defaults (cxenstored 4.17's) and the hard caps that hold for every
// domain, exempt or not. docs/quotas.md is the prose version of this file.
import type { Errno } from "../common/xs_error.ts";

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

/** GET_QUOTA without arguments lists these, in this order (as cxenstored master: soft after hard). */
export const SETTING_NAMES: readonly SettingName[] = [
  "nodes",
  "watches",
  "outstanding",
  "memory",
  SOFT_MEMORY,
  "transactions",
  "transaction-nodes",
  "node-permissions",
  "path-max",
  "node-size",
];

/**
 * Other spellings accepted on input: cxenstored 4.17's `xenstore-control quota` and docs/misc/
 * xenstore.txt call node-permissions "permissions".
 */
const ALIASES: Readonly<Record<string, SettingName>> = { permissions: "node-permissions" };

/** The canonical name for `s`, or null if it names no quota. */
export function settingName(s: string): SettingName | null {
  if ((SETTING_NAMES as readonly string[]).includes(s)) return s as SettingName;
  return ALIASES[s] ?? null;
}

export interface QuotaInfo {
  /** What `xenstore-control quota` prints next to the value (cxenstored 4.17's wording). */
  readonly descr: string;
  /**
   * The error a refusal gives; null for `outstanding`, which is not an error: the transport stops
   * reading the domain's requests until replies drain (as cxenstored).
   */
  readonly errno: Errno | null;
  /** What one unit of the hard cap is counted over (the quota itself is always per domain). */
  readonly capScope: "domain" | "connection" | "transaction" | "request";
}

export const QUOTA_INFO: Readonly<Record<QuotaName, QuotaInfo>> = {
  nodes: { descr: "Nodes per domain", errno: "ENOSPC", capScope: "domain" },
  // E2BIG as cxenstored 4.17 (master answers ENOSPC); libxenstore clients report "E2BIG".
  watches: { descr: "Watches per domain", errno: "E2BIG", capScope: "connection" },
  outstanding: { descr: "Outstanding requests per domain", errno: null, capScope: "domain" },
  // ENOMEM as cxenstored (domain_memory_add): the memory quota is about memory, not space.
  memory: { descr: "Total Xenstore memory per domain (error level)", errno: "ENOMEM", capScope: "domain" },
  transactions: { descr: "Transactions per domain", errno: "ENOSPC", capScope: "connection" },
  "transaction-nodes": {
    descr: "Max. number of accessed nodes per transaction",
    errno: "ENOSPC",
    capScope: "transaction",
  },
  "node-permissions": { descr: "Max. number of permissions per node", errno: "ENOSPC", capScope: "request" },
  // A path over the limit is an invalid path, as in cxenstored (canonicalize → EINVAL).
  "path-max": { descr: "Max. length of a node path", errno: "EINVAL", capScope: "request" },
  "node-size": { descr: "Max. size of a node", errno: "ENOSPC", capScope: "request" },
};

export const SOFT_MEMORY_DESCR = "Total Xenstore memory per domain (warning level)";

export type QuotaValues = Readonly<Record<SettingName, number>>;

/** cxenstored 4.17's defaults (`xenstore-control quota` on 4.17, docs/misc/xenstore.txt). */
export const DEFAULT_QUOTAS: QuotaValues = {
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  memory: 2621440,
  [SOFT_MEMORY]: 2097152,
  transactions: 10,
  "transaction-nodes": 1024,
  "node-permissions": 5,
  "path-max": 2048,
  "node-size": 2048,
};

/**
 * Hard caps: they bound every domain, exempt ones included, whatever SET_QUOTA says (a quota can be
 * lowered below its cap, never raised above it). Per domain unless QUOTA_INFO.capScope says
 * otherwise. Sized so that a host with thousands of guests never meets them in normal operation.
 */
export const DEFAULT_CAPS: QuotaValues = {
  // A store of 4 million nodes takes ~300 MiB (docs/architecture.md, "Memory").
  nodes: 4_000_000,
  // Per connection: a privileged tool may hold many; matches DEFAULT_CORE_LIMITS.maxWatchesPrivileged.
  watches: 65536,
  outstanding: 1024,
  memory: 1 << 30,
  [SOFT_MEMORY]: 1 << 30,
  // Per connection and per transaction: match DEFAULT_CORE_LIMITS.txPrivileged.
  transactions: 1024,
  "transaction-nodes": 65536,
  "node-permissions": 1024,
  // The absolute path limit every request already obeys (src/store/path.ts ABS_PATH_MAX).
  "path-max": 3072,
  // Only a bound for SET_QUOTA values: exempt domains are not size-checked (see docs/quotas.md).
  "node-size": 65536,
};

/** The value SET_QUOTA refuses (cxenstored's Q_VAL_DISABLED, UINT_MAX). */
export const VALUE_DISABLED = 0xffffffff;
