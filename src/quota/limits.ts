// Per-connection limits (transactions, watches) as the core configures connections, derived from the
// quota table (./table.ts): an unprivileged connection starts from the default quotas, a privileged
// one from the hard caps. The quota manager (./quotas.ts) takes them over as its defaults and caps,
// so each number is configured in one place.
import type { TxLimits } from "../txn/registry.ts";
import { DEFAULT_CAPS, DEFAULT_QUOTAS } from "./table.ts";

export interface ConnectionLimits {
  /** Transactions of unprivileged connections. */
  readonly tx: TxLimits;
  /** Transactions of privileged (dom0 socket) connections: generous, but still bounded. */
  readonly txPrivileged: TxLimits;
  /** Watches per unprivileged connection (E2BIG beyond). */
  readonly maxWatches: number;
  /** Watches per privileged connection (E2BIG beyond). */
  readonly maxWatchesPrivileged: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  tx: { maxOpen: DEFAULT_QUOTAS.transactions, maxTouched: DEFAULT_QUOTAS["transaction-nodes"], maxAgeMs: 0 },
  txPrivileged: {
    maxOpen: DEFAULT_CAPS.transactions,
    maxTouched: DEFAULT_CAPS["transaction-nodes"],
    maxAgeMs: 0,
    // dom0 reads without a size limit (a whole store in one transaction: `dxenstored export --socket`),
    // as cxenstored and oxenstored exempt it from their per-transaction quotas.
    snapshotOnOverflow: true,
  },
  maxWatches: DEFAULT_QUOTAS.watches,
  maxWatchesPrivileged: DEFAULT_CAPS.watches,
};

/**
 * Limits with the quota options applied (-W, -t, -Q transaction-nodes=..., config quota-* keys, by
 * cxenstored name): enforced for guests.
 */
export function limitsWithQuotas(
  base: ConnectionLimits,
  quotas: Readonly<Record<string, number>>,
): ConnectionLimits {
  return {
    ...base,
    tx: {
      ...base.tx,
      maxOpen: quotas.transactions ?? base.tx.maxOpen,
      maxTouched: quotas["transaction-nodes"] ?? base.tx.maxTouched,
    },
    maxWatches: quotas.watches ?? base.maxWatches,
  };
}
