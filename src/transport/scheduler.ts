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

export class ReadyQueue<T> {
  /**
   * Each queued item's ticket (the order it was queued in); 0 while it is not queued. A Set filled
   * and emptied as rings became ready and were served allocated a new hash table per request (issue
   * 20); an entry here stays until delete() (a ring that fails or goes), which bounds the table by
   * the rings.
   */
  private readonly ticketOf = new Map<T, number>();
  /** The queue in service order: items and the tickets they were queued with ([head, tail)). */
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
    return (this.ticketOf.get(x) ?? 0) !== 0;
  }

  /** Queue `x` at the back (nothing if it is queued). */
  add(x: T): void {
    if (this.has(x)) return;
    const t = ++this.lastTicket;
    this.ticketOf.set(x, t);
    this.items[this.tail] = x;
    this.tickets[this.tail] = t;
    this.tail++;
    this.queued++;
  }

  /** Take `x` out, and forget it. */
  delete(x: T): void {
    if (this.has(x)) this.queued--;
    this.ticketOf.delete(x);
    // Nothing queued: what is left in the arrays is stale; drop it (no round may come to skip it).
    if (this.queued === 0 && !this.running) this.compact();
  }

  /**
   * One round: serve queued items from the front until `budget` requests are spent. Returns the
   * number of requests handled. Items may be removed or added by `serve` itself; those added during
   * the round (an item served with more to do goes to the back) wait for the next one.
   */
  run(budget: number, perRing: number, serve: (x: T, max: number) => ServeResult): number {
    const end = this.tail;
    let spent = 0;
    this.running = true;
    try {
      while (this.head < end && spent < budget) {
        const i = this.head++;
        const x = this.items[i] as T;
        const t = this.tickets[i];
        this.items[i] = undefined;
        if (this.ticketOf.get(x) !== t) continue; // taken out (or queued again behind) meanwhile
        this.ticketOf.set(x, 0);
        this.queued--;
        const r = serve(x, Math.min(perRing, budget - spent));
        spent += r.used;
        if (r.more) this.add(x); // to the back
      }
    } finally {
      this.running = false;
      // Empty: back to the front. Else now and then, so that the arrays grow only with the queue.
      if (this.queued === 0 || (this.head >= 64 && this.head * 2 >= this.tail)) this.compact();
    }
    return spent;
  }

  /** Move the live part of [head, tail) to the front (stale entries go). */
  private compact(): void {
    let j = 0;
    for (let i = this.head; i < this.tail; i++) {
      const x = this.items[i] as T;
      if (this.ticketOf.get(x) !== this.tickets[i]) continue;
      this.items[j] = x;
      this.tickets[j] = this.tickets[i];
      j++;
    }
    this.items.fill(undefined, j, this.tail);
    this.head = 0;
    this.tail = j;
  }
}
