// The guest's link: a xenstore ring page and an event channel, as a guest kernel's xenbus driver uses
// them (docs/misc/xenstore-ring.txt). The ring codec is src/xen/ring.ts (the daemon uses the same one);
// this file adds the guest's side of the signalling: write requests, kick the daemon, read replies
// when signalled (or after a short poll, so a lost signal costs at most POLL_MS).
//
// Two ways to drive it: `selfDriven` (XenStore: a loop runs while anything waits for the daemon) or by
// the owner calling pump() and wait() (GuestClient: tests decide exactly when the ring moves).
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
  type RingPage,
} from "../xen/ring.ts";
import { FEATURE_RECONNECTION } from "../protocol/wire.ts";
import { ConnectionError } from "./errors.ts";
import type { Connector, Link, LinkHandlers } from "./connection.ts";

/** What the client needs from the guest's platform (src/xen/sim/guest.ts SimGuest, or a real one). */
export interface GuestTransport {
  readonly domid: number;
  readonly page: RingPage;
  /** Signal the daemon: the ring changed. */
  notify(): void;
  /** Wait for a signal from the daemon or the timeout; the event loop keeps running. */
  wait(timeoutMs: number): Promise<void | boolean>;
  /** The same, blocking the thread (optional; used when `blocking` is set). */
  waitSync?(timeoutMs: number): void | boolean;
  close(): void;
}

/** The ring stopped working: the daemon set the error indicator, broke the protocol, or timed out. */
export class RingClientError extends ConnectionError {
  constructor(message: string) {
    super(message, true);
    this.name = "RingClientError";
  }
}

/** How long one wait lasts before the ring is looked at again (a lost signal only costs this). */
export const POLL_MS = 50;

export interface RingLinkOptions {
  /** Run a polling loop while anything waits (else the owner calls pump()/wait()). */
  readonly selfDriven: boolean;
  /** Block the thread while waiting (lower latency; only for processes that do nothing else). */
  readonly blocking?: boolean;
}

export class RingLink implements Link {
  private readonly reader = new MessageReader();
  private readonly writer = new MessageWriter();
  private wanted = false;
  private running = false;
  private dead = false;
  private readonly blocking: boolean;

  constructor(
    readonly transport: GuestTransport,
    private readonly h: LinkHandlers,
    private readonly opts: RingLinkOptions,
  ) {
    this.blocking = opts.blocking === true && transport.waitSync !== undefined;
  }

  get page(): RingPage {
    return this.transport.page;
  }

  send(type: number, reqId: number, txId: number, payload: string): void {
    if (!this.dead) this.writer.enqueue(type, reqId, txId, payload);
  }

  flush(): void {
    this.pump();
  }

  demand(on: boolean): void {
    this.wanted = on;
    if (on && this.opts.selfDriven && !this.running && !this.dead) void this.run();
  }

  /**
   * Move bytes: write queued requests into the ring, deliver replies and events, and signal the daemon
   * if it needs to know (requests written, or space freed in a full ring). Returns true if it was
   * signalled. A broken ring fails the link (handlers.closed) and returns false.
   */
  pump(): boolean {
    if (this.dead || this.page.get(Field.CONNECTION) !== CONNECTED) return false;
    let moved = false;
    if (!this.writer.empty) {
      const n = this.writer.write(this.page, REQUESTS);
      if (n < 0) return this.fail("request ring indices are inconsistent");
      moved = n > 0;
    }
    for (;;) {
      const m = this.reader.read(this.page, RESPONSES);
      if (m === null) break;
      if (isRingFault(m)) return this.fail(`response ring: ${m}`);
      this.h.message(m);
      if (this.dead) return false;
    }
    // Replies read from a full ring: the daemon may be waiting for space (a reply longer than the
    // ring, or a backlog). Otherwise reading needs no signal (as Linux's xenbus driver).
    if (this.reader.takeFreedFull()) moved = true;
    if (moved) this.transport.notify();
    return moved;
  }

  /** The daemon's connection error indicator (0 = none). */
  get ringError(): number {
    return this.page.get(Field.ERROR);
  }

  async wait(ms: number): Promise<void> {
    if (this.blocking) this.transport.waitSync!(ms);
    else await this.transport.wait(ms);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.wanted && !this.dead) {
        this.pump();
        if (this.ringError !== ERROR_NONE) {
          this.fail(`the daemon stopped serving this ring (error ${this.ringError})`);
          break;
        }
        if (!this.wanted || this.dead) break;
        await this.wait(POLL_MS);
      }
    } finally {
      this.running = false;
    }
  }

  private fail(why: string): false {
    if (!this.dead) {
      this.dead = true;
      this.h.closed(new RingClientError(why));
    }
    return false;
  }

  /** Stop using the ring (the transport stays open: its owner closes it). */
  close(): void {
    if (this.dead) return;
    this.dead = true;
    this.h.closed(null);
  }
}

/**
 * Ring reconnection (xenstore-ring.txt): ask the daemon to reset the connection and wait until it has.
 * Everything in flight is dropped on both sides; watches and transactions are gone.
 */
export async function resetRing(t: GuestTransport, timeoutMs: number, blocking = false): Promise<void> {
  if ((t.page.get(Field.SERVER_FEATURES) & FEATURE_RECONNECTION) === 0) {
    throw new RingClientError("the daemon does not support ring reconnection");
  }
  t.page.set(Field.CONNECTION, RECONNECT);
  t.notify();
  const deadline = Date.now() + timeoutMs;
  while (t.page.get(Field.CONNECTION) !== CONNECTED) {
    const left = deadline - Date.now();
    if (left <= 0) throw new RingClientError(`reconnection not acknowledged within ${timeoutMs} ms`);
    if (blocking && t.waitSync !== undefined) t.waitSync(Math.min(POLL_MS, left));
    else await t.wait(Math.min(POLL_MS, left));
  }
}

/**
 * A connector over a guest's ring. The first connection resets the ring if `reset` is set (a clean
 * start: what a previous user of the ring left is dropped); every later one (a reconnection after the
 * daemon failed the ring) always resets, when the daemon supports it.
 */
export function ringConnector(
  t: GuestTransport,
  opts: { reset?: boolean; blocking?: boolean; timeoutMs?: number } = {},
): Connector {
  let first = true;
  return async (h) => {
    const reset = first ? opts.reset === true : true;
    first = false;
    if (reset) await resetRing(t, opts.timeoutMs ?? 10_000, opts.blocking);
    else if (t.page.get(Field.ERROR) !== ERROR_NONE) {
      throw new RingClientError(`the daemon stopped serving this ring (error ${t.page.get(Field.ERROR)})`);
    }
    return new RingLink(t, h, { selfDriven: true, blocking: opts.blocking });
  };
}
