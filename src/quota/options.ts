// The quota module's options (what a deployment configures, QuotaConfig, and how the core's
// per-connection limits become defaults and caps), the refusal error, and the read API's shapes.
import { type Errno, XsError } from "../common/xs_error.ts";
import type { Database } from "../store/database.ts";
import type { TxLimits } from "../txn/registry.ts";
import type { WatchManager } from "../watch/manager.ts";
import type { ConnectionLimits } from "./limits.ts";
import type { Logger } from "./refusals.ts";
import type { QuotaName, QuotaValues } from "./table.ts";

/**
 * A refusal by a quota: an XsError that also says which quota, its bound and what the request would
 * have reached (a request observer can log them; the dispatcher only sees the errno).
 */
export class QuotaError extends XsError {
  constructor(
    errno: Errno,
    readonly quota: QuotaName,
    readonly limit: number,
    readonly wanted: number,
    detail: string,
  ) {
    super(errno, detail);
  }
}

/** What the quota code needs of a connection (src/dispatch/client.ts Client has all of it). */
export interface QuotaClient {
  readonly id: number;
  readonly domid: number;
  readonly txns: { readonly size: number };
}

export interface QuotaOptions {
  readonly db: Database;
  readonly watches: WatchManager;
  /** The live connections (Core.clients). */
  readonly clients: ReadonlyMap<number, QuotaClient>;
  /** Global quota values (default: cxenstored 4.17's). */
  readonly defaults?: Partial<QuotaValues>;
  /** Hard caps for everyone (default: the table's, src/quota/table.ts). */
  readonly caps?: Partial<QuotaValues>;
  /** Domains quotas do not bind, only the caps (default: domain 0, as cxenstored). */
  readonly exempt?: (domid: number) => boolean;
  /** Transaction limits besides the quotas (age, log size), for txLimits(). */
  readonly tx?: { readonly quota: TxLimits; readonly exempt: TxLimits };
  /** Does domain `domid` exist (for `GET_QUOTA/SET_QUOTA <domid>`: ENOENT if not)? Default: yes. */
  readonly domainKnown?: (domid: number) => boolean;
  /** A domain's SET_QUOTA overrides changed (the domain registry persists them). */
  readonly onOverridesChanged?: (domid: number) => void;
  readonly log?: Logger;
  /**
   * Log the first refused request of each quota per domain here (default true). The daemon turns it
   * off: its observer writes one rate-limited `refused ...` line for every refused request
   * (src/observe/refusals.ts). Transport stalls are logged here either way.
   */
  readonly logRefusals?: boolean;
}

/** What a deployment chooses (CoreOptions.quota): everything but the daemon's own objects. */
export type QuotaConfig = Omit<QuotaOptions, "db" | "watches" | "clients" | "tx">;

/**
 * Quota options from the core's limits, so they are configured in one place: the unprivileged
 * values become the default watches/transactions/transaction-nodes quotas, the privileged ones the
 * caps. `config` (defaults, caps, exemption …) is applied on top.
 */
export function quotaOptionsFrom(
  limits: ConnectionLimits,
  config: QuotaConfig = {},
): Omit<QuotaOptions, "db" | "watches" | "clients"> {
  return {
    ...config,
    defaults: {
      watches: limits.maxWatches,
      transactions: limits.tx.maxOpen,
      "transaction-nodes": limits.tx.maxTouched,
      ...config.defaults,
    },
    caps: {
      watches: limits.maxWatchesPrivileged,
      transactions: limits.txPrivileged.maxOpen,
      "transaction-nodes": limits.txPrivileged.maxTouched,
      ...config.caps,
    },
    tx: { quota: limits.tx, exempt: limits.txPrivileged },
  };
}

/** One domain's usage, limits and refusals: the read API for metrics and `CONTROL quota`. */
export interface DomainQuotaReport {
  readonly domid: number;
  readonly exempt: boolean;
  readonly usage: {
    readonly nodes: number;
    readonly watches: number;
    readonly transactions: number;
    readonly outstanding: number;
    /** nodes + watches + output, in bytes (see memoryParts). */
    readonly memory: number;
  };
  readonly memoryParts: { readonly nodes: number; readonly watches: number; readonly output: number };
  /** The values in force for this domain (overrides or globals; 0 = no quota, only the cap). */
  readonly quotas: Readonly<Record<string, number>>;
  /** Refusals of this domain since it appeared, by quota. */
  readonly refusals: Partial<Record<QuotaName, number>>;
  /** High-water marks since it appeared (or since resetHighWater). */
  readonly maxSeen: Partial<Record<QuotaName, number>>;
}

/** Quota values and usage for CONTROL (./control.ts controlQuotaSource; src/dispatch/control.ts). */
export interface ControlQuotaSource {
  readonly settings: {
    get(kind: "hard" | "soft", name: string): number;
    /** false for a name this kind does not have; XsError EINVAL for a value above the cap. */
    set(kind: "hard" | "soft", name: string, value: number): boolean;
  };
  usage(domid: number): DomainQuotaReport["usage"] | null;
}
