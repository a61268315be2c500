// Fairness between rings. Every ring with work is in one queue; each loop turn serves them in order,
// at most `perRing` requests each and at most `budget` in total, and a ring that still has work goes
// to the back. So one flooding guest gets its share and no more: the others (and dom0's sockets,
// served by the same loop every turn) wait at most one turn's bounded work for it.

export interface ServeResult {
  /** Requests handled. */
  readonly used: number;
  /** The ring still has requests it could serve now (it goes to the back of the queue). */
  readonly more: boolean;
}

/**
 * An item of a ReadyQueue: the queue keeps its place in the item itself (a field only the queue
 * writes), so that queueing and serving it is a field access, not a hash-table operation.
 */
export interface Queueable {
  /** The ticket it was queued with (the order of queueing); 0 while it is not queued. */
  readyTicket: number;
}

export class ReadyQueue<T extends Queueable> {
  /**
   * The queue in service order, [head, tail): items and the tickets they were queued with. An entry
   * whose item no longer carries its ticket was taken out (delete) or queued again behind, and is
   * skipped. A Set filled and emptied as a ring became ready and was served made a new hash table
   * per request (issue 20); these arrays keep their storage.
   */
  private readonly items: Array<T | undefined> = [];
  private readonly tickets: number[] = [];
  private head = 0;
  private tail = 0;
  private lastTicket = 0;
  private queued = 0;
  /** Inside run(): the arrays are being walked and must stay where they are. */
  private running = false;

  get size(): number {
    return this.queued;
  }

  has(x: T): boolean {
    return x.readyTicket !== 0;
  }

  /** Queue `x` at the back (nothing if it is queued). */
  add(x: T): void {
    if (x.readyTicket !== 0) return;
    if (!this.running) {
      // Nothing queued: what is left in the arrays is stale; start again from the front. Many
      // stale entries (items queued and taken out between rounds): drop them.
      if (this.queued === 0) this.clearFrom(0);
      else if (this.tail - this.head > 2 * this.queued + 64) this.compact();
    }
    const t = ++this.lastTicket;
    x.readyTicket = t;
    this.items[this.tail] = x;
    this.tickets[this.tail] = t;
    this.tail++;
    this.queued++;
  }

  /** Take `x` out (its entry is skipped when reached). */
  delete(x: T): void {
    if (x.readyTicket === 0) return;
    x.readyTicket = 0;
    this.queued--;
  }

  /**
   * One round: serve queued items from the front until `budget` requests are spent. Returns the
   * number of requests handled. Items may be removed or added by `serve` itself; those added during
   * the round (an item served with more to do goes to the back) wait for the next one.
   */
  run(budget: number, perRing: number, serve: (x: T, max: number) => ServeResult): number {
    const items = this.items;
    const end = this.tail;
    let spent = 0;
    this.running = true;
    try {
      while (this.head < end && spent < budget) {
        const i = this.head++;
        const x = items[i] as T;
        items[i] = undefined; // no connection kept alive by a served entry
        if (x.readyTicket !== this.tickets[i]) continue; // taken out (or queued again behind) meanwhile
        x.readyTicket = 0;
        this.queued--;
        const r = serve(x, Math.min(perRing, budget - spent));
        spent += r.used;
        if (r.more) this.add(x); // to the back
      }
    } finally {
      this.running = false;
      if (this.queued === 0) this.clearFrom(0);
      else if (this.head >= 64 && this.head * 2 >= this.tail) this.compact();
    }
    return spent;
  }

  /** Entries held in the arrays, stale ones included (tests: bounded by what is queued). */
  get entries(): number {
    return this.tail - this.head;
  }

  /** Drop the entries from `from` on (stale ones, or moved ones' old places) and end there. */
  private clearFrom(from: number): void {
    for (let i = from; i < this.tail; i++) this.items[i] = undefined;
    if (from === 0) this.head = 0;
    this.tail = from;
  }

  /** Move the live entries of [head, tail) to the front, in order. */
  private compact(): void {
    let n = 0;
    for (let i = this.head; i < this.tail; i++) {
      const x = this.items[i];
      if (x === undefined || x.readyTicket !== this.tickets[i]) continue;
      this.items[n] = x;
      this.tickets[n] = this.tickets[i];
      n++;
    }
    this.head = 0;
    this.clearFrom(n);
  }
}
