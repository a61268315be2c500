// GuestClient: the library's ring client driven step by step, for tests and the guest benchmark. It is
// the same engine as XenStore (src/client/connection.ts, payloads from src/client/payload.ts, the ring
// link of src/client/ring_link.ts), with the waiting left to the caller: the ring moves only when a
// method is called (send, pump, reply, nextEvent...), so a test decides exactly when the daemon sees
// what. Raw access is kept: send() without waiting, reply() to a req_id, ERROR replies as messages.
// Applications use XenStore (src/client/mod.ts) over `ringConnector` instead.
import { MsgType } from "../protocol/wire.ts";
import type { Message } from "../protocol/codec.ts";
import { ERROR_NONE, Field, type RingMessage, type RingPage } from "../xen/ring.ts";
import { Connection } from "./connection.ts";
import { replyError } from "./errors.ts";
import { type GuestTransport, POLL_MS, resetRing, RingClientError, RingLink } from "./ring_link.ts";
import { joinNul, parseTxId, parseU32, splitNul, watchPayload } from "./payload.ts";

export { type GuestTransport, RingClientError };

/** Message types a guest sends (xs_wire.h numbering): the protocol's own table. */
export const XsType = MsgType;

export interface WatchEvent {
  readonly path: string;
  readonly token: string;
}

export interface GuestClientOptions {
  /** How long to wait for a reply (default 10 s). */
  readonly timeoutMs?: number;
  /** Block the thread while waiting (lower latency; only for processes that do nothing else). */
  readonly blocking?: boolean;
}

export class GuestClient {
  private link!: RingLink;
  private conn!: Connection;
  /** Replies (or the error that replaced them) by req_id, until taken by reply(). */
  private replies = new Map<number, Message | Error>();
  /** Watch events received and not yet taken with nextEvent(). */
  readonly events: WatchEvent[] = [];
  private readonly timeoutMs: number;
  private readonly blocking: boolean;

  constructor(readonly transport: GuestTransport, opts: GuestClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.blocking = opts.blocking === true && transport.waitSync !== undefined;
    this.attach();
  }

  private attach(): void {
    this.conn = Connection.over(
      (h) => this.link = new RingLink(this.transport, h, { selfDriven: false, blocking: this.blocking }),
      { nudgeEmptyPayload: false },
    );
    this.conn.onEvent = (path, token) => this.events.push({ path, token });
    // Raw access: replies to requests a test wrote into the ring itself are kept for reply(req_id).
    this.conn.onUnmatched = (m) => this.replies.set(m.reqId, m);
  }

  get page(): RingPage {
    return this.transport.page;
  }

  /** The daemon's connection error indicator (0 = none). */
  get ringError(): number {
    return this.page.get(Field.ERROR);
  }

  /** Server feature bits the daemon advertised in the ring page. */
  get serverFeatures(): number {
    return this.page.get(Field.SERVER_FEATURES);
  }

  /** Queue a request and write it into the ring now, without waiting; returns its req_id. */
  send(type: number, payload: string, txId = 0): number {
    let id = 0;
    let refused: Message | Error | null = null;
    id = this.conn.submitWith(type, payload, txId, (r) => {
      if (id === 0) refused = r; // synchronously: the connection is closed, or the payload too long
      else this.replies.set(id, r);
    });
    if (id === 0) throw refused ?? new RingClientError("request refused");
    this.conn.flush();
    return id;
  }

  /** Move bytes between the ring and this client (see RingLink.pump); true if the daemon was signalled. */
  pump(): boolean {
    return this.link.pump();
  }

  /** The reply to request `reqId` (an ERROR reply too), waiting up to the timeout. */
  async reply(reqId: number, timeoutMs = this.timeoutMs): Promise<RingMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replyNow(reqId, deadline, timeoutMs);
      if (r !== null) return r;
      await this.link.wait(Math.min(POLL_MS, deadline - Date.now()));
    }
  }

  /**
   * reply() for blocking clients (created with `blocking`), without promises: a load generator that
   * does nothing else pays no microtask per round trip, as a C client over /dev/xen/xenbus would not.
   */
  replySync(reqId: number, timeoutMs = this.timeoutMs): RingMessage {
    if (!this.blocking) throw new RingClientError("replySync needs a blocking client");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replyNow(reqId, deadline, timeoutMs);
      if (r !== null) return r;
      this.transport.waitSync!(Math.min(POLL_MS, deadline - Date.now()));
    }
  }

  /** One look: the reply to `reqId` if it is in (taken), null to wait on; throws when it never will be. */
  private replyNow(reqId: number, deadline: number, timeoutMs: number): RingMessage | null {
    this.pump();
    const r = this.replies.get(reqId);
    if (r !== undefined) {
      this.replies.delete(reqId);
      if (r instanceof Error) throw r;
      return r;
    }
    if (this.ringError !== ERROR_NONE) {
      throw new RingClientError(`the daemon stopped serving this ring (error ${this.ringError})`);
    }
    if (deadline - Date.now() <= 0) {
      throw new RingClientError(`no reply to request ${reqId} within ${timeoutMs} ms`);
    }
    return null;
  }

  /** Send one request and return its reply message (ERROR replies included). */
  async request(type: number, payload: string, txId = 0): Promise<RingMessage> {
    return await this.reply(this.send(type, payload, txId));
  }

  /** Send one request; return the reply payload, or throw XsError for an ERROR reply. */
  async call(type: number, payload: string, txId = 0): Promise<string> {
    const r = await this.request(type, payload, txId);
    if (r.type === XsType.ERROR) throw replyError(r.payload, `type ${type}`);
    return r.payload;
  }

  /** call() for blocking clients, without promises (see replySync). */
  callSync(type: number, payload: string, txId = 0): string {
    const r = this.replySync(this.send(type, payload, txId));
    if (r.type === XsType.ERROR) throw replyError(r.payload, `type ${type}`);
    return r.payload;
  }

  async read(path: string, tx = 0): Promise<string> {
    return await this.call(XsType.READ, `${path}\0`, tx);
  }
  async write(path: string, value: string, tx = 0): Promise<void> {
    await this.call(XsType.WRITE, `${path}\0${value}`, tx);
  }
  async mkdir(path: string, tx = 0): Promise<void> {
    await this.call(XsType.MKDIR, `${path}\0`, tx);
  }
  async rm(path: string, tx = 0): Promise<void> {
    await this.call(XsType.RM, `${path}\0`, tx);
  }
  async directory(path: string, tx = 0): Promise<string[]> {
    return splitNul(await this.call(XsType.DIRECTORY, `${path}\0`, tx));
  }
  async getPerms(path: string, tx = 0): Promise<string[]> {
    return splitNul(await this.call(XsType.GET_PERMS, `${path}\0`, tx));
  }
  async setPerms(path: string, perms: readonly string[], tx = 0): Promise<void> {
    await this.call(XsType.SET_PERMS, `${path}\0${joinNul(perms)}`, tx);
  }
  async watch(path: string, token: string, depth?: number): Promise<void> {
    await this.call(XsType.WATCH, watchPayload(path, token, depth));
  }
  async unwatch(path: string, token: string): Promise<void> {
    await this.call(XsType.UNWATCH, joinNul([path, token]));
  }
  async resetWatches(): Promise<void> {
    await this.call(XsType.RESET_WATCHES, "");
  }
  async transactionStart(): Promise<number> {
    return parseTxId(await this.call(XsType.TRANSACTION_START, "\0"));
  }
  async transactionEnd(tx: number, commit: boolean): Promise<void> {
    await this.call(XsType.TRANSACTION_END, commit ? "T\0" : "F\0", tx);
  }
  async getDomainPath(domid: number): Promise<string> {
    return splitNul(await this.call(XsType.GET_DOMAIN_PATH, `${domid}\0`))[0];
  }
  async getFeature(domid?: number): Promise<number> {
    return parseU32(
      await this.call(XsType.GET_FEATURE, domid === undefined ? "" : `${domid}\0`),
      "feature bits",
    );
  }

  /** The next watch event, waiting up to `timeoutMs`; null if none came. */
  async nextEvent(timeoutMs = this.timeoutMs): Promise<WatchEvent | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.pump();
      const e = this.events.shift();
      if (e !== undefined) return e;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await this.link.wait(Math.min(POLL_MS, left));
    }
  }

  /** Every event that arrives within `ms` (for "nothing else came" checks). */
  async eventsWithin(ms: number): Promise<WatchEvent[]> {
    const out: WatchEvent[] = [];
    for (;;) {
      const e = await this.nextEvent(ms);
      if (e === null) return out;
      out.push(e);
      ms = 0;
    }
  }

  /**
   * Ring reconnection (xenstore-ring.txt): ask the daemon to reset the connection and wait until it
   * has. Everything in flight on this side is dropped too; watches and transactions are gone.
   */
  async reconnect(timeoutMs = this.timeoutMs): Promise<void> {
    await resetRing(this.transport, timeoutMs, this.blocking);
    this.conn.close();
    this.replies = new Map();
    this.events.length = 0;
    this.attach();
  }

  close(): void {
    this.conn.close();
    this.transport.close();
  }
}
