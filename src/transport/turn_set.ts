// The connections one loop turn collects (those that got output, the rings that moved bytes), each
// once, in the order they came, all taken at the turn's end. A Set emptied every turn allocated a
// new hash table every turn (clear() and a delete that empties it both do: about 460 instructions
// per add-and-empty under callgrind, issue 20), so this keeps its table and its array: a member's
// entry says in which turn it was last added, and only forget() (the connection is closed) removes
// it, which bounds the table by the live connections.
export class TurnSet<T> {
  /** Member → the turn it was last added in (only the current turn's count as members). */
  private readonly turnOf = new Map<T, number>();
  /** This turn's members in order; a forgotten one's slot is emptied. */
  private readonly order: Array<T | undefined> = [];
  private count = 0;
  private live = 0;
  private turn = 1;

  get size(): number {
    return this.live;
  }

  has(x: T): boolean {
    return this.turnOf.get(x) === this.turn;
  }

  add(x: T): void {
    if (this.turnOf.get(x) === this.turn) return;
    this.turnOf.set(x, this.turn);
    this.order[this.count++] = x;
    this.live++;
  }

  /** `x` is gone for good (a closed connection): not a member, and not remembered. */
  forget(x: T): void {
    if (this.turnOf.get(x) === this.turn) {
      this.order[this.order.indexOf(x)] = undefined;
      this.live--;
    }
    this.turnOf.delete(x);
  }

  /**
   * Call `fn` on every member in the order they were added — also those `fn` adds, not those it
   * forgets — then empty the set (as iterating a Set and clearing it).
   */
  drain(fn: (x: T) => void): void {
    try {
      for (let i = 0; i < this.count; i++) {
        const x = this.order[i];
        if (x !== undefined) fn(x);
      }
    } finally {
      this.order.fill(undefined, 0, this.count);
      this.count = 0;
      this.live = 0;
      this.turn++;
    }
  }
}
