// The ring transport: guest domains' (and dom0's own) xenstore rings, served by the daemon's loop
// (./loop.ts) beside the Unix sockets. The platform's event-channel fd is in the loop's epoll set; the
// rings it signals go into one ready queue and are served when the event comes, in epoll's order among
// the sockets' events, round-robin with bounded work (./scheduler.ts), so one flooding guest gets its
// share and no more. Rings left with work (budget spent, a parked ring let go, a ring just attached)
// keep the loop from sleeping and are served first in the next turn, before its events — as a wake-up
// eventfd would make them. Requests go to the core in the same turns as socket requests; replies leave
// through the loop's output stage (the one gate with release marks), and every ring that moved bytes is
// notified once, at the turn's end.
//
// What a ring is attached for — INTRODUCE, release, death, restart — is the domain registry's
// decision (src/domains): it attaches and detaches rings through RingPort, and learns from the
// transport what only the transport sees (VIRQ_DOM_EXC, a ring that broke the protocol, changed ring
// watches) through the RingEvents it registers. Ring reconnection (the guest sets connection=1; we
// advertise the feature) is handled here: watches, transactions, buffered and in-flight messages are
// dropped, the ring is emptied, and the guest gets a brand-new client.
import { log } from "../common/log.ts";
import type { Client } from "../dispatch/client.ts";
import type { RingHandle, RingInfo, RingPort, RingSpec } from "../domains/rings.ts";
import type { Message } from "../protocol/codec.ts";
import { FEATURE_ERROR, FEATURE_RECONNECTION, FEATURE_WATCH_DEPTH } from "../protocol/wire.ts";
import type { WatchManager } from "../watch/manager.ts";
import type { XenPlatform } from "../xen/platform.ts";
import { CONNECTED, Field, isRingFault, RECONNECT, type RingFault } from "../xen/ring.ts";
import type { EventLoop } from "./loop.ts";
import { DEFAULT_RING_LIMITS, RingConnection, type RingLimits, type RingOwner } from "./ring_connection.ts";
import { ReadyQueue, type ServeResult } from "./scheduler.ts";
import { DEFAULT_WRITE_THROTTLE, WriteCredit, type WriteThrottleOptions } from "./throttle.ts";
import { isModifying } from "../dispatch/op_table.ts";

/** The bits xenstore-ring.txt defines: the only ones written into the ring page. */
const RING_FEATURE_MASK = FEATURE_RECONNECTION | FEATURE_ERROR | FEATURE_WATCH_DEPTH;

/** What the ring server needs from the daemon core (src/dispatch/core.ts Core). */
export interface RingCore {
  /** A privileged connection (dom0's own ring). */
  open(sink: RingConnection, label: string): Client;
  /** A guest domain's connection: unprivileged, paths relative to its domain. */
  openGuest(domid: number, sink: RingConnection, label: string): Client;
  message(c: Client, m: Message): void;
  close(c: Client): void;
  readonly watches: WatchManager;
  /** Whether any connection has a transaction open (write throttling applies only then). */
  anyTransactionOpen(): boolean;
}

/**
 * The quota module's side of ring connections (src/quota/quotas.ts Quotas): outstanding requests and
 * queued output, and whether the domain may send another request now.
 */
export interface RingQuotas {
  /** May another request of `c` be read now? false = stall (leave it in the ring), not an error. */
  mayReceive(c: Client): boolean;
  requestReceived(c: Client): void;
  /** One reply to `c` has been written into its ring. */
  replyDelivered(c: Client): void;
  /** Bytes queued for `c` and not yet in its ring. */
  setQueuedOutput(c: Client, bytes: number): void;
  connectionGone(c: Client): void;
}

/** What the domain registry learns from the ring transport (src/domains/manager.ts). */
export interface RingEvents {
  /** VIRQ_DOM_EXC: some domain shut down or died. */
  domainException(): void;
  /** A ring broke the protocol; it is no longer served and its watches and transactions are gone. */
  ringFault(domid: number, fault: RingFault): void;
  /**
   * Every turn, before its output is tagged; `watchesChanged`: ring connections' watches changed
   * this turn (the domain records carry them).
   */
  beforeOutput(watchesChanged: boolean): void;
}

/** The domain registry as the ring server meets it: it takes the port and receives the events. */
export interface RingRegistry extends RingEvents {
  serveRingsWith(port: RingPort): void;
}

/** Requests served per loop turn across all rings, and per ring (RingServerOptions defaults). */
export const DEFAULT_TURN_BUDGET = 256;
export const DEFAULT_PER_RING_BUDGET = 16;

export interface RingServerOptions {
  readonly ring?: Partial<RingLimits>;
  /** Requests served per loop turn across all rings (default DEFAULT_TURN_BUDGET). */
  readonly turnBudget?: number;
  /** Requests served per ring per turn (default DEFAULT_PER_RING_BUDGET). */
  readonly perRingBudget?: number;
  /** Write rate of guests while transactions are open (./throttle.ts). */
  readonly writeThrottle?: WriteThrottleOptions;
  /** Quotas (outstanding requests, queued output); absent = rings are not accounted. */
  readonly quotas?: RingQuotas | null;
  /** Clock in ms (tests). */
  readonly now?: () => number;
}

export interface RingServerStats {
  reconnects: number;
  /** Turns that ended with rings still waiting (their budget ran out). */
  budgetExhausted: number;
  /** Times a guest's ring was left unread because it had no write credit. */
  throttled: number;
}

export class RingServer implements RingPort, RingOwner {
  readonly stats: RingServerStats = { reconnects: 0, budgetExhausted: 0, throttled: 0 };
  private readonly byPort = new Map<number, RingConnection>();
  private readonly byClient = new Map<number, RingConnection>();
  private readonly ready = new ReadyQueue<RingConnection>();
  /**
   * Rings that may have moved bytes this turn: notified at its end if they did. An array filled up
   * to `touchedCount`, membership marked on the connection (`inTouched`): a Set filled with one ring
   * and cleared every turn allocated a new hash table each time (clear() does, and so does a delete
   * that empties it).
   */
  private readonly touched: RingConnection[] = [];
  private touchedCount = 0;
  /**
   * Rings left unread although they may hold requests: out of write credit, or stalled by a quota
   * (outstanding requests, memory). No event may come to wake them (the guest waits for replies),
   * so they are looked at again at the end of every loop turn — at least every 100 ms (the loop's idle
   * wait, src/transport/loop.ts).
   */
  private readonly parked = new Set<RingConnection>();
  /** serve() for the ready queue: one closure for the server's life, not one per serving round. */
  private readonly serveOne = (conn: RingConnection, max: number): ServeResult => this.serve(conn, max);
  /** Whether some transaction is open, computed at most once per serving round (O(clients)). */
  private txOpenCache: boolean | null = null;
  private readonly throttle: WriteThrottleOptions;
  private readonly now: () => number;
  private readonly limits: RingLimits;
  private readonly turnBudget: number;
  private readonly perRing: number;
  private readonly quotas: RingQuotas | null;
  private virqPort: number;
  private domExcPending = false;
  /** A ring connection's watches changed this turn: the domain records must be stored again. */
  private watchesChanged = false;

  constructor(
    private readonly loop: EventLoop,
    private readonly platform: XenPlatform,
    private readonly core: RingCore,
    private readonly events: RingRegistry,
    opts: RingServerOptions = {},
  ) {
    this.limits = { ...DEFAULT_RING_LIMITS, ...opts.ring };
    this.turnBudget = opts.turnBudget ?? DEFAULT_TURN_BUDGET;
    this.perRing = opts.perRingBudget ?? DEFAULT_PER_RING_BUDGET;
    this.quotas = opts.quotas ?? null;
    this.throttle = opts.writeThrottle ?? DEFAULT_WRITE_THROTTLE;
    this.now = opts.now ?? (() => performance.now());
    this.virqPort = platform.bindDomExc();
    // Signalled rings are served when the event comes (a platform without a pollable fd, in-memory
    // tests, is polled with checkEventChannel() and served by the next turn's first round).
    if (platform.eventFd >= 0) {
      loop.addFd(platform.eventFd, () => {
        this.checkEventChannel();
        this.serveReady();
      });
    }
    // Rings left with work are served first in the next turn, before its events. The order matters:
    // serving every ring after the turn's socket input made dom0's transactions conflict about twice
    // as often with a throttled guest writer under load (tests/xen/fairness_test.ts, XSA-206).
    loop.onServe("first", () => this.serveReady(), () => this.ready.size > 0);
    // Domain records (a ring's watches) are stored before the turn's output is tagged, so a WATCH
    // reply goes out only once the record holding that watch is durable.
    loop.onBeforeOutput(() => this.reportWatchChanges());
    loop.onTurnEnd(() => this.turnEnd());
    core.watches.onOwnerChanged((owner) => {
      if (this.byClient.has(owner)) this.watchesChanged = true;
    });
    events.serveRingsWith(this);
  }

  // ---- RingPort: the domain registry attaches and detaches rings ---------------------------------

  attach(spec: RingSpec): RingHandle {
    const conn = new RingConnection(
      { domid: spec.domid, privileged: spec.privileged, features: spec.features },
      spec.page,
      spec.localPort,
      this,
      this.limits,
      new WriteCredit(this.throttle, this.now()),
    );
    conn.target = spec.target;
    // Advertise before anything moves in the ring (xenstore-ring.txt); bits are never withdrawn.
    conn.page.set(
      Field.SERVER_FEATURES,
      conn.page.get(Field.SERVER_FEATURES) | (spec.features & RING_FEATURE_MASK),
    );
    this.newClient(conn);
    this.byPort.set(conn.localPort, conn);
    if (spec.fresh) {
      // A new connection starts from an empty ring (as cxenstored's domain_conn_reset): nothing a
      // previous incarnation (kexec, soft reset) left in it is taken for a request of this one. A
      // guest that found connection=1 and waits (dom0less) is told the ring is connected.
      conn.reset();
      conn.page.set(Field.CONNECTION, CONNECTED);
    }
    this.ready.add(conn); // dom0's kernel or a restarted guest may have written requests already
    this.touch(conn);
    return {
      clientId: () => conn.client.id,
      rebind: (port) => this.rebind(conn, port),
      reset: (why) => this.resetConnection(conn, why),
      setTarget: (target) => {
        conn.target = target;
        conn.client.target = target;
      },
      info: () => this.info(conn),
      close: () => this.detach(conn),
      adoptState: (input, output, partial) => conn.adoptState(input, output, partial),
    };
  }

  /** The live ring connections (live update, diagnostics). */
  connections(): Iterable<RingConnection> {
    return this.byPort.values();
  }

  /** Stop serving: the event channel leaves the loop (rings are detached first). */
  close(): void {
    if (this.platform.eventFd >= 0) this.loop.removeFd(this.platform.eventFd);
  }

  private info(conn: RingConnection): RingInfo {
    return {
      state: conn.state,
      clientId: conn.client.id,
      queuedBytes: conn.queuedBytes,
      queuedEvents: conn.queuedEvents,
      droppedEvents: conn.stats.droppedEvents,
      requests: conn.stats.requests,
      features: conn.id.features,
      target: conn.target,
    };
  }

  private newClient(conn: RingConnection): void {
    const c = conn.id.privileged
      ? this.core.open(conn, conn.label)
      : this.core.openGuest(conn.domid, conn, conn.label);
    c.target = conn.target;
    c.features = conn.id.features;
    conn.client = c;
    this.byClient.set(c.id, conn);
  }

  /** INTRODUCE of an introduced domain re-binds its event channel: signals now come on `port`. */
  private rebind(conn: RingConnection, port: number): void {
    this.byPort.delete(conn.localPort);
    conn.localPort = port;
    this.byPort.set(port, conn);
  }

  /** Drop everything the connection had and start it afresh (reconnection, re-INTRODUCE). */
  private resetConnection(conn: RingConnection, why: string): void {
    const old = conn.client;
    this.byClient.delete(old.id);
    this.core.close(old); // its watches and transactions go with it
    // ...also from the stored domain records (the owner-changed hook no longer knows this client), or
    // a restart would bring the dropped watches back to the new connection.
    this.watchesChanged = true;
    this.quotas?.connectionGone(old);
    conn.reset();
    this.newClient(conn);
    conn.page.set(Field.CONNECTION, CONNECTED); // last: the guest may use the ring from here on
    this.stats.reconnects++;
    this.touch(conn);
    this.ready.add(conn);
    log("debug", `${conn.label}: connection reset (${why})`);
  }

  /** A ring fault: stop serving it, drop its watches and transactions, fire nothing (XSA-325). */
  private failConnection(conn: RingConnection, fault: RingFault): void {
    if (conn.state !== "connected") return;
    conn.fail(fault);
    this.core.watches.removeOwner(conn.client.id);
    conn.client.txns.clear();
    this.quotas?.connectionGone(conn.client); // its outstanding requests and output were dropped
    this.ready.delete(conn);
    this.touch(conn);
    this.events.ringFault(conn.domid, fault);
  }

  /** Stop serving `conn`: its client goes (watches first: no events for its own nodes' deletion). */
  private detach(conn: RingConnection): void {
    this.ready.delete(conn);
    this.parked.delete(conn);
    this.loop.output.forget(conn);
    this.byPort.delete(conn.localPort);
    this.byClient.delete(conn.client.id);
    this.core.close(conn.client);
    this.quotas?.connectionGone(conn.client);
    conn.close();
  }

  /**
   * Live update, just before the exec: let go of VIRQ_DOM_EXC (as cxenstored's domain_deinit), which
   * Xen binds once per domain, so that the new program, inheriting the event-channel descriptor, can
   * bind it again. Returns the undo for a failed exec: bound again, and the domains checked at the
   * next turn (one may have died meanwhile, its VIRQ unseen).
   */
  releaseDomExc(): () => void {
    this.platform.unbind(this.virqPort);
    return () => {
      this.virqPort = this.platform.bindDomExc();
      this.domExcPending = true;
    };
  }

  // ---- serving ------------------------------------------------------------------------------------

  /** The event channel is readable (or, without an fd, polled): the signalled rings become ready. */
  checkEventChannel(): void {
    const platform = this.platform;
    for (const port of platform.pendingPorts()) {
      if (port === this.virqPort) this.domExcPending = true;
      else {
        const conn = this.byPort.get(port);
        if (conn !== undefined) this.ready.add(conn);
      }
      platform.unmask(port);
    }
    if (this.domExcPending) {
      this.domExcPending = false;
      this.events.domainException();
    }
  }

  private serveReady(): void {
    if (this.ready.size === 0) return;
    this.txOpenCache = null;
    this.ready.run(this.turnBudget, this.perRing, this.serveOne);
  }

  /** Some transaction is open (this serving round's answer; asked only when a guest is served). */
  private get txOpen(): boolean {
    if (this.txOpenCache === null) this.txOpenCache = this.core.anyTransactionOpen();
    return this.txOpenCache;
  }

  /** Is `conn` out of write credit while transactions are open? Then it waits in `parked`. */
  private throttledNow(conn: RingConnection): boolean {
    if (conn.id.privileged || !this.txOpen || conn.credit.allowed(this.now())) return false;
    this.parked.add(conn);
    this.stats.throttled++;
    return true;
  }

  /** May `conn`'s ring be read now (write credit, quotas)? */
  private mayRead(conn: RingConnection, txOpen: boolean, now: number): boolean {
    if (!conn.id.privileged && txOpen && !conn.credit.allowed(now)) return false;
    return this.quotas === null || this.quotas.mayReceive(conn.client);
  }

  /** Serve one ring: pending output first, then up to `max` requests. */
  private serve(conn: RingConnection, max: number): ServeResult {
    if (conn.state === "closed") return { used: 0, more: false };
    if ((conn.id.features & FEATURE_RECONNECTION) && conn.page.get(Field.CONNECTION) === RECONNECT) {
      this.resetConnection(conn, "the guest asked for a reconnection");
      return { used: 0, more: false };
    }
    if (conn.state !== "connected") return { used: 0, more: false };
    let fault = this.writeOut(conn);
    let used = 0;
    while (fault === null && used < max && !conn.backedUp) {
      // An empty ring needs no quota or credit check (and must not count as a stall).
      if (!conn.hasInput) break;
      if (this.quotas !== null && !this.quotas.mayReceive(conn.client)) {
        this.parked.add(conn); // stalled, not refused
        break;
      }
      if (this.throttledNow(conn)) break; // left in the ring until the bucket refills
      const m = conn.nextRequest();
      if (m === null) break;
      if (isRingFault(m)) {
        fault = m;
        break;
      }
      used++;
      if (!conn.id.privileged && this.txOpen && isModifying(m.type, m.payload)) {
        conn.credit.debit();
      }
      this.quotas?.requestReceived(conn.client);
      this.core.message(conn.client, m);
      if (conn.state !== "connected") return { used, more: false }; // released or reset meanwhile
    }
    if (fault === null) fault = this.writeOut(conn);
    if (fault !== null) {
      this.failConnection(conn, fault);
      return { used, more: false };
    }
    if (conn.moved) this.touch(conn);
    return { used, more: used === max && conn.hasInput && !conn.backedUp && !this.parked.has(conn) };
  }

  /** Write a ring's released output and account for what was delivered. */
  private writeOut(conn: RingConnection): RingFault | null {
    const fault = conn.writeOut();
    const q = this.quotas;
    if (q !== null && conn.state === "connected") {
      for (let n = conn.takeDelivered(); n > 0; n--) q.replyDelivered(conn.client);
      if (conn.takeQueuedChanged()) q.setQueuedOutput(conn.client, conn.queuedBytes);
    }
    return fault;
  }

  // ---- RingOwner: the output stage ---------------------------------------------------------------

  outputQueued(conn: RingConnection): void {
    this.loop.output.queued(conn);
  }

  flush(conn: RingConnection): void {
    if (conn.state === "closed") return;
    const fault = this.writeOut(conn);
    if (fault !== null) this.failConnection(conn, fault);
    this.touch(conn);
  }

  // ---- turn ends ---------------------------------------------------------------------------------

  /** `conn` may have moved bytes this turn: look at it at the turn's end (once). */
  private touch(conn: RingConnection): void {
    if (conn.inTouched) return;
    conn.inTouched = true;
    this.touched[this.touchedCount++] = conn;
  }

  private reportWatchChanges(): void {
    const changed = this.watchesChanged;
    this.watchesChanged = false;
    this.events.beforeOutput(changed);
  }

  /** After the output is written: signal every ring that moved, look at parked rings again. */
  private turnEnd(): void {
    if (this.watchesChanged) this.reportWatchChanges(); // nothing left if the loop ran it before tagging the output
    const touched = this.touched;
    for (let i = 0; i < this.touchedCount; i++) {
      const conn = touched[i];
      if (conn.state !== "closed" && conn.moved) {
        conn.moved = false;
        this.platform.notify(conn.localPort);
      }
    }
    // Emptied once all are notified (a notification that threw leaves the list as it was, as the Set
    // it replaces would have been left).
    for (let i = 0; i < this.touchedCount; i++) {
      touched[i].inTouched = false;
      touched[i] = undefined as unknown as RingConnection; // let a detached ring be collected
    }
    this.touchedCount = 0;
    this.releaseParked();
    // Rings still have work: the loop's next epoll_wait does not sleep (onServe's busy check).
    if (this.ready.size > 0) this.stats.budgetExhausted++;
  }

  /** Parked rings that may be read again (credit refilled, quota no longer exceeded) are served. */
  private releaseParked(): void {
    if (this.parked.size === 0) return;
    const txOpen = this.core.anyTransactionOpen();
    const now = this.now();
    for (const conn of [...this.parked]) {
      if (conn.state !== "connected") this.parked.delete(conn);
      else if (this.mayRead(conn, txOpen, now)) {
        this.parked.delete(conn);
        this.ready.add(conn);
      }
    }
  }
}
