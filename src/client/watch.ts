// A watch as an async iterator of events. Events are queued per watch (bounded: a consumer that falls
// behind loses events, and is told so), and the watch outlives a reconnection: the store registers it
// again and the iterator yields a gap first. A gap carries the watched path, so a consumer that reacts
// to an event by re-reading its path also does the right thing after a gap.

/** One event: `path` changed (or, with `gap`, anything under the watched path may have). */
export interface WatchEvent {
  /** The node that changed (relative paths stay relative, as the daemon sends them). */
  readonly path: string;
  readonly token: string;
  /**
   * Set when events may have been missed: "reconnect" (the connection was re-established and the watch
   * registered again; `path` is the watched path) or "overflow" (the consumer fell `missed` events behind).
   */
  readonly gap?: "reconnect" | "overflow";
  /** Events dropped (overflow), or unknown (reconnect: undefined). */
  readonly missed?: number;
}

export interface WatchOptions {
  /** Only changes at most `depth` levels below `path` (dxenstored's WATCHDEPTH extension). */
  readonly depth?: number;
  /** Events held for a slow consumer before they are dropped (and a gap reported); default 4096. */
  readonly maxQueued?: number;
}

/** What the store does for a watch. */
export interface WatchHost {
  unwatch(w: Watch): Promise<void>;
}

export class Watch implements AsyncIterableIterator<WatchEvent> {
  private readonly queue: WatchEvent[] = [];
  private waiter: ((r: IteratorResult<WatchEvent>) => void) | null = null;
  private failWaiter: ((e: Error) => void) | null = null;
  private ended: Error | "done" | null = null;
  private dropped = 0;
  private readonly maxQueued: number;

  constructor(
    private readonly host: WatchHost,
    readonly path: string,
    readonly token: string,
    readonly depth: number | undefined,
    opts: WatchOptions,
  ) {
    this.maxQueued = opts.maxQueued ?? 4096;
    if (!(this.maxQueued >= 1)) throw new RangeError("maxQueued must be at least 1");
  }

  /** Events waiting to be taken. */
  get queued(): number {
    return this.queue.length;
  }

  get closed(): boolean {
    return this.ended !== null;
  }

  /** An event from the daemon. */
  deliver(e: WatchEvent): void {
    if (this.ended !== null) return;
    if (this.waiter !== null && this.queue.length === 0 && this.dropped === 0) {
      this.settle({ value: e, done: false });
      return;
    }
    // Once events are lost, keep dropping until the gap is reported: nothing after the loss may come
    // before the notice of it.
    if (this.dropped > 0 || this.queue.length >= this.maxQueued) {
      this.dropped++;
      return;
    }
    this.queue.push(e);
  }

  /** Events may have been missed for a reason other than a slow consumer (reconnection). */
  gap(kind: "reconnect"): void {
    if (this.ended !== null) return;
    this.queue.length = 0;
    this.dropped = 0;
    this.deliver({ path: this.path, token: this.token, gap: kind });
  }

  /** The watch is over: the connection failed for good (err), or it was closed. */
  end(err: Error | null): void {
    if (this.ended !== null) return;
    this.ended = err ?? "done";
    if (this.waiter !== null) {
      if (err !== null && this.queue.length === 0) {
        const f = this.failWaiter!;
        this.waiter = this.failWaiter = null;
        f(err);
      } else if (this.queue.length === 0) this.settle({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const e = this.queue.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.dropped > 0) {
      const missed = this.dropped;
      this.dropped = 0;
      return Promise.resolve({
        value: { path: this.path, token: this.token, gap: "overflow", missed },
        done: false,
      });
    }
    if (this.ended === "done") return Promise.resolve({ value: undefined, done: true });
    if (this.ended !== null) return Promise.reject(this.ended);
    if (this.waiter !== null) {
      return Promise.reject(new Error("Watch.next() called again before the last call resolved"));
    }
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  /** Unregister the watch (breaking out of `for await` does this). */
  async close(): Promise<void> {
    if (this.ended !== null) return;
    this.end(null);
    await this.host.unwatch(this);
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private settle(r: IteratorResult<WatchEvent>): void {
    const w = this.waiter!;
    this.waiter = this.failWaiter = null;
    w(r);
  }
}
