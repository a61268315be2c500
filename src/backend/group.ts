// Group commit (`--sync=group:<ms>`): many commits share one sync, and no reply or watch event leaves
// the daemon before the sync that covers it.
//
// The backend stores each commit's record when it commits (a full disk still fails just that
// commit, with ENOSPC) but does not sync. Records are numbered in commit order. The server loop asks
// this gate once per turn, after the turn's requests are handled and before any output is written;
// the answer is the number the turn's output must wait for (0: none, write it now), and the loop
// writes each connection's output as far as the records it waits for are durable:
//
//   nothing unsynced                              → 0: write output now
//   a write is in flight (asynchronous backend)   → wait: the next write starts when it completes,
//                                                   with everything committed meanwhile
//   inline syncs only: the batch grew by half or  → wait; poll again without blocking (gathering)
//   more since the last poll, and the window is
//   not over
//   otherwise (a trickle or nothing new; or <ms>  → start the sync (asynchronously where the backend
//   since the first unsynced record passed)         can: the loop keeps serving), then wait for it
//
// So a burst of commits from many clients is synced once when the burst ends (or after <ms> at the
// latest), and with `group:0` once per loop turn; while one group's write is in flight the next
// group forms (the classic group commit: the disk's flush time is not idle time for the daemon).
// A failed sync cannot be answered per commit (their replies are already queued as successes):
// `onSyncFailure` runs and that output is held for ever; the CLI logs and exits, so nothing unsynced
// is ever acknowledged (as PostgreSQL panics on a failed fsync).
import type { AsyncSync, Backend, DeferredSync, StorageObserver } from "./backend.ts";

/** The server loop's view (structurally src/transport/loop.ts OutputGate). */
export interface OutputGate {
  /** Once per turn, before output is written: 0, or the record number this turn's output waits for. */
  turnEnd(): number;
  /** Output waiting for records up to this number may be written. */
  durable(): number;
  /** A group is being gathered: the loop polls again without blocking. */
  readonly gathering: boolean;
}

/** A tag no durable number reaches: output after a failed sync is never written. */
const NEVER = Number.MAX_SAFE_INTEGER;

export class GroupCommitGate implements OutputGate {
  private seen = 0;
  private firstAt = 0;
  private failed = false;
  private startedAt = 0;
  private startedRecords = 0;
  gathering = false;
  /** Syncs done, records they covered, and time from start to durable (diagnostics, tests). */
  readonly stats = { syncs: 0, records: 0, syncMs: 0 };
  private readonly async: AsyncSync | null;

  constructor(
    private readonly sync: DeferredSync,
    private readonly windowMs: number,
    private readonly onSyncFailure: (e: Error) => void,
    private readonly now: () => number = () => performance.now(),
    /** Hears of every completed sync (metrics). */
    private readonly observer?: StorageObserver,
  ) {
    this.async = sync.asyncSync?.() ?? null;
  }

  /** The eventfd the loop watches for completed asynchronous syncs (null: syncs are inline). */
  get completionFd(): number | null {
    return this.async?.completionFd ?? null;
  }

  /** One line for the log. */
  describe(): string {
    const { syncs, records, syncMs } = this.stats;
    const avg = syncs > 0
      ? ` (${(records / syncs).toFixed(1)} per sync, ${(1000 * syncMs / syncs).toFixed(0)} µs each)`
      : "";
    const how = this.async !== null ? ", asynchronous" : "";
    return `group commit: ${records} change sets in ${syncs} syncs${avg}${how}`;
  }

  durable(): number {
    return this.failed ? 0 : this.sync.durableSeq();
  }

  turnEnd(): number {
    this.gathering = false;
    if (this.failed) return NEVER;
    const tag = this.sync.committedSeq();
    const n = tag - this.sync.durableSeq();
    if (n === 0) {
      this.seen = 0;
      return 0;
    }
    if (this.async !== null && this.async.inFlightNow()) return tag;
    const t = this.now();
    if (this.seen === 0) this.firstAt = t;
    // Inline syncs: gather while the batch keeps growing fast (by half or more since the last poll):
    // a burst still arriving. A trickle (one more per poll, as when clients share the daemon's CPU)
    // is not worth the wait, so it is synced at once. Asynchronous writes do not gather: the write in
    // flight already collects the next group, and waiting would only leave the disk idle (measured:
    // group:2 46–48 % of memory's WRITE throughput against 59–61 % for group:0 before this rule).
    const grew = n - this.seen;
    const gather = this.windowMs > 0 && this.async === null;
    if (gather && grew >= Math.max(1, this.seen / 2) && t - this.firstAt < this.windowMs) {
      this.seen = n;
      this.gathering = true;
      return tag;
    }
    this.seen = 0;
    this.startedAt = t;
    this.startedRecords = n;
    try {
      if (this.async !== null) this.async.startSync();
      else this.sync.syncNow();
    } catch (e) {
      return this.fail(e);
    }
    if (this.async === null || !this.async.inFlightNow()) this.count();
    return tag;
  }

  /** The completion eventfd was readable: collect the write (the next turn end starts the next). */
  completed(): void {
    if (this.failed || this.async === null) return;
    const wasInFlight = this.async.inFlightNow();
    try {
      this.async.complete();
    } catch (e) {
      this.fail(e);
      return;
    }
    if (wasInFlight && !this.async.inFlightNow()) this.count();
  }

  private count(): void {
    const ms = this.now() - this.startedAt;
    this.stats.syncs++;
    this.stats.records += this.startedRecords;
    this.stats.syncMs += ms;
    this.observer?.synced(ms / 1000, this.startedRecords);
  }

  private fail(e: unknown): number {
    this.failed = true;
    this.onSyncFailure(e instanceof Error ? e : new Error(String(e)));
    return NEVER;
  }
}

/** The gate for a backend in group mode, or null (always/none: output is never held). */
export function groupCommitGate(
  backend: Backend,
  windowMs: number | null,
  onSyncFailure: (e: Error) => void,
  observer?: StorageObserver,
): GroupCommitGate | null {
  const d = windowMs === null ? null : backend.deferredSync?.() ?? null;
  return d === null ? null : new GroupCommitGate(d, windowMs!, onSyncFailure, undefined, observer);
}
