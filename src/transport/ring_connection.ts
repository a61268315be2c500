// One domain's xenstore connection over its ring: the ring transport's side of the connection contract
// (./connection.ts), as a SocketConnection is for a socket. It takes whole requests off the ring
// (bounded per turn by the ring server's scheduler), queues replies and watch events, and writes them
// back as the ring has room and the release marks allow. Everything it holds is bounded: at most one
// partial request (4112 bytes); replies stop being produced because requests stop being read once
// `outHighBytes` are queued; watch events (which other clients' writes cause, unasked) are capped in
// number and bytes, and beyond that the newest is dropped and counted — a domain cannot be
// disconnected and reconnect the way a socket client can, so dropping is the only bound left.
import { latin1 } from "../common/latin1.ts";
import { log } from "../common/log.ts";
import type { Client } from "../dispatch/client.ts";
import { replaceOversized } from "../protocol/outgoing.ts";
import { FEATURE_ERROR, HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import {
  ERROR_NONE,
  faultCode,
  Field,
  isRingFault,
  MessageReader,
  MessageWriter,
  REQUESTS,
  RESPONSES,
  type RingFault,
  type RingMessage,
  RingPage,
  ringUsed,
} from "../xen/ring.ts";
import type { Connection, RingState } from "./connection.ts";
import { ReleaseMarks } from "./release_marks.ts";
import type { Queueable } from "./scheduler.ts";
import type { WriteCredit } from "./throttle.ts";

export interface RingLimits {
  /** Queued output above which no more requests are read (back-pressure). */
  readonly outHighBytes: number;
  /** Watch events queued for the ring; beyond, new events are dropped. */
  readonly maxEvents: number;
  /** Bytes of those events. */
  readonly maxEventBytes: number;
}

export const DEFAULT_RING_LIMITS: RingLimits = {
  outHighBytes: 32 * 1024,
  maxEvents: 1024,
  maxEventBytes: 256 * 1024,
};

export type RingConnectionState = RingState["state"];

export interface RingStats {
  requests: number;
  droppedEvents: number;
}

/** What the connection tells the ring server. */
export interface RingOwner {
  /** Output was queued: the loop's output stage writes it at the end of the turn. */
  outputQueued(conn: RingConnection): void;
  /** The output stage asks for released output to be written (accounting, faults: the server's). */
  flush(conn: RingConnection): void;
}

/** Who the ring belongs to: fixed for the connection's life except where noted. */
export interface RingIdentity {
  readonly domid: number;
  /** Dom0's own ring: its client is privileged, like a socket's. */
  readonly privileged: boolean;
  /** Feature bits the domain may use (GET_FEATURE's numbering). */
  readonly features: number;
}

export class RingConnection implements Connection, Queueable {
  state: RingConnectionState = "connected";
  /** The core's client for this connection (replaced on reconnection). */
  client!: Client;
  readonly page: RingPage;
  readonly label: string;
  private readonly reader = new MessageReader();
  private readonly writer = new MessageWriter();
  readonly stats: RingStats = { requests: 0, droppedEvents: 0 };
  private dropLogged = false;
  /** Whether this turn moved bytes in either direction (the peer must be signalled). */
  moved = false;
  /** In the ring server's list of rings to look at when the turn ends (its bookkeeping). */
  inTouched = false;
  /** The ring server's ready queue keeps its place here (./scheduler.ts Queueable). */
  readyTicket = 0;
  /** writer.repliesWritten when last asked (see takeDelivered). */
  private delivered = 0;
  /** queuedBytes when last asked (see takeQueuedChanged); 0 for a fresh or dropped connection. */
  private reportedQueued = 0;
  /** How far (in messages queued) output may be written: group commit holds the rest. */
  readonly marks = new ReleaseMarks();
  /** SET_TARGET: the domain this one may act for (kept for the clients of later resets). */
  target: number | null = null;

  constructor(
    readonly id: RingIdentity,
    page: Uint8Array,
    /** Our end of the event channel (re-bound by a re-INTRODUCE). */
    public localPort: number,
    private readonly owner: RingOwner,
    private readonly limits: RingLimits,
    /** The domain's write credit while transactions are open (XSA-206, ./throttle.ts). */
    readonly credit: WriteCredit,
  ) {
    this.page = new RingPage(page);
    this.label = `dom${id.domid}${id.privileged ? "-ring" : ""}`;
  }

  get domid(): number {
    return this.id.domid;
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  /** Output stage: messages ever queued (release marks count in messages). */
  get queuedPosition(): number {
    return this.writer.enqueued;
  }

  /** ReplySink: queue a reply or event. Events beyond the limits are dropped (counted, logged once). */
  send(type: number, reqId: number, txId: number, payload: string): boolean {
    if (this.state !== "connected") return false;
    if (payload.length > PAYLOAD_MAX) {
      const instead = replaceOversized(this.label, type, payload.length);
      if (instead === null) return false;
      type = MsgType.ERROR;
      payload = instead;
    }
    if (type === MsgType.WATCH_EVENT) {
      const cost = HEADER_SIZE + payload.length;
      if (
        this.writer.events >= this.limits.maxEvents ||
        this.writer.eventBytes + cost > this.limits.maxEventBytes
      ) {
        this.stats.droppedEvents++;
        if (!this.dropLogged) {
          this.dropLogged = true;
          log(
            "warn",
            `${this.label}: not consuming its ring; watch events beyond ${this.writer.events} queued ` +
              `(${this.writer.eventBytes} bytes) are dropped`,
          );
        }
        return false;
      }
    }
    this.writer.enqueue(type, reqId, txId, payload);
    this.owner.outputQueued(this);
    return true;
  }

  /** Output stage: write what the marks release (the ring server accounts and handles faults). */
  flush(): void {
    this.owner.flush(this);
  }

  /**
   * Live update: the state the previous program left (a migration stream's CONN record): `input`
   * the partial request it had taken off the ring, `output` the bytes it had not yet put in — the
   * rest of a message begun (`partial` bytes), then whole messages. Throws RangeError on bytes that
   * are not that (the caller drops the ring's state with a log line).
   */
  adoptState(input: Uint8Array, output: Uint8Array, partial: number): void {
    const messages: RingMessage[] = [];
    const view = new DataView(output.buffer, output.byteOffset, output.byteLength);
    for (let at = partial; at < output.length;) {
      if (output.length - at < HEADER_SIZE) throw new RangeError(`output ends inside a header at ${at}`);
      const len = view.getUint32(at + 12, true);
      const end = at + HEADER_SIZE + len;
      if (len > PAYLOAD_MAX || end > output.length) {
        throw new RangeError(`output ends inside a message at ${at}`);
      }
      const u = (o: number) => view.getUint32(at + o, true);
      messages.push({ type: u(0), reqId: u(4), txId: u(8), payload: latin1(output, at + HEADER_SIZE, end) });
      at = end;
    }
    this.reader.restore(input);
    this.writer.resume(output.subarray(0, partial), messages);
    if (!this.writer.empty) this.owner.outputQueued(this);
  }

  transportState(): RingState {
    const out = this.writer.pending();
    return {
      kind: "ring",
      domid: this.domid,
      localPort: this.localPort,
      state: this.state,
      input: this.reader.pendingBytes(),
      output: out.messages,
      outputOffset: out.offset,
      releasedOutput: Math.max(0, Math.min(out.messages.length, this.marks.released - out.done)),
    };
  }

  /** Bytes of output not yet in the ring. */
  get queuedBytes(): number {
    return this.writer.bytes;
  }

  /** Replies (not events) not yet completely written to the ring. */
  get queuedReplies(): number {
    return this.writer.queued - this.writer.events;
  }

  get queuedEvents(): number {
    return this.writer.events;
  }

  /** Output is backed up: reading more requests would only queue more. */
  get backedUp(): boolean {
    return this.writer.bytes > this.limits.outHighBytes;
  }

  /** Unread request bytes in the ring or a partial request held here (bad indices count as input). */
  get hasInput(): boolean {
    if (this.state !== "connected") return false;
    return this.reader.partial || ringUsed(this.page, REQUESTS) !== 0;
  }

  /**
   * The next request, null if none is complete, or a fault (then the connection has failed and
   * `fail` must be called).
   */
  nextRequest(): RingMessage | RingFault | null {
    if (this.state !== "connected") return null;
    const m = this.reader.read(this.page, REQUESTS);
    // Space freed in a full ring: the guest may be waiting to write the rest of a request.
    if (this.reader.takeFreedFull()) this.moved = true;
    if (m !== null && !isRingFault(m)) this.stats.requests++;
    return m;
  }

  /** Replies completely written into the ring since the last call. */
  takeDelivered(): number {
    const n = this.writer.repliesWritten - this.delivered;
    this.delivered = this.writer.repliesWritten;
    return n;
  }

  /**
   * Whether queuedBytes changed since the last call: the quota accounting is told only of changes
   * (a flush that wrote nothing, or wrote as much as was queued since, changes nothing).
   */
  takeQueuedChanged(): boolean {
    const b = this.writer.bytes;
    if (b === this.reportedQueued) return false;
    this.reportedQueued = b;
    return true;
  }

  /** Write released output into the ring; returns a fault if the guest's indices are inconsistent. */
  writeOut(): RingFault | null {
    if (this.state !== "connected" || this.writer.empty) return null;
    const n = this.writer.write(this.page, RESPONSES, this.marks.released);
    if (n < 0) return "ring-index";
    if (n > 0) this.moved = true;
    return null;
  }

  /**
   * Stop serving after a protocol fault: set the ring's error indicator (if the domain has the
   * feature) and drop everything buffered. The owner drops the client's watches and transactions.
   */
  fail(fault: RingFault): void {
    if (this.state !== "connected") return;
    this.state = "failed";
    if (this.id.features & FEATURE_ERROR) this.page.set(Field.ERROR, faultCode(fault));
    this.reader.reset();
    this.writer.clear();
    this.reportedQueued = 0; // the owner drops the client's accounts with it
    this.marks.reset(this.writer.enqueued);
    this.moved = true;
  }

  /** Back to a fresh connection (reconnection, re-INTRODUCE): nothing buffered, indices zero, no error. */
  reset(): void {
    if (this.state === "closed") return;
    this.reader.reset();
    this.writer.clear();
    this.reportedQueued = 0; // the owner drops the client's accounts with it
    this.marks.reset(this.writer.enqueued);
    this.dropLogged = false;
    this.page.set(Field.REQ_CONS, 0);
    this.page.set(Field.REQ_PROD, 0);
    this.page.set(Field.RSP_CONS, 0);
    this.page.set(Field.RSP_PROD, 0);
    this.page.set(Field.ERROR, ERROR_NONE);
    this.state = "connected";
    this.moved = true;
  }

  /** The ring is being unmapped: never touch the page again. */
  close(): void {
    this.state = "closed";
    this.reader.reset();
    this.writer.clear();
    this.reportedQueued = 0; // the owner drops the client's accounts with it
    this.marks.reset(this.writer.enqueued);
  }
}
