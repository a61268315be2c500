// Bounds on queued watch events. A byte-stream transport keeps its events in its output buffer and
// bounds them with `UnsentEvents` (the Unix-socket server disconnects past either bound, see
// docs/watches.md); a ring connection counts them in its own writer (src/transport/ring_connection.ts).

/** Below this many consumed slots, the backing array is not compacted. */
const COMPACT_MIN = 64;

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
