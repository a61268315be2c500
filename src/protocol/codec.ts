// Framing and encoding of XenStore messages. A message is a 16-byte little-endian header
// (type, req_id, tx_id, len) followed by `len` payload bytes. Payloads are handled as Latin-1
// strings: one char per byte, so arbitrary binary values survive unchanged and V8 stores them
// compactly as one-byte strings.
import { latin1, writeLatin1 } from "../common/latin1.ts";
export { latin1 };
import { HEADER_SIZE, PAYLOAD_MAX } from "./wire.ts";

export interface Message {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  /** The payload as a Latin-1 string (byte i = charCode i). */
  readonly payload: string;
}

/** Why a stream was abandoned. Both close the connection; neither allocates `len` bytes. */
export type FrameError = { readonly kind: "oversized"; readonly len: number };

/** Encode a complete message (header + payload) into a new buffer. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: string): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeHeader(out, 0, type, reqId, txId, payload.length);
  writeLatin1(out, HEADER_SIZE, payload);
  return out;
}

export function writeHeader(
  buf: Uint8Array,
  off: number,
  type: number,
  reqId: number,
  txId: number,
  len: number,
) {
  // Byte stores, not a DataView: one per message would be an allocation on every reply.
  putU32(buf, off, type);
  putU32(buf, off + 4, reqId);
  putU32(buf, off + 8, txId);
  putU32(buf, off + 12, len);
}

/** Little-endian u32 at `off` (the header's fields). */
function putU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v;
  buf[off + 1] = v >>> 8;
  buf[off + 2] = v >>> 16;
  buf[off + 3] = v >>> 24;
}

function getU32(buf: Uint8Array, off: number): number {
  return (buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 | buf[off + 3] << 24) >>> 0;
}

/**
 * Incremental stream framer: bytes go in as they arrive (partial or coalesced reads), whole messages
 * come out. A fed chunk is parsed in place (no copy on the fast path); `release()` copies whatever
 * was not consumed so the caller may reuse its read buffer. Unconsumed bytes are bounded by what the
 * caller feeds before draining: the transport stops reading a connection while bytes are pending.
 * A header announcing more than `maxPayload` bytes (PAYLOAD_MAX unless given: a client reading
 * oxenstored's over-long replies allows more) is a protocol violation, reported before any of
 * its payload is buffered.
 */
export class Framer {
  constructor(private readonly maxPayload = PAYLOAD_MAX) {}

  private buf: Uint8Array = EMPTY;
  private start = 0;
  private end = 0;
  private owned = false;

  /** Bytes buffered but not yet returned as messages. */
  get pending(): number {
    return this.end - this.start;
  }

  /** A copy of those bytes (a connection's unprocessed input, for live update). */
  pendingBytes(): Uint8Array {
    return this.buf.slice(this.start, this.end);
  }

  /**
   * Give back the message next() just returned (its bytes are still in the buffer, right before the
   * unconsumed ones): it stays unprocessed input. Only valid straight after that next().
   */
  unread(m: Message): void {
    const n = HEADER_SIZE + m.payload.length;
    if (n > this.start) throw new Error("Framer.unread: not the message just returned");
    this.start -= n;
  }

  /**
   * Add the first `length` bytes of `chunk` (all of it by default: a read buffer is passed whole with
   * the count read, not as a new view per read). They must stay unchanged until next() returns null
   * and release() is called.
   */
  feed(chunk: Uint8Array, length = chunk.length): void {
    if (length === 0) return;
    if (this.start === this.end) {
      this.setBuf(chunk, length, false);
      return;
    }
    const joined = new Uint8Array(this.end - this.start + length);
    joined.set(this.buf.subarray(this.start, this.end));
    joined.set(length === chunk.length ? chunk : chunk.subarray(0, length), this.end - this.start);
    this.setBuf(joined, joined.length, true);
  }

  /** Stop referring to the last fed chunk: copy the unconsumed tail (if any) into owned memory. */
  release(): void {
    if (this.start === this.end) {
      this.setBuf(EMPTY, 0, true);
    } else if (!this.owned) {
      this.setBuf(this.buf.slice(this.start, this.end), this.end - this.start, true);
    }
  }

  /** The next whole message, null if more bytes are needed, or a FrameError (stream unusable). */
  next(): Message | FrameError | null {
    const avail = this.end - this.start;
    if (avail < HEADER_SIZE) return null;
    const s = this.start;
    const b = this.buf;
    const len = getU32(b, s + 12);
    if (len > this.maxPayload) return { kind: "oversized", len };
    if (avail < HEADER_SIZE + len) return null;
    const msg: Message = {
      type: getU32(b, s),
      reqId: getU32(b, s + 4),
      txId: getU32(b, s + 8),
      payload: latin1(b, s + HEADER_SIZE, s + HEADER_SIZE + len),
    };
    this.start += HEADER_SIZE + len;
    return msg;
  }

  private setBuf(b: Uint8Array, end: number, owned: boolean): void {
    this.buf = b;
    this.start = 0;
    this.end = end;
    this.owned = owned;
  }
}

const EMPTY = new Uint8Array(0);

export function isFrameError(x: Message | FrameError | null): x is FrameError {
  return x !== null && "kind" in x;
}
