// Giving memory back when the daemon goes idle. V8 frees dead objects at every collection but returns
// their pages to the system only in a "memory reducing" collection, which it starts by itself only
// some seconds after one of its own full collections and only while allocation is slow. Nothing in
// V8 notices that a request just dropped a million nodes, or that a connection with 20 000 watches
// closed: without help the daemon would keep that memory until enough new allocation makes V8
// collect (docs/architecture.md, "Memory").
//
// So the daemon watches two signals and, once it has been idle for a moment, runs one full
// collection when either says there is a lot to free:
//  - the heap grew well past what the last collection left (a fill, a burst of new watches);
//  - the footprint gauge (what the nodes, watches and connections it holds take, estimated:
//    footprintBytes) fell well below its highest value since the last collection (a removal,
//    closed connections, released guests).
// The collection is V8's memory-reducing kind (src/memory/v8.ts: a few full passes, a pause
// proportional to what is still live), because an ordinary one keeps the emptied pages. None runs
// while requests keep arriving, and they are spaced: the next waits MIN_INTERVAL_FACTOR × its expected duration (the last
// one's, scaled by how the footprint changed since, so the cheap collection after a big removal is
// not held back by the expensive one before it), at most MAX_SPACING_MS — idle time only, so at
// worst a few percent of a CPU while a client keeps freeing large amounts with pauses in between.

export interface IdleCollectorOptions {
  /** The current time in milliseconds (monotonic). */
  readonly now: () => number;
  /** Bytes used in the JS heap (live and not yet collected). */
  readonly heapUsed: () => number;
  /**
   * What the things the daemon holds that can go away take, in bytes (footprintBytes). Read at the
   * end of every turn, so it must be O(1).
   */
  readonly footprint: () => number;
  /** A full, synchronous collection that returns emptied pages to the system. */
  readonly collect: () => void;
  /**
   * Run once per quiet period (after start-up, then after each burst of requests), once the
   * daemon has been idle for idleMs, and at most every QUIET_SPACING_MS: the daemon gives its
   * unused code pages back there (src/memory/code_pages.ts).
   */
  readonly quiet?: () => void;
  /** Quiet time before collecting (ms). */
  readonly idleMs?: number;
  /** Heap growth that warrants a collection: max(this many bytes, GROWTH_RATIO × live heap). */
  readonly minGrowthBytes?: number;
  /** Footprint drop that warrants a collection: max(this many bytes, DROP_RATIO × the highest value). */
  readonly minDropBytes?: number;
}

export interface IdleCollectorStats {
  collections: number;
  /** Duration of the last collection (ms). */
  lastMs: number;
  /** Heap left by the last collection (bytes). */
  liveBytes: number;
  /** Quiet hooks run. */
  quietRuns: number;
}

const GROWTH_RATIO = 0.25;
const DROP_RATIO = 0.1;
/** A collection takes at most 1 / MIN_INTERVAL_FACTOR of the time between two (idle time)... */
const MIN_INTERVAL_FACTOR = 20;
/** ...unless that would keep memory for longer than this (ms). */
const MAX_SPACING_MS = 5000;
/** How often an idle daemon looks at its heap (ms). */
const CHECK_EVERY_MS = 500;
/**
 * The least time between two quiet hooks (ms): what a request pays after one (faulting back the
 * code it runs, a few ms) stays rare even for a client that pauses every second. With the second
 * of idleness before it, any quiet period of 6 s includes one (what bench/memory.ts waits).
 */
export const QUIET_SPACING_MS = 5_000;

export class IdleCollector {
  readonly stats: IdleCollectorStats = { collections: 0, lastMs: 0, liveBytes: 0, quietRuns: 0 };
  private readonly idleMs: number;
  private readonly minGrowth: number;
  private readonly minDrop: number;
  private lastRequests = -1;
  private lastActivity: number;
  private lastCheck = -Infinity;
  private lastCollection = -Infinity;
  private footprintMax: number;
  /** Footprint right after the last collection (what its duration was for). */
  private footprintAtCollection: number;
  /** Requests (or start-up) since the last quiet hook. */
  private quietPending = true;
  private lastQuiet = -Infinity;

  constructor(private readonly o: IdleCollectorOptions) {
    this.idleMs = o.idleMs ?? 1000;
    this.minGrowth = o.minGrowthBytes ?? 8 << 20;
    this.minDrop = o.minDropBytes ?? 4 << 20;
    this.lastActivity = o.now();
    this.stats.liveBytes = o.heapUsed();
    this.footprintMax = o.footprint();
    this.footprintAtCollection = this.footprintMax;
  }

  /**
   * Called at the end of every turn of the server loop with the number of requests served so far:
   * cheap while requests arrive (the footprint's high-water mark and a comparison), a look at the
   * heap twice a second when idle.
   */
  turnEnd(requests: number): void {
    const fp = this.o.footprint();
    if (fp > this.footprintMax) this.footprintMax = fp;
    if (requests !== this.lastRequests) {
      this.lastRequests = requests;
      this.lastActivity = this.o.now();
      this.quietPending = true;
      return;
    }
    const now = this.o.now();
    if (now - this.lastActivity < this.idleMs || now - this.lastCheck < CHECK_EVERY_MS) return;
    this.lastCheck = now;
    if (this.worthCollecting()) {
      const expectedMs = this.stats.lastMs * this.o.footprint() / Math.max(1, this.footprintAtCollection);
      if (now - this.lastCollection >= Math.min(MIN_INTERVAL_FACTOR * expectedMs, MAX_SPACING_MS)) {
        this.collectNow();
      }
    }
    if (this.o.quiet !== undefined && this.quietPending && now - this.lastQuiet >= QUIET_SPACING_MS) {
      // Start-up's garbage (compiled modules, the policy plugins' loading) is freed by no other rule:
      // the heap has not grown since the collector was made, and nothing went away.
      if (this.stats.collections === 0) this.collectNow();
      this.quietPending = false;
      this.lastQuiet = now;
      this.o.quiet();
      this.stats.quietRuns++;
    }
  }

  /** Is there enough to free (the footprint fell, or the heap grew)? */
  worthCollecting(): boolean {
    const fp = this.o.footprint();
    if (fp > this.footprintMax) this.footprintMax = fp;
    const dropped = this.footprintMax - fp;
    if (dropped >= Math.max(this.minDrop, DROP_RATIO * this.footprintMax)) return true;
    const grown = this.o.heapUsed() - this.stats.liveBytes;
    return grown >= Math.max(this.minGrowth, GROWTH_RATIO * this.stats.liveBytes);
  }

  collectNow(): void {
    const t0 = this.o.now();
    this.o.collect();
    const t1 = this.o.now();
    this.lastCollection = t1;
    this.stats.collections++;
    this.stats.lastMs = t1 - t0;
    this.stats.liveBytes = this.o.heapUsed();
    this.footprintMax = this.o.footprint();
    this.footprintAtCollection = this.footprintMax;
  }
}

/**
 * What a store, its watches and its connections take, estimated from their numbers (measured on
 * this runtime: docs/architecture.md, "Memory"): a leaf ~70 bytes (plus a share of its directory), a
 * watch ~500, a connection ~16 KiB (its buffers and the C-heap memory behind its socket I/O). Only
 * changes matter: a drop of several MiB says there is memory to give back.
 */
export function footprintBytes(nodes: number, watches: number, connections: number): number {
  return nodes * 96 + watches * 512 + connections * 16384;
}
