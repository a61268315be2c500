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
  txPrivileged: { ...DEFAULT_TX_LIMITS, maxOpen: 1024, maxTouched: 65536 },
  maxWatches: 128,
  maxWatchesPrivileged: 65536,
};

export interface CoreOptions {
  readonly policy: Policy;
  readonly db?: Database;
  readonly limits?: CoreLimits;
}

export class Core {
  readonly db: Database;
  readonly dispatcher: Dispatcher;
  readonly watches: WatchManager;
  readonly limits: CoreLimits;
  private nextClientId = 1;
  readonly clients = new Map<number, Client>();

  constructor(opts: CoreOptions) {
    this.db = opts.db ?? new Database();
    this.limits = opts.limits ?? DEFAULT_CORE_LIMITS;
    this.watches = new WatchManager({
      deliver: (owner, epath, token) => {
        const c = this.clients.get(owner);
        return c !== undefined && c.sink.send(MsgType.WATCH_EVENT, 0, 0, `${epath}\0${token}\0`);
      },
      canSee: (owner, path, kind, before, after) => {
        const c = this.clients.get(owner);
        return c !== undefined && this.dispatcher.canSee(c, path, kind, before, after);
      },
    });
    this.dispatcher = new Dispatcher(this.db, opts.policy, this.watches, {
      maxWatches: this.limits.maxWatches,
      maxWatchesPrivileged: this.limits.maxWatchesPrivileged,
    });
    this.db.onCommit((c) => this.watches.onCommit(c));
  }

  /** A Unix-socket connection: the privileged control domain (dom0), as in Xen. */
  open(sink: ReplySink, label: string): Client {
    const c = new Client(this.nextClientId++, 0, true, sink, label, this.limits.txPrivileged);
    this.clients.set(c.id, c);
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
  }
}
