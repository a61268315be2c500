/**
 * Per-connection bounded FIFO of pending watch events.
 *
 * Overflow policy: **drop newest**. When accepting an event would exceed
 * `maxEvents` or `maxBytes`, `push` refuses it, returns false and increments
 * `dropped`; events already queued are never discarded by `push`. The
 * connection layer decides what to do about drops (log, warn, kick).
 */

/** A pending watch event; `epath` is already client-visible (relative if needed). */
export interface WatchEvent {
  readonly epath: string;
  readonly token: string;
}

export interface EventQueueOptions {
  /** Maximum number of queued events (positive integer). */
  readonly maxEvents: number;
  /** Maximum total byte cost of queued events (positive integer). */
  readonly maxBytes: number;
}

/** Fixed per-event header cost, in bytes (the XenStore wire header). */
export const EVENT_HEADER_BYTES = 16;

/** Byte cost of one event: `epath.length + token.length + 2` (NULs) + header. */
export function eventCost(epath: string, token: string): number {
  return epath.length + token.length + 2 + EVENT_HEADER_BYTES;
}

function checkLimit(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`EventQueue ${name} must be a positive integer: ${v}`);
  }
}

/** Below this many consumed slots, the backing array is not compacted. */
const COMPACT_MIN = 64;

export class EventQueue {
  readonly maxEvents: number;
  readonly maxBytes: number;
  #items: WatchEvent[] = [];
  #head = 0;
  #bytes = 0;
  #dropped = 0;

  constructor(opts: EventQueueOptions) {
    checkLimit("maxEvents", opts.maxEvents);
    checkLimit("maxBytes", opts.maxBytes);
    this.maxEvents = opts.maxEvents;
    this.maxBytes = opts.maxBytes;
  }

  /** Number of queued events. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Total byte cost of queued events. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of events refused by `push` since construction (not reset by `clear`). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Enqueue an event. Returns false (drop newest, `dropped` incremented) if
   * it would exceed `maxEvents` or `maxBytes`.
   */
  push(epath: string, token: string): boolean {
    const cost = eventCost(epath, token);
    if (this.length + 1 > this.maxEvents || this.#bytes + cost > this.maxBytes) {
      this.#dropped++;
      return false;
    }
    this.#items.push({ epath, token });
    this.#bytes += cost;
    return true;
  }

  /** Oldest queued event without removing it. */
  peek(): WatchEvent | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Remove and return the oldest queued event. Amortised O(1). */
  shift(): WatchEvent | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const ev = this.#items[this.#head];
    this.#items[this.#head] = undefined as unknown as WatchEvent; // release for GC
    this.#head++;
    this.#bytes -= eventCost(ev.epath, ev.token);
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_MIN && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return ev;
  }

  /** Discard all queued events (the `dropped` counter is kept). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
