// Output held for group commit, per connection: "the bytes (or messages) queued up to position P may
// be written once record number T is durable". Sockets count positions in bytes queued, rings in
// messages queued; both write only up to `released`. Tags only grow, so marks release in order.
//
// Bounded: at most MAX_MARKS marks per connection. Beyond, the newest two merge (the merged mark
// waits for the later record: conservative, output is only ever held longer, never sent early).

const MAX_MARKS = 8;

export class ReleaseMarks {
  /** Output up to this position may be written. */
  released = 0;
  /**
   * The output stage's (src/transport/loop.ts OutputStage): output was queued this turn and is not
   * yet tagged — the connection is in the stage's list for the turn's end.
   */
  queuedThisTurn = false;
  private readonly tags: number[] = [];
  private readonly positions: number[] = [];

  /** Some queued output still waits for a record to become durable. */
  get waiting(): boolean {
    return this.tags.length > 0;
  }

  /** Marks held (tests: the bound). */
  get size(): number {
    return this.tags.length;
  }

  /** Output queued up to `position` waits for record `tag` (0: for nothing, if nothing is waiting). */
  add(tag: number, position: number): void {
    const last = this.tags.length - 1;
    if (last < 0) {
      if (tag === 0) {
        this.released = position;
        return;
      }
    } else if (tag <= this.tags[last] || this.tags.length >= MAX_MARKS) {
      // Same (or an earlier) record, or too many marks: extend the newest one.
      this.tags[last] = Math.max(this.tags[last], tag);
      this.positions[last] = position;
      return;
    }
    this.tags.push(tag);
    this.positions.push(position);
  }

  /** Records up to `durable` are on disk: release the output that waited for them. */
  release(durable: number): void {
    let i = 0;
    while (i < this.tags.length && this.tags[i] <= durable) i++;
    if (i === 0) return;
    this.released = this.positions[i - 1];
    this.tags.splice(0, i);
    this.positions.splice(0, i);
  }

  /** Everything queued was dropped (connection reset): nothing waits, `position` is the new start. */
  reset(position: number): void {
    this.tags.length = 0;
    this.positions.length = 0;
    this.released = position;
  }
}
