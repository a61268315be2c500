// Fairness between rings. Every ring with work is in one queue; each loop turn serves them in order,
// at most `perRing` requests each and at most `budget` in total, and a ring that still has work goes
// to the back. So one flooding guest gets its share and no more: the others (and dom0's sockets,
// served by the same loop every turn) wait at most one turn's bounded work for it.

/**
 * What serving one ring did, in one number (an object per ring served was garbage per request):
 * the requests handled, and whether the ring still has requests it could serve now (then it goes to
 * the back of the queue). Made by `served`, read by `usedOf` and `hasMore`.
 */
export type ServeResult = number;

export function served(used: number, more: boolean): ServeResult {
  return more ? used * 2 + 1 : used * 2;
}

export function usedOf(r: ServeResult): number {
  return r >>> 1;
}

export function hasMore(r: ServeResult): boolean {
  return (r & 1) !== 0;
}

export class ReadyQueue<T> {
  /** Insertion-ordered: iteration order is the service order. */
  private readonly set = new Set<T>();

  get size(): number {
    return this.set.size;
  }

  has(x: T): boolean {
    return this.set.has(x);
  }

  add(x: T): void {
    this.set.add(x);
  }

  delete(x: T): void {
    this.set.delete(x);
  }

  /**
   * One round: serve queued items from the front until `budget` requests are spent. Returns the
   * number of requests handled. Items may be removed or added by `serve` itself.
   */
  run(budget: number, perRing: number, serve: (x: T, max: number) => ServeResult): number {
    let spent = 0;
    for (const x of [...this.set]) {
      if (spent >= budget) break;
      if (!this.set.has(x)) continue; // removed while we were serving others
      this.set.delete(x);
      const r = serve(x, Math.min(perRing, budget - spent));
      spent += usedOf(r);
      if (hasMore(r)) this.set.add(x); // to the back
    }
    return spent;
  }
}
