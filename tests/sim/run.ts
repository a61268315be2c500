/**
 * One seeded run of the whole-daemon simulation (docs/simulation.md): the seed picks the daemon's
 * configuration and the disk's faults, then drives socket clients, guests, the toolstack, the clock,
 * crashes and restarts, one loop turn per step, checking the invariants after every turn. The same
 * seed gives the same run: `digest` summarizes everything the daemon answered.
 */
import { setLogSink } from "../../src/common/log.ts";
import { checkStore } from "../../src/store/check.ts";
import { nodeOwners } from "../../src/domains/referenced.ts";
import { DEFAULT_RING_LIMITS } from "../../src/transport/ring_connection.ts";
import type { SyncMode } from "../../src/backend/backend.ts";
import type { Message } from "../../src/protocol/codec.ts";
import { mixSeed, Rng } from "../helpers/rng.ts";
import { GuestActor, SocketActor } from "./actors.ts";
import { Checker } from "./checker.ts";
import { type DaemonConfig, SimDaemon, type SimSocket } from "./daemon.ts";
import { type DiskFaults, SimDisk } from "./disk.ts";
import { Model } from "./model.ts";
import { Toolstack } from "./toolstack.ts";
import { SimHypervisor } from "./xen.ts";

export interface SimOptions {
  readonly steps: number;
}

export const DEFAULT_STEPS = 200;

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly digest: string;
  readonly config: string;
  readonly stats: Record<string, number>;
}

/** The one-line command that replays a seed exactly. */
export function replayCommand(seed: number, opts: SimOptions): string {
  return `bin/deno task sim --seed ${seed} --steps ${opts.steps}`;
}

function pickConfig(rng: Rng): { daemon: DaemonConfig; faults: DiskFaults } {
  const sync: SyncMode = rng.pick<SyncMode>(["always", "always", "group:0", "group:5"]);
  const faulty = rng.chance(0.6);
  return {
    daemon: {
      sync,
      compactBytes: rng.pick([1024, 8192, 1 << 20]),
      preallocBytes: rng.pick([0, 4096]),
    },
    faults: {
      fsyncFail: faulty && rng.chance(0.3) ? 0.01 : 0,
      writeFail: faulty && rng.chance(0.3) ? 0.01 : 0,
      capacity: faulty && rng.chance(0.3) ? 24 * 1024 + rng.int(64 * 1024) : Number.MAX_SAFE_INTEGER,
      tear: 0.5,
    },
  };
}

export function runSeed(seed: number, opts: SimOptions = { steps: DEFAULT_STEPS }): SimResult {
  const rng = new Rng(mixSeed(seed, 0x5171));
  const cfg = pickConfig(rng);
  const chk = new Checker();
  const logs: string[] = [];
  /** This incarnation could not store the domain records (a ring's acknowledged watch may not be durable). */
  let recordsFailed = false;
  setLogSink((_p, level, msg) => {
    if (level === "error" && msg.includes("internal error")) chk.fail(`daemon logged: ${msg.slice(0, 300)}`);
    if (msg.includes("introduced domains could not be stored")) recordsFailed = true;
    if (logs.length < 50) logs.push(msg);
    if (Deno.env.get("SIM_DEBUG") === "1") console.log(`LOG ${level}: ${msg}`);
  });
  let now = 1_000_000;
  const clock = () => now;
  const disk = new SimDisk(new Rng(mixSeed(seed, 0xd15c)), cfg.faults);
  const hv = new SimHypervisor();
  const stats: Record<string, number> = { crashes: 0, midTurnCrashes: 0, exits: 0, restarts: 0, turns: 0 };
  let frozenPages: Map<number, Uint8Array> | null = null;
  const onDeath = () => {
    frozenPages = hv.snapshotPages();
    chk.dead = true;
  };
  disk.onCrash = onDeath;

  const sockets = Array.from({ length: 2 + rng.int(4) }, (_, i) => new SocketActor(`sock${i}`));
  const guests = Array.from({ length: 1 + rng.int(4) }, (_, i) => new GuestActor(1 + i, hv));
  const toolstack = new Toolstack(hv, guests);

  const start = (attempt = 0): SimDaemon | null => {
    try {
      const d = new SimDaemon(disk, hv, cfg.daemon, clock, {
        database: (db) => {
          const recovered = Model.fromTree(db.root);
          const match = chk.matchRecovered(recovered);
          if (Deno.env.get("SIM_DEBUG") === "1") {
            console.log(
              `RESTART lastAck ${chk.lastAck} of ${chk.history.length - 1}: matched ${
                match === null ? "none" : chk.history.indexOf(match)
              } /sim/a/c=${recovered.nodes.get("/sim/a/c")}`,
            );
          }
          if (match === null) {
            chk.fail(
              `restart lost acknowledged state: recovered store matches no state from #${chk.lastAck} ` +
                `of ${chk.history.length - 1} (vs newest: ${
                  chk.history[chk.history.length - 1].diff(recovered)
                })`,
            );
          }
          chk.restart(match ?? recovered);
          chk.instrumentDatabase(db);
        },
        observer: chk.observer,
        core: (core) => chk.instrument(core),
      });
      d.onExit = onDeath;
      return d;
    } catch (e) {
      const msg = (e as Error).message;
      // An injected I/O error while opening (an operator starts it again); anything else (a store it
      // calls damaged) is a finding.
      if (msg.includes("(os error") && attempt < 10) {
        // A full disk: the operator makes room first.
        if (msg.includes("No space left")) {
          disk.faults = { ...disk.faults, capacity: disk.faults.capacity * 2 };
        }
        disk.crash();
        return start(attempt + 1);
      }
      chk.fail(`the daemon refused to restart: ${msg}`);
      return null;
    }
  };

  let d = start();
  const restart = (old: SimDaemon, midTurn: boolean): SimDaemon | null => {
    if (frozenPages !== null) hv.restorePages(frozenPages); // the dead process wrote nothing after dying
    frozenPages = null;
    chk.dead = true;
    for (const g of guests) g.drain(chk, true); // what it had put in the rings before dying reached the guests
    old.kill();
    disk.crash();
    for (const s of sockets) s.lost();
    stats.restarts++;
    const oldRecordsFailed = recordsFailed;
    recordsFailed = false; // from here on: the new incarnation's
    const fresh = start();
    if (fresh === null) return null;
    toolstack.restarted(fresh);
    const mayBeStale = midTurn || cfg.daemon.sync !== "always";
    for (const g of guests) g.restarted(fresh, chk, oldRecordsFailed, mayBeStale);
    return fresh;
  };

  try {
    for (let step = 0; step < opts.steps && d !== null && chk.violations.length === 0; step++) {
      now += 1 + rng.int(30);
      stats.turns++;
      // A crash at a random point of this turn's disk work (if it does that much), or between turns.
      if (rng.chance(0.03)) disk.crashAt = disk.ops + 1 + rng.int(40);
      const requests: Array<[SimSocket, Message]> = [];
      toolstack.act(rng, d, requests);
      for (const s of sockets) if (rng.chance(0.7)) s.act(rng, d, requests);
      for (const g of guests) if (rng.chance(0.7)) g.act(rng, d, chk);
      try {
        d.turn(requests);
      } catch (e) {
        if (!disk.dead && d.exited === null) {
          chk.fail(`the daemon threw out of its loop: ${(e as Error).stack}`);
        }
      }
      if (disk.dead || d.exited !== null) {
        if (disk.dead) stats.midTurnCrashes++;
        else stats.exits++;
        disk.crashAt = 0;
        d = restart(d, true);
        continue;
      }
      disk.crashAt = 0;
      toolstack.collect(d, chk);
      for (const s of sockets) s.collect(chk);
      for (const g of guests) g.drain(chk);
      checkTurn(d, chk, hv, sockets);
      if (rng.chance(0.02)) {
        stats.crashes++;
        onDeath();
        frozenPages = null; // between turns: the rings hold exactly what it wrote
        d = restart(d, false);
      }
    }
  } finally {
    setLogSink(null);
    d?.kill();
  }
  chk.mix(`disk ${disk.ops}`);
  for (const [name, bytes] of disk.files()) chk.mix(`${name}:${bytes.length}:${fnv(bytes)}`);
  const all = {
    ...stats,
    ...chk.stats,
    ...prefixed("disk.", disk.injected),
    ...prefixed("xen.", toolstack.stats),
    ringFaults: guests.reduce((n, g) => n + g.stats.faults, 0),
    reconnects: guests.reduce((n, g) => n + g.stats.reconnects, 0),
    faultedAfterRestart: guests.reduce((n, g) => n + g.stats.faultedAfterRestart, 0),
    watchesBack: guests.reduce((n, g) => n + g.stats.watchesBack, 0),
  };
  const violations = chk.violations.length > 0
    ? [...chk.violations, ...logs.slice(-5).map((l) => `log: ${l}`)]
    : [];
  return {
    seed,
    violations,
    digest: chk.digest.toString(16).padStart(8, "0"),
    config:
      `sync=${cfg.daemon.sync} compact=${cfg.daemon.compactBytes} prealloc=${cfg.daemon.preallocBytes} ` +
      `fsyncFail=${cfg.faults.fsyncFail} writeFail=${cfg.faults.writeFail} capacity=${cfg.faults.capacity} ` +
      `sockets=${sockets.length} guests=${guests.length}`,
    stats: all,
  };
}

function prefixed(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}

function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h;
}

/** Invariants that must hold at the end of every turn the daemon survived. */
function checkTurn(d: SimDaemon, chk: Checker, hv: SimHypervisor, sockets: readonly SocketActor[]): void {
  const core = d.core;
  const diff = chk.model.diff(Model.fromTree(core.db.root));
  if (diff !== null) chk.fail(`the store differs from the model: ${diff}`);
  for (const p of core.quotas.verify()) chk.fail(`quota accounting differs from a recount: ${p}`);
  for (const p of checkStore(core.db.root, core.db.generation)) chk.fail(`store check: ${p}`);
  for (const owner of nodeOwners(core.db.root)) {
    if (owner !== 0 && !hv.domains.has(owner) && !d.mgr.cleanupPending(owner)) {
      chk.fail(`a node is still owned by dead domain ${owner}`);
    }
  }
  const limits = core.limits;
  for (const c of core.clients.values()) {
    const tx = c.privileged ? limits.txPrivileged : limits.tx;
    if (c.txns.size > tx.maxOpen) {
      chk.fail(`${c.label}: ${c.txns.size} transactions open (limit ${tx.maxOpen})`);
    }
    const w = core.watches.countOwner(c.id);
    const wl = c.privileged ? limits.maxWatchesPrivileged : limits.maxWatches;
    if (w > wl) chk.fail(`${c.label}: ${w} watches (limit ${wl})`);
  }
  const ringBound = DEFAULT_RING_LIMITS.outHighBytes + DEFAULT_RING_LIMITS.maxEventBytes + 2 * 4112;
  for (const domid of hv.domains.keys()) {
    const info = d.mgr.ringInfo(domid);
    if (info !== null && info.queuedBytes > ringBound) {
      chk.fail(`dom${domid}: ${info.queuedBytes} bytes queued for its ring (bound ${ringBound})`);
    }
  }
  for (const s of d.sockets.values()) {
    for (const o of s.oversized) chk.fail(`${s.client.label}: a packet over 4096 bytes was built (${o})`);
    s.oversized.length = 0;
  }
  for (const a of sockets) {
    const s = a.sock;
    if (s === null || s.closed || s.marks.waiting || s.delivered < s.queue.length) continue;
    const owed = chk.owed(s.client.id);
    if (owed > 0) {
      chk.fail(
        `${a.name}: ${owed} watch events never delivered (${
          JSON.stringify(chk.expected.get(s.client.id)![0])
        })`,
      );
    }
  }
}
