// The xenstore ring: one shared 4 KiB page holding two byte queues and a few signalling fields, exactly
// as Xen's docs/misc/xenstore-ring.txt and io/xs_wire.h (`struct xenstore_domain_interface`) define it.
// This module is the ring's codec and nothing else: it moves bytes between the page and whole
// XenStore messages, and reports a peer that broke the rules. It never touches a file descriptor or
// an event channel (src/xen/platform.ts) and knows no daemon state (src/domains).
//
// Both sides use it: the daemon reads requests and writes responses, the guest-side client
// (src/client/guest.ts) writes requests and reads responses.
//
// Memory ordering. The page is shared with another domain or process, so the order in which the peer
// observes our stores matters: data bytes must be visible before the producer index that publishes
// them, and we must have finished reading data before the consumer index that frees it. Every index
// and field access goes through `Atomics.load`/`Atomics.store` on a Uint32Array over the page; V8 emits
// these as sequentially consistent accesses and never moves other memory accesses across them, and on
// x86-64 (the only target: TSO, stores are not reordered with older stores, loads not with older
// loads) that gives the `xen_mb()` ordering cxenstored relies on. The page is an external ArrayBuffer
// (Deno.UnsafePointerView.getArrayBuffer over mmapped memory), not a SharedArrayBuffer, so this is an
// engine-level guarantee, not one the JavaScript memory model states for shared memory; on a weakly
// ordered CPU it would need real fences. Each side reads the peer's index once per operation and
// validates it before use, so a peer changing it concurrently cannot make us read or write outside
// the ring.
import { latin1 } from "../common/latin1.ts";
import { HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";

/** XENSTORE_RING_SIZE: bytes in each direction's queue. */
export const RING_SIZE = 1024;
/** Offset of the request queue (guest → daemon, "Input"). */
export const REQ_OFFSET = 0;
/** Offset of the response queue (daemon → guest, "Output"). */
export const RSP_OFFSET = 1024;
/** Offset of the first u32 field (req_cons). */
export const FIELDS_OFFSET = 2048;
/** sizeof(struct xenstore_domain_interface). */
export const INTERFACE_SIZE = 2076;
export const PAGE_SIZE = 4096;

/** The u32 fields after the two queues, as indices into a Uint32Array starting at FIELDS_OFFSET. */
export enum Field {
  REQ_CONS = 0,
  REQ_PROD = 1,
  RSP_CONS = 2,
  RSP_PROD = 3,
  SERVER_FEATURES = 4,
  CONNECTION = 5,
  ERROR = 6,
}

/** Connection state values. */
export const CONNECTED = 0;
export const RECONNECT = 1;

/** Connection error indicator values. */
export const ERROR_NONE = 0;
export const ERROR_COMM = 1;
export const ERROR_RINGIDX = 2;
export const ERROR_PROTO = 3;

/** XS_WATCH_EVENT: the only message a server sends unasked. */
const WATCH_EVENT_TYPE = MsgType.WATCH_EVENT;

/** A ring page: byte access to the queues, ordered access to the fields. */
export class RingPage {
  readonly bytes: Uint8Array;
  private readonly fields: Uint32Array;

  constructor(page: Uint8Array) {
    if (page.byteLength < INTERFACE_SIZE) throw new RangeError(`ring page too small: ${page.byteLength}`);
    if ((page.byteOffset + FIELDS_OFFSET) % 4 !== 0) throw new RangeError("ring page is not 4-byte aligned");
    this.bytes = page;
    this.fields = new Uint32Array(page.buffer, page.byteOffset + FIELDS_OFFSET, 7);
  }

  get(f: Field): number {
    return Atomics.load(this.fields, f);
  }

  set(f: Field, v: number): void {
    Atomics.store(this.fields, f, v >>> 0);
  }
}

/** One direction of the ring: where its bytes live and which fields index it. */
export interface RingSide {
  readonly data: number;
  readonly cons: Field;
  readonly prod: Field;
}

export const REQUESTS: RingSide = { data: REQ_OFFSET, cons: Field.REQ_CONS, prod: Field.REQ_PROD };
export const RESPONSES: RingSide = { data: RSP_OFFSET, cons: Field.RSP_CONS, prod: Field.RSP_PROD };

/** Returned instead of a byte count when the indices are inconsistent (prod − cons > RING_SIZE). */
export const BAD_INDEXES = -1;

/** Bytes waiting in `side` (what the consumer may read), or BAD_INDEXES. */
export function ringUsed(page: RingPage, side: RingSide): number {
  const used = (page.get(side.prod) - page.get(side.cons)) >>> 0;
  return used > RING_SIZE ? BAD_INDEXES : used;
}

/**
 * Consume up to `out.length` bytes from `side` into `out`. Each index is read once, before anything
 * else, and validated; the consumer index is published after the copy. Returns the number of bytes
 * read (0 if empty) or BAD_INDEXES.
 */
export function ringConsume(page: RingPage, side: RingSide, out: Uint8Array): number {
  const cons = page.get(side.cons);
  const prod = page.get(side.prod);
  const used = (prod - cons) >>> 0;
  if (used > RING_SIZE) return BAD_INDEXES;
  const n = Math.min(used, out.length);
  if (n === 0) return 0;
  const start = cons & (RING_SIZE - 1);
  const first = Math.min(n, RING_SIZE - start);
  const b = page.bytes;
  out.set(b.subarray(side.data + start, side.data + start + first), 0);
  if (n > first) out.set(b.subarray(side.data, side.data + n - first), first);
  page.set(side.cons, cons + n);
  return n;
}

/**
 * Produce up to `src.length` bytes into `side`. The data is copied before the producer index is
 * published. Returns the number of bytes written (0 if full) or BAD_INDEXES.
 */
export function ringProduce(page: RingPage, side: RingSide, src: Uint8Array): number {
  const cons = page.get(side.cons);
  const prod = page.get(side.prod);
  const used = (prod - cons) >>> 0;
  if (used > RING_SIZE) return BAD_INDEXES;
  const n = Math.min(RING_SIZE - used, src.length);
  if (n === 0) return 0;
  const start = prod & (RING_SIZE - 1);
  const first = Math.min(n, RING_SIZE - start);
  const b = page.bytes;
  b.set(src.subarray(0, first), side.data + start);
  if (n > first) b.set(src.subarray(first, n), side.data);
  page.set(side.prod, prod + n);
  return n;
}

/** A whole message taken off a ring (the payload as a Latin-1 string: byte i = charCode i). */
export interface RingMessage {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

/** Why a ring's byte stream cannot be used any more (maps to ERROR_RINGIDX / ERROR_PROTO). */
export type RingFault = "ring-index" | "oversized";

export function isRingFault(x: RingMessage | RingFault | null): x is RingFault {
  return typeof x === "string";
}

export function faultCode(f: RingFault): number {
  return f === "ring-index" ? ERROR_RINGIDX : ERROR_PROTO;
}

/**
 * Assembles messages from one side of a ring. It takes bytes off the ring only as far as the current
 * message goes, so at most one partial message — 16 + 4096 bytes — is ever held per connection, and
 * a peer that sends a header announcing more than PAYLOAD_MAX bytes is refused before anything is
 * allocated for it. A message that is already whole in the ring (the common case) is decoded
 * straight from the page with one index update and no copy.
 */
export class MessageReader {
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerHave = 0;
  private payload: Uint8Array | null = null;
  private payloadHave = 0;
  /** Bytes taken off the ring so far (a running count). */
  consumed = 0;
  /**
   * Set when bytes were taken off a ring that was full at some point since our previous consumer
   * index: the producer may be waiting for space and must be signalled. Taking bytes off a ring that
   * never filled needs no signal (Linux's xenbus driver does the same): a producer with more to send
   * fills the ring first, so it only ever waits on a full one. The producer index is read again
   * *after* the new consumer index is published (Atomics.store is a full barrier on x86-64: V8
   * emits xchg), so a producer that filled the ring meanwhile is not missed.
   */
  freedFull = false;

  /** True while part of a message has been consumed from the ring. */
  get partial(): boolean {
    return this.headerHave > 0;
  }

  /** Whether the peer must be signalled for space freed since the last call. */
  takeFreedFull(): boolean {
    const f = this.freedFull;
    this.freedFull = false;
    return f;
  }

  /**
   * The next whole message, null if the ring holds no complete one yet, or a fault. Null means the
   * ring was seen empty *after* our last consumer index store: a message is taken in pieces while
   * the producer writes it, until a look at the producer index finds nothing more. A producer that
   * publishes a message in pieces and signals only when the consumer had caught up with it (Linux's
   * xenbus driver: header, then each part) may see our index from before that store, and not
   * signal; stopping at an earlier look would leave its last piece unread with no signal to come.
   */
  read(page: RingPage, side: RingSide): RingMessage | RingFault | null {
    if (this.headerHave === 0) {
      const whole = this.readWhole(page, side);
      if (whole !== null) return whole;
      // Nothing at all (the usual answer to "any more?"): no partial-read bookkeeping.
      if (ringUsed(page, side) === 0) return null;
    }
    while (this.headerHave < HEADER_SIZE) {
      const cons = page.get(side.cons);
      const n = ringConsume(page, side, this.header.subarray(this.headerHave));
      if (n === BAD_INDEXES) return "ring-index";
      if (n === 0) return null; // empty, as read after our last store
      this.headerHave += n;
      this.consumed += n;
      this.noteFreed(page, side, cons, n);
      if (this.headerHave < HEADER_SIZE) continue;
      const len = u32(this.header, 12);
      if (len > PAYLOAD_MAX) return "oversized";
      this.payload = new Uint8Array(len);
      this.payloadHave = 0;
    }
    const p = this.payload!;
    while (this.payloadHave < p.length) {
      const cons = page.get(side.cons);
      const n = ringConsume(page, side, p.subarray(this.payloadHave));
      if (n === BAD_INDEXES) return "ring-index";
      if (n === 0) return null; // empty, as read after our last store
      this.payloadHave += n;
      this.consumed += n;
      this.noteFreed(page, side, cons, n);
    }
    const m: RingMessage = {
      type: u32(this.header, 0),
      reqId: u32(this.header, 4),
      txId: u32(this.header, 8),
      payload: latin1(p, 0, p.length),
    };
    this.reset();
    return m;
  }

  /**
   * Fast path: a message wholly in the ring, taken in one go. Returns null (nothing consumed) when
   * the ring holds less than a whole message; the slow path then takes what there is.
   */
  private readWhole(page: RingPage, side: RingSide): RingMessage | RingFault | null {
    const cons = page.get(side.cons);
    const prod = page.get(side.prod);
    const used = (prod - cons) >>> 0;
    if (used > RING_SIZE) return "ring-index";
    if (used < HEADER_SIZE) return null;
    const b = page.bytes;
    const len = ringU32(b, side.data, cons + 12);
    if (len > PAYLOAD_MAX) return "oversized";
    if (used < HEADER_SIZE + len) return null;
    const start = (cons + HEADER_SIZE) & (RING_SIZE - 1);
    const first = Math.min(len, RING_SIZE - start);
    let payload = latin1(b, side.data + start, side.data + start + first);
    if (first < len) payload += latin1(b, side.data, side.data + len - first);
    const m: RingMessage = {
      type: ringU32(b, side.data, cons),
      reqId: ringU32(b, side.data, cons + 4),
      txId: ringU32(b, side.data, cons + 8),
      payload,
    };
    page.set(side.cons, cons + HEADER_SIZE + len); // after the copy: the bytes are ours until now
    this.consumed += HEADER_SIZE + len;
    this.noteFreed(page, side, cons, HEADER_SIZE + len);
    return m;
  }

  /** After consuming `n` bytes from old consumer index `cons`: was the ring full meanwhile? */
  private noteFreed(page: RingPage, side: RingSide, cons: number, n: number): void {
    if (n > 0 && ((page.get(side.prod) - cons) >>> 0) >= RING_SIZE) this.freedFull = true;
  }

  /**
   * Live update: take over a partial message another reader took off this ring (its bytes as
   * pendingBytes() gives them: at most one message, cut short). Throws RangeError on a whole one.
   */
  restore(bytes: Uint8Array): void {
    this.reset();
    if (bytes.length === 0) return;
    const h = Math.min(bytes.length, HEADER_SIZE);
    this.header.set(bytes.subarray(0, h));
    this.headerHave = h;
    if (h < HEADER_SIZE) return;
    const len = u32(this.header, 12);
    if (len > PAYLOAD_MAX || bytes.length - HEADER_SIZE >= len) {
      this.reset();
      throw new RangeError(`not a partial message: ${bytes.length} bytes, payload length ${len}`);
    }
    this.payload = new Uint8Array(len);
    this.payload.set(bytes.subarray(HEADER_SIZE));
    this.payloadHave = bytes.length - HEADER_SIZE;
  }

  /** A copy of the partial message's bytes taken off the ring so far (header, then payload). */
  pendingBytes(): Uint8Array {
    const p = this.payload === null ? 0 : this.payloadHave;
    const out = new Uint8Array(this.headerHave + p);
    out.set(this.header.subarray(0, this.headerHave));
    if (this.payload !== null) out.set(this.payload.subarray(0, p), this.headerHave);
    return out;
  }

  /** Forget a partial message (reconnection, error). */
  reset(): void {
    this.headerHave = 0;
    this.payload = null;
    this.payloadHave = 0;
  }
}

/**
 * Messages waiting to go onto one side of a ring, in order, written as the ring has room (a 4 KiB
 * message takes several passes through a 1 KiB queue). Messages are kept as given and their bytes
 * are produced straight into the page — nothing is encoded into an intermediate buffer. It keeps
 * count of the bytes and of the watch events still queued, so the owner can bound both.
 *
 * The queue is four parallel arrays used from `head` to `tail` and kept when it empties: an object
 * per message and a new array each time the queue emptied (once per reply) were garbage per request
 * (issue 20).
 */
export class MessageWriter {
  private types: number[] = [];
  private reqIds: number[] = [];
  private txIds: number[] = [];
  private payloads: string[] = [];
  private head = 0;
  private tail = 0;
  /** Bytes of the message at head already written. */
  private offset = 0;
  private readonly hdr = new Uint8Array(HEADER_SIZE);
  private _bytes = 0;
  private _events = 0;
  private _eventBytes = 0;
  private _repliesWritten = 0;
  /** Messages ever queued, and ever finished (written completely, or dropped by clear()). */
  private _enqueued = 0;
  private _done = 0;

  /** Messages ever queued (a running count: positions for write's `upTo`). */
  get enqueued(): number {
    return this._enqueued;
  }

  /** Non-event messages completely written so far (a running count). */
  get repliesWritten(): number {
    return this._repliesWritten;
  }

  /** Bytes queued and not yet written to the ring. */
  get bytes(): number {
    return this._bytes;
  }
  /** Watch events queued and not yet completely written. */
  get events(): number {
    return this._events;
  }
  /** Bytes of those watch events. */
  get eventBytes(): number {
    return this._eventBytes;
  }
  get empty(): boolean {
    return this._bytes === 0;
  }
  /** Messages not yet completely written. */
  get queued(): number {
    return this.tail - this.head;
  }

  /**
   * What is still queued (the first message may be partly written: `offset` of its bytes are in the
   * ring), and how many messages were ever finished, for release positions.
   */
  pending(): { messages: RingMessage[]; offset: number; done: number } {
    const messages: RingMessage[] = [];
    for (let i = this.head; i < this.tail; i++) {
      messages.push({
        type: this.types[i],
        reqId: this.reqIds[i],
        txId: this.txIds[i],
        payload: this.payloads[i],
      });
    }
    return { messages, offset: this.offset, done: this._done };
  }

  enqueue(type: number, reqId: number, txId: number, payload: string): void {
    const t = this.tail++;
    this.types[t] = type;
    this.reqIds[t] = reqId;
    this.txIds[t] = txId;
    this.payloads[t] = payload;
    this._enqueued++;
    const size = HEADER_SIZE + payload.length;
    this._bytes += size;
    if (type === WATCH_EVENT_TYPE) {
      this._events++;
      this._eventBytes += size;
    }
  }

  /**
   * Write as much as fits into `side`, up to message number `upTo` (exclusive; group commit holds
   * the rest); returns bytes written, or BAD_INDEXES (the consumer's index is inconsistent: the ring
   * cannot be used any more, whatever was written before it was found).
   *
   * It returns with output left only once it has seen the ring full *after* publishing its last
   * bytes: the consumer index is read again after each producer index store, and if the consumer
   * freed space meanwhile, the writing goes on. Otherwise a wake-up can be lost: a consumer that
   * read while we were writing (after we had read its index, before we published ours) judged the
   * ring not full and will not signal when it frees space — while we, having filled the ring as far
   * as we knew, wait for that signal (docs/domains.md, "The ring"). The consumer's side of the rule
   * is MessageReader's `freedFull`: together they are Linux's xenbus rule and cxenstored's re-check
   * of every ring before it sleeps.
   */
  write(page: RingPage, side: RingSide, upTo = Number.MAX_SAFE_INTEGER): number {
    let total = 0;
    while (this.head < this.tail && this._done < upTo) {
      const cons = page.get(side.cons);
      const prod = page.get(side.prod);
      const used = (prod - cons) >>> 0;
      if (used > RING_SIZE) {
        this.compact();
        return BAD_INDEXES;
      }
      if (used === RING_SIZE) break; // full, as read after our last store: the consumer will signal
      total += this.writeSpace(page, side, upTo, prod, RING_SIZE - used);
    }
    this.compact();
    return total;
  }

  /** Write up to `space` bytes at `prod` and publish them; returns the bytes written. */
  private writeSpace(page: RingPage, side: RingSide, upTo: number, prod: number, space: number): number {
    const b = page.bytes;
    const mask = RING_SIZE - 1;
    let p = prod;
    while (space > 0 && this.head < this.tail && this._done < upTo) {
      const h = this.head;
      const s = this.payloads[h];
      const type = this.types[h];
      const size = HEADER_SIZE + s.length;
      if (this.offset < HEADER_SIZE) {
        if (this.offset === 0) {
          putU32(this.hdr, 0, type >>> 0);
          putU32(this.hdr, 4, this.reqIds[h] >>> 0);
          putU32(this.hdr, 8, this.txIds[h] >>> 0);
          putU32(this.hdr, 12, s.length);
        }
        const n = Math.min(HEADER_SIZE - this.offset, space);
        for (let i = 0; i < n; i++) b[side.data + ((p + i) & mask)] = this.hdr[this.offset + i];
        p += n;
        space -= n;
        this.offset += n;
      }
      if (this.offset >= HEADER_SIZE && space > 0) {
        const from = this.offset - HEADER_SIZE;
        const n = Math.min(s.length - from, space);
        for (let i = 0; i < n; i++) b[side.data + ((p + i) & mask)] = s.charCodeAt(from + i);
        p += n;
        space -= n;
        this.offset += n;
      }
      if (this.offset < size) break; // ring full
      if (type === WATCH_EVENT_TYPE) {
        this._events--;
        this._eventBytes -= size;
      } else {
        this._repliesWritten++;
      }
      this.payloads[h] = ""; // let it be collected
      this.head++;
      this._done++;
      this.offset = 0;
    }
    const total = (p - prod) >>> 0;
    this._bytes -= total;
    if (total > 0) page.set(side.prod, p); // after the data: the peer may read up to here
    return total;
  }

  /**
   * Drop the written messages from the queue's front: all of them (back to the front of the arrays,
   * which are kept unless a burst made them long), or in bulk.
   */
  private compact(): void {
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
      if (this.types.length > KEPT_QUEUE_LENGTH) this.dropArrays();
    } else if (this.head >= 64 && this.head * 2 >= this.tail) {
      const n = this.tail - this.head;
      this.types.copyWithin(0, this.head, this.tail);
      this.reqIds.copyWithin(0, this.head, this.tail);
      this.txIds.copyWithin(0, this.head, this.tail);
      this.payloads.copyWithin(0, this.head, this.tail);
      this.payloads.fill("", n, this.tail);
      this.head = 0;
      this.tail = n;
    }
  }

  private dropArrays(): void {
    this.types = [];
    this.reqIds = [];
    this.txIds = [];
    this.payloads = [];
  }

  /**
   * Live update: queue first the rest of a message another writer had begun (`rest`: its bytes not
   * yet in the ring, header tail included), then `messages`. The rest goes out as the tail of a
   * placeholder whose header counts as written, so the peer sees exactly the old writer's bytes.
   */
  resume(rest: Uint8Array, messages: readonly RingMessage[]): void {
    if (this.head !== this.tail) throw new Error("resume: output is already queued");
    if (rest.length > 0) {
      this.enqueue(0, 0, 0, latin1(rest, 0, rest.length));
      this.offset = HEADER_SIZE;
      this._bytes -= HEADER_SIZE; // the placeholder's header counts as written
    }
    for (const m of messages) this.enqueue(m.type, m.reqId, m.txId, m.payload);
  }

  /** Drop everything queued (reconnection, error, release). */
  clear(): void {
    this._done = this._enqueued;
    this.payloads.fill("", this.head, this.tail);
    this.head = 0;
    this.tail = 0;
    if (this.types.length > KEPT_QUEUE_LENGTH) this.dropArrays();
    this.offset = 0;
    this._bytes = 0;
    this._events = 0;
    this._eventBytes = 0;
  }
}

/** Entries a writer's queue arrays keep when it empties (beyond: a burst's arrays are let go). */
const KEPT_QUEUE_LENGTH = 64;

function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** Little-endian u32 at ring index `at` of the queue at `data` (it may wrap around the queue's end). */
function ringU32(b: Uint8Array, data: number, at: number): number {
  const mask = RING_SIZE - 1;
  return (b[data + (at & mask)] | (b[data + ((at + 1) & mask)] << 8) | (b[data + ((at + 2) & mask)] << 16) |
    (b[data + ((at + 3) & mask)] << 24)) >>> 0;
}

function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** Header + Latin-1 payload. */
export function encode(type: number, reqId: number, txId: number, payload: string): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + payload.length);
  putU32(b, 0, type >>> 0);
  putU32(b, 4, reqId >>> 0);
  putU32(b, 8, txId >>> 0);
  putU32(b, 12, payload.length);
  for (let i = 0; i < payload.length; i++) b[HEADER_SIZE + i] = payload.charCodeAt(i);
  return b;
}
