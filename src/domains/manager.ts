// Guest domains: the registry of introduced domains — their lifecycle, their records and what they
// leave behind. The dispatcher's operation table calls it for INTRODUCE, RELEASE, RESUME, SET_TARGET,
// IS_DOMAIN_INTRODUCED and GET/SET_FEATURE (after the policy granted the capability); it maps rings
// and binds event channels through the XenPlatform, and has the ring transport (src/transport,
// through ./rings.ts RingPort) serve them. From the transport it learns, through the RingEvents it
// implements, what only the transport sees: VIRQ_DOM_EXC, a ring that broke the protocol, changed
// ring watches. See docs/domains.md.
//
// Lifecycle rules (as cxenstored unless noted):
//  - INTRODUCE maps the ring, binds the event channel, has the features written into the page and
//    fires @introduceDomain. INTRODUCE of an introduced domain rebinds the channel and resets the
//    connection (watches, transactions, buffers dropped), unless the hypervisor says the domid now
//    belongs to a new domain: then the old one is released first.
//  - Death (VIRQ_DOM_EXC, then a state query) or RELEASE: the connection and its watches and
//    transactions go, the domain's nodes and permission entries are removed (./cleanup.ts), and
//    @releaseDomain fires. A shutdown that is not (yet) a death fires @releaseDomain/<domid> once,
//    until RESUME.
//  - A ring fault (bad indices, oversized message): the transport sets the error indicator and stops
//    serving the ring, dropping its watches and transactions; nothing fires (XSA-325) and the domain
//    stays introduced until it dies or reconnects.
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { DomainRecord, StoredWatch } from "../backend/domains.ts";
import { DOMAIN_FEATURES, PAYLOAD_MAX, SERVER_FEATURES } from "../protocol/wire.ts";
import type { Database } from "../store/database.ts";
import type { WatchManager } from "../watch/manager.ts";
import { DOMID_FIRST_RESERVED, DOMID_SELF, type MappedRing, type XenPlatform } from "../xen/platform.ts";
import type { RingFault } from "../xen/ring.ts";
import { type CleanupResult, removeDomainTraces } from "./cleanup.ts";
import type { RingHandle, RingInfo, RingPort } from "./rings.ts";
import { nodeOwners, ReferencedDomains } from "./referenced.ts";
import { type AdoptedDomain, Domain } from "./domain.ts";
import { FeaturePresets } from "./features.ts";

export interface DomainManagerOptions {
  /** The set of introduced domains changed (persistence, src/backend/domains.ts). */
  readonly onDomainsChanged?: (domains: DomainRecord[]) => void;
  /**
   * A domain is gone (released, or dead and cleaned up): per-domain state elsewhere must go, since Xen
   * may give the domid to a new domain (quota overrides and counters, a plugin's history).
   */
  readonly onDomainGone?: (domid: number) => void;
  /** Serve dom0's own ring when the platform has one (default true; -D / --no-domain-init: false). */
  readonly dom0Ring?: boolean;
  /**
   * No hypervisor view at all (a bare core in in-process tests): every domid is taken for an existing
   * domain (SET_PERMS refuses no owner). Default false: only dom0 and the domains the platform knows.
   */
  readonly assumeDomainsExist?: boolean;
  /** A dead domain's nodes are given to dom0 instead of deleted (-K / --keep-orphans; default false). */
  readonly keepOrphans?: boolean;
}

export interface DomainStats {
  introduced: number;
  released: number;
  died: number;
  /** Rings that broke the protocol and are no longer served (the domains stay introduced). */
  ringFaults: number;
}

export class DomainManager {
  readonly stats: DomainStats = { introduced: 0, released: 0, died: 0, ringFaults: 0 };
  private readonly guests = new Map<number, Domain>();
  private dom0: Domain | null = null;
  /** SET_FEATURE before INTRODUCE (read and restored by a live update: DX_FEATURES). */
  readonly presets = new FeaturePresets();
  /** The ring transport; registered by it (src/transport/ring_server.ts) when the daemon is built. */
  private rings: RingPort | null = null;
  /** Domains the store refers to (SET_PERMS owners) that are not introduced: cleaned up at death too. */
  private readonly referenced: ReferencedDomains;
  /** Storing the domain records failed outside a request: retried at every turn. */
  private recordsUnsaved = false;
  /** Gone domains whose nodes could not be removed yet (the disk refused the commit). */
  private readonly cleanupPending_ = new Set<number>();

  constructor(
    readonly platform: XenPlatform | null,
    private readonly db: Database,
    private readonly watches: WatchManager,
    private readonly opts: DomainManagerOptions = {},
  ) {
    this.referenced = new ReferencedDomains(platform, (domid) => this.forgetDomain(domid, "was replaced"));
  }

  // ---- the transport's side (RingRegistry, src/transport/ring_server.ts) -------------------------

  /** The ring transport registers itself once, when it is built; rings are attached through it. */
  serveRingsWith(port: RingPort): void {
    if (this.rings !== null) throw new Error("a ring transport is already registered");
    if (this.platform === null) throw new Error("no Xen platform: no rings to serve");
    this.rings = port;
  }

  /** VIRQ_DOM_EXC arrived on the event channel. */
  domainException(): void {
    this.checkDomains();
  }

  /** The transport stopped serving `domid`'s ring for a protocol fault. */
  ringFault(domid: number, fault: RingFault): void {
    this.stats.ringFaults++;
    log(
      "warn",
      `dom${domid}${domid === 0 ? "-ring" : ""}: ${
        fault === "ring-index" ? "inconsistent ring indices" : `message longer than ${PAYLOAD_MAX} bytes`
      }; no longer serving its ring (${this.stats.ringFaults} ring faults so far)`,
    );
  }

  /**
   * Every turn, before its output is tagged: clean-ups the disk refused are retried, and the records
   * are stored again if ring connections' watches changed (the records carry them) or an earlier
   * store failed.
   */
  beforeOutput(watchesChanged: boolean): void {
    if (this.cleanupPending_.size !== 0) { for (const d of [...this.cleanupPending_]) this.removeTraces(d); }
    if (watchesChanged || this.recordsUnsaved) this.persistSafely();
  }

  // ---- queries ------------------------------------------------------------------------------------

  /** `domid` is gone but its nodes are still to be removed (the disk refused; retried every turn). */
  cleanupPending(domid: number): boolean {
    return this.cleanupPending_.has(domid);
  }

  /** Introduced guest domains (not dom0's own ring). */
  get domainCount(): number {
    return this.guests.size;
  }

  isIntroduced(domid: number): boolean {
    return this.guests.has(domid);
  }

  /** IS_DOMAIN_INTRODUCED: dom0 and DOMID_SELF always are (as cxenstored). */
  introducedForClients(domid: number): boolean {
    return domid === 0 || domid === DOMID_SELF || this.guests.has(domid);
  }

  /**
   * The incarnation of `domid` — dom0, an introduced domain, or one the hypervisor knows (remembered,
   * so that its death is cleaned up although it was never introduced); null if no domain has this
   * domid (with --xen=none: every domid but 0). SET_PERMS refuses an owner that does not exist
   * (ENOENT, as cxenstored; XSA-322/417).
   */
  domainIncarnation(domid: number): string | null {
    if (domid === 0) return "dom0";
    if (this.opts.assumeDomainsExist === true) return "unknown";
    const d = this.guests.get(domid);
    if (d !== undefined) return d.uniqueId;
    return this.referenced.incarnation(domid);
  }

  /** One ring's state and buffers (tests, metrics), or null if `domid` has no ring served. */
  ringInfo(domid: number): RingInfo | null {
    const d = domid === 0 ? this.dom0 : this.guests.get(domid);
    return d === undefined || d === null ? null : d.conn.info();
  }

  /** GET_FEATURE <domid>: an introduced domain's features, else those it would be introduced with. */
  featuresOf(domid: number): number {
    if (domid === 0) return this.dom0?.features ?? SERVER_FEATURES;
    const d = this.guests.get(domid);
    if (d !== undefined) return d.features;
    const st = this.platform?.domainState(domid) ?? null;
    if (st === null) throw new XsError("ENOENT", `no domain ${domid}`);
    return this.presets.featuresFor(domid, st.uniqueId);
  }

  /** Each introduced guest's features (a live update carries them: DX_FEATURES). */
  guestFeatures(): Array<[number, number]> {
    return [...this.guests.values()].map((d) => [d.domid, d.features]);
  }

  /**
   * GET_QUOTA/SET_QUOTA <domid>: ENOENT unless the hypervisor knows the domain (as cxenstored; spec
   * QUOTA-1). Dom0 always exists; without a platform every domid is accepted.
   */
  requireKnown(domid: number): void {
    if (domid === 0 || this.platform === null) return;
    if (this.platform.domainState(domid) === null) throw new XsError("ENOENT", `no domain ${domid}`);
  }

  // ---- requests -----------------------------------------------------------------------------------

  /** SET_FEATURE before INTRODUCE: restrict the features the domain will get. */
  setFeature(domid: number, features: number): void {
    if (domid === 0 || this.guests.has(domid)) {
      throw new XsError("EBUSY", `domain ${domid} already introduced`);
    }
    const st = this.platform?.domainState(domid) ?? null;
    if (st === null) throw new XsError("ENOENT", `no domain ${domid}`);
    if ((features & ~DOMAIN_FEATURES) !== 0) throw new XsError("EINVAL", `unsupported features ${features}`);
    this.presets.set(domid, { features, uniqueId: st.uniqueId });
  }

  /** RELEASE: everything of the domain goes; @releaseDomain fires. */
  release(domid: number): void {
    this.destroy(this.guestArg(domid), "released");
  }

  /** RESUME: a shutdown will be reported again. */
  resume(domid: number): void {
    this.guestArg(domid).shutdownReported = false;
  }

  /** SET_TARGET: `domid` may act for `target` (a device-model stub domain for its guest). */
  setTarget(domid: number, target: number): void {
    const d = this.guestArg(domid);
    if (target === 0) throw new XsError("EINVAL", "dom0 cannot be a target");
    if (!this.guests.has(target)) throw new XsError("ENOENT", `domain ${target} not introduced`);
    d.target = target;
    d.conn.setTarget(target);
    this.persist();
  }

  /** The introduced guest named by a RELEASE/RESUME/SET_TARGET argument. */
  private guestArg(domid: number): Domain {
    if (domid === 0 || domid >= DOMID_FIRST_RESERVED) throw new XsError("EINVAL", `domain ${domid}`);
    const d = this.guests.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `domain ${domid} not introduced`);
    return d;
  }

  /** INTRODUCE: map the ring, bind the channel, serve it; @introduceDomain fires. */
  introduce(domid: number, gfn: number, port: number): void {
    const platform = this.platform;
    if (platform === null || this.rings === null) throw new XsError("ENOSYS", "no Xen platform (--xen=none)");
    if (domid === 0 || domid >= DOMID_FIRST_RESERVED) {
      throw new XsError("EINVAL", `cannot introduce ${domid}`);
    }
    if (port === 0) throw new XsError("EINVAL", "event channel port 0");
    if (this.cleanupPending_.has(domid) && this.removeTraces(domid) === null) {
      throw new XsError("EIO", `the nodes of an earlier domain ${domid} could not be removed yet`);
    }
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
    const features = this.presets.featuresFor(domid, st.uniqueId);
    const d = this.attach(domid, false, st.uniqueId, gfn, port, localPort, ring, features, true);
    this.guests.set(domid, d);
    try {
      // Stored first: a domain the daemon could not re-attach to after a restart is not introduced.
      this.persist();
    } catch (e) {
      this.detach(d); // SET_FEATURE's preset stays for the next INTRODUCE
      throw e;
    }
    this.presets.delete(domid);
    this.referenced.forget(domid);
    this.stats.introduced++;
    log("info", `dom${domid} introduced (port ${port} → local ${localPort})`);
    this.watches.fireSpecial("@introduceDomain", domid, "both");
  }

  /** Have the transport serve a mapped ring. */
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
    const conn = this.rings!.attach({
      domid,
      privileged,
      page: ring.page,
      localPort,
      features,
      target: null,
      fresh,
    });
    return new Domain(domid, privileged, uniqueId, gfn, remotePort, localPort, ring, conn, features);
  }

  /** INTRODUCE of an introduced domain: rebind the event channel and reset the connection. */
  private reintroduce(d: Domain, gfn: number, port: number): void {
    const platform = this.platform!;
    platform.unbind(d.localPort);
    d.localPort = platform.bindInterdomain(d.domid, port); // on failure the domain has no channel until the next INTRODUCE
    d.remotePort = port;
    d.gfn = gfn;
    d.conn.rebind(d.localPort);
    d.conn.reset("re-introduced");
    this.persist();
  }

  /** Stop serving `d`: its connection, event channel and ring go (its nodes are not touched). */
  private detach(d: Domain): void {
    this.guests.delete(d.domid);
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
        other.conn.setTarget(null);
      }
    }
    this.presets.delete(d.domid);
    this.referenced.forget(d.domid);
    const r = this.removeTraces(d.domid);
    if (why === "released") this.stats.released++;
    else this.stats.died++;
    if (r !== null) {
      log(
        "info",
        `dom${d.domid} ${why}: ${r.removed} owned subtrees removed, ${r.stripped} permission lists cleaned` +
          (r.orphaned > 0 ? ` (${r.orphaned} owned nodes given to dom0: --keep-orphans)` : ""),
      );
    }
    this.watches.fireSpecial("@releaseDomain", d.domid, "both");
    this.persistSafely();
  }

  /**
   * Remove a gone domain's nodes and permission entries (./cleanup.ts), then have its per-domain state
   * elsewhere forgotten (quota usage, plugin state: the domid may return). That is a commit, which the
   * disk may refuse: then the loop must not die of it (this runs in a turn, not only in a request) —
   * the domain is retried every turn, and INTRODUCE of its domid waits for it (a new domain must
   * inherit nothing). Null if it failed.
   */
  private removeTraces(domid: number): CleanupResult | null {
    let r: CleanupResult;
    try {
      r = removeDomainTraces(this.db, domid, this.opts.keepOrphans);
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      if (!this.cleanupPending_.has(domid)) {
        log("error", `dom${domid} is gone but its nodes could not be removed (${e.message}); retrying`);
      }
      this.cleanupPending_.add(domid);
      return null;
    }
    if (this.cleanupPending_.delete(domid)) log("info", `dom${domid}: its nodes are removed now`);
    this.opts.onDomainGone?.(domid);
    return r;
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
        this.watches.fireSpecial("@releaseDomain", d.domid, "perDomain");
      }
    }
    if (shutdown) this.watches.fireSpecial("@releaseDomain", 0, "plain");
    for (const domid of this.referenced.takeGone()) this.forgetDomain(domid, "died before being introduced");
    this.presets.prune((domid) => platform.domainState(domid)?.uniqueId ?? null);
  }

  /**
   * A domain that was never introduced is gone: remove its traces by the same rule as at a death
   * (./cleanup.ts), and forget its per-domain state elsewhere (quota usage, plugin state). No
   * @releaseDomain: it never had a connection (as cxenstored).
   */
  private forgetDomain(domid: number, why: string): void {
    const r = this.removeTraces(domid);
    if (r === null) return;
    log(
      "info",
      `dom${domid} ${why}: ${r.removed} owned subtrees removed, ${r.stripped} permission lists cleaned`,
    );
  }

  // ---- start, records and restarts ----------------------------------------------------------------

  /**
   * Start serving: dom0's own ring (unless -D), then the domains stored before a restart (`records`):
   * re-attached to without resetting their rings or firing @introduceDomain; those that died
   * meanwhile are cleaned up and released.
   */
  start(records: readonly DomainRecord[]): void {
    if (this.platform === null || this.rings === null) return;
    if (this.opts.dom0Ring !== false) this.attachDom0Ring();
    this.restore(records);
  }

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
    // Signal dom0's kernel, as cxenstored's start does: a kernel whose xenbus came up before any
    // xenstored waits for an event on this channel before it probes (Linux writes
    // /local/domain/0/control/* then); without it that waits until dom0's first own request.
    this.platform!.notify(localPort);
    log("info", `serving dom0's ring (port ${r.remotePort} → local ${localPort})`);
  }

  /** Live update (./adopt_rings.ts): serve a ring on its adopted channel; nothing reset or fired. */
  adoptAttached(a: AdoptedDomain, ring: MappedRing): RingHandle {
    const d = this.attach(
      a.domid,
      a.domid === 0,
      a.uniqueId,
      0,
      a.remotePort,
      a.localPort,
      ring,
      a.features,
      false,
    );
    if (a.domid === 0) this.dom0 = d;
    else this.guests.set(a.domid, d);
    if (a.target !== null) {
      d.target = a.target;
      d.conn.setTarget(a.target);
    }
    this.persistSafely();
    return d.conn;
  }

  /** The introduced domains (and dom0's ring watches), for persistence. */
  records(): DomainRecord[] {
    const out: DomainRecord[] = [...this.guests.values()].map((d) => ({
      domid: d.domid,
      ringGfn: d.gfn,
      eventChannel: d.remotePort,
      ...(d.target !== null ? { target: d.target } : {}),
      extra: { features: d.features, watches: this.storedWatches(d) },
    }));
    const dom0 = this.dom0;
    if (dom0 !== null && this.watches.countOwner(dom0.conn.clientId()) > 0) {
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
    return this.watches.trie.watchesOf(d.conn.clientId()).map((w) => ({
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
  private restoreWatches(d: Domain, stored: readonly StoredWatch[] | undefined): void {
    const owner = d.conn.clientId();
    let n = 0;
    for (const s of stored ?? []) {
      const watch = { owner, path: s.path, token: s.token, depth: s.depth, relativeBase: s.relativeBase };
      if (this.watches.add(watch)) {
        this.watches.fireInitial(watch);
        n++;
      }
    }
    if (n > 0) log("info", `dom${d.domid}${d.privileged ? "-ring" : ""}: ${n} watches restored`);
  }

  private persist(): void {
    this.opts.onDomainsChanged?.(this.records());
  }

  /**
   * Store the domain records outside a request (a turn, a death, a restart): a failure (a full or
   * broken disk) is logged and retried next turn instead of ending the loop.
   */
  private persistSafely(): void {
    try {
      this.persist();
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      if (!this.recordsUnsaved) {
        log("error", `the introduced domains could not be stored (${e.message}); retrying`);
      }
      this.recordsUnsaved = true;
      return;
    }
    this.recordsUnsaved = false;
  }

  private restore(records: readonly DomainRecord[]): void {
    const platform = this.platform!;
    for (const r of records) {
      if (r.domid === 0) {
        // dom0's own ring was found again at start (attachDom0Ring); only its watches come back.
        if (this.dom0 !== null) this.restoreWatches(this.dom0, r.extra?.watches);
        continue;
      }
      const st = platform.domainState(r.domid);
      if (st === null || st.dying) {
        const res = this.removeTraces(r.domid);
        log("info", `dom${r.domid} died while we were down: ${res?.removed ?? "no"} owned subtrees removed`);
        this.watches.fireSpecial("@releaseDomain", r.domid, "both");
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
        const f = r.extra?.features;
        const features = f !== undefined && (f & ~DOMAIN_FEATURES) === 0 ? f : DOMAIN_FEATURES;
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
        this.restoreWatches(d, r.extra?.watches);
      } catch (e) {
        log("error", `dom${r.domid}: cannot re-attach: ${(e as Error).message}`);
      }
    }
    for (const r of records) {
      const d = this.guests.get(r.domid);
      if (d !== undefined && r.target !== undefined && this.guests.has(r.target)) {
        d.target = r.target;
        d.conn.setTarget(r.target);
      }
    }
    // Owners that are neither dom0 nor introduced: remembered if they still exist (so their death is
    // cleaned up), cleaned up now if they died while we were down.
    for (const domid of nodeOwners(this.db.root)) {
      if (domid !== 0 && !this.guests.has(domid) && this.referenced.incarnation(domid) === null) {
        this.forgetDomain(domid, "is gone (found at start)");
      }
    }
    this.persistSafely();
  }

  /** The daemon is stopping: stop serving every ring, unbind and unmap it (the platform is closed after). */
  close(): void {
    const all = [...this.guests.values(), ...(this.dom0 ? [this.dom0] : [])];
    for (const d of all) {
      d.conn.close();
      this.platform?.unbind(d.localPort);
      d.ring.unmap();
    }
    this.guests.clear();
    this.dom0 = null;
  }
}
