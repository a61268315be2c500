// Refusals an operator must be able to see (Qubes #11059, #5343: silent ENOSPC/E2BIG from quotas):
// every permission, quota, conflict and size refusal becomes one key=value log line,
//
//   refused domid=5 conn=D5 op=WATCH path=/local/domain/5/x errno=E2BIG quota=watches limit=128 used=128
//
// rate-limited per domain (a token bucket: `burst` lines, then one per `intervalMs`), so a guest
// hammering a quota cannot flood the journal; suppressed lines are counted and reported with the
// domain's next line (`suppressed=N`) or by flushSuppressed(). Values are never logged.

/** The errnos that are refusals (ENOENT, EINVAL, EEXIST... are answers, not refusals). */
export const REFUSAL_ERRNOS: ReadonlySet<string> = new Set([
  "EACCES",
  "EPERM",
  "EAGAIN",
  "E2BIG",
  "ENOSPC",
  "ENOMEM",
]);

/** Which quota refused a request, its limit and the usage the request would have reached (when known). */
export interface QuotaHit {
  readonly quota: string;
  readonly limit: number | null;
  readonly used: number | null;
}

export interface RefusalInfo {
  readonly domid: number;
  readonly conn: string;
  readonly op: string;
  readonly path: string | null;
  readonly errno: string;
  readonly quota: QuotaHit | null;
}

export interface RateLimit {
  /** Lines a domain may log at once. */
  readonly burst: number;
  /** One more line per this many milliseconds. */
  readonly intervalMs: number;
}

export const DEFAULT_REFUSAL_RATE: RateLimit = { burst: 10, intervalMs: 1000 };

/** Domains tracked by the rate limiter at most (domids are 16-bit; idle entries are dropped first). */
const MAX_TRACKED = 65536;

interface Bucket {
  tokens: number;
  last: number;
  suppressed: number;
}

const SAFE_VALUE = /^[A-Za-z0-9/_@.:+-]*$/;

/** A value as key=value wants it: bare if safe, JSON-quoted otherwise (paths may hold anything). */
export function kv(v: string | number | null): string {
  if (v === null) return "-";
  const s = String(v);
  return s !== "" && SAFE_VALUE.test(s) ? s : JSON.stringify(s);
}

export function formatRefusal(r: RefusalInfo, suppressed = 0): string {
  const q = r.quota;
  let line = `refused domid=${r.domid} conn=${kv(r.conn)} op=${r.op} path=${kv(r.path)} errno=${r.errno}` +
    ` quota=${kv(q?.quota ?? null)} limit=${kv(q?.limit ?? null)} used=${kv(q?.used ?? null)}`;
  if (suppressed > 0) line += ` suppressed=${suppressed}`;
  return line;
}

export class RefusalLog {
  private readonly buckets = new Map<number, Bucket>();
  /** Lines not written because of the rate limit, ever. */
  suppressedTotal = 0;
  /** Lines written, ever. */
  logged = 0;

  constructor(
    private readonly emit: (line: string, isQuota: boolean) => void,
    private readonly rate: RateLimit = DEFAULT_REFUSAL_RATE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  refused(r: RefusalInfo): void {
    const b = this.bucket(r.domid);
    if (b.tokens < 1) {
      b.suppressed++;
      this.suppressedTotal++;
      return;
    }
    b.tokens -= 1;
    this.logged++;
    this.emit(formatRefusal(r, b.suppressed), r.quota !== null);
    b.suppressed = 0;
  }

  /** Report domains whose lines were suppressed since their last line (call periodically). */
  flushSuppressed(): void {
    for (const [domid, b] of this.buckets) {
      this.refill(b);
      if (b.suppressed > 0) {
        this.emit(`refused domid=${domid} suppressed=${b.suppressed} (rate limit)`, false);
        b.suppressed = 0;
      }
      // A full bucket with nothing pending carries no state worth keeping.
      if (b.tokens >= this.rate.burst) this.buckets.delete(domid);
    }
  }

  private refill(b: Bucket): void {
    const t = this.now();
    b.tokens = Math.min(this.rate.burst, b.tokens + (t - b.last) / this.rate.intervalMs);
    b.last = t;
  }

  private bucket(domid: number): Bucket {
    let b = this.buckets.get(domid);
    if (b === undefined) {
      if (this.buckets.size >= MAX_TRACKED) this.flushSuppressed();
      b = { tokens: this.rate.burst, last: this.now(), suppressed: 0 };
      this.buckets.set(domid, b);
    } else {
      this.refill(b);
    }
    return b;
  }
}

/**
 * The quota behind a refusal. A structured error (`quota`, `limit`, `used` fields, as the domains'
 * quota module throws) says so itself; the transaction and watch limits that predate it are
 * recognised by their messages.
 */
export function quotaOf(e: unknown, limits: KnownLimits): QuotaHit | null {
  if (typeof e !== "object" || e === null) return null;
  const o = e as { quota?: unknown; limit?: unknown; used?: unknown; wanted?: unknown; detail?: unknown };
  if (typeof o.quota === "string") {
    // src/quota/quotas.ts QuotaError: "<quota> quota (<limit>) of domain <id>: ..." in its detail.
    const m = typeof o.detail === "string" ? /quota \(([0-9]+)\)/.exec(o.detail) : null;
    return {
      quota: o.quota,
      limit: typeof o.limit === "number" ? o.limit : m !== null ? Number(m[1]) : null,
      // QuotaError.wanted: the usage the request would have reached (or the size it asked for).
      used: typeof o.used === "number" ? o.used : typeof o.wanted === "number" ? o.wanted : null,
    };
  }
  switch (o.detail) {
    case "too many watches":
      return {
        quota: "watches",
        limit: limits.watches,
        used: limits.watches === null ? null : limits.watches + 1,
      };
    case "too many open transactions":
      return {
        quota: "transactions",
        limit: limits.transactions,
        used: limits.transactions === null ? null : limits.transactions + 1,
      };
    case "transaction touches too many nodes":
      return { quota: "transaction-nodes", limit: limits.transactionNodes, used: null };
    case "transaction has too many operations":
      return { quota: "transaction-nodes", limit: null, used: null };
  }
  return null;
}

/** The limits of the pre-quota-module checks, for QuotaHit.limit. */
export interface KnownLimits {
  readonly watches: number | null;
  readonly transactions: number | null;
  readonly transactionNodes: number | null;
}
