// What operators see of quotas: every refusal counted (per domain and in total), the first refusal of
// each quota of each domain logged with the domain id and quota name (later ones are only counted, so
// a guest hammering its quota cannot flood the journal), and high-water marks of usage.
import type { LogLevel } from "../common/log.ts";
import { QUOTA_NAMES, type QuotaName } from "./table.ts";

export type Logger = (level: LogLevel, msg: string) => void;

export interface Refusal {
  readonly domid: number;
  readonly quota: QuotaName;
  /** The bound that was met. */
  readonly limit: number;
  /** The usage the request would have reached (or the size it asked for). */
  readonly wanted: number;
  /** The error it got ("stall" for outstanding/memory stalls of the transport). */
  readonly outcome: string;
}

export class RefusalLog {
  private readonly perDomain = new Map<number, Map<QuotaName, number>>();
  private readonly totals = new Map<QuotaName, number>();
  private readonly logged = new Map<number, Set<QuotaName>>();
  private readonly maxSeen = new Map<number, Map<QuotaName, number>>();
  private readonly globalMax = new Map<QuotaName, number>();

  /**
   * `logRequests` false: refused requests are only counted (the daemon's observer logs every one);
   * stalls of the transport, which are no request's answer, are still logged here.
   */
  constructor(private readonly logger: Logger, private readonly logRequests = true) {}

  /** Count a refusal; log it if it is the domain's first of this quota since the last re-arm. */
  record(r: Refusal): void {
    let m = this.perDomain.get(r.domid);
    if (m === undefined) {
      m = new Map();
      this.perDomain.set(r.domid, m);
    }
    m.set(r.quota, (m.get(r.quota) ?? 0) + 1);
    this.totals.set(r.quota, (this.totals.get(r.quota) ?? 0) + 1);
    let l = this.logged.get(r.domid);
    if (l === undefined) {
      l = new Set();
      this.logged.set(r.domid, l);
    }
    if (l.has(r.quota) || (!this.logRequests && r.outcome !== "stall")) return;
    l.add(r.quota);
    this.logger(
      "warn",
      `quota refused: domid=${r.domid} quota=${r.quota} limit=${r.limit} wanted=${r.wanted} ` +
        `result=${r.outcome} (logged once per domain and quota; later refusals are only counted)`,
    );
  }

  /** Log the next refusal of `quota` again (its value changed): for one domain, or all (undefined). */
  rearm(quota: QuotaName | null, domid?: number): void {
    const sets = domid === undefined ? [...this.logged.values()] : [this.logged.get(domid)];
    for (const s of sets) {
      if (s === undefined) continue;
      if (quota === null) s.clear();
      else s.delete(quota);
    }
  }

  /** Refusals of one domain, by quota. */
  ofDomain(domid: number): Partial<Record<QuotaName, number>> {
    const out: Partial<Record<QuotaName, number>> = {};
    for (const [q, n] of this.perDomain.get(domid) ?? []) out[q] = n;
    return out;
  }

  /** Refusals since start, by quota (never reset: a counter for metrics). */
  total(): Record<QuotaName, number> {
    const out = {} as Record<QuotaName, number>;
    for (const q of QUOTA_NAMES) out[q] = this.totals.get(q) ?? 0;
    return out;
  }

  /** Domains with counted refusals. */
  domains(): number[] {
    return [...this.perDomain.keys()];
  }

  /** Record a usage value; keeps the per-domain and global (non-exempt domains) maxima. */
  seen(domid: number, quota: QuotaName, value: number, global: boolean): void {
    let m = this.maxSeen.get(domid);
    if (m === undefined) {
      m = new Map();
      this.maxSeen.set(domid, m);
    }
    if (value > (m.get(quota) ?? 0)) m.set(quota, value);
    if (global && value > (this.globalMax.get(quota) ?? 0)) this.globalMax.set(quota, value);
  }

  /** High-water marks of one domain, or of all non-exempt domains (undefined). */
  highWater(domid?: number): Partial<Record<QuotaName, number>> {
    const src = domid === undefined ? this.globalMax : this.maxSeen.get(domid);
    const out: Partial<Record<QuotaName, number>> = {};
    for (const [q, n] of src ?? []) out[q] = n;
    return out;
  }

  /** Reset the global high-water marks (cxenstored's `quota max -r`). */
  resetHighWater(): void {
    this.globalMax.clear();
    this.maxSeen.clear();
  }

  /** The domain is gone: its counters, log flags and marks go with it (totals stay). */
  forget(domid: number): void {
    this.perDomain.delete(domid);
    this.logged.delete(domid);
    this.maxSeen.delete(domid);
  }

  /** Sizes of the internal maps (tests: bounded by the number of domains). */
  get tracked(): number {
    return this.perDomain.size + this.logged.size + this.maxSeen.size;
  }
}
