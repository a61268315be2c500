// Guest domains: the registry of introduced domains, their ring connections, and the lifecycle
// messages (INTRODUCE, RELEASE, RESUME, SET_TARGET, IS_DOMAIN_INTRODUCED, GET/SET_FEATURE; GET/SET_QUOTA
// go to the quota module). It plugs into the dispatcher as its DomainHandler and into the daemon's
// single epoll loop through the event-channel fd and a turn-end hook, so ring requests are served in
// the same turns, in the same order of events, as socket requests. See docs/domains.md.
//
// Lifecycle rules (as cxenstored unless noted):
//  - INTRODUCE maps the ring, binds the event channel, writes the server features into the page and
//    fires @introduceDomain. INTRODUCE of an introduced domain rebinds the channel and resets the
//    connection (watches, transactions, buffers dropped), unless the hypervisor says the domid now
//    belongs to a new domain: then the old one is released first.
//  - Death (VIRQ_DOM_EXC, then a state query) or RELEASE: the connection and its watches and
//    transactions go, the domain's nodes and permission entries are removed (./cleanup.ts), and
//    @releaseDomain fires. A shutdown that is not (yet) a death fires @releaseDomain/<domid> once,
//    until RESUME.
//  - A ring fault (bad indices, oversized message) sets the error indicator and stops serving the
//    ring, dropping its watches and transactions, but fires nothing (XSA-325): the domain stays
//    introduced until it dies or reconnects.
//  - Ring reconnection (the guest sets connection=1; we advertise the feature): watches,
//    transactions, buffered and in-flight messages are dropped, the ring is emptied, and the guest
//    gets a brand-new client — nothing of the old connection can fire or be reached again.
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Client } from "../dispatch/client.ts";
import type { Core } from "../dispatch/core.ts";
import { FEATURE_NESTED_TRANSACTIONS, SERVER_FEATURES } from "../dispatch/dispatcher.ts";
import type { DomainHandler } from "../dispatch/extensions.ts";
import type { Capability } from "../policy/policy.ts";
import type { Request } from "../protocol/request.ts";
import { MsgType } from "../protocol/wire.ts";
import * as libc from "../../ffi/libc.ts";
import {
  CONNECTED,
  FEATURE_ERROR,
  FEATURE_RECONNECTION,
  FEATURE_WATCH_DEPTH,
  Field,
  isRingFault,
  RECONNECT,
  type RingFault,
} from "../xen/ring.ts";
import { DOMID_FIRST_RESERVED, DOMID_SELF, type MappedRing, type XenPlatform } from "../xen/platform.ts";
import { removeDomainTraces } from "./cleanup.ts";
import { nodeOwners, ReferencedDomains } from "./referenced.ts";
import { DEFAULT_RING_LIMITS, RingConnection, type RingLimits } from "./connection.ts";
import { ReadyQueue, type ServeResult } from "./scheduler.ts";
import { DEFAULT_WRITE_THROTTLE, isModifying, WriteCredit, type WriteThrottleOptions } from "./throttle.ts";

/** Requests served per loop turn across all rings, and per ring (DomainManagerOptions defaults). */
export const DEFAULT_TURN_BUDGET = 256;
export const DEFAULT_PER_RING_BUDGET = 16;

/** Features a guest domain gets unless SET_FEATURE restricted them before INTRODUCE. */
export const DOMAIN_FEATURES = FEATURE_RECONNECTION | FEATURE_ERROR | FEATURE_WATCH_DEPTH |
  FEATURE_NESTED_TRANSACTIONS;
/** The bits xenstore-ring.txt defines: the only ones written into the ring page. */
const RING_FEATURE_MASK = FEATURE_RECONNECTION | FEATURE_ERROR | FEATURE_WATCH_DEPTH;

/** What the manager needs from the daemon's loop (UnixServer provides it). */
export interface EventLoop {
  addFd(fd: number, onReadable: () => void): void;
  removeFd(fd: number): void;
  onTurnEnd(fn: () => void): void;
  /** Runs before the turn's output is tagged (absent: the manager stores its records at turn end). */
  onBeforeOutput?(fn: () => void): void;
  /**
   * Group commit: the record number this turn's output waits for (0: none), and the number durable
   * so far; rings write only output whose record is durable (src/common/release_marks.ts).
   */
  readonly outputTag?: number;
  readonly durable?: number;
}

/**
 * The quota module's side of guest connections (src/domains/quota.ts Quotas): GET_QUOTA/SET_QUOTA,
 * and the transport's accounting of outstanding requests and queued output.
 */
export interface DomainQuotaHooks {
  handleRequest(c: Client, req: Request): string;
  /** May another request of `c` be read now? false = stall (leave it in the ring), not an error. */
  mayReceive(c: Client): boolean;
  requestReceived(c: Client): void;
  /** One reply to `c` has been written into its ring. */
  replyDelivered(c: Client): void;
  /** Bytes queued for `c` and not yet in its ring. */
  setQueuedOutput(c: Client, bytes: number): void;
  connectionGone(c: Client): void;
  /** The domain is gone (after its nodes were removed): forget everything about it. */
  domainGone(domid: number): number;
}

/** What must survive a restart about an introduced domain (src/backend/domains.ts DomainRecord). */
/** Watches restored per connection at most (a ring connection holds at most its watch quota). */
const MAX_RESTORED_WATCHES = 65536;

export interface IntroducedDomain {
  readonly domid: number;
  readonly ringGfn: number;
  readonly eventChannel: number;
  readonly target?: number;
  readonly extra?: {
    readonly features: number;
    /** The ring connection's watches: a guest kernel cannot know the daemon restarted, so they are
     *  persisted with the domain and re-registered on re-attach (as cxenstored's live update does). */
    readonly watches?: readonly StoredWatch[];
    /** This record is dom0's own ring (only its watches are restored; the ring is re-found at start). */
    readonly dom0Ring?: boolean;
  };
}

/** A ring connection's watch as persisted. */
export interface StoredWatch {
  readonly path: string;
  readonly token: string;
  readonly depth?: number;
  readonly relativeBase: string | null;
}

/** A stored record as a backend gives it back (src/backend/domains.ts DomainRecord): `extra` unchecked. */
export interface StoredDomain {
  readonly domid: number;
  readonly ringGfn: number;
  readonly eventChannel: number;
  readonly target?: number;
  readonly extra?: unknown;
}

export interface DomainManagerOptions {
  readonly ring?: Partial<RingLimits>;
  /** Requests served per loop turn across all rings (default DEFAULT_TURN_BUDGET). */
  readonly turnBudget?: number;
  /** Requests served per ring per turn (default DEFAULT_PER_RING_BUDGET). */
  readonly perRingBudget?: number;
  /** The set of introduced domains changed (persistence, src/backend/domains.ts). */
  readonly onDomainsChanged?: (domains: IntroducedDomain[]) => void;
  /** Quotas (GET/SET_QUOTA, outstanding requests, queued output); absent = none. */
  readonly quotas?: DomainQuotaHooks;
  /** Write rate of guests while transactions are open (./throttle.ts). */
  readonly writeThrottle?: WriteThrottleOptions;
  /** Clock in ms (tests). */
  readonly now?: () => number;
  /** Serve dom0's own ring when the platform has one (default true; -D / --no-domain-init: false). */
  readonly dom0Ring?: boolean;
  /** A dead domain's nodes are given to dom0 instead of deleted (-K / --keep-orphans; default false). */
  readonly keepOrphans?: boolean;
}

export interface DomainStats {
  introduced: number;
  released: number;
  died: number;
  ringFaults: number;
  reconnects: number;
  /** Turns that ended with rings still waiting (their budget ran out). */
  budgetExhausted: number;
  /** Times a guest's ring was left unread because it had no write credit. */
  throttled: number;
}

export interface RingInfo {
  readonly state: "connected" | "failed" | "closed";
  /** The core's client id of the current connection (a new one after each reconnection). */
  readonly clientId: number;
  readonly queuedBytes: number;
  readonly queuedEvents: number;
  readonly droppedEvents: number;
  readonly requests: number;
  readonly features: number;
  readonly target: number | null;
}

class Domain {
  shutdownReported = false;
  target: number | null = null;
  credit!: WriteCredit;
  constructor(
    readonly domid: number,
    readonly privileged: boolean,
    public uniqueId: string,
    public gfn: number,
    public remotePort: number,
    public localPort: number,
    readonly ring: MappedRing,
    readonly conn: RingConnection,
    readonly features: number,
  ) {}
}

export class DomainManager implements DomainHandler {
  readonly stats: DomainStats = {
    introduced: 0,
    released: 0,
    died: 0,
    ringFaults: 0,
    reconnects: 0,
    budgetExhausted: 0,
    throttled: 0,
  };
  /** Quotas; null = GET_QUOTA/SET_QUOTA answer ENOSYS and rings are not accounted. */
  quotas: DomainQuotaHooks | null;
  private readonly guests = new Map<number, Domain>();
  private dom0: Domain | null = null;
  private readonly byPort = new Map<number, Domain>();
  private readonly byClient = new Map<number, Domain>();
  /** SET_FEATURE before INTRODUCE: features for a domain that exists but is not introduced yet. */
  private readonly preset = new Map<number, { features: number; uniqueId: string }>();
  /** Domains the store refers to (SET_PERMS owners) that are not introduced: cleaned up at death too. */
  private readonly referenced: ReferencedDomains;
  private readonly ready = new ReadyQueue<Domain>();
  private readonly dirty = new Set<Domain>();
  /** Rings with output held for group commit (written once their records are durable). */
  private readonly held = new Set<Domain>();
  /**
   * Rings left unread although they may hold requests: out of write credit, or stalled by a quota
   * (outstanding requests, memory). No event may come to wake them (the guest waits for replies),
   * so they are looked at again at the end of every loop turn — at least every 50 ms.
   */
  private readonly parked = new Set<Domain>();
  /** Whether some transaction is open, computed at most once per serving round (O(clients)). */
  private txOpenCache: boolean | null = null;
  private readonly throttle: WriteThrottleOptions;
  private readonly now: () => number;
  private readonly limits: RingLimits;
  private readonly turnBudget: number;
  private readonly perRing: number;
  private virqPort = -1;
  private wakeFd = -1;
  private domExcPending = false;
  /** A ring connection's watches changed this turn: the domain records must be persisted again. */
  private watchesChanged = false;
  private readonly wakeBuf = new Uint8Array(8);

  constructor(
    private readonly core: Core,
    readonly platform: XenPlatform | null,
    private readonly loop: EventLoop | null,
    private readonly opts: DomainManagerOptions = {},
  ) {
    this.limits = { ...DEFAULT_RING_LIMITS, ...opts.ring };
    this.turnBudget = opts.turnBudget ?? DEFAULT_TURN_BUDGET;
    this.perRing = opts.perRingBudget ?? DEFAULT_PER_RING_BUDGET;
    this.quotas = opts.quotas ?? null;
    this.throttle = opts.writeThrottle ?? DEFAULT_WRITE_THROTTLE;
    this.now = opts.now ?? (() => performance.now());
    this.referenced = new ReferencedDomains(platform, (domid) => this.forgetDomain(domid, "was replaced"));
    if (platform === null) return;
    this.virqPort = platform.bindDomExc();
    if (loop !== null) {
      loop.addFd(platform.eventFd, () => this.onEventChannel());
      this.wakeFd = libc.eventfd();
      loop.addFd(this.wakeFd, () => this.onWake());
      // Domain records (a ring's watches) are stored before the turn's output is tagged, so a WATCH
      // reply goes out only once the record holding that watch is durable.
      if (loop.onBeforeOutput) loop.onBeforeOutput(() => this.persistIfChanged());
      loop.onTurnEnd(() => this.turnEnd());
    }
    // Ring connections' watches are persisted with their domain (see records()), once per turn.
    core.watches.onOwnerChanged((owner) => {
      if (this.byClient.has(owner)) this.watchesChanged = true;
    });
    if (opts.dom0Ring !== false) this.attachDom0Ring();
    this.kick(); // dom0's kernel may have written requests before we were listening
  }

  /** Make the loop's next turn serve the ready rings at once (they may have no event coming). */
  private kick(): void {
    if (this.wakeFd < 0 || this.ready.size === 0) return;
    const one = new Uint8Array(8);
    one[0] = 1;
    libc.write(this.wakeFd, one);
  }

  /** Introduced guest domains (not dom0's own ring). */
  get domainCount(): number {
    return this.guests.size;
  }

  isIntroduced(domid: number): boolean {
    return this.guests.has(domid);
  }

  /**
   * DomainHandler: the incarnation of `domid` — dom0, an introduced domain, or one the hypervisor
   * knows (remembered, so that its death is cleaned up although it was never introduced); null if
   * no domain has this domid (with --xen=none: every domid but 0).
   */
  domainIncarnation(domid: number): string | null {
    if (domid === 0) return "dom0";
    const d = this.guests.get(domid);
    if (d !== undefined) return d.uniqueId;
    return this.referenced.incarnation(domid);
  }

  /** One guest ring's state and buffers (tests, metrics), or null if `domid` is not introduced. */
  ringInfo(domid: number): RingInfo | null {
    const d = domid === 0 ? this.dom0 : this.guests.get(domid);
    if (d === undefined || d === null) return null;
    const c = d.conn;
    return {
      state: c.state,
      clientId: c.client.id,
      queuedBytes: c.queuedBytes,
      queuedEvents: c.queuedEvents,
      droppedEvents: c.stats.droppedEvents,
      requests: c.stats.requests,
      features: d.features,
      target: d.target,
    };
  }

  // ---- DomainHandler ----------------------------------------------------------------------------

  handle(c: Client, req: Request): string {
    switch (req.op) {
      case MsgType.INTRODUCE:
        this.requireCap(c, "introduce");
        this.introduce(req.domid, req.gfn, req.port);
        return "OK\0";
      case MsgType.RELEASE: {
        this.requireCap(c, "release");
        this.destroy(this.guestArg(req.domid), "released");
        return "OK\0";
      }
      case MsgType.RESUME:
        this.requireCap(c, "resume");
        this.guestArg(req.domid).shutdownReported = false;
        return "OK\0";
      case MsgType.SET_TARGET: {
        this.requireCap(c, "set-target");
        const d = this.guestArg(req.domid);
        if (req.target === 0) throw new XsError("EINVAL", "dom0 cannot be a target");
        if (!this.guests.has(req.target)) throw new XsError("ENOENT", `domain ${req.target} not introduced`);
        d.target = req.target;
        d.conn.client.target = req.target;
        this.persist();
        return "OK\0";
      }
      case MsgType.IS_DOMAIN_INTRODUCED:
        this.requireCap(c, "is-domain-introduced");
        return req.domid === 0 || req.domid === DOMID_SELF || this.guests.has(req.domid) ? "T\0" : "F\0";
      case MsgType.GET_FEATURE:
        return `${this.getFeature(c, req.domid)}\0`;
      case MsgType.SET_FEATURE:
        this.requireCap(c, "set-feature");
        this.setFeature(req.domid, req.features);
        return "OK\0";
      case MsgType.GET_QUOTA:
      case MsgType.SET_QUOTA:
        if (this.quotas === null) throw new XsError("ENOSYS", "quotas not available");
        // A <domid> must name a domain the hypervisor knows (ENOENT otherwise, as cxenstored; spec
        // QUOTA-1); the privilege check comes first, so a guest learns nothing about other domains.
        if (req.domid !== undefined && req.domid !== 0 && this.platform !== null) {
          this.requireCap(c, req.op === MsgType.GET_QUOTA ? "get-quota" : "set-quota");
          if (this.platform.domainState(req.domid) === null) {
            throw new XsError("ENOENT", `no domain ${req.domid}`);
          }
        }
        return this.quotas.handleRequest(c, req);
      default:
        throw new XsError("ENOSYS", `message type ${req.op} is not a domain request`);
    }
  }

  private requireCap(c: Client, cap: Capability): void {
    const d = this.core.dispatcher.policy.checkCapability(c, cap);
    if (d !== undefined) throw new XsError(d, cap);
  }

  /** The introduced guest named by a RELEASE/RESUME/SET_TARGET argument. */
  private guestArg(domid: number): Domain {
    if (domid === 0 || domid >= DOMID_FIRST_RESERVED) throw new XsError("EINVAL", `domain ${domid}`);
    const d = this.guests.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `domain ${domid} not introduced`);
    return d;
  }

  private getFeature(c: Client, domid: number | undefined): number {
    if (domid === undefined) return this.byClient.get(c.id)?.features ?? SERVER_FEATURES;
    if (domid !== c.domid) this.requireCap(c, "get-feature-other");
    if (domid === 0) return this.dom0?.features ?? SERVER_FEATURES;
    const d = this.guests.get(domid);
    if (d !== undefined) return d.features;
    const st = this.platform?.domainState(domid) ?? null;
    if (st === null) throw new XsError("ENOENT", `no domain ${domid}`);
    const p = this.preset.get(domid);
    return p !== undefined && p.uniqueId === st.uniqueId ? p.features : DOMAIN_FEATURES;
  }

  private setFeature(domid: number, features: number): void {
    if (domid === 0 || this.guests.has(domid)) {
      throw new XsError("EBUSY", `domain ${domid} already introduced`);
    }
    const st = this.platform?.domainState(domid) ?? null;
    if (st === null) throw new XsError("ENOENT", `no domain ${domid}`);
    if ((features & ~DOMAIN_FEATURES) !== 0) throw new XsError("EINVAL", `unsupported features ${features}`);
    this.preset.set(domid, { features, uniqueId: st.uniqueId });
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  private introduce(domid: number, gfn: number, port: number): void {
    const platform = this.platform;
    if (platform === null) throw new XsError("ENOSYS", "no Xen platform (--xen=none)");
    if (domid === 0 || domid >= DOMID_FIRST_RESERVED) {
      throw new XsError("EINVAL", `cannot introduce ${domid}`);
    }
    if (port === 0) throw new XsError("EINVAL", "event channel port 0");
    const st = platform.domainState(domid);
    if (st === null) throw new XsError("ENOENT", `no domain ${domid}`);
    const old = this.guests.get(domid);
    if (old !== undefined && old.uniqueId !== st.uniqueId) {
      // The domid was reused while we were not told of the old domain's death.
      this.destroy(old, "replaced by a new domain with the same domid");
    } else if (old !== undefined) {
      this.reintroduce(old, gfn, port);
      return;
    }
    if (st.dying) throw new XsError("ENOENT", `domain ${domid} is dying`);
    const ring = platform.mapGuestRing(domid, gfn);
    let localPort: number;
    try {
      localPort = platform.bindInterdomain(domid, port);
    } catch (e) {
      ring.unmap();
      throw e;
    }
    const p = this.preset.get(domid);
    const features = p !== undefined && p.uniqueId === st.uniqueId ? p.features : DOMAIN_FEATURES;
    const d = this.attach(domid, false, st.uniqueId, gfn, port, localPort, ring, features, true);
    this.guests.set(domid, d);
    try {
      // Stored first: a domain the daemon could not re-attach to after a restart is not introduced.
      this.persist();
    } catch (e) {
      this.detach(d); // SET_FEATURE's preset stays for the next INTRODUCE
      throw e;
    }
    this.preset.delete(domid);
    this.referenced.forget(domid);
    this.stats.introduced++;
    log("info", `dom${domid} introduced (port ${port} → local ${localPort})`);
    this.core.watches.fireSpecial("@introduceDomain", domid, "both");
  }

  /** Wire up a mapped ring: connection, client, features in the page; serve whatever is waiting. */
  private attach(
    domid: number,
    privileged: boolean,
    uniqueId: string,
    gfn: number,
    remotePort: number,
    localPort: number,
    ring: MappedRing,
    features: number,
    fresh: boolean,
  ): Domain {
    const label = `dom${domid}${privileged ? "-ring" : ""}`;
    let d: Domain | null = null;
    const conn = new RingConnection(
      domid,
      ring.page,
      label,
      { outputQueued: () => this.dirty.add(d!) },
      this.limits,
    );
    d = new Domain(domid, privileged, uniqueId, gfn, remotePort, localPort, ring, conn, features);
    d.credit = new WriteCredit(this.throttle, this.now());
    // Advertise before anything moves in the ring (xenstore-ring.txt); bits are never withdrawn.
    conn.page.set(
      Field.SERVER_FEATURES,
      conn.page.get(Field.SERVER_FEATURES) | (features & RING_FEATURE_MASK),
    );
    this.newClient(d);
    this.byPort.set(localPort, d);
    if (fresh) {
      // A new connection starts from an empty ring (as cxenstored's domain_conn_reset): nothing a
      // previous incarnation (kexec, soft reset) left in it is taken for a request of this one. A
      // guest that found connection=1 and waits (dom0less) is told the ring is connected.
      conn.reset();
      conn.page.set(Field.CONNECTION, CONNECTED);
    }
    this.ready.add(d);
    this.dirty.add(d);
    return d;
  }

  private newClient(d: Domain): void {
    const c = d.privileged
      ? this.core.open(d.conn, d.conn.label)
      : this.core.openGuest(d.domid, d.conn, d.conn.label);
    c.target = d.target;
    c.features = d.features;
    d.conn.client = c;
    this.byClient.set(c.id, d);
  }

  /** INTRODUCE of an introduced domain: rebind the event channel and reset the connection. */
  private reintroduce(d: Domain, gfn: number, port: number): void {
    const platform = this.platform!;
    platform.unbind(d.localPort);
    this.byPort.delete(d.localPort);
    d.localPort = platform.bindInterdomain(d.domid, port); // on failure the domain has no channel until the next INTRODUCE
    d.remotePort = port;
    d.gfn = gfn;
    this.byPort.set(d.localPort, d);
    this.resetConnection(d, "re-introduced");
    this.persist();
  }

  /** Drop everything the connection had and start it afresh (reconnection, re-INTRODUCE). */
  private resetConnection(d: Domain, why: string): void {
    const old = d.conn.client;
    this.byClient.delete(old.id);
    this.core.close(old); // its watches and transactions go with it
    this.quotas?.connectionGone(old);
    d.conn.reset();
    this.newClient(d);
    d.conn.page.set(Field.CONNECTION, CONNECTED); // last: the guest may use the ring from here on
    this.stats.reconnects++;
    this.dirty.add(d);
    this.ready.add(d);
    log("debug", `${d.conn.label}: connection reset (${why})`);
  }

  /** A ring fault: stop serving it, drop its watches and transactions, fire nothing (XSA-325). */
  private failConnection(d: Domain, fault: RingFault): void {
    if (d.conn.state !== "connected") return;
    d.conn.fail(fault, d.features);
    this.core.watches.removeOwner(d.conn.client.id);
    d.conn.client.txns.clear();
    this.quotas?.connectionGone(d.conn.client); // its outstanding requests and output were dropped
    this.ready.delete(d);
    this.dirty.add(d);
    this.stats.ringFaults++;
    log(
      "warn",
      `${d.conn.label}: ${
        fault === "ring-index" ? "inconsistent ring indices" : "message longer than 4096 bytes"
      }; ` +
        `no longer serving its ring (${this.stats.ringFaults} ring faults so far)`,
    );
  }

  /** Stop serving `d`: its connection, event channel and ring go (its nodes are not touched). */
  private detach(d: Domain): void {
    this.guests.delete(d.domid);
    this.ready.delete(d);
    this.dirty.delete(d);
    this.held.delete(d);
    this.parked.delete(d);
    this.byPort.delete(d.localPort);
    this.byClient.delete(d.conn.client.id);
    // Watches first, so the domain gets no events for its own nodes' deletion (as cxenstored).
    this.core.close(d.conn.client);
    this.quotas?.connectionGone(d.conn.client);
    d.conn.close();
    this.platform!.unbind(d.localPort);
    d.ring.unmap();
  }

  /** Release or death: everything of the domain goes; @releaseDomain fires. */
  private destroy(d: Domain, why: string): void {
    if (!this.guests.has(d.domid) || this.guests.get(d.domid) !== d) return;
    this.detach(d);
    for (const other of this.guests.values()) {
      if (other.target === d.domid) {
        other.target = null;
        other.conn.client.target = null;
      }
    }
    this.preset.delete(d.domid);
    this.referenced.forget(d.domid);
    const r = removeDomainTraces(this.core.db, d.domid, this.opts.keepOrphans);
    this.quotas?.domainGone(d.domid);
    this.core.dispatcher.policy.domainGone?.(d.domid); // e.g. a Chinese Wall history: the domid may return
    if (why === "released") this.stats.released++;
    else this.stats.died++;
    log(
      "info",
      `dom${d.domid} ${why}: ${r.removed} owned subtrees removed, ${r.stripped} permission lists cleaned` +
        (r.orphaned > 0 ? ` (${r.orphaned} owned nodes given to dom0: --keep-orphans)` : ""),
    );
    this.core.watches.fireSpecial("@releaseDomain", d.domid, "both");
    this.persist();
  }

  /** VIRQ_DOM_EXC: find the domains that shut down or died. */
  checkDomains(): void {
    const platform = this.platform;
    if (platform === null) return;
    let shutdown = false;
    for (const d of [...this.guests.values()]) {
      const st = platform.domainState(d.domid);
      if (st === null || st.dying || st.uniqueId !== d.uniqueId) {
        this.destroy(d, st === null || st.uniqueId !== d.uniqueId ? "died" : "is dying");
      } else if (st.shutdown && !d.shutdownReported) {
        d.shutdownReported = true;
        shutdown = true;
        this.core.watches.fireSpecial("@releaseDomain", d.domid, "perDomain");
      }
    }
    if (shutdown) this.core.watches.fireSpecial("@releaseDomain", 0, "plain");
    for (const domid of this.referenced.takeGone()) this.forgetDomain(domid, "died before being introduced");
    for (const [domid, p] of [...this.preset]) {
      if (platform.domainState(domid)?.uniqueId !== p.uniqueId) this.preset.delete(domid);
    }
  }

  /**
   * A domain that was never introduced is gone: remove its traces by the same rule as at a death
   * (./cleanup.ts), and forget its quota usage and plugin state. No @releaseDomain: it never had a
   * connection (as cxenstored).
   */
  private forgetDomain(domid: number, why: string): void {
    const r = removeDomainTraces(this.core.db, domid, this.opts.keepOrphans);
    this.quotas?.domainGone(domid);
    this.core.dispatcher.policy.domainGone?.(domid);
    log(
      "info",
      `dom${domid} ${why}: ${r.removed} owned subtrees removed, ${r.stripped} permission lists cleaned`,
    );
  }

  // ---- dom0's own ring and restarts ---------------------------------------------------------------

  private attachDom0Ring(): void {
    const r = this.platform!.dom0Ring();
    if (r === null) return;
    let localPort: number;
    try {
      localPort = this.platform!.bindInterdomain(0, r.remotePort);
    } catch (e) {
      r.ring.unmap();
      log("error", `dom0's ring: cannot bind port ${r.remotePort}: ${(e as Error).message}`);
      return;
    }
    // Not reset: dom0's kernel may already have written requests (served at the first turn).
    this.dom0 = this.attach(0, true, "dom0", 0, r.remotePort, localPort, r.ring, DOMAIN_FEATURES, false);
    log("info", `serving dom0's ring (port ${r.remotePort} → local ${localPort})`);
  }

  /** The introduced domains (and dom0's ring watches), for persistence. */
  records(): IntroducedDomain[] {
    const out: IntroducedDomain[] = [...this.guests.values()].map((d) => ({
      domid: d.domid,
      ringGfn: d.gfn,
      eventChannel: d.remotePort,
      ...(d.target !== null ? { target: d.target } : {}),
      extra: { features: d.features, watches: this.storedWatches(d) },
    }));
    const dom0 = this.dom0;
    if (dom0 !== null && this.core.watches.countOwner(dom0.conn.client.id) > 0) {
      out.push({
        domid: 0,
        ringGfn: 0,
        eventChannel: dom0.remotePort,
        extra: { features: dom0.features, watches: this.storedWatches(dom0), dom0Ring: true },
      });
    }
    return out;
  }

  private storedWatches(d: Domain): StoredWatch[] {
    return this.core.watches.trie.watchesOf(d.conn.client.id).map((w) => ({
      path: w.path,
      token: w.token,
      ...(w.depth !== undefined ? { depth: w.depth } : {}),
      relativeBase: w.relativeBase,
    }));
  }

  /**
   * Re-register a restored connection's watches, each followed by one event: the spec allows spurious
   * events, and events queued but not yet copied into the ring when the daemon died are lost, so every
   * watcher re-reads what it watches.
   */
  private restoreWatches(d: Domain, stored: unknown): void {
    if (!Array.isArray(stored)) return;
    const owner = d.conn.client.id;
    let n = 0;
    for (const s of stored.slice(0, MAX_RESTORED_WATCHES)) {
      const w = s as Partial<StoredWatch>;
      if (typeof w.path !== "string" || typeof w.token !== "string") continue;
      if (w.depth !== undefined && !(Number.isSafeInteger(w.depth) && w.depth >= 0)) continue;
      if (w.relativeBase !== null && typeof w.relativeBase !== "string") continue;
      const watch = {
        owner,
        path: w.path,
        token: w.token,
        depth: w.depth,
        relativeBase: w.relativeBase ?? null,
      };
      if (this.core.watches.add(watch)) {
        this.core.watches.fireInitial(watch);
        n++;
      }
    }
    if (n > 0) log("info", `${d.conn.label}: ${n} watches restored`);
  }

  private persist(): void {
    this.opts.onDomainsChanged?.(this.records());
  }

  /**
   * After a restart: re-attach to domains that were introduced before, without resetting their
   * rings or firing @introduceDomain. Domains that died meanwhile are cleaned up and released.
   */
  restore(records: readonly StoredDomain[]): void {
    const platform = this.platform;
    if (platform === null) return;
    for (const r of records) {
      if (r.domid === 0) {
        // dom0's own ring was found again at start (attachDom0Ring); only its watches come back.
        if (this.dom0 !== null) {
          this.restoreWatches(this.dom0, (r.extra as IntroducedDomain["extra"])?.watches);
        }
        continue;
      }
      const st = platform.domainState(r.domid);
      if (st === null || st.dying) {
        const res = removeDomainTraces(this.core.db, r.domid, this.opts.keepOrphans);
        log("info", `dom${r.domid} died while we were down: ${res.removed} owned subtrees removed`);
        this.core.watches.fireSpecial("@releaseDomain", r.domid, "both");
        continue;
      }
      try {
        const ring = platform.mapGuestRing(r.domid, r.ringGfn);
        let localPort: number;
        try {
          localPort = platform.bindInterdomain(r.domid, r.eventChannel);
        } catch (e) {
          ring.unmap();
          throw e;
        }
        const f = (r.extra as { features?: unknown } | undefined)?.features;
        const features = typeof f === "number" && (f & ~DOMAIN_FEATURES) === 0 ? f : DOMAIN_FEATURES;
        const d = this.attach(
          r.domid,
          false,
          st.uniqueId,
          r.ringGfn,
          r.eventChannel,
          localPort,
          ring,
          features,
          false,
        );
        this.guests.set(r.domid, d);
        this.restoreWatches(d, (r.extra as IntroducedDomain["extra"])?.watches);
      } catch (e) {
        log("error", `dom${r.domid}: cannot re-attach: ${(e as Error).message}`);
      }
    }
    for (const r of records) {
      const d = this.guests.get(r.domid);
      if (d !== undefined && r.target !== undefined && this.guests.has(r.target)) {
        d.target = r.target;
        d.conn.client.target = r.target;
      }
    }
    // Owners that are neither dom0 nor introduced: remembered if they still exist (so their death is
    // cleaned up), cleaned up now if they died while we were down.
    for (const domid of nodeOwners(this.core.db.root)) {
      if (domid !== 0 && !this.guests.has(domid) && this.referenced.incarnation(domid) === null) {
        this.forgetDomain(domid, "is gone (found at start)");
      }
    }
    this.persist();
    this.kick();
  }

  // ---- serving the rings ------------------------------------------------------------------------

  private onEventChannel(): void {
    const platform = this.platform!;
    for (const port of platform.pendingPorts()) {
      if (port === this.virqPort) this.domExcPending = true;
      else {
        const d = this.byPort.get(port);
        if (d !== undefined) this.ready.add(d);
      }
      platform.unmask(port);
    }
    if (this.domExcPending) {
      this.domExcPending = false;
      this.checkDomains();
    }
    this.serveReady();
  }

  private onWake(): void {
    libc.read(this.wakeFd, this.wakeBuf);
    this.serveReady();
  }

  private serveReady(): void {
    this.txOpenCache = null;
    this.ready.run(this.turnBudget, this.perRing, (d, max) => this.serve(d, max));
  }

  /** Some transaction is open (this serving round's answer; asked only when a guest is served). */
  private get txOpen(): boolean {
    if (this.txOpenCache === null) this.txOpenCache = this.anyTransactionOpen();
    return this.txOpenCache;
  }

  private anyTransactionOpen(): boolean {
    for (const c of this.core.clients.values()) if (c.txns.size > 0) return true;
    return false;
  }

  /** Is `d` out of write credit while transactions are open? Then it waits in `parked`. */
  private throttledNow(d: Domain): boolean {
    if (d.privileged || !this.txOpen || d.credit.allowed(this.now())) return false;
    this.parked.add(d);
    this.stats.throttled++;
    return true;
  }

  /** May `d`'s ring be read now (write credit, quotas)? */
  private mayRead(d: Domain, txOpen: boolean, now: number): boolean {
    if (!d.privileged && txOpen && !d.credit.allowed(now)) return false;
    return this.quotas === null || this.quotas.mayReceive(d.conn.client);
  }

  /** Serve one ring: pending output first, then up to `max` requests. */
  private serve(d: Domain, max: number): ServeResult {
    const conn = d.conn;
    if (conn.state === "closed") return { used: 0, more: false };
    if ((d.features & FEATURE_RECONNECTION) && conn.page.get(Field.CONNECTION) === RECONNECT) {
      this.resetConnection(d, "the guest asked for a reconnection");
      return { used: 0, more: false };
    }
    if (conn.state !== "connected") return { used: 0, more: false };
    let fault = this.flush(d);
    let used = 0;
    while (fault === null && used < max && !conn.backedUp) {
      // An empty ring needs no quota or credit check (and must not count as a stall).
      if (!conn.hasInput) break;
      if (this.quotas !== null && !this.quotas.mayReceive(conn.client)) {
        this.parked.add(d); // stalled, not refused
        break;
      }
      if (this.throttledNow(d)) break; // left in the ring until the bucket refills
      const m = conn.nextRequest();
      if (m === null) break;
      if (isRingFault(m)) {
        fault = m;
        break;
      }
      used++;
      if (!d.privileged && this.txOpen && isModifying(m.type, m.payload)) d.credit.debit();
      this.quotas?.requestReceived(conn.client);
      this.core.message(conn.client, m);
      if (conn.state !== "connected") return { used, more: false }; // released or reset meanwhile
    }
    if (fault === null) fault = this.flush(d);
    if (fault !== null) {
      this.failConnection(d, fault);
      return { used, more: false };
    }
    if (conn.moved) this.dirty.add(d);
    return { used, more: used === max && conn.hasInput && !conn.backedUp && !this.parked.has(d) };
  }

  /** Write a ring's queued output and account for what was delivered. */
  private flush(d: Domain): RingFault | null {
    const conn = d.conn;
    const fault = conn.flush();
    const q = this.quotas;
    if (q !== null && conn.state === "connected") {
      for (let n = conn.takeDelivered(); n > 0; n--) q.replyDelivered(conn.client);
      if (conn.takeQueuedChanged()) q.setQueuedOutput(conn.client, conn.queuedBytes);
    }
    return fault;
  }

  /** End of a loop turn: write queued output into the rings and signal the guests. */
  private persistIfChanged(): void {
    if (!this.watchesChanged) return;
    this.watchesChanged = false;
    this.persist();
  }

  private turnEnd(): void {
    this.persistIfChanged(); // nothing left if the loop ran it before tagging the output
    this.flushAll(this.loop?.outputTag ?? 0, this.loop?.durable ?? Number.MAX_SAFE_INTEGER);
    this.releaseParked();
    if (this.ready.size > 0) {
      this.stats.budgetExhausted++;
      this.kick(); // rings still have work: the next epoll_wait returns at once instead of sleeping
    }
  }

  /** Parked rings that may be read again (credit refilled, quota no longer exceeded) are served. */
  private releaseParked(): void {
    if (this.parked.size === 0) return;
    const txOpen = this.anyTransactionOpen();
    const now = this.now();
    for (const d of [...this.parked]) {
      if (d.conn.state !== "connected") this.parked.delete(d);
      else if (this.mayRead(d, txOpen, now)) {
        this.parked.delete(d);
        this.ready.add(d);
      }
    }
  }

  /** Write the rings' released output: this turn's waits for record `tag`, held output for `durable`. */
  private flushAll(tag = 0, durable = Number.MAX_SAFE_INTEGER): void {
    for (const d of this.dirty) {
      if (d.conn.state === "closed") continue;
      d.conn.markOutput(tag);
      if (d.conn.marks.waiting) this.held.add(d);
    }
    for (const d of this.held) {
      d.conn.marks.release(durable);
      if (!d.conn.marks.waiting || d.conn.state === "closed") this.held.delete(d);
      this.dirty.add(d);
    }
    for (const d of this.dirty) {
      const conn = d.conn;
      if (conn.state === "closed") continue;
      const fault = this.flush(d);
      if (fault !== null) this.failConnection(d, fault);
      if (conn.moved) {
        conn.moved = false;
        this.platform!.notify(d.localPort);
      }
    }
    this.dirty.clear();
  }

  /** Without an event loop (tests): take pending events, serve, flush — one loop turn. */
  pump(): void {
    if (this.platform !== null) this.onEventChannel();
    this.flushAll(this.loop?.outputTag ?? 0, this.loop?.durable ?? Number.MAX_SAFE_INTEGER);
    this.releaseParked();
  }

  /** The daemon is stopping: unmap every ring and close the event channel. */
  close(): void {
    const all = [...this.guests.values(), ...(this.dom0 ? [this.dom0] : [])];
    for (const d of all) {
      this.core.close(d.conn.client);
      d.conn.close();
      this.platform?.unbind(d.localPort);
      d.ring.unmap();
    }
    this.guests.clear();
    this.dom0 = null;
    this.byPort.clear();
    this.byClient.clear();
    if (this.platform !== null) {
      if (this.loop !== null) {
        this.loop.removeFd(this.platform.eventFd);
        this.loop.removeFd(this.wakeFd);
      }
      if (this.wakeFd >= 0) libc.close(this.wakeFd);
      this.platform.close();
    }
  }
}
