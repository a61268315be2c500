// Transactions: a handle bound to one tx_id, and `transaction(fn)`, which runs `fn` in a fresh
// transaction and runs it again when the daemon answers EAGAIN (a conflict), a bounded number of times
// with growing, jittered pauses. Nested transactions use dxenstored's extension when the daemon
// advertises it; otherwise the inner function joins the outer transaction, and if it fails the outer one
// can no longer commit (the daemon cannot undo part of a transaction).
import { MsgType } from "../protocol/wire.ts";
import { ConnectionError, hasErrno, TransactionAbortedError, XsError } from "./errors.ts";
import { StoreOps } from "./ops.ts";

export interface TransactionOptions {
  /** Attempts in all (the first included) before EAGAIN is given up on; default 10. */
  readonly maxAttempts?: number;
  /** Pause before the second attempt, doubling each time up to maxDelayMs (full jitter); default 2 ms. */
  readonly baseDelayMs?: number;
  /** Longest pause between attempts; default 250 ms. */
  readonly maxDelayMs?: number;
  /** Called before each retry with the attempt about to start (2, 3...) and what ended the last one. */
  readonly onRetry?: (attempt: number, cause: Error) => void;
}

/** What a Transaction needs from the store that made it. */
export interface TransactionHost {
  /** Send one request with `txId`; the reply payload or XsError. Rejects if the connection changed since `generation`. */
  call(type: MsgType, payload: string, txId: number, what: string, generation: number): Promise<string>;
  /** The connection's generation (a new one after every reconnection). */
  readonly generation: number;
  /** Whether the daemon nests transactions (GET_FEATURE). */
  nestedTransactions(): Promise<boolean>;
  /** Wait until connected again (after a connection loss), or throw if it will not be. */
  connected(): Promise<void>;
  readonly retryDefaults: TransactionOptions;
}

export class Transaction extends StoreOps {
  private ended = false;
  /** A joined inner transaction failed: this one must not commit. */
  private poisoned: unknown = null;

  constructor(
    private readonly host: TransactionHost,
    readonly id: number,
    private readonly generation: number,
    readonly parent: Transaction | null,
  ) {
    super();
  }

  protected exec(type: MsgType, payload: string, what: string): Promise<string> {
    if (this.ended) return Promise.reject(new Error(`transaction ${this.id} has ended`));
    return this.host.call(type, payload, this.id, what, this.generation);
  }

  /** Commit: EAGAIN if another change conflicted (nothing was applied). */
  async commit(): Promise<void> {
    if (this.poisoned !== null) {
      await this.abort();
      throw new TransactionAbortedError(
        `transaction ${this.id} aborted: a nested transaction failed and this daemon cannot undo it alone`,
        { cause: this.poisoned },
      );
    }
    await this.end(true);
  }

  /** Abort: nothing of the transaction is applied. */
  async abort(): Promise<void> {
    await this.end(false);
  }

  private async end(commit: boolean): Promise<void> {
    if (this.ended) throw new Error(`transaction ${this.id} has ended`);
    try {
      await this.host.call(
        MsgType.TRANSACTION_END,
        commit ? "T\0" : "F\0",
        this.id,
        `TRANSACTION_END ${commit ? "commit" : "abort"} ${this.id}`,
        this.generation,
      );
    } finally {
      this.ended = true;
    }
  }

  /** Abort if still open, ignoring failures (the transaction may be gone with its connection). */
  async discard(): Promise<void> {
    if (this.ended) return;
    await this.abort().catch(() => {});
  }

  /**
   * Run `fn` in a transaction nested in this one, retried on conflicts like a top-level one. On a
   * daemon without nested transactions `fn` runs in this transaction itself.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (await this.host.nestedTransactions()) return await runTransaction(this.host, this, fn, opts);
    try {
      return await fn(this);
    } catch (e) {
      // A conflict makes the outer transaction retry anyway; any other failure must not be committed.
      if (!hasErrno(e, "EAGAIN")) this.poisoned = e;
      throw e;
    }
  }
}

/** Start a transaction (nested in `parent` if given). */
export async function startTransaction(
  host: TransactionHost,
  parent: Transaction | null,
): Promise<Transaction> {
  const generation = host.generation;
  const reply = await host.call(
    MsgType.TRANSACTION_START,
    "\0",
    parent?.id ?? 0,
    parent === null ? "TRANSACTION_START" : `TRANSACTION_START in ${parent.id}`,
    generation,
  );
  const id = Number(reply.replace(/\0$/, ""));
  if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) {
    throw new Error(`bad transaction id from the daemon`);
  }
  return new Transaction(host, id, generation, parent);
}

/** A lost connection before the commit was sent: nothing was applied, a fresh attempt is safe. */
function retryableLoss(e: unknown, parent: Transaction | null): boolean {
  return parent === null && e instanceof ConnectionError;
}

export async function runTransaction<T>(
  host: TransactionHost,
  parent: Transaction | null,
  fn: (tx: Transaction) => Promise<T>,
  opts: TransactionOptions,
): Promise<T> {
  const o = { ...host.retryDefaults, ...opts };
  const maxAttempts = o.maxAttempts ?? 10;
  if (!(maxAttempts >= 1)) throw new RangeError("maxAttempts must be at least 1");
  const base = o.baseDelayMs ?? 2;
  const max = o.maxDelayMs ?? 250;
  let last: Error = new XsError("EAGAIN");
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (attempt > 1) {
      o.onRetry?.(attempt, last);
      const cap = Math.min(max, base * 2 ** (attempt - 2));
      await new Promise((r) => setTimeout(r, Math.random() * cap));
      if (last instanceof ConnectionError) await host.connected();
    }
    let tx: Transaction;
    try {
      tx = await startTransaction(host, parent);
    } catch (e) {
      if (hasErrno(e, "EAGAIN") || retryableLoss(e, parent)) {
        last = e as Error;
        continue;
      }
      throw e;
    }
    let result: T;
    try {
      result = await fn(tx);
    } catch (e) {
      await tx.discard();
      if (hasErrno(e, "EAGAIN") || retryableLoss(e, parent)) {
        last = e as Error;
        continue;
      }
      throw e;
    }
    try {
      await tx.commit();
      return result;
    } catch (e) {
      // A connection lost during the commit is not retried: the daemon may have committed.
      if (hasErrno(e, "EAGAIN")) {
        last = e as Error;
        continue;
      }
      throw e;
    }
  }
  if (last instanceof XsError) {
    throw new XsError(
      "EAGAIN",
      `transaction still conflicting after ${maxAttempts} attempts (${last.message})`,
    );
  }
  throw last;
}
