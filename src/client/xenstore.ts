// XenStore: one client over any transport — dom0's Unix socket, a guest's xenbus device, or a guest's
// ring — with typed errors, pipelining, transactions retried on conflicts, watches as async iterators
// that survive reconnections, feature discovery, quotas and the daemon's statistics.
//
// Reconnection: when the link breaks (the daemon restarted, the ring was failed), requests in flight
// fail with ConnectionError, open transactions are gone, and — unless `reconnect: false` — the store
// connects again with growing pauses, registers every watch again (each yields a gap first), and
// requests made meanwhile wait for it. It gives up after `giveUpAfterMs`; then everything fails.
import { MsgType } from "../protocol/wire.ts";
import {
  type Call,
  controlCall,
  type Features,
  probeFeatures,
  QuotaApi,
  readStats,
  type Sample,
} from "./admin.ts";
import { Connection, type ConnectionStats, type Connector } from "./connection.ts";
import { ConnectionError, replyError, UnsupportedError } from "./errors.ts";
import { StoreOps } from "./ops.ts";
import { fromWire, joinNul, splitNul, toWire, watchPayload } from "./payload.ts";
import { type GuestTransport, ringConnector } from "./ring_link.ts";
import { defaultSocketPath, deviceConnector, socketConnector } from "./socket.ts";
import {
  runTransaction,
  startTransaction,
  type Transaction,
  type TransactionHost,
  type TransactionOptions,
} from "./transaction.ts";
import { Watch, type WatchOptions } from "./watch.ts";

export interface ReconnectOptions {
  /** First pause before connecting again (doubles each attempt); default 50 ms. */
  readonly initialDelayMs?: number;
  /** Longest pause; default 2000 ms. */
  readonly maxDelayMs?: number;
  /** Stop trying after this long (Infinity: never); default 120 000 ms. */
  readonly giveUpAfterMs?: number;
}

export interface XenStoreOptions {
  /** dom0's socket (default: $XENSTORED_PATH, else $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket). */
  readonly socket?: string;
  /** A byte device speaking the socket protocol instead (a Linux guest's /dev/xen/xenbus; Deno only). */
  readonly device?: string;
  /** A guest's ring (e.g. SimGuest of the simulated Xen) instead of a socket. */
  readonly ring?: GuestTransport;
  /** Start the ring with a ring reconnection (drop whatever an earlier user left); default false. */
  readonly resetRing?: boolean;
  /** Ring only: block the thread while waiting for the daemon (lowest latency, nothing else runs). */
  readonly blocking?: boolean;
  /** Per-request reply timeout in ms (0: none); default 30 000. Watches are not affected. */
  readonly timeoutMs?: number;
  /** Reconnect when the link breaks (default true), and how. */
  readonly reconnect?: boolean | ReconnectOptions;
  /** Requests awaiting a reply at most (more wait); default 1024. */
  readonly maxInFlight?: number;
  /** Defaults for transaction(). */
  readonly transactions?: TransactionOptions;
  /** Any other transport. */
  readonly connector?: Connector;
}

export class XenStore extends StoreOps implements TransactionHost {
  private conn: Connection | null = null;
  private ready: Promise<Connection>;
  private failed: Error | null = null;
  private userClosed = false;
  private gen = 0;
  private featureCache: Promise<Features> | null = null;
  private readonly watches = new Map<string, Watch>();
  private tokenCounter = 0;
  private readonly timeoutMs: number;
  private readonly reconnectOpts: Required<ReconnectOptions> | null;
  readonly retryDefaults: TransactionOptions;
  /** Quotas: GET_QUOTA/SET_QUOTA and the `CONTROL quota` listings. */
  readonly quota: QuotaApi;
  /** Where this store connects (for messages). */
  readonly target: string;
  /** Events whose token belongs to no watch of this store (a daemon's stray or a raw watch). */
  onStrayEvent: (path: string, token: string) => void = () => {};

  private constructor(
    private readonly connector: Connector,
    target: string,
    private readonly opts: XenStoreOptions,
  ) {
    super();
    this.target = target;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    const r = opts.reconnect ?? true;
    this.reconnectOpts = r === false ? null : {
      initialDelayMs: 50,
      maxDelayMs: 2000,
      giveUpAfterMs: 120_000,
      ...(r === true ? {} : r),
    };
    this.retryDefaults = opts.transactions ?? {};
    this.quota = new QuotaApi(this.plainCall);
    this.ready = Promise.reject(new Error("not connected")); // replaced by open()
    this.ready.catch(() => {});
  }

  /** Connect (the first attempt is not retried: a daemon that is not there is an error). */
  static async open(opts: XenStoreOptions = {}): Promise<XenStore> {
    let connector: Connector;
    let target: string;
    if (opts.connector !== undefined) {
      connector = opts.connector;
      target = "custom transport";
    } else if (opts.ring !== undefined) {
      connector = ringConnector(opts.ring, {
        reset: opts.resetRing,
        blocking: opts.blocking,
        timeoutMs: opts.timeoutMs || undefined,
      });
      target = `ring of domain ${opts.ring.domid}`;
    } else if (opts.device !== undefined) {
      connector = deviceConnector(opts.device);
      target = opts.device;
    } else {
      target = opts.socket ?? defaultSocketPath();
      connector = socketConnector(target);
    }
    const xs = new XenStore(connector, target, opts);
    const c = await xs.connectOnce();
    xs.ready = Promise.resolve(c);
    return xs;
  }

  /** Connection generation: a new one after every reconnection (transactions belong to one). */
  get generation(): number {
    return this.gen;
  }

  /** The current connection's counters (requests, batches written, events). */
  get connectionStats(): Readonly<ConnectionStats> {
    return this.conn?.stats ?? { requests: 0, flushes: 0, events: 0, unmatched: 0 };
  }

  /** Requests waiting for replies now. */
  get inFlight(): number {
    return this.conn?.inFlight ?? 0;
  }

  // --- sending -----------------------------------------------------------------------------------

  private readonly plainCall: Call = (type, payload, what) => this.call(type, payload, 0, what, -1);

  /** Send one request; the reply payload, or XsError for an ERROR reply. `generation` ≥ 0 pins the connection. */
  async call(type: MsgType, payload: string, txId: number, what: string, generation = -1): Promise<string> {
    const conn = await this.connection();
    if (generation >= 0 && generation !== this.gen) {
      throw new ConnectionError(`${what}: the transaction was lost with the connection it was opened on`);
    }
    const m = await conn.request(type, payload, txId, this.timeoutMs);
    if (m.type === MsgType.ERROR) throw replyError(m.payload, what);
    return m.payload;
  }

  protected exec(type: MsgType, payload: string, what: string): Promise<string> {
    return this.call(type, payload, 0, what);
  }

  private async connection(): Promise<Connection> {
    if (this.userClosed) throw new ConnectionError("the XenStore was closed");
    if (this.failed !== null) throw this.failed;
    return await this.ready;
  }

  /** Resolves once connected (again); throws if the store gave up or was closed. */
  async connected(): Promise<void> {
    await this.connection();
  }

  // --- connecting --------------------------------------------------------------------------------

  private async connectOnce(): Promise<Connection> {
    const c = await Connection.open(this.connector, { maxInFlight: this.opts.maxInFlight });
    c.onEvent = (path, token) => this.event(path, token);
    c.onClose = (err) => this.lost(c, err);
    this.conn = c;
    return c;
  }

  private lost(c: Connection, err: Error | null): void {
    if (c !== this.conn || this.userClosed) return;
    this.conn = null;
    this.gen++;
    this.featureCache = null;
    if (this.reconnectOpts === null) {
      this.fail(
        new ConnectionError(`lost the connection to xenstored (${this.target}): ${err?.message ?? "closed"}`),
      );
      return;
    }
    this.ready = this.reconnect(err);
    this.ready.catch(() => {});
  }

  private async reconnect(cause: Error | null): Promise<Connection> {
    const o = this.reconnectOpts!;
    const start = Date.now();
    let delay = o.initialDelayMs;
    let last: unknown = cause;
    for (;;) {
      if (this.userClosed) throw new ConnectionError("the XenStore was closed");
      if (Date.now() - start >= o.giveUpAfterMs) {
        const e = new ConnectionError(
          `could not reconnect to xenstored (${this.target}) within ${o.giveUpAfterMs} ms: ${
            (last as Error)?.message
          }`,
        );
        this.fail(e);
        throw e;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(o.maxDelayMs, delay * 2);
      if (this.userClosed) throw new ConnectionError("the XenStore was closed");
      let c: Connection;
      try {
        c = await this.connectOnce();
      } catch (e) {
        last = e;
        continue;
      }
      // Register every watch again; each reports the gap first. A watch the daemon now refuses ends
      // with that error (its consumer learns why), the others go on.
      await Promise.all([...this.watches.values()].map(async (w) => {
        w.gap("reconnect");
        const m = await c.request(
          MsgType.WATCH,
          watchPayload(toWire(w.path), w.token, w.depth),
          0,
          this.timeoutMs,
        )
          .catch((e: Error) => e);
        if (m instanceof Error || m.type === MsgType.ERROR) {
          this.watches.delete(w.token);
          w.end(
            m instanceof Error ? m : replyError(m.payload, `WATCH ${w.path} (again, after reconnecting)`),
          );
        }
      }));
      if (c.closed) continue; // broke again while re-registering
      c.wantEvents(this.watches.size > 0);
      return c;
    }
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const w of this.watches.values()) w.end(e);
    this.watches.clear();
  }

  /** Close the connection; watches end, pending requests fail. */
  close(): void {
    if (this.userClosed) return;
    this.userClosed = true;
    for (const w of this.watches.values()) w.end(null);
    this.watches.clear();
    this.conn?.close();
    this.conn = null;
    if (this.opts.ring !== undefined) this.opts.ring.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // --- watches -----------------------------------------------------------------------------------

  private event(path: string, token: string): void {
    const w = this.watches.get(token);
    if (w === undefined) {
      this.onStrayEvent(fromWire(path), token);
      return;
    }
    w.deliver({ path: fromWire(path), token });
  }

  /**
   * Watch `path` (and everything below it, or `depth` levels with dxenstored). Resolves once the daemon
   * accepted the watch; iterate the result for events. The daemon sends one event at once (the watch's
   * registration), as every xenstored does.
   */
  async watch(path: string, opts: WatchOptions = {}): Promise<Watch> {
    if (opts.depth !== undefined) {
      if (!Number.isInteger(opts.depth) || opts.depth < 0) {
        throw new RangeError(`bad watch depth ${opts.depth}`);
      }
      if (!(await this.features()).watchDepth) throw new UnsupportedError("watch depth");
    }
    const token = `dxs-${++this.tokenCounter}`;
    const w = new Watch(
      { unwatch: (x) => this.unwatch(x) },
      path,
      token,
      opts.depth,
      opts,
    );
    this.watches.set(token, w);
    this.conn?.wantEvents(true);
    try {
      await this.call(MsgType.WATCH, watchPayload(toWire(path), token, opts.depth), 0, `WATCH ${path}`);
    } catch (e) {
      this.watches.delete(token);
      this.conn?.wantEvents(this.watches.size > 0);
      w.end(null);
      throw e;
    }
    return w;
  }

  private async unwatch(w: Watch): Promise<void> {
    if (this.watches.get(w.token) !== w) return;
    this.watches.delete(w.token);
    this.conn?.wantEvents(this.watches.size > 0);
    if (this.conn === null || this.userClosed) return; // gone with the connection anyway
    await this.call(MsgType.UNWATCH, joinNul([toWire(w.path), w.token]), 0, `UNWATCH ${w.path}`).catch(
      () => {},
    );
  }

  // --- transactions ------------------------------------------------------------------------------

  /**
   * Run `fn` in a transaction and commit it; on EAGAIN (another change conflicted) run it again, up to
   * `maxAttempts` times with growing pauses. `fn` may run several times: keep side effects out of it.
   * Resolves with what `fn` returned by the attempt that committed.
   */
  async transaction<T>(fn: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    return await runTransaction(this, null, fn, opts);
  }

  /** Start a transaction by hand (commit() or abort() it; nothing retries). */
  async startTransaction(): Promise<Transaction> {
    return await startTransaction(this, null);
  }

  async nestedTransactions(): Promise<boolean> {
    return (await this.features()).nestedTransactions;
  }

  // --- the daemon --------------------------------------------------------------------------------

  /** What the daemon supports (asked once per connection). */
  features(): Promise<Features> {
    if (this.featureCache === null) {
      const p = probeFeatures(this.plainCall);
      this.featureCache = p;
      p.catch(() => {
        if (this.featureCache === p) this.featureCache = null;
      });
    }
    return this.featureCache;
  }

  /** GET_DOMAIN_PATH: /local/domain/<domid>. */
  async getDomainPath(domid: number): Promise<string> {
    return fromWire(
      splitNul(await this.exec(MsgType.GET_DOMAIN_PATH, `${domid}\0`, `GET_DOMAIN_PATH ${domid}`))[0],
    );
  }

  /** INTRODUCE a domain's ring (what xl does after building a domain). */
  async introduce(domid: number, gfn: number | bigint, port: number): Promise<void> {
    await this.exec(
      MsgType.INTRODUCE,
      joinNul([String(domid), String(gfn), String(port)]),
      `INTRODUCE ${domid}`,
    );
  }

  /** RELEASE a domain (its connection and watches go). */
  async release(domid: number): Promise<void> {
    await this.exec(MsgType.RELEASE, `${domid}\0`, `RELEASE ${domid}`);
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    const r = await this.exec(MsgType.IS_DOMAIN_INTRODUCED, `${domid}\0`, `IS_DOMAIN_INTRODUCED ${domid}`);
    return r.replace(/\0$/, "") === "T";
  }

  /** Drop every watch and transaction of this connection on the daemon's side (the watches here end). */
  async resetWatches(): Promise<void> {
    for (const w of this.watches.values()) w.end(null);
    this.watches.clear();
    await this.exec(MsgType.RESET_WATCHES, "", "RESET_WATCHES");
  }

  /** CONTROL (xenstore-control) with `args`; the reply text. */
  async control(...args: string[]): Promise<string> {
    if (args.length === 0) throw new RangeError("control needs a command");
    return await controlCall(this.plainCall, args);
  }

  /** dxenstored's statistics (Prometheus samples), optionally only metrics starting with `prefix`. */
  async stats(prefix = ""): Promise<Sample[]> {
    if (!(await this.features()).stats) throw new UnsupportedError("CONTROL stats");
    return (await readStats(this.plainCall, prefix)).samples;
  }

  /** dxenstored's policy chain, as text. */
  async policy(): Promise<string> {
    if (!(await this.features()).policy) throw new UnsupportedError("CONTROL policy");
    return await this.control("policy");
  }

  /** Reload dxenstored's policy chain (as SIGHUP does); the reply text. */
  async policyReload(): Promise<string> {
    if (!(await this.features()).policy) throw new UnsupportedError("CONTROL policy-reload");
    return await this.control("policy-reload");
  }

  /** A raw request: the reply type and payload (ERROR replies included), for tools and tests. */
  async raw(type: number, payload: string, txId = 0): Promise<{ type: number; payload: string }> {
    const conn = await this.connection();
    const m = await conn.request(type, payload, txId, this.timeoutMs);
    return { type: m.type, payload: m.payload };
  }
}
