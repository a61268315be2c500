// The operator-facing parts of a running daemon, wired around a Core: CONTROL (xenstore-control), the
// request observer (metrics, refusal log, access log), the metrics file, and SIGHUP's log reopening.
// main.ts builds the Core and the transport; this module adds everything an operator sees.
import { log, type LogLevel } from "../common/log.ts";
import {
  ControlCommands,
  type ControlContext,
  type DomainUsage,
  type QuotaSettings,
} from "../dispatch/control.ts";
import type { Core } from "../dispatch/core.ts";
import type { QuotaConfig } from "../domains/quota.ts";
import { type QuotaValues, settingName, SOFT_MEMORY } from "../quota/names.ts";
import { checkStore } from "../store/check.ts";
import { heapSpacesReport } from "../memory/v8.ts";
import { AccessLog } from "../observe/access_log.ts";
import { daemonMetrics } from "../observe/daemon_metrics.ts";
import { Metrics, writeAtomic } from "../observe/metrics.ts";
import { DaemonObserver } from "../observe/observer.ts";
import { type KnownLimits, RefusalLog } from "../observe/refusals.ts";
import { TreeUsage } from "../observe/usage.ts";
import type { StorageMetrics } from "../observe/storage.ts";
import type { DaemonOptions } from "./options.ts";

export interface TransportStats {
  readonly connectionCount: number;
  readonly stats: { outputLimitDisconnects: number };
}

/** Where quota values and usage come from: the Core's quotas (Quotas.controlSource()). */
export interface QuotaSource {
  readonly settings: QuotaSettings;
  usage(domid: number): DomainUsage | null;
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

export class Operations {
  readonly observer: DaemonObserver;
  readonly refusals: RefusalLog;
  readonly accessLog: AccessLog | null;
  readonly metrics = new Metrics();
  readonly control: ControlCommands;
  readonly quotas: QuotaSettings;
  private readonly usage: TreeUsage;
  private timers: Array<ReturnType<typeof setInterval>> = [];
  /** The trace log created for CONTROL when no access log was configured (SIGHUP reopens it too). */
  private traceOnly: AccessLog | null = null;
  private metricsFailed = false;

  constructor(
    private readonly o: DaemonOptions,
    private readonly core: Core,
    transport?: TransportStats,
    quotaSource?: QuotaSource,
    /** The backend's durations and failures (absent: no such metrics). */
    storage?: StorageMetrics,
  ) {
    const startedAt = Date.now();
    this.usage = new TreeUsage(core);
    const source = quotaSource ?? core.quotas.controlSource();
    this.quotas = source.settings;
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
    this.refusals = new RefusalLog(
      (line, isQuota) => log(isQuota ? "warn" : "info", line),
      { burst: o.refusalBurst, intervalMs: o.refusalIntervalMs },
    );
    const limits = core.limits;
    const known = (privileged: boolean): KnownLimits => ({
      watches: privileged ? limits.maxWatchesPrivileged : limits.maxWatches,
      transactions: privileged ? limits.txPrivileged.maxOpen : limits.tx.maxOpen,
      transactionNodes: privileged ? limits.txPrivileged.maxTouched : limits.tx.maxTouched,
    });
    this.observer = new DaemonObserver({ refusals: this.refusals, accessLog: this.accessLog, limits: known });
    core.dispatcher.observer = this.observer;
    this.metrics.add(() =>
      daemonMetrics({
        core,
        observer: this.observer,
        refusals: this.refusals,
        usage: {
          domains: () => core.quotas.domains(),
          usage: (d) => source.usage(d),
          totalNodes: () => this.usage.totalNodes(),
        },
        quotas: this.quotas,
        server: transport,
        startedAt,
      })
    );
    if (storage !== undefined) this.metrics.add(() => storage.metrics());
    const ctx: ControlContext = {
      quotas: this.quotas,
      usage: (d) => source.usage(d),
      // cxenstored's check: the store's structure, and the accounting against a recount.
      checkStore: () => [...checkStore(core.db.root, core.db.generation), ...core.quotas.verify()],
      trace: this.accessLog ?? new AccessLog(null, undefined, undefined, (m) => log("warn", m)),
      memreport: (file) => this.memreport(file),
      stats: (prefix) => this.metrics.renderSamples(prefix ?? ""),
      recent: () => this.observer.recent.render(),
      log: (level: LogLevel, msg: string) => log(level, msg),
    };
    // `logfile`/`log on` may start a trace later: keep one AccessLog for both roles.
    if (this.accessLog === null) this.traceOnly = ctx.trace as AccessLog;
    this.control = new ControlCommands(ctx);
    core.dispatcher.controlHandler = this.control;
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
    this.accessLog?.reopen();
    this.traceOnly?.reopen();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.refusals.flushSuppressed();
    if (this.o.metricsFile !== null) this.writeMetrics();
    this.accessLog?.close();
    this.traceOnly?.close();
    if (this.core.dispatcher.observer === this.observer) this.core.dispatcher.observer = null;
  }

  private memreport(file: string): boolean {
    const m = Deno.memoryUsage();
    let watches = 0;
    let txns = 0;
    for (const c of this.core.clients.values()) {
      watches += this.core.watches.countOwner(c.id);
      txns += c.txns.size;
    }
    const nodes = this.usage.totalNodes();
    const text = `dxenstored memory report ${new Date().toISOString()} (pid ${Deno.pid})\n` +
      `  rss ${m.rss} heap_total ${m.heapTotal} heap_used ${m.heapUsed} external ${m.external}\n` +
      `  nodes ${nodes} generation ${this.core.db.generation}\n` +
      `  connections ${this.core.clients.size} watches ${watches} transactions ${txns}\n` +
      heapSpacesReport();
    try {
      Deno.writeTextFileSync(file, text, { append: true, mode: 0o600 });
      return true;
    } catch (e) {
      log("warn", `memreport ${file}: ${(e as Error).message}`);
      return false;
    }
  }
}

/** Core limits from the quota options (-W, -t, -Q transaction-nodes=...): enforced for guests. */
export function limitsWithQuotas<
  L extends { tx: { maxOpen: number; maxTouched: number }; maxWatches: number },
>(
  base: L,
  quotas: Readonly<Record<string, number>>,
): L {
  return {
    ...base,
    tx: {
      ...base.tx,
      maxOpen: quotas.transactions ?? base.tx.maxOpen,
      maxTouched: quotas["transaction-nodes"] ?? base.tx.maxTouched,
    },
    maxWatches: quotas.watches ?? base.maxWatches,
  };
}
