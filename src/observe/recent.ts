// What happened lately, for `dxenstore top` (CONTROL `recent`): the slowest requests of the last few
// seconds and the last refusals, with their reasons. Metrics are counters; these are the examples an
// operator looks for behind them. Both are small fixed-size structures updated on the request path:
// a slow-request check is one comparison unless the request is among the slowest of its second.

export interface SlowRequest {
  readonly ms: number;
  /** When it was answered (performance.now()). */
  readonly at: number;
  readonly domid: number;
  readonly conn: string;
  readonly op: string;
  readonly path: string | null;
}

export interface RecentRefusal {
  readonly at: number;
  /** The refusal log's line (`refused domid=... errno=... quota=...`), whether or not it was rate-limited. */
  readonly line: string;
}

/** The window of slow requests kept, in seconds, and the slowest kept per second. */
const WINDOW_S = 10;
const PER_SECOND = 5;
/** Refusals kept. */
const REFUSALS = 10;

export class RecentActivity {
  /** buckets[i]: the slowest requests of one second (second = floor(at / 1000)), at most PER_SECOND. */
  private readonly buckets: Array<{ second: number; slow: SlowRequest[] }> = [];
  private readonly refusals: RecentRefusal[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {
    for (let i = 0; i < WINDOW_S; i++) this.buckets.push({ second: -1, slow: [] });
  }

  /**
   * A request took `ms` and ended at `at` (default: now); `describe` is called only if it is among the
   * slowest of its second.
   */
  request(ms: number, describe: () => Omit<SlowRequest, "ms" | "at">, at = this.now()): void {
    if (!this.isSlow(ms, at)) return;
    const b = this.buckets[Math.floor(at / 1000) % WINDOW_S];
    const r = { ms, at, ...describe() };
    let i = b.slow.length;
    while (i > 0 && b.slow[i - 1].ms < ms) i--;
    b.slow.splice(i, 0, r);
    if (b.slow.length > PER_SECOND) b.slow.pop();
  }

  /**
   * Whether a request that took `ms` and ended at `at` is among the slowest of its second, so that
   * request() would keep it: the request path asks first, and the common answer (no) then costs no
   * closure to describe the request.
   */
  isSlow(ms: number, at: number): boolean {
    const second = Math.floor(at / 1000);
    const b = this.buckets[second % WINDOW_S];
    if (b.second !== second) {
      b.second = second;
      b.slow.length = 0;
    }
    return b.slow.length < PER_SECOND || ms > b.slow[PER_SECOND - 1].ms;
  }

  refused(line: string): void {
    this.refusals.push({ at: this.now(), line });
    if (this.refusals.length > REFUSALS) this.refusals.shift();
  }

  /** The slowest requests of the last WINDOW_S seconds, slowest first. */
  slowest(n = PER_SECOND * 2): SlowRequest[] {
    const now = Math.floor(this.now() / 1000);
    const all = this.buckets.filter((b) => b.second > now - WINDOW_S).flatMap((b) => b.slow);
    return all.sort((a, b) => b.ms - a.ms).slice(0, n);
  }

  /** The last refusals, newest last. */
  lastRefusals(): readonly RecentRefusal[] {
    return this.refusals;
  }

  /**
   * CONTROL `recent`: one line each, `slow <µs> <age-ms> <domid> <conn> <op> <path>` then
   * `refused <age-ms> <refusal line>`; fields are space-separated, the path is `-` if none.
   */
  render(): string {
    const now = this.now();
    const age = (at: number) => Math.max(0, Math.round(now - at));
    let out = "";
    for (const s of this.slowest()) {
      out += `slow ${Math.round(s.ms * 1000)} ${age(s.at)} ${s.domid} ${s.conn} ${s.op} ${s.path ?? "-"}\n`;
    }
    for (const r of this.refusals) out += `refused ${age(r.at)} ${r.line}\n`;
    return out;
  }
}
