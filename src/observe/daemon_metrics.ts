// The daemon's metric families: request/refusal counters (DaemonObserver), transaction and watch
// statistics (Dispatcher.stats, WatchManager.stats), connections, the store, per-domain usage (the
// numbers of `xenstore-control quota <domid>`), the quota settings, and the process.
import type { Core } from "../dispatch/core.ts";
import type { QuotaSettings } from "../dispatch/control.ts";
import { CONTROL_QUOTAS } from "../quota/table.ts";
import type { MetricFamily, Sample } from "./metrics.ts";
import { VERSION } from "../common/version.ts";
import type { DaemonObserver } from "./observer.ts";
import type { RefusalLog } from "./refusals.ts";
import type { DomainUsage } from "../dispatch/control.ts";

export interface DaemonMetricSources {
  readonly core: Core;
  readonly observer: DaemonObserver;
  readonly refusals: RefusalLog;
  /** Per-domain usage as `xenstore-control quota <domid>` reports it. */
  readonly usage: {
    domains(): Iterable<number>;
    usage(domid: number): DomainUsage | null;
    totalNodes(): number;
  };
  readonly quotas: QuotaSettings;
  /** The Unix socket server's counters (src/transport/socket_server.ts), if there is one. */
  readonly socketStats?: { readonly outputLimitDisconnects: number };
  /** Process start, ms since the epoch. */
  readonly startedAt: number;
}

function one(name: string, help: string, type: "counter" | "gauge", value: number): MetricFamily {
  return { name, help, type, samples: [{ value }] };
}

export function daemonMetrics(s: DaemonMetricSources): MetricFamily[] {
  const d = s.core.dispatcher.stats;
  const w = s.core.watches.stats;
  const perDomain: Record<string, Sample[]> = {
    nodes: [],
    watches: [],
    transactions: [],
    outstanding: [],
    memory: [],
  };
  for (const domid of [...s.usage.domains()].sort((a, b) => a - b)) {
    const u = s.usage.usage(domid);
    if (u === null) continue;
    const labels = { domid: String(domid) };
    perDomain.nodes.push({ labels, value: u.nodes });
    perDomain.watches.push({ labels, value: u.watches });
    perDomain.transactions.push({ labels, value: u.transactions });
    perDomain.outstanding.push({ labels, value: u.outstanding });
    perDomain.memory.push({ labels, value: u.memory });
  }
  const totalNodes = s.usage.totalNodes();
  const mem = Deno.memoryUsage();
  const families: MetricFamily[] = [
    {
      name: "dxenstored_build_info",
      help: "The daemon's version (package.json), as a label; the value is 1.",
      type: "gauge",
      samples: [{ labels: { version: VERSION }, value: 1 }],
    },
    ...s.observer.metrics(),
    one("dxenstored_transactions_committed_total", "Transactions committed.", "counter", d.commits),
    one(
      "dxenstored_transaction_conflicts_total",
      "Transactions that ended with EAGAIN (a real conflict).",
      "counter",
      d.conflicts,
    ),
    one("dxenstored_watch_events_fired_total", "Watch matches that produced an event.", "counter", w.fired),
    one(
      "dxenstored_watch_events_filtered_total",
      "Watch matches suppressed because the watcher may not see the node.",
      "counter",
      w.filtered,
    ),
    one(
      "dxenstored_watch_events_oversized_total",
      "Watch events not sent because they would exceed 4096 payload bytes (as cxenstored).",
      "counter",
      s.core.events.stats.oversized,
    ),
    one("dxenstored_connections", "Open connections.", "gauge", s.core.clients.size),
    one(
      "dxenstored_output_limit_disconnects_total",
      "Socket clients disconnected because they did not read their replies/events.",
      "counter",
      s.socketStats?.outputLimitDisconnects ?? 0,
    ),
    one(
      "dxenstored_refusal_log_suppressed_total",
      "Refusal log lines dropped by the per-domain rate limit.",
      "counter",
      s.refusals.suppressedTotal,
    ),
    one("dxenstored_nodes", "Nodes in the store.", "gauge", totalNodes),
    one("dxenstored_store_generation", "The store's generation counter.", "gauge", s.core.db.generation),
    {
      name: "dxenstored_domain_nodes",
      help: "Nodes owned, per domain.",
      type: "gauge",
      samples: perDomain.nodes,
    },
    {
      name: "dxenstored_domain_watches",
      help: "Watches registered, per domain.",
      type: "gauge",
      samples: perDomain.watches,
    },
    {
      name: "dxenstored_domain_transactions",
      help: "Open transactions, per domain.",
      type: "gauge",
      samples: perDomain.transactions,
    },
    {
      name: "dxenstored_domain_outstanding",
      help: "Requests in progress, per domain.",
      type: "gauge",
      samples: perDomain.outstanding,
    },
    {
      name: "dxenstored_domain_memory_bytes",
      help: "Store memory charged, per domain (cxenstored's node record accounting).",
      type: "gauge",
      samples: perDomain.memory,
    },
    {
      name: "dxenstored_quota_limit",
      help: "Hard quota settings (xenstore-control quota).",
      type: "gauge",
      samples: CONTROL_QUOTAS.hard.map((q) => ({
        labels: { quota: q.controlName },
        value: s.quotas.get("hard", q.controlName),
      })),
    },
    {
      name: "dxenstored_quota_soft_limit",
      help: "Soft quota settings (xenstore-control quota-soft).",
      type: "gauge",
      samples: CONTROL_QUOTAS.soft.map((q) => ({
        labels: { quota: q.controlName },
        value: s.quotas.get("soft", q.controlName),
      })),
    },
    one("dxenstored_process_resident_memory_bytes", "Resident set size.", "gauge", mem.rss),
    one("dxenstored_process_heap_used_bytes", "V8 heap in use.", "gauge", mem.heapUsed),
    one(
      "dxenstored_process_start_time_seconds",
      "Start time, seconds since the epoch.",
      "gauge",
      s.startedAt / 1000,
    ),
    // Histograms last: `xenstore-control stats` without a prefix fits 4 KiB, and cuts from the end.
    ...s.observer.latencyMetrics(),
  ];
  return families;
}
