// A connection's open transactions: opaque 32-bit ids, ownership, nesting and limits.
import { XsError } from "../common/xs_error.ts";
import type { Node } from "../store/tree.ts";
import { type Decide, Transaction } from "./transaction.ts";

export interface TxLimits {
  /** Open transactions per connection, nested ones included (ENOSPC beyond). */
  readonly maxOpen: number;
  /** Distinct paths one transaction may observe or modify, merged children included (ENOSPC beyond). */
  readonly maxTouched: number;
  /** Age after which a transaction fails with EAGAIN (0 = no limit). */
  readonly maxAgeMs: number;
  /**
   * Log entries (distinct observations + modifications) per transaction (ENOSPC beyond); bounds the
   * memory of a transaction that keeps rewriting the same few nodes. Default: 4 × maxTouched.
   */
  readonly maxOps?: number;
  /**
   * Observations beyond the limits make the transaction depend on its whole snapshot (it then commits
   * only if the store is unchanged since it started) instead of failing with ENOSPC: no size limit for
   * reading, e.g. a whole store in one transaction. Default false (guests: cxenstored's
   * transaction-nodes quota refuses).
   */
  readonly snapshotOnOverflow?: boolean;
}

export class TxRegistry {
  private readonly open = new Map<number, Transaction>();
  private nextId = 1;

  constructor(private readonly limits: TxLimits) {}

  get size(): number {
    return this.open.size;
  }

  /**
   * Start a transaction on `base`, nested inside `parentId` if non-zero (it then starts from the
   * parent's current view). `decide` evaluates the connection's access decisions (see Decide); a
   * nested transaction inherits its parent's.
   */
  start(base: () => Node, parentId: number, now: number, decide: Decide | null = null): Transaction {
    let parent: Transaction | null = null;
    if (parentId !== 0) parent = this.get(parentId, now);
    if (this.open.size >= this.limits.maxOpen) throw new XsError("ENOSPC", "too many open transactions");
    const id = this.allocId();
    const tx = new Transaction(id, parent ? parent.root : base(), parent, now, {
      maxTouched: this.limits.maxTouched,
      maxOps: this.limits.maxOps ?? 4 * this.limits.maxTouched,
      decide: parent ? parent.decide : decide,
      snapshotOnOverflow: this.limits.snapshotOnOverflow ?? false,
    });
    if (parent) parent.children++;
    this.open.set(id, tx);
    return tx;
  }

  /**
   * The open transaction `id` of this connection (ENOENT if none). With `checkAge`, a transaction that
   * outlived the age limit (and has no open nested transaction) is aborted and EAGAIN thrown.
   */
  get(id: number, now: number, checkAge = true): Transaction {
    const tx = this.open.get(id);
    if (tx === undefined) throw new XsError("ENOENT", `no transaction ${id}`);
    if (
      checkAge && this.limits.maxAgeMs > 0 && now - tx.startedAt > this.limits.maxAgeMs && tx.children === 0
    ) {
      this.end(tx);
      throw new XsError("EAGAIN", `transaction ${id} exceeded its maximum age`);
    }
    return tx;
  }

  /** Forget `tx` (after commit or abort). */
  end(tx: Transaction): void {
    if (this.open.delete(tx.id) && tx.parent) tx.parent.children--;
  }

  /** When the oldest open transaction started (the `now` it was given), or null if none is open. */
  oldestStart(): number | null {
    let t: number | null = null;
    for (const tx of this.open.values()) if (t === null || tx.startedAt < t) t = tx.startedAt;
    return t;
  }

  /** Abort everything (connection closed, RESET_WATCHES, domain gone). */
  clear(): void {
    this.open.clear();
  }

  private allocId(): number {
    // Opaque, never 0, never an id in use; wraps at 2^32.
    for (;;) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) >>> 0 || 1;
      if (!this.open.has(id)) return id;
    }
  }
}
