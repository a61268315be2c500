// The operator-facing parts of a running daemon: the request observer (metrics, refusal log, access
// log), CONTROL (xenstore-control) over the Core, the metrics file, and SIGHUP's log reopening. The
// daemon (./daemon.ts) builds them first and gives them to the Core it builds.
import { log, type LogLevel } from "../common/log.ts";
import { ControlCommands } from "../dispatch/control.ts";
import type { Core } from "../dispatch/core.ts";
import { controlQuotaSource } from "../quota/control.ts";
import type { ConnectionLimits } from "../quota/limits.ts";
import type { QuotaConfig } from "../quota/options.ts";
import type { SocketServerStats } from "../transport/socket_server.ts";
import { type QuotaValues, settingName, SOFT_MEMORY } from "../quota/table.ts";
import { checkStore } from "../store/check.ts";
import { heapSpacesReport } from "../memory/v8.ts";
import { AccessLog } from "../observe/access_log.ts";
import { daemonMetrics } from "../observe/daemon_metrics.ts";
import { Metrics, writeAtomic } from "../observe/metrics.ts";
import { DaemonObserver } from "../observe/observer.ts";
import { type KnownLimits, RefusalLog } from "../observe/refusals.ts";
import type { StorageMetrics } from "../observe/storage.ts";
import type { DaemonOptions } from "./options.ts";

/** What CONTROL `policy` and `policy-reload` act on (src/policy/manager.ts PolicyManager). */
export interface PolicyControl {
  status(): string;
  reload(): string;
}

/** A policy that cannot be reloaded (tests, benchmarks): what CONTROL says about it. */
const FIXED_POLICY: PolicyControl = {
  status: () => "no policy manager",
  reload: () => "error: no policy manager (policy is fixed)",
};

export interface OperationsParts {
  /** The core's per-connection limits (the refusal log names the limit a refusal met). */
  readonly limits: ConnectionLimits;
  readonly policy?: PolicyControl;
  /** The socket transport's counters (src/transport/socket_server.ts), if there is one. */
  readonly socketStats?: SocketServerStats;
  /** The backend's durations and failures (absent: no such metrics). */
  readonly storage?: StorageMetrics;
}

/**
 * The Core's quota configuration from the options: -E/-W/-t/-Q..., config quota-* keys. The quota
 * module logs its soft-limit warnings but not its refusals: every refusal already gets one rate-limited
 * key=value line from the observer (src/observe/refusals.ts).
 */
export function quotaConfig(o: DaemonOptions): QuotaConfig {
  const defaults: Partial<Record<string, number>> = {};
  for (const [name, v] of Object.entries(o.quotas)) {
    const s = settingName(name);
    if (s !== null) defaults[s] = v;
  }
  if (o.softQuotas.memory !== undefined) defaults[SOFT_MEMORY] = o.softQuotas.memory;
  return {
    defaults: defaults as Partial<QuotaValues>,
    log,
    logRefusals: false,
  };
}

/**
 * Built before the Core, which takes its observer and builds CONTROL with controlFor(): every refusal,
 * access and watch event is seen from the first request on.
 */
export class Operations {
  readonly observer: DaemonObserver;
  readonly refusals: RefusalLog;
  readonly accessLog: AccessLog | null;
  readonly metrics = new Metrics();
  /** The trace log for CONTROL (`log on`, `logfile`): the access log, or one of its own. */
  private readonly trace: AccessLog;
  private readonly startedAt = Date.now();
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private metricsFailed = false;

  constructor(private readonly o: DaemonOptions, private readonly parts: OperationsParts) {
    const useAccessLog = o.accessLog.file !== null && !o.accessLog.disabled;
    this.accessLog = useAccessLog
      ? new AccessLog(
        o.accessLog.file,
        {
          readOps: o.accessLog.readOps,
          transactionOps: o.accessLog.transactionOps,
          specialOps: o.accessLog.specialOps,
          redact: o.accessLog.redact,
          maxLineChars: o.accessLog.maxLineChars,
        },
        undefined,
        (m) => log("warn", m),
      )
      : null;
    // `logfile`/`log on` may start a trace later: one AccessLog serves both roles.
    this.trace = this.accessLog ?? new AccessLog(null, undefined, undefined, (m) => log("warn", m));
    this.refusals = new RefusalLog(
      (line, isQuota) => log(isQuota ? "warn" : "info", line),
      { burst: o.refusalBurst, intervalMs: o.refusalIntervalMs },
    );
    const limits = parts.limits;
    const known = (privileged: boolean): KnownLimits => ({
      watches: privileged ? limits.maxWatchesPrivileged : limits.maxWatches,
      transactions: privileged ? limits.txPrivileged.maxOpen : limits.tx.maxOpen,
      transactionNodes: privileged ? limits.txPrivileged.maxTouched : limits.tx.maxTouched,
    });
    this.observer = new DaemonObserver({ refusals: this.refusals, accessLog: this.accessLog, limits: known });
  }

  /**
   * CONTROL over `core`, and the core's metrics (CoreOptions.control: called once, while the core is
   * being built — nothing here touches it before the first request).
   */
  controlFor(core: Core): ControlCommands {
    const source = controlQuotaSource(core.quotas);
    this.metrics.add(() =>
      daemonMetrics({
        core,
        observer: this.observer,
        refusals: this.refusals,
        usage: {
          domains: () => core.quotas.domains(),
          usage: (d) => source.usage(d),
          totalNodes: () => core.quotas.totalNodes(),
        },
        quotas: source.settings,
        socketStats: this.parts.socketStats,
        startedAt: this.startedAt,
      })
    );
    if (this.parts.storage !== undefined) {
      const storage = this.parts.storage;
      this.metrics.add(() => storage.metrics());
    }
    return new ControlCommands({
      quotas: source.settings,
      usage: (d) => source.usage(d),
      // cxenstored's check: the store's structure, and the accounting against a recount.
      checkStore: () => [...checkStore(core.db.root, core.db.generation), ...core.quotas.verify()],
      trace: this.trace,
      memreport: (file) => memreport(core, file),
      stats: (prefix) => this.metrics.renderSamples(prefix ?? ""),
      recent: () => this.observer.recent.render(),
      policy: this.parts.policy ?? FIXED_POLICY,
      log: (level: LogLevel, msg: string) => log(level, msg),
    });
  }

  /** Start the periodic work: the metrics file, reports of rate-limited refusals. */
  startTimers(): void {
    if (this.o.metricsFile !== null) {
      this.writeMetrics();
      this.timers.push(setInterval(() => this.writeMetrics(), this.o.metricsInterval * 1000));
    }
    this.timers.push(setInterval(() => this.refusals.flushSuppressed(), 60_000));
  }

  writeMetrics(): void {
    if (this.o.metricsFile === null) return;
    try {
      writeAtomic(this.o.metricsFile, this.metrics.render());
      this.metricsFailed = false;
    } catch (e) {
      // Report once per failure streak, not every interval.
      if (!this.metricsFailed) log("warn", `metrics file ${this.o.metricsFile}: ${(e as Error).message}`);
      this.metricsFailed = true;
    }
  }

  /** SIGHUP: reopen the access/trace log (the daemon log is reopened by its LogOutput). */
  reopenLogs(): void {
    this.trace.reopen();
  }

  /** The daemon stops: timers end, suppressed refusals are reported, the logs are closed. */
  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.refusals.flushSuppressed();
    if (this.o.metricsFile !== null) this.writeMetrics();
    this.trace.close();
  }
}

/** CONTROL `memreport`: one report appended to `file`; false if it could not be written. */
function memreport(core: Core, file: string): boolean {
  const m = Deno.memoryUsage();
  let watches = 0;
  let txns = 0;
  for (const c of core.clients.values()) {
    watches += core.watches.countOwner(c.id);
    txns += c.txns.size;
  }
  const nodes = core.quotas.totalNodes();
  const text = `dxenstored memory report ${new Date().toISOString()} (pid ${Deno.pid})\n` +
    `  rss ${m.rss} heap_total ${m.heapTotal} heap_used ${m.heapUsed} external ${m.external}\n` +
    `  nodes ${nodes} generation ${core.db.generation}\n` +
    `  connections ${core.clients.size} watches ${watches} transactions ${txns}\n` +
    heapSpacesReport();
  try {
    Deno.writeTextFileSync(file, text, { append: true, mode: 0o600 });
    return true;
  } catch (e) {
    log("warn", `memreport ${file}: ${(e as Error).message}`);
    return false;
  }
}
