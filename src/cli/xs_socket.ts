// A pipelined XenStore socket client for `dxenstored export|import --socket` (src/cli/host_store.ts):
// it talks to any running xenstored — Xen's C and OCaml daemons or dxenstored — over the Unix socket
// protocol. Every daemon answers a connection's requests in order, so many requests can be in flight:
// a request is queued with a callback, and drain() keeps up to MAX_IN_FLIGHT of them on the wire until
// none is left, callbacks queueing more as replies come in. Reading or writing 100 000 nodes is then
// bounded by the daemon's speed, not by one round trip per request.
//
// Kept local to the migration tool on purpose (no dependency on a general client library): it needs
// only this much, and its window must stay small enough never to block a write (see below).
import { latin1, writeLatin1 } from "../common/latin1.ts";
import { HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";

export interface XsReply {
  readonly type: number;
  /** Payload as a Latin-1 string (one char per byte). */
  readonly payload: string;
}

/** An ERROR reply (errno name, e.g. "EACCES"). */
export class XsReplyError extends Error {
  override name = "XsReplyError";
  constructor(readonly errno: string, what: string) {
    super(`${what}: ${errno}`);
  }
}

export type ReplyHandler = (r: XsReply) => void;

/**
 * Requests on the wire at most. oxenstored 4.17 stops answering a connection that has more than its
 * quota-maxoutstanding (1024) requests in flight (measured: with 2 000 in flight the replies stopped
 * after about 700; with 1 024 all came); half of that keeps every daemon busy without going near it.
 */
const MAX_IN_FLIGHT = 512;
/**
 * Request bytes on the wire at most: well below a Unix socket's send buffer (~208 KiB by default), so
 * a write never waits for the daemon — which may itself be waiting for us to read its replies.
 */
const MAX_IN_FLIGHT_BYTES = 64 * 1024;
const READ_CHUNK = 256 * 1024;
/** Requests per write: small enough that the daemon starts on them while more follow. */
const WRITE_BATCH = 64;
/**
 * Largest reply accepted. Replies should fit XENSTORE_PAYLOAD_MAX, but oxenstored 4.17 answers
 * DIRECTORY with the whole list however long (7 000 bytes for 1 000 children of 6 characters), so a
 * reader of its store must take more; the bound only stops a garbage header from allocating gigabytes.
 */
const MAX_REPLY = 16 << 20;

interface Pending {
  readonly type: number;
  readonly txId: number;
  readonly payload: string;
  readonly reqId: number;
  readonly cb: ReplyHandler;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = v >>> 24;
}

/** The payload without its final NUL. */
export const stripNul = (s: string) => (s.endsWith("\0") ? s.slice(0, -1) : s);

export class XsConnection {
  /** Queued, not yet sent (from `queueHead`). */
  private queue: Pending[] = [];
  private queueHead = 0;
  /** Sent, waiting for their replies, oldest first (from `flightHead`). */
  private flight: Pending[] = [];
  private flightHead = 0;
  private flightBytes = 0;
  private rbuf = new Uint8Array(READ_CHUNK * 2);
  private rstart = 0;
  private rend = 0;
  private nextReqId = 1;
  /** Where takeSendable encodes (reused: the writer waits for each write before the next). */
  private readonly wbuf = new Uint8Array(WRITE_BATCH * (HEADER_SIZE + PAYLOAD_MAX));
  /** WATCH_EVENT payloads (path, token), in the order the daemon sent them among the replies. */
  onEvent: ((path: string, token: string) => void) | null = null;
  /** Requests answered so far. */
  replies = 0;

  private constructor(private readonly conn: Deno.UnixConn) {}

  static async connect(path: string): Promise<XsConnection> {
    return new XsConnection(await Deno.connect({ transport: "unix", path }));
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  /** Queue a request; `cb` gets its reply (an ERROR too) during drain(). */
  send(type: MsgType, payload: string, txId: number, cb: ReplyHandler): void {
    if (payload.length > PAYLOAD_MAX) {
      throw new Error(`${MsgType[type]} payload of ${payload.length} bytes exceeds ${PAYLOAD_MAX}`);
    }
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId + 1) >>> 0 || 1;
    this.queue.push({ type, txId, payload, reqId, cb });
  }

  /** Requests queued or in flight. */
  get pending(): number {
    return this.queue.length - this.queueHead + this.flight.length - this.flightHead;
  }

  /**
   * Send everything queued and deliver every reply, including requests the callbacks queue. A reader
   * and a writer run side by side: replies are handled as soon as they arrive while more requests go
   * out in small writes, so the daemon finds work waiting whenever it finishes a batch.
   */
  async drain(): Promise<void> {
    let failure: unknown = null;
    // Each side parks here when it has nothing to do; the other wakes it.
    let readerWake: (() => void) | null = null;
    let writerWake: (() => void) | null = null;
    const wakeReader = () => {
      const w = readerWake;
      readerWake = null;
      w?.();
    };
    const wakeWriter = () => {
      const w = writerWake;
      writerWake = null;
      w?.();
    };
    const reader = async () => {
      try {
        while (failure === null && this.pending > 0) {
          if (this.flight.length === this.flightHead) {
            await new Promise<void>((r) => readerWake = r); // until requests are on the wire
            continue;
          }
          await this.readSome();
          wakeWriter();
        }
      } catch (e) {
        failure ??= e;
      }
      wakeWriter();
    };
    const writer = async () => {
      try {
        while (failure === null && this.pending > 0) {
          const out = this.takeSendable();
          if (out === null) {
            await new Promise<void>((r) => writerWake = r); // until replies free the window
            continue;
          }
          wakeReader();
          for (let w = 0; w < out.length;) w += await this.conn.write(out.subarray(w));
        }
      } catch (e) {
        failure ??= e;
      }
      wakeReader();
    };
    await Promise.all([reader(), writer()]);
    if (failure !== null) throw failure;
  }

  /** One request, waited for: the reply payload, or XsReplyError. */
  async request(type: MsgType, payload: string, txId = 0): Promise<string> {
    let reply: XsReply | null = null;
    this.send(type, payload, txId, (r) => reply = r);
    await this.drain();
    const r = reply as XsReply | null;
    if (r === null) throw new Error(`no reply to ${MsgType[type]}`);
    if (r.type === MsgType.ERROR) throw new XsReplyError(stripNul(r.payload), MsgType[type]);
    return r.payload;
  }

  /** Move queued requests onto the wire while the window allows: their frames, encoded in `wbuf`. */
  private takeSendable(): Uint8Array | null {
    const inFlight = this.flight.length - this.flightHead;
    // Refill in batches, not one request per reply: a daemon that writes one reply per syscall
    // (oxenstored) would otherwise cost a write of ours per request.
    if (inFlight > MAX_IN_FLIGHT - WRITE_BATCH) return null;
    let o = 0;
    let n = 0;
    const b = this.wbuf;
    while (this.queueHead < this.queue.length && inFlight + n < MAX_IN_FLIGHT && n < WRITE_BATCH) {
      const p = this.queue[this.queueHead];
      const size = HEADER_SIZE + p.payload.length;
      if ((n > 0 || inFlight > 0) && this.flightBytes + size > MAX_IN_FLIGHT_BYTES) break;
      putU32(b, o, p.type);
      putU32(b, o + 4, p.reqId);
      putU32(b, o + 8, p.txId);
      putU32(b, o + 12, p.payload.length);
      writeLatin1(b, o + HEADER_SIZE, p.payload);
      o += size;
      this.flightBytes += size;
      this.flight.push(p);
      this.queueHead++;
      n++;
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return n === 0 ? null : b.subarray(0, o);
  }

  /** Read what the daemon sent and deliver every complete message in it. */
  private async readSome(): Promise<void> {
    if (this.rbuf.length - this.rend < READ_CHUNK) {
      // Keep the unparsed tail; grow only if it fills most of the buffer (a partial 4 KiB message).
      const tail = this.rbuf.subarray(this.rstart, this.rend);
      const nb = tail.length > READ_CHUNK ? new Uint8Array(tail.length + READ_CHUNK * 2) : this.rbuf;
      nb.set(tail, 0);
      this.rbuf = nb;
      this.rend = tail.length;
      this.rstart = 0;
    }
    const got = await this.conn.read(this.rbuf.subarray(this.rend));
    if (got === null) throw new Error("the daemon closed the connection");
    this.rend += got;
    const dv = new DataView(this.rbuf.buffer, this.rbuf.byteOffset);
    while (this.rend - this.rstart >= HEADER_SIZE) {
      const s = this.rstart;
      const len = dv.getUint32(s + 12, true);
      if (len > MAX_REPLY) throw new Error(`the daemon sent a payload of ${len} bytes`);
      if (this.rend - s < HEADER_SIZE + len) break;
      const type = dv.getUint32(s, true);
      const reqId = dv.getUint32(s + 4, true);
      const payload = latin1(this.rbuf, s + HEADER_SIZE, s + HEADER_SIZE + len);
      this.rstart = s + HEADER_SIZE + len;
      if (type === MsgType.WATCH_EVENT) {
        const nul = payload.indexOf("\0");
        this.onEvent?.(payload.slice(0, nul), stripNul(payload.slice(nul + 1)));
        continue;
      }
      this.deliver(type, reqId, payload);
    }
  }

  private deliver(type: number, reqId: number, payload: string): void {
    if (this.flightHead >= this.flight.length) throw new Error(`unexpected reply (type ${type})`);
    const p = this.flight[this.flightHead++];
    if (reqId !== p.reqId) throw new Error(`reply for request ${reqId}, expected ${p.reqId}`);
    this.flightBytes -= HEADER_SIZE + p.payload.length;
    if (this.flightHead > 4096 && this.flightHead * 2 > this.flight.length) {
      this.flight = this.flight.slice(this.flightHead);
      this.flightHead = 0;
    }
    this.replies++;
    p.cb({ type, payload });
  }
}
