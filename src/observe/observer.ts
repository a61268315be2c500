// The dispatcher's RequestObserver: counts every reply by operation and result, turns refusals into
// rate-limited log lines and quota counters, and feeds the access log. It runs on the request path,
// so the common case (a successful request, access log off) is a few array increments.
import type { Client } from "../dispatch/client.ts";
import type { RequestObserver } from "../dispatch/extensions.ts";
import type { Message } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import { StorageError } from "../common/xs_error.ts";
import type { AccessLog } from "./access_log.ts";
import { connName } from "./access_log.ts";
import { Histogram, histogramSamples, type MetricFamily, type Sample } from "./metrics.ts";
import { formatRefusal, type KnownLimits, quotaOf, REFUSAL_ERRNOS, type RefusalLog } from "./refusals.ts";
import { RecentActivity } from "./recent.ts";

/** xs_wire.h message names by type number (the `op` label and log field): MsgType's, 0..SET_QUOTA. */
const OP_NAMES: readonly string[] = Array.from({ length: MsgType.SET_QUOTA + 1 }, (_, t) => MsgType[t]);
const OTHER_OP = OP_NAMES.length; // unknown type numbers share one slot
const ERROR_TYPE = MsgType.ERROR;

/** Result slots: 0 = ok, then each errno name as it is first seen (at most the 16 libxenstore names + EIO). */
const MAX_RESULTS = 24;

/** Request types whose first argument is a path (for the refusal line). */
const PATH_OPS = new Set<number>([
  MsgType.DIRECTORY,
  MsgType.READ,
  MsgType.GET_PERMS,
  MsgType.WATCH,
  MsgType.UNWATCH,
  MsgType.WRITE,
  MsgType.MKDIR,
  MsgType.RM,
  MsgType.SET_PERMS,
  MsgType.DIRECTORY_PART,
]);

/**
 * Request latency buckets, seconds: a READ takes microseconds; a WRITE with --sync always waits for the
 * disk (milliseconds). One histogram per message type seen (at most OTHER_OP + 1).
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.000005,
  0.00001,
  0.000025,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.1,
  0.5,
];

/** Distinct {domid, quota} label pairs kept for quota_refusals; the rest are summed under domid="other". */
const MAX_QUOTA_SERIES = 4096;
/** Domains counted one by one in domain_requests; the rest are summed under domid="other". */
const MAX_DOMAIN_SERIES = 4096;

export interface ObserverOptions {
  readonly refusals: RefusalLog;
  readonly accessLog: AccessLog | null;
  /** Limits of the checks that predate the quota module (for the refusal line), by privilege. */
  readonly limits: (privileged: boolean) => KnownLimits;
}

export class DaemonObserver implements RequestObserver {
  /** requests[op * MAX_RESULTS + result] */
  private readonly requests = new Float64Array((OTHER_OP + 1) * MAX_RESULTS);
  /** Request latency by message type (created when the type is first seen). */
  private readonly latency: Array<Histogram | undefined> = new Array(OTHER_OP + 1);
  private readonly resultNames: string[] = ["ok"];
  private readonly refusalsByErrno = new Map<string, number>();
  private readonly quotaRefusals = new Map<string, number>();
  /** Requests answered per domain (domid, or -1 for "other"). */
  private readonly requestsByDomain = new Map<number, number>();
  /** The slowest recent requests and the last refusals (CONTROL recent, dxenstore top). */
  readonly recent = new RecentActivity();
  connectionsOpened = 0;
  connectionsClosed = 0;
  watchEvents = 0;

  constructor(private readonly opts: ObserverOptions) {}

  opened(c: Client): void {
    this.connectionsOpened++;
    this.opts.accessLog?.newConnection(c);
  }

  closed(c: Client): void {
    this.connectionsClosed++;
    this.opts.accessLog?.endConnection(c);
  }

  watchEvent(c: Client, path: string, token: string): void {
    this.watchEvents++;
    const a = this.opts.accessLog;
    if (a !== null && a.active) a.watchEvent(c, path, token);
  }

  replied(
    c: Client,
    m: Message,
    replyType: number,
    reply: string,
    failure: unknown,
    ms = 0,
    at?: number,
  ): void {
    const op = m.type < OTHER_OP ? m.type : OTHER_OP;
    let d = c.domid;
    let n = this.requestsByDomain.get(d);
    if (n === undefined && this.requestsByDomain.size >= MAX_DOMAIN_SERIES) {
      n = this.requestsByDomain.get(d = -1);
    }
    this.requestsByDomain.set(d, (n ?? 0) + 1);
    const end = at ?? performance.now(); // RecentActivity's clock
    if (this.recent.isSlow(ms, end)) {
      this.recent.request(
        ms,
        () => ({
          domid: c.domid,
          conn: connName(c),
          op: OP_NAMES[m.type] ?? `TYPE${m.type}`,
          path: pathOf(c, m),
        }),
        end,
      );
    }
    let errno: string | null = null;
    let slot = 0;
    if (replyType === ERROR_TYPE && m.type !== ERROR_TYPE) {
      errno = reply.endsWith("\0") ? reply.slice(0, -1) : reply;
      slot = this.resultSlot(errno);
      // A store the backend could not write is the daemon's failure (src/observe/storage.ts logs and
      // counts it), not a refusal of the client.
      if (REFUSAL_ERRNOS.has(errno) && !(failure instanceof StorageError)) this.refused(c, m, errno, failure);
    }
    this.requests[op * MAX_RESULTS + slot]++;
    (this.latency[op] ??= new Histogram(LATENCY_BUCKETS)).observe(ms / 1000);
    const a = this.opts.accessLog;
    if (a !== null && a.active) a.request(c, m.type, m.txId, m.payload, errno);
  }

  private resultSlot(errno: string): number {
    const i = this.resultNames.indexOf(errno);
    if (i >= 0) return i;
    if (this.resultNames.length >= MAX_RESULTS) return MAX_RESULTS - 1;
    this.resultNames.push(errno);
    return this.resultNames.length - 1;
  }

  private refused(c: Client, m: Message, errno: string, failure: unknown): void {
    this.refusalsByErrno.set(errno, (this.refusalsByErrno.get(errno) ?? 0) + 1);
    const quota = quotaOf(failure, this.opts.limits(c.privileged));
    if (quota !== null) {
      let key = `${c.domid}\0${quota.quota}`;
      if (!this.quotaRefusals.has(key) && this.quotaRefusals.size >= MAX_QUOTA_SERIES) {
        key = `other\0${quota.quota}`;
      }
      this.quotaRefusals.set(key, (this.quotaRefusals.get(key) ?? 0) + 1);
    }
    const info = {
      domid: c.domid,
      conn: connName(c),
      op: OP_NAMES[m.type] ?? `TYPE${m.type}`,
      path: pathOf(c, m),
      errno,
      quota,
    };
    this.opts.refusals.refused(info);
    this.recent.refused(formatRefusal(info));
  }

  /** Total quota refusals (all domains and quotas). */
  get quotaRefusalTotal(): number {
    let n = 0;
    for (const v of this.quotaRefusals.values()) n += v;
    return n;
  }

  /** Request latency by message type (a histogram: long; rendered after the other families). */
  latencyMetrics(): MetricFamily[] {
    const series: Array<[Record<string, string>, Histogram]> = [];
    for (let op = 0; op <= OTHER_OP; op++) {
      const h = this.latency[op];
      if (h !== undefined) series.push([{ op: OP_NAMES[op] ?? "OTHER" }, h]);
    }
    return [{
      name: "dxenstored_request_duration_seconds",
      help: "Time to handle a request (parse, access policy, store, persist), by message type; " +
        "not the time it waited to be read or for a group commit to release the reply.",
      type: "histogram",
      samples: histogramSamples(series),
    }];
  }

  metrics(): MetricFamily[] {
    const req: Sample[] = [];
    for (let op = 0; op <= OTHER_OP; op++) {
      for (let r = 0; r < this.resultNames.length; r++) {
        const v = this.requests[op * MAX_RESULTS + r];
        if (v > 0) {
          req.push({ labels: { op: OP_NAMES[op] ?? "OTHER", result: this.resultNames[r] }, value: v });
        }
      }
    }
    const refusals: Sample[] = [...this.refusalsByErrno].map(([errno, v]) => ({
      labels: { errno },
      value: v,
    }));
    const quota: Sample[] = [...this.quotaRefusals].map(([k, v]) => {
      const [domid, name] = k.split("\0");
      return { labels: { domid, quota: name }, value: v };
    });
    const byDomain: Sample[] = [...this.requestsByDomain].sort((a, b) => a[0] - b[0]).map(([d, v]) => ({
      labels: { domid: d < 0 ? "other" : String(d) },
      value: v,
    }));
    return [
      {
        name: "dxenstored_domain_requests_total",
        help: 'Requests answered, per domain (past 4096 domains: domid="other").',
        type: "counter",
        samples: byDomain,
      },
      {
        name: "dxenstored_requests_total",
        help: "Requests answered, by message type and result (ok or the errno of the ERROR reply).",
        type: "counter",
        samples: req,
      },
      {
        name: "dxenstored_refusals_total",
        help: "Requests refused (EACCES, EPERM, EAGAIN, E2BIG, ENOSPC, ENOMEM), by errno.",
        type: "counter",
        samples: refusals,
      },
      {
        name: "dxenstored_quota_refusals_total",
        help: "Requests refused by a quota, by domain and quota.",
        type: "counter",
        samples: quota,
      },
      {
        name: "dxenstored_connections_opened_total",
        help: "Connections opened (socket and guest).",
        type: "counter",
        samples: [{ value: this.connectionsOpened }],
      },
      {
        name: "dxenstored_watch_events_total",
        help: "Watch events queued to clients.",
        type: "counter",
        samples: [{ value: this.watchEvents }],
      },
    ];
  }
}

/** The request's path argument (a guest's relative path resolved as the daemon did), up to 256 bytes. */
function pathOf(c: Client, m: Message): string | null {
  if (!PATH_OPS.has(m.type)) return null;
  const nul = m.payload.indexOf("\0");
  const path = (nul < 0 ? m.payload : m.payload.slice(0, nul)).slice(0, 256);
  return path !== "" && path[0] !== "/" && path[0] !== "@" ? `${c.base}/${path}` : path;
}
