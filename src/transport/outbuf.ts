// A connection's outgoing bytes: messages are appended whole and drained by write(). One contiguous
// growable buffer, so a batch of pipelined replies leaves in one write() call.
import { HEADER_SIZE } from "../protocol/wire.ts";
import { writeLatin1 } from "../common/latin1.ts";
import { writeHeader } from "../protocol/codec.ts";

export class OutBuffer {
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  /** Where the first message not yet completely written starts (>= start): for `partial`. */
  private boundary = 0;

  constructor(initial = 4096) {
    this.buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.end - this.start;
  }

  append(type: number, reqId: number, txId: number, payload: string): void {
    const need = HEADER_SIZE + payload.length;
    this.reserve(need);
    writeHeader(this.buf, this.end, type, reqId, txId, payload.length);
    writeLatin1(this.buf, this.end + HEADER_SIZE, payload);
    this.end += need;
  }

  /**
   * Queue bytes that are already whole messages (after `partial` bytes finishing one written in
   * part): a connection's unsent output handed over by a live update.
   */
  appendRaw(bytes: Uint8Array, partial: number): void {
    this.reserve(bytes.length);
    if (this.end === this.start) this.boundary = this.end + partial;
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }

  /** How many pending bytes finish a message written in part (the rest are whole messages). */
  get partial(): number {
    return this.boundary - this.start;
  }

  /**
   * The buffer the pending bytes are in, from `offset` (valid until the next append or consume): a
   * writer that can take a length writes from it without a view per write.
   */
  get bytes(): Uint8Array {
    return this.buf;
  }

  get offset(): number {
    return this.start;
  }

  /** The bytes waiting to be written (a view; valid until the next append or consume). */
  pending(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  consume(n: number): void {
    this.start += n;
    // Consumed bytes stay in place until reserve() moves the pending ones: walk their headers.
    while (this.boundary < this.start) {
      const len = this.buf[this.boundary + 12] | this.buf[this.boundary + 13] << 8 |
        this.buf[this.boundary + 14] << 16 | this.buf[this.boundary + 15] << 24;
      this.boundary += HEADER_SIZE + (len >>> 0);
    }
    if (this.start === this.end) {
      this.start = this.end = this.boundary = 0;
      // Give back memory a burst made us take; keep the common small size.
      if (this.buf.length > 65536) this.buf = new Uint8Array(4096);
    }
  }

  private reserve(need: number): void {
    if (this.end + need <= this.buf.length) return;
    const len = this.end - this.start;
    if (this.start > 0 && len + need <= this.buf.length) {
      this.buf.copyWithin(0, this.start, this.end);
      this.boundary -= this.start;
    } else {
      let size = this.buf.length * 2;
      while (size < len + need) size *= 2;
      const nb = new Uint8Array(size);
      nb.set(this.buf.subarray(this.start, this.end));
      this.buf = nb;
      this.boundary -= this.start;
    }
    this.start = 0;
    this.end = len;
  }
}
