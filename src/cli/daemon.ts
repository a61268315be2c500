// The daemon, assembled in one place by constructors: every part gets what it needs when it is built,
// and nothing is wired by assigning fields afterwards.
//
//   Operations (observer, refusal/access logs, metrics)            src/cli/operations.ts
//   Core: store, watches, quotas, domain registry, dispatcher        src/dispatch/core.ts
//     ← the policy (the policy manager: reloads swap its chain), the observer, CONTROL (built over it)
//   EventLoop ← the group commit gate                               src/transport/loop.ts
//     ← the idle collector at each turn's end                         src/memory/idle_collector.ts
//   LiveUpdateController ← core, the options, the backend           src/live_update/controller.ts
//   SocketServer ← loop, the live-update controller (in front of core) src/transport/socket_server.ts
//   RingServer ← loop, platform, core, the domain registry           src/transport/ring_server.ts
//     (it registers itself as the registry's RingPort: the one edge that runs back, see rings.ts)
//
// src/cli/main.ts adds the process around it (options, fork, pid file, signals, readiness); in-process
// tests build the same core with buildCore().
import { type Backend, persistDomainRecords } from "../backend/backend.ts";
import { log } from "../common/log.ts";
import type { DomainRecord } from "../backend/domains.ts";
import { Core } from "../dispatch/core.ts";
import type { PolicySource } from "../dispatch/dispatcher.ts";
import type { Policy } from "../policy/policy.ts";
import { PolicyManager } from "../policy/manager.ts";
import { DEFAULT_CONNECTION_LIMITS, limitsWithQuotas } from "../quota/limits.ts";
import { footprintBytes, IdleCollector } from "../memory/idle_collector.ts";
import { clockReadIsSystemCall, onPerformanceTimeBase, timeClockReads, turnClock } from "../common/clock.ts";
import * as libc from "../../ffi/libc.ts";
import { trimMalloc } from "../memory/malloc.ts";
import { trimCodePages } from "../memory/code_pages.ts";
import { fullCollection, heapUsed } from "../memory/v8.ts";
import type { StorageMetrics } from "../observe/storage.ts";
import type { Database } from "../store/database.ts";
import { EventLoop, type OutputGate } from "../transport/loop.ts";
import { RingServer } from "../transport/ring_server.ts";
import { SocketServer, type SocketServerStats } from "../transport/socket_server.ts";
import type { XenPlatform } from "../xen/platform.ts";
import type { LiveUpdateController } from "../live_update/controller.ts";
import { type LiveUpdateStart, prepareLiveUpdate } from "../live_update/daemon.ts";
import { cxenstoredArgs } from "./handover_args.ts";
import type { HandoverRing } from "../live_update/handover.ts";
import type { RingConnection } from "../transport/ring_connection.ts";
import { Operations, type PolicyControl, quotaConfig } from "./operations.ts";
import type { DaemonOptions } from "./options.ts";

export interface CoreParts {
  readonly db?: Database;
  /** A fixed policy, or the policy manager (src/policy/manager.ts: reloadable, its status for CONTROL). */
  readonly policy: Policy | (PolicySource & PolicyControl);
  /** null: --xen=none (dom0 is the only domain); absent: a core that does not know which domains exist. */
  readonly platform?: XenPlatform | null;
  /** Where the introduced domains are stored (absent: nowhere, as the memory backend). */
  readonly backend?: Backend;
  /** The socket server's counters, shown in the metrics. */
  readonly socketStats?: SocketServerStats;
  /** The backend's durations and failures (metrics, error log); absent: not observed. */
  readonly storage?: StorageMetrics;
}

/** The Core and its operator-facing side, configured from the options as the daemon's are. */
export function buildCore(o: DaemonOptions, parts: CoreParts): { core: Core; ops: Operations } {
  const limits = limitsWithQuotas(DEFAULT_CONNECTION_LIMITS, o.quotas);
  const policy = parts.policy;
  const control = "reload" in policy ? policy : undefined;
  const ops = new Operations(o, {
    limits,
    policy: control,
    socketStats: parts.socketStats,
    storage: parts.storage,
  });
  const backend = parts.backend;
  const core = new Core({
    policy,
    db: parts.db,
    limits,
    quota: quotaConfig(o),
    // The daemon always names its platform (null: --xen=none); in-process tests may leave it out.
    platform: parts.platform,
    domains: {
      // Introduced domains are stored with the tree, so a restart re-attaches to their rings.
      onDomainsChanged: (d) => {
        if (backend !== undefined) persistDomainRecords(backend, d, parts.storage);
      },
      dom0Ring: o.domainInit,
      keepOrphans: o.keepOrphans,
    },
    observer: ops.observer,
    control: (c) => ops.controlFor(c),
  });
  return { core, ops };
}

export interface DaemonParts extends CoreParts {
  readonly db: Database;
  /** The daemon's platform: null with --xen=none. */
  readonly platform: XenPlatform | null;
  /** Group commit's gate (null: output is released at each turn's end). */
  readonly gate: OutputGate | null;
  /** The program's arguments and environment, for the program a live update starts. */
  readonly args?: readonly string[];
  readonly env?: () => Record<string, string>;
}

export class Daemon {
  readonly core: Core;
  readonly ops: Operations;
  readonly loop: EventLoop;
  readonly sockets: SocketServer;
  readonly rings: RingServer | null;
  /** CONTROL live-update and the switch (docs/live-update.md): the socket server's connection handler. */
  readonly liveUpdate: LiveUpdateController;
  private readonly platform: XenPlatform | null;

  /** Builds every part; throws (the ring server binding VIRQ_DOM_EXC, say) before anything serves. */
  constructor(o: DaemonOptions, parts: DaemonParts) {
    const socketStats: SocketServerStats = { outputLimitDisconnects: 0 };
    ({ core: this.core, ops: this.ops } = buildCore(o, { ...parts, socketStats }));
    this.platform = parts.platform;
    chooseTurnClock();
    this.loop = new EventLoop({ gate: parts.gate });
    const core = this.core;
    this.liveUpdate = prepareLiveUpdate({
      core,
      rundir: o.rundir,
      socketPath: o.socket,
      ownArgs: parts.args ?? [],
      cxenstoredArgs,
      env: parts.env ?? (() => Deno.env.toObject()),
      flushDurable: () => parts.backend?.deferredSync?.()?.syncNow(),
      // The plugins' state goes along (DX_POLICY); a fixed policy (in-process tests) has none to carry.
      policyState: parts.policy instanceof PolicyManager
        ? () => (parts.policy as PolicyManager).saveState()
        : undefined,
      guests: () => core.domains.domainCount + (core.domains.ringInfo(0) !== null ? 1 : 0),
      // Rings go with the switch where the platform can adopt event channels (real Xen, simulated).
      rings: parts.platform?.adoptInterdomain === undefined ? undefined : {
        eventFd: parts.platform.eventFd,
        rings: () =>
          [...(this.rings?.connections() ?? [])].filter((c) => c.state === "connected").map(ringHandover),
        releaseForExec: () => this.rings?.releaseDomExc() ?? (() => {}),
        cxenstoredCanAdopt: parts.platform.hypervisorRings === true,
      },
    });
    this.sockets = new SocketServer(this.loop, this.liveUpdate, {
      path: o.socket,
      maxOutBytes: o.maxOutBytes,
      maxOutEvents: o.maxWatchEvents,
      stats: socketStats,
    });
    this.rings = this.platform === null
      ? null
      : new RingServer(this.loop, this.platform, this.core, this.core.domains, { quotas: this.core.quotas });
    this.liveUpdate.attach(this.sockets);
    this.loop.onTurnEnd(() => this.liveUpdate.turnEnd());
    idleCollection(this.loop, this.core);
  }

  /**
   * Serve dom0's own ring and re-attach to the domains stored before a restart (`stored`). Throws if
   * their records cannot be stored again.
   */
  startDomains(stored: readonly DomainRecord[], adoptingRings = false): void {
    // A live update that handed rings over: they are adopted with the connections (listen()).
    if (adoptingRings) return;
    this.core.domains.start(stored);
  }

  /**
   * Listen on the socket — or, started by a live update, adopt the inherited one and its connections —
   * and start the periodic work (metrics file, refusal reports).
   */
  listen(handover: Extract<LiveUpdateStart, { kind: "ok" }> | null = null): void {
    if (handover === null || !handover.adopt(this.sockets, this.core, this.platform)) this.sockets.listen();
    this.ops.startTimers();
  }

  /** Serve until stop(). */
  run(): Promise<void> {
    return this.loop.run();
  }

  stop(): void {
    this.loop.stop();
  }

  /** After run() (or a failed start): let go of everything (the backend is the caller's). */
  close(): void {
    this.sockets.close();
    this.ops.stop();
    this.core.domains.close();
    this.rings?.close();
    this.platform?.close();
    this.loop.close();
  }
}

/** A served ring as the live update hands it over. */
function ringHandover(c: RingConnection): HandoverRing {
  const st = c.transportState();
  return {
    clientId: c.client.id,
    domid: c.domid,
    target: c.target,
    localPort: c.localPort,
    input: st.input,
    output: st.output,
    outputOffset: st.outputOffset,
  };
}

/**
 * Memory comes back after big removals and closed connections (src/memory/idle_collector.ts): the
 * collector looks at each turn's end whether the daemon went idle with much to free.
 */
/**
 * Where a clock read is a system call (a Xen PV dom0 whose clock source has no vDSO path; under QEMU
 * TCG each costs ~50 µs, two per request), the turn clock reads CLOCK_MONOTONIC_COARSE, which the vDSO
 * always answers: request times (metrics, `dxenstore top`) then have the kernel tick's resolution.
 * Elsewhere it reads CLOCK_MONOTONIC — performance.now()'s clock — through the C library binding:
 * performance.now() is an op call into the runtime behind a WebIDL brand check, ~480 user-space
 * instructions more per read (callgrind, bench/instructions.ts socket-read; two reads per request).
 */
export function chooseTurnClock(): void {
  const precise = () => libc.clockMs(libc.CLOCK_MONOTONIC);
  const coarse = () => libc.clockMs(libc.CLOCK_MONOTONIC_COARSE);
  const p: number[] = [], c: number[] = [];
  for (let i = 0; i < 3; i++) { // interleaved: a busy moment weighs on both
    p.push(...timeClockReads(precise, 2));
    c.push(...timeClockReads(coarse, 2));
  }
  if (!clockReadIsSystemCall(p, c)) {
    turnClock.useSource(onPerformanceTimeBase(precise));
    return;
  }
  const tick = libc.clockResolutionMs(libc.CLOCK_MONOTONIC_COARSE);
  turnClock.useSource(onPerformanceTimeBase(coarse));
  log(
    "info",
    `a clock read costs ${((Math.min(...p) - Math.min(...c)) * 1000).toFixed(1)} µs more than a coarse ` +
      `one here (a system call): the loop reads CLOCK_MONOTONIC_COARSE (request times to ${tick} ms)`,
  );
}

function idleCollection(loop: EventLoop, core: Core): void {
  const gc = fullCollection();
  if (gc === null) {
    log("info", "running without --expose-gc: memory is returned only when V8 decides (compile/v8-flags)");
    return;
  }
  const idle = new IdleCollector({
    // Called at turn ends: the turn's clock reading is recent enough (no clock read per turn).
    now: () => turnClock.recent(),
    heapUsed,
    // What the core holds that can go away, in estimated bytes (O(1): read every turn).
    footprint: () => footprintBytes(core.quotas.totalNodes(), core.watches.trie.size, core.clients.size),
    collect: () => {
      const t0 = performance.now();
      gc();
      trimMalloc();
      log(
        "debug",
        `idle collection in ${(performance.now() - t0).toFixed(0)} ms: ${
          (heapUsed() / 1048576).toFixed(1)
        } MiB live`,
      );
    },
    // Code pages start-up touched and serving does not run go back once quiet (src/memory/code_pages.ts).
    quiet: () => {
      const t0 = performance.now();
      const trim = trimCodePages();
      log(
        "debug",
        `quiet: ${trim.pages} code pages (${
          (trim.pages / 256).toFixed(1)
        } MiB) unmapped from ${trim.mappings} mappings in ${(performance.now() - t0).toFixed(1)} ms`,
      );
    },
  });
  loop.onTurnEnd(() => idle.turnEnd(core.dispatcher.stats.requests));
}
