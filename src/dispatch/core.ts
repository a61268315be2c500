// The daemon core: the database, the watches, the quotas, the domain registry and the per-connection
// state, with the dispatcher in front. Transports (src/transport: Unix socket, Xen ring) call
// open/message/close; the core never touches a file descriptor. Everything is given to its
// constructor: the policy (fixed, or the policy manager's current chain), the observer, and the
// CONTROL handler — built here from the core itself, since CONTROL reports on the core's state.
import type { Message } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import { DomainManager, type DomainManagerOptions } from "../domains/manager.ts";
import type { Policy } from "../policy/policy.ts";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from "../quota/limits.ts";
import { type QuotaConfig, quotaOptionsFrom } from "../quota/options.ts";
import { Quotas } from "../quota/quotas.ts";
import { Database } from "../store/database.ts";
import { WatchManager } from "../watch/manager.ts";
import type { XenPlatform } from "../xen/platform.ts";
import { Client, type ReplySink } from "./client.ts";
import { Dispatcher, type PolicySource } from "./dispatcher.ts";
import { EventBuilder } from "./events.ts";
import type { ControlHandler, RequestObserver } from "./extensions.ts";

export interface CoreOptions {
  /** The policy: a fixed one, or a source whose `current` changes on reload (src/policy/manager.ts). */
  readonly policy: Policy | PolicySource;
  readonly db?: Database;
  /** Per-connection limits (default: derived from the quota table, src/quota/limits.ts). */
  readonly limits?: ConnectionLimits;
  /** Quota defaults, caps and exemption (src/quota; docs/quotas.md). */
  readonly quota?: QuotaConfig;
  /**
   * The Xen platform guests are introduced through. null: --xen=none (no rings; dom0 is the only
   * domain). Absent: a bare core (in-process tests) that does not know which domains exist.
   */
  readonly platform?: XenPlatform | null;
  /** The domain registry's options (persistence of its records, -D, -K). */
  readonly domains?: DomainManagerOptions;
  /** Sees every connection and reply (src/observe: metrics, refusal and access logs). */
  readonly observer?: RequestObserver | null;
  /**
   * Builds the CONTROL handler over this core (absent: CONTROL answers ENOSYS). Called once, by the
   * constructor, before the dispatcher exists: the handler may keep `core` but must not use it yet.
   */
  readonly control?: (core: Core) => ControlHandler;
  /** The dispatcher's clock in ms (transaction ages; tests). */
  readonly now?: () => number;
}

function isPolicySource(p: Policy | PolicySource): p is PolicySource {
  return "current" in p;
}

export class Core {
  readonly db: Database;
  readonly dispatcher: Dispatcher;
  readonly watches: WatchManager;
  /** Builds WATCH_EVENT payloads; counts the ones too large to send. */
  readonly events = new EventBuilder();
  readonly limits: ConnectionLimits;
  /** Per-domain accounting and quotas: its watch/transaction values come from `limits`. */
  readonly quotas: Quotas;
  /** The introduced domains (src/domains): lifecycle, records, cleanup. */
  readonly domains: DomainManager;
  readonly clients = new Map<number, Client>();
  private readonly observer: RequestObserver | null;
  private nextClientId = 1;

  constructor(opts: CoreOptions) {
    this.db = opts.db ?? new Database();
    this.limits = opts.limits ?? DEFAULT_CONNECTION_LIMITS;
    const observer = this.observer = opts.observer ?? null;
    this.watches = new WatchManager({
      deliver: (owner, epath, token, watch) => {
        const c = this.clients.get(owner);
        if (c === undefined) return false;
        const payload = this.events.payload(c.label, watch, epath, token);
        if (payload === null || !c.sink.send(MsgType.WATCH_EVENT, 0, 0, payload)) return false;
        if (observer !== null) observer.watchEvent(c, epath, token);
        return true;
      },
      canSee: (owner, path, kind, before, after) => {
        const c = this.clients.get(owner);
        return c !== undefined && this.dispatcher.canSee(c, path, kind, before, after);
      },
    });
    this.quotas = new Quotas({
      db: this.db,
      watches: this.watches,
      clients: this.clients,
      ...quotaOptionsFrom(this.limits, opts.quota),
    });
    const gone = opts.domains?.onDomainGone;
    this.domains = new DomainManager(opts.platform ?? null, this.db, this.watches, {
      // A core given no platform at all (in-process tests) does not know which domains exist.
      assumeDomainsExist: opts.platform === undefined,
      ...opts.domains,
      onDomainGone: (domid) => {
        this.domainGone(domid);
        gone?.(domid);
      },
    });
    this.dispatcher = new Dispatcher({
      db: this.db,
      policy: isPolicySource(opts.policy) ? opts.policy : { current: opts.policy },
      watches: this.watches,
      quotas: this.quotas,
      domains: this.domains,
      control: opts.control?.(this) ?? null,
      observer,
      now: opts.now ?? (() => Date.now()),
    });
    this.db.onCommit((c) => this.watches.onCommit(c));
  }

  /** A Unix-socket connection: the privileged control domain (dom0), as in Xen. */
  open(sink: ReplySink, label: string): Client {
    return this.add(new Client(this.nextClientId++, 0, true, sink, label, this.quotas.txLimits(0)));
  }

  /** A guest domain's ring connection: unprivileged, paths relative to its domain. */
  openGuest(domid: number, sink: ReplySink, label: string): Client {
    return this.add(new Client(this.nextClientId++, domid, false, sink, label, this.quotas.txLimits(domid)));
  }

  private add(c: Client): Client {
    this.clients.set(c.id, c);
    if (this.observer !== null) this.observer.opened(c);
    return c;
  }

  /** Whether any connection has a transaction open (the ring transport throttles guest writes then). */
  anyTransactionOpen(): boolean {
    for (const c of this.clients.values()) if (c.txns.size > 0) return true;
    return false;
  }

  /**
   * Domain `domid` is gone (released, or dead and cleaned up): what the quotas and the policy keep
   * for it goes, since Xen may give the domid to a new domain.
   */
  domainGone(domid: number): void {
    this.quotas.domainGone(domid);
    this.dispatcher.policy.domainGone?.(domid); // e.g. a Chinese Wall history
  }

  message(c: Client, m: Message): void {
    this.dispatcher.handle(c, m);
  }

  /** The connection is gone: its transactions abort and its watches disappear with it. */
  close(c: Client): void {
    this.watches.removeOwner(c.id);
    c.txns.clear();
    this.clients.delete(c.id);
    this.quotas.connectionGone(c);
    if (this.observer !== null) this.observer.closed(c);
  }
}
