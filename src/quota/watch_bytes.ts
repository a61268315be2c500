// Bytes of each domain's watches as the memory quota counts them, kept between requests. The memory
// check runs on every request a ring reads (Quotas.mayReceive), and a guest holds its watches for its
// whole life (a Linux guest's xenbus: half a dozen), so walking them per request was wasted work
// (issue 20). Every change of any watch goes through the watch manager, which reports it
// (onOwnerChanged), and a closed connection's watches are removed through it: then the sums are
// taken again.
import type { WatchManager } from "../watch/manager.ts";

export class DomainWatchBytes {
  private readonly known = new Map<number, number>();

  /** `sum(domid)`: the bytes of the domain's watches, walked. */
  constructor(watches: WatchManager, private readonly sum: (domid: number) => number) {
    watches.onOwnerChanged(() => this.known.clear());
  }

  of(domid: number): number {
    let n = this.known.get(domid);
    if (n === undefined) {
      n = this.sum(domid);
      this.known.set(domid, n);
    }
    return n;
  }

  /** The domain is gone (its id may be reused). */
  forget(domid: number): void {
    this.known.delete(domid);
  }

  /** Domains with a sum kept (tests: bounded). */
  get size(): number {
    return this.known.size;
  }
}
