/**
 * Per-connection bounded FIFO of pending watch events.
 *
 * Overflow policy: **drop newest**. When accepting an event would exceed
 * `maxEvents` or `maxBytes`, `push` refuses it, returns false and increments
 * `dropped`; events already queued are never discarded by `push`. The
 * connection layer decides what to do about drops (log, warn, kick). `EventQueue` is meant for
 * transports that must not disconnect (the Xen ring: drop with a count); byte-stream transports
 * keep their events in their output buffer and bound them with `UnsentEvents` below.
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

/**
 * Counts the watch events a byte-stream transport has queued but not yet written, so a connection
 * can be bounded in events as well as in bytes (the Unix-socket server disconnects past either
 * bound, see docs/watches.md). Positions are offsets in the connection's output stream: the total
 * number of bytes ever queued when an event was appended (its end), and the total number of bytes
 * written so far. Memory is O(unsent events), which the caller bounds.
 */
export class UnsentEvents {
  /** Stream end offsets of queued events, oldest first, from `#head`. */
  #ends: number[] = [];
  #head = 0;

  /** Number of queued events not yet completely written. */
  get count(): number {
    return this.#ends.length - this.#head;
  }

  /** An event was queued; it ends at stream offset `end` (offsets never decrease). */
  queued(end: number): void {
    this.#ends.push(end);
  }

  /** The first `total` bytes of the stream have been written: forget the events they contain. */
  written(total: number): void {
    const ends = this.#ends;
    let h = this.#head;
    while (h < ends.length && ends[h] <= total) h++;
    if (h === ends.length) {
      this.#ends = [];
      this.#head = 0;
    } else if (h >= COMPACT_MIN && h * 2 >= ends.length) {
      this.#ends = ends.slice(h);
      this.#head = 0;
    } else {
      this.#head = h;
    }
  }

  clear(): void {
    this.#ends = [];
    this.#head = 0;
  }
}
