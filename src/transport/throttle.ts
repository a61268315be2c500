// Write throttling of guests while transactions are open (XSA-206, as cxenstored's write rate
// limit): a guest that writes in a tight loop could otherwise make every transaction that reads what
// it writes fail with EAGAIN forever — dom0's toolstack retries included. While any transaction is
// open, each modifying request of a guest costs one credit from a per-domain bucket (`burst`
// credits, refilled at `ratePerSec`); a guest without credit is not read from — delayed, never
// refused — until the bucket refills. Dom0 is never throttled: the writer pays, not the transaction.
// Which requests modify is the operation table's `write` flag (src/dispatch/op_table.ts isModifying).

export interface WriteThrottleOptions {
  /** Credits refilled per second per domain (0 disables throttling). */
  readonly ratePerSec: number;
  /** Bucket size: writes a domain may make at once before the rate applies. */
  readonly burst: number;
}

export const DEFAULT_WRITE_THROTTLE: WriteThrottleOptions = { ratePerSec: 200, burst: 10 };

/** One domain's bucket. */
export class WriteCredit {
  private credit: number;
  private last: number;

  constructor(private readonly opts: WriteThrottleOptions, now: number) {
    this.credit = opts.burst;
    this.last = now;
  }

  /** May another request be read now? */
  allowed(now: number): boolean {
    if (this.opts.ratePerSec <= 0) return true;
    this.credit = Math.min(this.opts.burst, this.credit + ((now - this.last) * this.opts.ratePerSec) / 1000);
    this.last = now;
    return this.credit >= 0;
  }

  debit(): void {
    this.credit -= 1;
  }
}
