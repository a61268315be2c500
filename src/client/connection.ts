// One connection to a xenstored: the request engine under XenStore and GuestClient. Requests are
// pipelined — each gets a req_id and goes into the link at once, all requests queued in one turn of
// the event loop are written together — and replies are matched to requests by req_id (the daemons
// answer a connection's requests in order and echo req_id; matching by id also serves rings, where a
// reply may be read long after it was written). WATCH_EVENT messages go to `onEvent`.
//
// The engine knows nothing of sockets or rings: a Link moves whole messages (src/client/socket.ts,
// src/client/ring_link.ts). Everything it holds is bounded: at most `maxInFlight` requests wait for a
// reply (more wait for a slot, in order), and a timed-out request keeps its slot until its reply
// arrives or the connection closes, so a late reply is never taken for another request's.
import type { Message } from "../protocol/codec.ts";
import { MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { ConnectionError, ProtocolError, TimeoutError } from "./errors.ts";

/** What a link reports to the connection above it. */
export interface LinkHandlers {
  /** A whole message from the daemon (a reply or a watch event). */
  message(m: Message): void;
  /** The link is gone (null: closed by us). Called at most once. */
  closed(err: Error | null): void;
}

/** A transport that moves whole messages (payloads are Latin-1 strings: one char per byte). */
export interface Link {
  /** Queue one message; it is written by the next flush() at the latest. */
  send(type: number, reqId: number, txId: number, payload: string): void;
  /** Write everything queued. */
  flush(): void;
  /** Whether anything is waiting for the daemon (rings poll only then; streams always read). */
  demand(on: boolean): void;
  close(): void;
}

/** Opens a link whose messages and closure go to `h`. */
export type Connector = (h: LinkHandlers) => Promise<Link>;

export interface ConnectionOptions {
  /** Requests waiting for a reply at most; further requests wait for a slot (default 1024). */
  readonly maxInFlight?: number;
  /**
   * oxenstored 4.17 leaves a message with an empty payload unparsed until more bytes arrive. When set,
   * a batch that ends with such a message gets a harmless GET_DOMAIN_PATH after it (its reply is
   * dropped), so the daemon sees the message at once. Default true.
   */
  readonly nudgeEmptyPayload?: boolean;
}

interface Pending {
  readonly type: number;
  /** The reply (ERROR replies included), or why there will be none. Called synchronously, once. */
  done(r: Message | Error): void;
  /** Its caller gave up (timeout): the reply is dropped when it comes. */
  abandoned: boolean;
}

const DISCARD: Pending = { type: -1, done() {}, abandoned: true };

export interface ConnectionStats {
  requests: number;
  /** Batches handed to the link (one write each on a socket): requests ÷ flushes is the pipelining. */
  flushes: number;
  events: number;
  /** Replies whose req_id matched no request (dropped). */
  unmatched: number;
}

export class Connection {
  private readonly pending = new Map<number, Pending>();
  private readonly slotWaiters: Array<() => void> = [];
  private nextReqId = 1;
  private flushQueued = false;
  private lastPayloadEmpty = false;
  private closedWith: Error | null = null;
  private eventDemand = false;
  private readonly maxInFlight: number;
  private readonly nudge: boolean;
  readonly stats: ConnectionStats = { requests: 0, flushes: 0, events: 0, unmatched: 0 };
  /** Watch events (path, token), in the order the daemon sent them. */
  onEvent: (path: string, token: string) => void = () => {};
  /**
   * A reply whose req_id matched no request (counted in stats.unmatched). Dropped by default; a test
   * driver that writes raw requests into the transport itself takes them here.
   */
  onUnmatched: (m: Message) => void = () => {};
  /** The connection closed (null: by close()). Pending requests have been rejected already. */
  onClose: (err: Error | null) => void = () => {};
  private link!: Link;

  private constructor(opts: ConnectionOptions) {
    this.maxInFlight = opts.maxInFlight ?? 1024;
    if (!(this.maxInFlight >= 1)) throw new RangeError("maxInFlight must be at least 1");
    this.nudge = opts.nudgeEmptyPayload ?? true;
  }

  static async open(connect: Connector, opts: ConnectionOptions = {}): Promise<Connection> {
    const c = new Connection(opts);
    c.link = await connect(c.handlers());
    return c;
  }

  /** The same over a link made synchronously. */
  static over(makeLink: (h: LinkHandlers) => Link, opts: ConnectionOptions = {}): Connection {
    const c = new Connection(opts);
    c.link = makeLink(c.handlers());
    return c;
  }

  private handlers(): LinkHandlers {
    return { message: (m) => this.received(m), closed: (e) => this.linkClosed(e) };
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Requests sent and not yet answered (abandoned ones included). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Send one request and resolve with its reply message (an ERROR reply too). `timeoutMs` > 0 rejects
   * with TimeoutError if no reply came by then.
   */
  async request(type: number, payload: string, txId = 0, timeoutMs = 0): Promise<Message> {
    if (this.pending.size >= this.maxInFlight || this.slotWaiters.length > 0) {
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    const { reply, reqId } = this.submit(type, payload, txId);
    if (!(timeoutMs > 0)) return await reply;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const p = this.pending.get(reqId);
        if (p !== undefined) p.abandoned = true;
        reject(new TimeoutError(`no reply to request ${reqId} (type ${type}) within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Queue one request now (no slot limit: for callers that bound themselves, e.g. tests that send
   * without waiting). Returns its req_id and the reply.
   */
  submit(type: number, payload: string, txId = 0): { reqId: number; reply: Promise<Message> } {
    let settle!: (r: Message | Error) => void;
    const reply = new Promise<Message>((resolve, reject) => {
      settle = (r) => r instanceof Error ? reject(r) : resolve(r);
    });
    return { reqId: this.submitWith(type, payload, txId, settle), reply };
  }

  /**
   * Queue one request; `done` gets its reply (or the error that means there will be none) synchronously
   * from the link's delivery. Returns the req_id (0 if `done` was already called with an error).
   */
  submitWith(type: number, payload: string, txId: number, done: (r: Message | Error) => void): number {
    if (this.closedWith !== null) {
      done(this.closedWith);
      return 0;
    }
    if (payload.length > PAYLOAD_MAX) {
      done(new RangeError(`request payload of ${payload.length} bytes (limit ${PAYLOAD_MAX})`));
      return 0;
    }
    const reqId = this.takeReqId();
    this.pending.set(reqId, { type, done, abandoned: false });
    this.stats.requests++;
    this.link.send(type, reqId, txId, payload);
    this.lastPayloadEmpty = payload.length === 0;
    this.scheduleFlush();
    this.link.demand(true);
    return reqId;
  }

  /** Whether watch events are expected (watches exist): a ring must then keep polling. */
  wantEvents(on: boolean): void {
    this.eventDemand = on;
    if (this.closedWith === null) this.link.demand(this.pending.size > 0 || this.eventDemand);
  }

  /** Write queued requests now instead of at the end of this turn. */
  flush(): void {
    this.flushQueued = false;
    if (this.closedWith !== null) return;
    if (this.nudge && this.lastPayloadEmpty) {
      const id = this.takeReqId();
      this.pending.set(id, DISCARD);
      this.link.send(MsgType.GET_DOMAIN_PATH, id, 0, "0\0");
    }
    this.lastPayloadEmpty = false;
    this.stats.flushes++;
    this.link.flush();
  }

  close(): void {
    if (this.closedWith !== null) return;
    this.link.close();
    this.shutdown(new ConnectionError("the connection was closed", true), null);
  }

  private takeReqId(): number {
    let id = this.nextReqId;
    // req_id is a u32 the daemon echoes; skip ids still waiting (a wrap-around after 4 billion requests).
    while (this.pending.has(id)) id = (id + 1) >>> 0;
    this.nextReqId = (id + 1) >>> 0;
    return id;
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      if (this.flushQueued) this.flush();
    });
  }

  private received(m: Message): void {
    if (m.type === MsgType.WATCH_EVENT) {
      this.stats.events++;
      const nul = m.payload.indexOf("\0");
      const path = nul < 0 ? m.payload : m.payload.slice(0, nul);
      const rest = nul < 0 ? "" : m.payload.slice(nul + 1);
      const token = rest.endsWith("\0") ? rest.slice(0, -1) : rest;
      this.onEvent(path, token);
      return;
    }
    const p = this.pending.get(m.reqId);
    if (p === undefined) {
      this.stats.unmatched++;
      this.onUnmatched(m);
      return;
    }
    this.pending.delete(m.reqId);
    const waiter = this.slotWaiters.shift();
    if (waiter !== undefined) waiter();
    if (this.pending.size === 0 && !this.eventDemand) this.link.demand(false);
    if (p.abandoned) return;
    if (m.type !== p.type && m.type !== MsgType.ERROR) {
      p.done(new ProtocolError(`reply of type ${m.type} to a request of type ${p.type}`));
      return;
    }
    p.done(m);
  }

  private linkClosed(err: Error | null): void {
    this.shutdown(
      new ConnectionError(
        err === null ? "the connection was closed" : `the connection to xenstored broke: ${err.message}`,
        true,
        { cause: err ?? undefined },
      ),
      err,
    );
  }

  private shutdown(e: Error, cause: Error | null): void {
    if (this.closedWith !== null) return;
    this.closedWith = e;
    for (const p of this.pending.values()) if (!p.abandoned) p.done(e);
    this.pending.clear();
    for (const w of this.slotWaiters.splice(0)) w();
    this.onClose(cause);
  }
}
