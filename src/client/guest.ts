// A XenStore client that talks over a xenstore ring, as a guest kernel's xenbus driver does: it writes
// requests into the ring page, kicks the event channel, and reads replies and watch events back. Used
// by the tests (guest domains in their own process), by the benchmark's guest load generator and by
// the dxenstore-guest CLI. Replies are matched by req_id, so requests may be pipelined.
import { MsgType } from "../protocol/wire.ts";
import { isErrno, XsError } from "../common/xs_error.ts";
import {
  CONNECTED,
  ERROR_NONE,
  Field,
  isRingFault,
  MessageReader,
  MessageWriter,
  RECONNECT,
  REQUESTS,
  RESPONSES,
  type RingMessage,
  type RingPage,
  WATCH_EVENT_TYPE,
} from "../xen/ring.ts";

/** What the client needs from the guest's platform (src/xen/sim/guest.ts SimGuest, or a real one). */
export interface GuestTransport {
  readonly domid: number;
  readonly page: RingPage;
  /** Signal the daemon: the ring changed. */
  notify(): void;
  /** Wait for a signal from the daemon or the timeout; the event loop keeps running. */
  wait(timeoutMs: number): Promise<void>;
  /** The same, blocking the thread (optional; used when `blocking` is set). */
  waitSync?(timeoutMs: number): void;
  close(): void;
}

/** Message types a guest sends (xs_wire.h numbering): the protocol's own table. */
export const XsType = MsgType;

export interface WatchEvent {
  readonly path: string;
  readonly token: string;
}

/** The ring stopped working: the daemon set the error indicator, broke the protocol, or timed out. */
export class RingClientError extends Error {
  override name = "RingClientError";
}

export interface GuestClientOptions {
  /** How long to wait for a reply (default 10 s). */
  readonly timeoutMs?: number;
  /** Block the thread while waiting (lower latency; only for processes that do nothing else). */
  readonly blocking?: boolean;
}

/** How long one wait lasts before the ring is looked at again (a lost signal only costs this). */
const POLL_MS = 50;

export class GuestClient {
  private readonly reader = new MessageReader();
  private readonly writer = new MessageWriter();
  private replies: RingMessage[] = [];
  /** Watch events received and not yet taken with nextEvent(). */
  readonly events: WatchEvent[] = [];
  private nextReqId = 1;
  private readonly timeoutMs: number;
  private readonly blocking: boolean;

  constructor(readonly transport: GuestTransport, opts: GuestClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.blocking = opts.blocking === true && transport.waitSync !== undefined;
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

  /** Queue a request without waiting; returns its req_id. */
  send(type: number, payload: string, txId = 0): number {
    const reqId = this.nextReqId;
    this.nextReqId = (this.nextReqId + 1) >>> 0 || 1;
    this.writer.enqueue(type, reqId, txId, payload);
    this.pump();
    return reqId;
  }

  /**
   * Move bytes: write queued requests into the ring, take replies and events out of it, and signal
   * the daemon if it needs to know (requests written, or space freed in a full ring). Returns true
   * if it was signalled.
   */
  pump(): boolean {
    if (this.page.get(Field.CONNECTION) !== CONNECTED) return false;
    let moved = false;
    if (!this.writer.empty) {
      const n = this.writer.write(this.page, REQUESTS);
      if (n < 0) throw new RingClientError("request ring indices are inconsistent");
      moved = n > 0;
    }
    for (;;) {
      const m = this.reader.read(this.page, RESPONSES);
      if (m === null) break;
      if (isRingFault(m)) throw new RingClientError(`response ring: ${m}`);
      if (m.type === WATCH_EVENT_TYPE) {
        const [path, token] = m.payload.split("\0");
        this.events.push({ path, token: token ?? "" });
      } else {
        this.replies.push(m);
      }
    }
    // Replies read from a full ring: the daemon may be waiting for space (a reply longer than the
    // ring, or a backlog). Otherwise reading needs no signal (as Linux's xenbus driver).
    if (this.reader.takeFreedFull()) moved = true;
    if (moved) this.transport.notify();
    return moved;
  }

  private async waitOnce(ms: number): Promise<void> {
    if (this.blocking) this.transport.waitSync!(ms);
    else await this.transport.wait(ms);
  }

  /** The reply to request `reqId` (an ERROR reply too), waiting up to the timeout. */
  async reply(reqId: number, timeoutMs = this.timeoutMs): Promise<RingMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.pump();
      const r = this.takeReply(reqId);
      if (r !== null) return r;
      if (this.ringError !== ERROR_NONE) {
        throw new RingClientError(`the daemon stopped serving this ring (error ${this.ringError})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new RingClientError(`no reply to request ${reqId} within ${timeoutMs} ms`);
      await this.waitOnce(Math.min(POLL_MS, left));
    }
  }

  /** The reply to `reqId` if it has arrived (taken out of the queue), else null. */
  private takeReply(reqId: number): RingMessage | null {
    const i = this.replies.findIndex((r) => r.reqId === reqId);
    return i >= 0 ? this.replies.splice(i, 1)[0] : null;
  }

  /**
   * reply() for blocking clients (created with `blocking`), without promises: a load generator that
   * does nothing else pays no microtask per round trip, as a C client over /dev/xen/xenbus would not.
   */
  replySync(reqId: number, timeoutMs = this.timeoutMs): RingMessage {
    if (!this.blocking) throw new RingClientError("replySync needs a blocking client");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.pump();
      const r = this.takeReply(reqId);
      if (r !== null) return r;
      if (this.ringError !== ERROR_NONE) {
        throw new RingClientError(`the daemon stopped serving this ring (error ${this.ringError})`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new RingClientError(`no reply to request ${reqId} within ${timeoutMs} ms`);
      this.transport.waitSync!(Math.min(POLL_MS, left));
    }
  }

  /** Send one request and return its reply message (ERROR replies included). */
  async request(type: number, payload: string, txId = 0): Promise<RingMessage> {
    return await this.reply(this.send(type, payload, txId));
  }

  /** Send one request; return the reply payload, or throw XsError for an ERROR reply. */
  async call(type: number, payload: string, txId = 0): Promise<string> {
    return replyPayload(type, await this.request(type, payload, txId));
  }

  /** call() for blocking clients, without promises (see replySync). */
  callSync(type: number, payload: string, txId = 0): string {
    return replyPayload(type, this.replySync(this.send(type, payload, txId)));
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
    await this.call(XsType.SET_PERMS, `${path}\0${perms.map((p) => p + "\0").join("")}`, tx);
  }
  async watch(path: string, token: string, depth?: number): Promise<void> {
    await this.call(XsType.WATCH, `${path}\0${token}\0${depth === undefined ? "" : `${depth}\0`}`);
  }
  async unwatch(path: string, token: string): Promise<void> {
    await this.call(XsType.UNWATCH, `${path}\0${token}\0`);
  }
  async resetWatches(): Promise<void> {
    await this.call(XsType.RESET_WATCHES, "");
  }
  async transactionStart(): Promise<number> {
    return Number(splitNul(await this.call(XsType.TRANSACTION_START, "\0"))[0]);
  }
  async transactionEnd(tx: number, commit: boolean): Promise<void> {
    await this.call(XsType.TRANSACTION_END, commit ? "T\0" : "F\0", tx);
  }
  async getDomainPath(domid: number): Promise<string> {
    return splitNul(await this.call(XsType.GET_DOMAIN_PATH, `${domid}\0`))[0];
  }
  async getFeature(domid?: number): Promise<number> {
    return Number(splitNul(await this.call(XsType.GET_FEATURE, domid === undefined ? "" : `${domid}\0`))[0]);
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
      await this.waitOnce(Math.min(POLL_MS, left));
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
    this.page.set(Field.CONNECTION, RECONNECT);
    this.transport.notify();
    const deadline = Date.now() + timeoutMs;
    while (this.page.get(Field.CONNECTION) !== CONNECTED) {
      const left = deadline - Date.now();
      if (left <= 0) throw new RingClientError(`reconnection not acknowledged within ${timeoutMs} ms`);
      await this.waitOnce(Math.min(POLL_MS, left));
    }
    this.reader.reset();
    this.writer.clear();
    this.replies = [];
    this.events.length = 0;
  }

  close(): void {
    this.transport.close();
  }
}

/** The payload of reply `r` to a request of `type`; XsError for an ERROR reply. */
function replyPayload(type: number, r: RingMessage): string {
  if (r.type === XsType.ERROR) {
    const name = r.payload.replace(/\0$/, "");
    throw new XsError(isErrno(name) ? name : "EIO", `${name} (type ${type})`);
  }
  if (r.type !== type) throw new RingClientError(`reply type ${r.type} to request type ${type}`);
  return r.payload;
}

function splitNul(p: string): string[] {
  if (p === "") return [];
  const parts = p.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}
