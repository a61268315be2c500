/**
 * One incarnation of the real daemon inside the simulation: the file backend on the simulated disk,
 * the Core (dispatcher, transactions, watches, quotas, the domain registry on the simulated Xen), the
 * group-commit gate, the event loop and the ring server — assembled as src/cli/daemon.ts assembles
 * them, with the simulation's clock. A turn is the real EventLoop's turn (src/transport/loop.ts)
 * over an epoll set that holds no descriptor: the simulation's socket requests and the simulated
 * event channel are served in the turn's first phase (before the rings the ring server serves
 * there), then the before-output hooks, the gate's tag, the one output stage (socket and ring
 * output), the turn-end hooks. Nothing here decides anything the daemon decides.
 */
import {
  attachBackend,
  type Backend,
  groupWindowMs,
  persistDomainRecords,
  type SyncMode,
} from "../../src/backend/backend.ts";
import type { DomainRecord } from "../../src/backend/domains.ts";
import { Database } from "../../src/store/database.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { GroupCommitGate } from "../../src/backend/group.ts";
import type { Client, ReplySink } from "../../src/dispatch/client.ts";
import { Core } from "../../src/dispatch/core.ts";
import type { RequestObserver } from "../../src/dispatch/extensions.ts";
import type { DomainManager } from "../../src/domains/manager.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import type { Message } from "../../src/protocol/codec.ts";
import { PAYLOAD_MAX } from "../../src/protocol/wire.ts";
import { EventLoop, type OutputSink } from "../../src/transport/loop.ts";
import { ReleaseMarks } from "../../src/transport/release_marks.ts";
import { RingServer } from "../../src/transport/ring_server.ts";
import type { SimDisk } from "./disk.ts";
import type { SimHypervisor, SimPlatform } from "./xen.ts";

export interface DaemonConfig {
  readonly sync: SyncMode;
  /** The file backend compacts past this log size (small: compactions happen often). */
  readonly compactBytes: number;
  readonly preallocBytes: number;
}

export interface Delivered {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: string;
}

/**
 * A socket connection's server side: an OutputSink of the loop's output stage, as
 * src/transport/socket_server.ts's connections are, with positions counted in messages. Released
 * messages are taken by the simulated client (flush writes nothing).
 */
export class SimSocket implements ReplySink, OutputSink {
  readonly queue: Delivered[] = [];
  readonly marks = new ReleaseMarks();
  delivered = 0;
  closed = false;
  client!: Client;
  /** Messages built over the wire's bound (an invariant violation, reported by the world). */
  readonly oversized: string[] = [];

  /** `queued`: output was queued (the socket server tells the output stage). */
  constructor(private readonly queued: (s: SimSocket) => void) {}

  send(type: number, reqId: number, txId: number, payload: string): boolean {
    if (this.closed) return false;
    if (payload.length > PAYLOAD_MAX) this.oversized.push(`type ${type}: ${payload.length} bytes`);
    this.queue.push({ type, reqId, txId, payload });
    this.queued(this);
    return true;
  }

  get queuedPosition(): number {
    return this.queue.length;
  }

  flush(): void {}

  /** Messages released and not yet taken by the client. */
  take(): Delivered[] {
    const out = this.queue.slice(this.delivered, this.marks.released);
    this.delivered = this.marks.released;
    return out;
  }

  /** Bytes queued and not yet delivered (per-connection memory). */
  get queuedBytes(): number {
    let n = 0;
    for (let i = this.delivered; i < this.queue.length; i++) n += 16 + this.queue[i].payload.length;
    return n;
  }
}

export class SimDaemon {
  readonly backend: Backend;
  readonly core: Core;
  readonly gate: GroupCommitGate | null;
  readonly mgr: DomainManager;
  readonly platform: SimPlatform;
  readonly sockets = new Map<number, SimSocket>();
  /** The daemon stopped itself (a failed group sync: src/cli/main.ts exits). */
  exited: string | null = null;
  /** Runs when it stops itself (the world freezes what the process shared, as at a crash). */
  onExit: () => void = () => {};
  private readonly loop: EventLoop;
  private readonly rings: RingServer;
  /** The socket requests of the turn being run. */
  private requests: ReadonlyArray<readonly [SimSocket, Message]> = [];

  /** Open the store (throws BackendError if it cannot be used) and start serving. */
  constructor(
    readonly disk: SimDisk,
    hv: SimHypervisor,
    config: DaemonConfig,
    now: () => number,
    /**
     * The checker's hooks: `database` before the backend is attached (its commit listener runs before
     * the backend's compaction, which may be where the process dies), `observer` sees every reply,
     * `core` before anything is served.
     */
    instrument: { database(db: Database): void; observer: RequestObserver; core(core: Core): void },
  ) {
    const backend = this.backend = new FileBackend("/state", {
      sync: config.sync,
      recover: false,
      disk,
      compactBytes: config.compactBytes,
      preallocBytes: config.preallocBytes,
    });
    // openState (src/backend/backend.ts), with the checker's listener installed first.
    const state = backend.load();
    const db = state === null ? new Database() : new Database(state.root, state.gen);
    instrument.database(db);
    attachBackend(db, backend);
    const domains: readonly DomainRecord[] = state?.domains ?? [];
    this.platform = hv.platform();
    // buildCore (src/cli/daemon.ts) with the daemon's default options.
    this.core = new Core({
      policy: new LegacyPolicy(),
      db,
      platform: this.platform,
      domains: { onDomainsChanged: (d) => persistDomainRecords(backend, d) },
      observer: instrument.observer,
      now,
    });
    this.mgr = this.core.domains;
    instrument.core(this.core);
    const window = groupWindowMs(config.sync);
    const deferred = window === null ? null : backend.deferredSync?.() ?? null;
    this.gate = deferred === null ? null : new GroupCommitGate(deferred, window!, (e) => {
      this.exited = `group sync failed: ${e.message}`;
      this.onExit();
    }, now);
    this.loop = new EventLoop({ gate: this.gate });
    // Registered before the ring server's: the turn's socket requests, then the event channel (rings
    // that signalled, domain exceptions), then the ring server serves the ready rings.
    this.loop.onServe("first", () => this.serveSockets(), () => false);
    this.rings = new RingServer(this.loop, this.platform, this.core, this.mgr, {
      quotas: this.core.quotas,
      now,
    });
    this.mgr.start(domains);
  }

  /** A new socket connection (dom0). */
  connect(label: string): SimSocket {
    const s = new SimSocket((q) => this.loop.output.queued(q));
    s.client = this.core.open(s, label);
    this.sockets.set(s.client.id, s);
    return s;
  }

  disconnect(s: SimSocket): void {
    if (s.closed) return;
    s.closed = true;
    this.loop.output.forget(s);
    this.core.close(s.client);
    this.sockets.delete(s.client.id);
  }

  /**
   * One loop turn: `requests` from sockets (in order), then the event channel (guests' rings, domain
   * exceptions), then output — the real loop's turn, polling an epoll set with nothing in it.
   */
  turn(requests: ReadonlyArray<readonly [SimSocket, Message]>): void {
    this.requests = requests;
    try {
      this.loop.turn(0);
    } finally {
      this.requests = [];
    }
  }

  private serveSockets(): void {
    for (const [s, m] of this.requests) if (!s.closed) this.core.message(s.client, m);
    this.rings.checkEventChannel(); // the platform has no descriptor: its pending ports are polled
  }

  /** The process is gone (crash or exit): drop what it held outside the disk. Never touches the disk. */
  kill(): void {
    for (const s of this.sockets.values()) s.closed = true;
    this.mgr.close(); // unbinds this process's channels
    this.rings.close();
    this.loop.close();
  }
}
