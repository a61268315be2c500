// Group commit (`--sync=group:<ms>`): many commits share one sync, and no reply or watch event leaves
// the daemon before the sync that covers it.
//
// The backend writes each commit's record when it commits (a full disk still fails just that
// commit, with ENOSPC) but does not sync. The server loop asks this gate once per turn, after the
// turn's requests are handled and before any output is written:
//
//   nothing unsynced                              → write output now
//   the batch grew by half or more since the last → hold all output; poll again without blocking
//   poll, and the window is not over
//   otherwise (a trickle or nothing new; or <ms>  → sync once, then write everything held
//   since the first unsynced record passed)
//
// So a burst of commits from many clients is synced once when the burst ends (or after <ms> at the
// latest), and with `group:0` once per loop turn. A failed sync cannot be answered per commit (their
// replies are already queued as successes): `onSyncFailure` runs and the output stays held for ever;
// the CLI logs and exits, so nothing unsynced is ever acknowledged (as PostgreSQL panics on a failed
// fsync).
import type { Backend, DeferredSync } from "./backend.ts";

/** The server loop's view (structurally src/server/unix_server.ts OutputGate). */
export interface OutputGate {
  /** Called once per loop turn before output is written; true = keep this turn's output back. */
  hold(): boolean;
}

export class GroupCommitGate implements OutputGate {
  private seen = 0;
  private firstAt = 0;
  private failed = false;
  /** Syncs done, records they covered, and time spent syncing (diagnostics, tests). */
  readonly stats = { syncs: 0, records: 0, syncMs: 0 };

  constructor(
    private readonly sync: DeferredSync,
    private readonly windowMs: number,
    private readonly onSyncFailure: (e: Error) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** One line for the log. */
  describe(): string {
    const { syncs, records, syncMs } = this.stats;
    const avg = syncs > 0
      ? ` (${(records / syncs).toFixed(1)} per sync, ${(1000 * syncMs / syncs).toFixed(0)} µs each)`
      : "";
    return `group commit: ${records} change sets in ${syncs} syncs${avg}`;
  }

  hold(): boolean {
    if (this.failed) return true;
    const n = this.sync.unsynced();
    if (n === 0) {
      this.seen = 0;
      return false;
    }
    const t = this.now();
    if (this.seen === 0) this.firstAt = t;
    // Gather while the batch keeps growing fast (by half or more since the last poll): a burst
    // still arriving. A trickle (one more per poll, as when clients share the daemon's CPU) is not
    // worth the wait, so it is synced at once.
    const grew = n - this.seen;
    if (this.windowMs > 0 && grew >= Math.max(1, this.seen / 2) && t - this.firstAt < this.windowMs) {
      this.seen = n;
      return true;
    }
    try {
      this.sync.syncNow();
      this.stats.syncMs += this.now() - t;
    } catch (e) {
      this.failed = true;
      this.onSyncFailure(e instanceof Error ? e : new Error(String(e)));
      return true;
    }
    this.stats.syncs++;
    this.stats.records += n;
    this.seen = 0;
    return false;
  }
}

/** The gate for a backend in group mode, or null (always/none: output is never held). */
export function groupCommitGate(
  backend: Backend,
  windowMs: number | null,
  onSyncFailure: (e: Error) => void,
): GroupCommitGate | null {
  const d = windowMs === null ? null : backend.deferredSync?.() ?? null;
  return d === null ? null : new GroupCommitGate(d, windowMs!, onSyncFailure);
}
