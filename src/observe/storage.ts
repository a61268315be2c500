// The storage backend as the operator sees it: how long commits take to store and group commits to
// sync (Prometheus histograms), and every backend failure — a commit not applied because the disk is
// full, a failed compaction, unsaved domain records — counted and logged at error level (rate-limited:
// a full disk under load fails every commit). A client whose write failed this way gets its errno
// (ENOSPC, EIO) like any other, but this is the daemon's failure, not a refusal of the client, so the
// refusal log (src/observe/refusals.ts) leaves it to this module.
import { log } from "../common/log.ts";
import type { StorageError } from "../common/xs_error.ts";
import type { StorageObserver, StorageStage } from "../backend/backend.ts";
import { Histogram, type MetricFamily, type Sample } from "./metrics.ts";

/** Seconds: a commit stored without a sync takes microseconds, one with a sync milliseconds. */
export const STORAGE_BUCKETS: readonly number[] = [
  0.00001,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];

const STAGES: readonly StorageStage[] = ["commit", "compact", "domains"];
/** Errnos a backend failure becomes (src/backend/backend.ts ioErrno); each series exists from the start. */
const ERRNOS = ["ENOSPC", "EIO"] as const;

/** Error lines: `BURST` at once, then one per `INTERVAL_MS`; the rest are counted in the next line. */
const BURST = 10;
const INTERVAL_MS = 1000;

export class StorageMetrics implements StorageObserver {
  readonly commitDuration = new Histogram(STORAGE_BUCKETS);
  readonly syncDuration = new Histogram(STORAGE_BUCKETS);
  /** Records covered by the group syncs. */
  syncedRecords = 0;
  private readonly errors = new Map<string, number>();
  private tokens = BURST;
  private last: number;
  private suppressed = 0;

  constructor(
    private readonly emit: (line: string) => void = (l) => log("error", l),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.last = now();
    for (const s of STAGES) for (const e of ERRNOS) this.errors.set(`${s}\0${e}`, 0);
  }

  stored(seconds: number): void {
    this.commitDuration.observe(seconds);
  }

  synced(seconds: number, records: number): void {
    this.syncDuration.observe(seconds);
    this.syncedRecords += records;
  }

  failed(stage: StorageStage, e: StorageError, what: string): void {
    const key = `${stage}\0${e.errno}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    const t = this.now();
    this.tokens = Math.min(BURST, this.tokens + (t - this.last) / INTERVAL_MS);
    this.last = t;
    if (this.tokens < 1) {
      this.suppressed++;
      return;
    }
    this.tokens -= 1;
    const more = this.suppressed > 0 ? ` (${this.suppressed} more since the last line)` : "";
    this.suppressed = 0;
    this.emit(
      `storage failed: stage=${stage} errno=${e.errno}: ${what} not stored: ${e.detail ?? e.message}${more}`,
    );
  }

  /** Backend failures so far (all stages). */
  get errorTotal(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }

  metrics(): MetricFamily[] {
    const errors: Sample[] = [...this.errors].map(([k, value]) => {
      const [stage, errno] = k.split("\0");
      return { labels: { stage, errno }, value };
    });
    return [
      {
        name: "dxenstored_backend_errors_total",
        help: "Storage backend failures, by stage (commit: a change not applied; compact; domains: the " +
          "introduced domains' records) and errno.",
        type: "counter",
        samples: errors,
      },
      {
        name: "dxenstored_backend_commit_duration_seconds",
        help: "Time the backend took to store one commit (with --sync always: its write and sync).",
        type: "histogram",
        samples: this.commitDuration.samples(),
      },
      {
        name: "dxenstored_backend_sync_duration_seconds",
        help: "Time of one group-commit sync (--sync group:N), from its start to the data being durable.",
        type: "histogram",
        samples: this.syncDuration.samples(),
      },
    ];
  }
}
