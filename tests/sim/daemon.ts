/**
 * One incarnation of the real daemon inside the simulation: the file backend on the simulated disk,
 * the Core (dispatcher, transactions, watches, quotas), the group-commit gate and the domain manager
 * on the simulated Xen — assembled as src/cli/main.ts assembles them, with the simulation's clock —
 * and a loop turn done the way src/server/unix_server.ts does it: requests, then the hooks that run
 * before output, then the gate's tag, then socket output released as far as it is durable, then the
 * turn-end hooks (ring output). Nothing here decides anything the daemon decides.
 */
import {
  attachBackend,
  type Backend,
  persistDomainRecords,
  type SyncMode,
} from "../../src/backend/backend.ts";
import { Database } from "../../src/store/database.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { GroupCommitGate } from "../../src/backend/group.ts";
import { groupWindowMs } from "../../src/backend/backend.ts";
import { ReleaseMarks } from "../../src/common/release_marks.ts";
import { Client, type ReplySink } from "../../src/dispatch/client.ts";
import { Core, DEFAULT_CORE_LIMITS } from "../../src/dispatch/core.ts";
import { DomainManager, type EventLoop, type StoredDomain } from "../../src/domains/manager.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import type { Message } from "../../src/protocol/codec.ts";
import { PAYLOAD_MAX } from "../../src/xen/ring.ts";
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

/** A socket connection's server side: the OutBuffer and release marks of unix_server.ts, in messages. */
export class SimSocket implements ReplySink {
  readonly queue: Delivered[] = [];
  readonly marks = new ReleaseMarks();
  delivered = 0;
  closed = false;
  /** Output was queued this turn (unix_server.ts: the connection is dirty). */
  dirty = false;
  client!: Client;
  /** Messages built over the wire's bound (an invariant violation, reported by the world). */
  readonly oversized: string[] = [];

  send(type: number, reqId: number, txId: number, payload: string): boolean {
    if (this.closed) return false;
    if (payload.length > PAYLOAD_MAX) this.oversized.push(`type ${type}: ${payload.length} bytes`);
    this.queue.push({ type, reqId, txId, payload });
    this.dirty = true;
    return true;
  }

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
  private readonly fds = new Map<number, () => void>();
  private readonly beforeOutput: Array<() => void> = [];
  private readonly turnEndHooks: Array<() => void> = [];
  private tag = 0;

  /** Open the store (throws BackendError if it cannot be used) and start serving. */
  constructor(
    readonly disk: SimDisk,
    hv: SimHypervisor,
    config: DaemonConfig,
    now: () => number,
    /**
     * The checker's hooks: `database` before the backend is attached (its commit listener runs before
     * the backend's compaction, which may be where the process dies), `core` before anything else.
     */
    instrument: { database(db: Database): void; core(core: Core): void },
  ) {
    this.backend = new FileBackend("/state", {
      sync: config.sync,
      recover: false,
      disk,
      compactBytes: config.compactBytes,
      preallocBytes: config.preallocBytes,
    });
    // openState (src/backend/backend.ts), with the checker's listener installed first.
    const state = this.backend.load();
    const db = state === null ? new Database() : new Database(state.root, state.gen);
    instrument.database(db);
    attachBackend(db, this.backend);
    const domains = state?.domains ?? [];
    this.core = new Core({ policy: new LegacyPolicy(), db, limits: DEFAULT_CORE_LIMITS, now });
    instrument.core(this.core);
    const window = groupWindowMs(config.sync);
    const deferred = window === null ? null : this.backend.deferredSync?.() ?? null;
    this.gate = deferred === null ? null : new GroupCommitGate(deferred, window!, (e) => {
      this.exited = `group sync failed: ${e.message}`;
      this.onExit();
    }, now);
    const loop: EventLoop = {
      addFd: (fd, cb) => void this.fds.set(fd, cb),
      removeFd: (fd) => void this.fds.delete(fd),
      onTurnEnd: (fn) => void this.turnEndHooks.push(fn),
      onBeforeOutput: (fn) => void this.beforeOutput.push(fn),
    };
    Object.defineProperties(loop, {
      outputTag: { get: () => this.tag },
      durable: { get: () => this.durable },
    });
    this.platform = hv.platform();
    this.mgr = new DomainManager(this.core, this.platform, loop, {
      quotas: this.core.quotas,
      onDomainsChanged: (d) => persistDomainRecords(this.backend, d),
      now,
    });
    this.core.dispatcher.domainHandler = this.mgr;
    this.mgr.restore(domains as readonly StoredDomain[]);
  }

  private get durable(): number {
    return this.gate === null ? Number.MAX_SAFE_INTEGER : this.gate.durable();
  }

  /** A new socket connection (dom0). */
  connect(label: string): SimSocket {
    const s = new SimSocket();
    s.client = this.core.open(s, label);
    this.sockets.set(s.client.id, s);
    return s;
  }

  disconnect(s: SimSocket): void {
    if (s.closed) return;
    s.closed = true;
    this.core.close(s.client);
    this.sockets.delete(s.client.id);
  }

  /**
   * One loop turn: `requests` from sockets (in order), then the event channel (guests' rings, domain
   * exceptions), then output — as unix_server.ts orders them.
   */
  turn(requests: ReadonlyArray<readonly [SimSocket, Message]>): void {
    for (const [s, m] of requests) if (!s.closed) this.core.message(s.client, m);
    this.fds.get(this.platform.eventFd)?.(); // rings served every turn (ready ones, and any that kicked)
    for (const fn of this.beforeOutput) fn();
    this.tag = this.gate === null ? 0 : this.gate.turnEnd();
    const durable = this.durable;
    for (const s of this.sockets.values()) {
      if (s.dirty) s.marks.add(this.tag, s.queue.length);
      s.dirty = false;
      if (s.marks.waiting) s.marks.release(durable);
    }
    for (const fn of this.turnEndHooks) fn();
  }

  /** The process is gone (crash or exit): drop what it held outside the disk. Never touches the disk. */
  kill(): void {
    for (const s of this.sockets.values()) s.closed = true;
    this.mgr.close(); // unbinds this process's channels, closes its wake-up eventfd
  }
}
