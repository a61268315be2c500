// The daemon core: the database, the policy, the watches and the per-connection state, behind the
// transport-neutral ConnectionHandler interface. Transports (Unix socket, Xen ring) call
// open/message/close; the core never touches a file descriptor.
import type { Message } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import type { Policy } from "../policy/policy.ts";
import { Database } from "../store/database.ts";
import { DEFAULT_TX_LIMITS, type TxLimits } from "../txn/registry.ts";
import { WatchManager } from "../watch/manager.ts";
import { Client, type ReplySink } from "./client.ts";
import { Dispatcher } from "./dispatcher.ts";
import { EventBuilder } from "./events.ts";
import { type QuotaConfig, quotaOptionsFrom, Quotas } from "../domains/quota.ts";

export interface CoreLimits {
  /** Transactions of unprivileged connections. */
  readonly tx: TxLimits;
  /** Transactions of privileged (dom0 socket) connections: generous, but still bounded. */
  readonly txPrivileged: TxLimits;
  /** Watches per unprivileged connection (ENOSPC beyond). */
  readonly maxWatches: number;
  /** Watches per privileged connection (ENOSPC beyond). */
  readonly maxWatchesPrivileged: number;
}

export const DEFAULT_CORE_LIMITS: CoreLimits = {
  tx: DEFAULT_TX_LIMITS,
  // dom0 reads without a size limit (a whole store in one transaction: `dxenstored export --socket`),
  // as cxenstored and oxenstored exempt it from their per-transaction quotas.
  txPrivileged: { ...DEFAULT_TX_LIMITS, maxOpen: 1024, maxTouched: 65536, snapshotOnOverflow: true },
  maxWatches: 128,
  maxWatchesPrivileged: 65536,
};

export interface CoreOptions {
  readonly policy: Policy;
  readonly db?: Database;
  readonly limits?: CoreLimits;
  /** Quota defaults, caps and exemption (src/domains/quota.ts; docs/quotas.md). */
  readonly quota?: QuotaConfig;
}

export class Core {
  readonly db: Database;
  readonly dispatcher: Dispatcher;
  readonly watches: WatchManager;
  /** Builds WATCH_EVENT payloads; counts the ones too large to send. */
  readonly events = new EventBuilder();
  readonly limits: CoreLimits;
  /** Per-domain accounting and quotas: its watch/transaction values come from `limits`. */
  readonly quotas: Quotas;
  private nextClientId = 1;
  readonly clients = new Map<number, Client>();

  constructor(opts: CoreOptions) {
    this.db = opts.db ?? new Database();
    this.limits = opts.limits ?? DEFAULT_CORE_LIMITS;
    this.watches = new WatchManager({
      deliver: (owner, epath, token, watch) => {
        const c = this.clients.get(owner);
        if (c === undefined) return false;
        const payload = this.events.payload(c.label, watch, epath, token);
        if (payload === null || !c.sink.send(MsgType.WATCH_EVENT, 0, 0, payload)) return false;
        if (this.dispatcher.observer !== null) this.dispatcher.observer.watchEvent(c, epath, token);
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
      checkCapability: (who, cap) => this.dispatcher.policy.checkCapability(who, cap),
      ...quotaOptionsFrom(this.limits, opts.quota),
    });
    this.dispatcher = new Dispatcher(this.db, opts.policy, this.watches, this.quotas);
    this.db.onCommit((c) => this.watches.onCommit(c));
  }

  /** A Unix-socket connection: the privileged control domain (dom0), as in Xen. */
  open(sink: ReplySink, label: string): Client {
    const c = new Client(this.nextClientId++, 0, true, sink, label, this.quotas.txLimits(0));
    this.clients.set(c.id, c);
    if (this.dispatcher.observer !== null) this.dispatcher.observer.opened(c);
    return c;
  }

  /** A guest domain's ring connection (src/domains): unprivileged, paths relative to its domain. */
  openGuest(domid: number, sink: ReplySink, label: string): Client {
    const c = new Client(this.nextClientId++, domid, false, sink, label, this.quotas.txLimits(domid));
    this.clients.set(c.id, c);
    if (this.dispatcher.observer !== null) this.dispatcher.observer.opened(c);
    return c;
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
    if (this.dispatcher.observer !== null) this.dispatcher.observer.closed(c);
  }
}
