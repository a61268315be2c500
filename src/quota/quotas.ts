// Per-domain accounting and quotas (docs/quotas.md). One object per daemon, owned by the Core:
//
//  - node ownership and node memory are derived from the commit stream only: a validator runs before
//    every commit (Database.beforeCommit, first) and refuses one that would take a domain over its
//    quota, so transactions count at commit and a refused commit leaves nothing behind; the same
//    delta is applied after the commit. Usage always equals a recount of the tree (verify()).
//  - watches and transactions are counted where they live (the watch trie, each connection's
//    transaction registry), summed over the domain's connections when asked, so they cannot drift.
//  - outstanding requests and queued output are reported by the transport (requestReceived …).
//
// The dispatcher calls the check* methods at the point of each request where cxenstored checks, so a
// request over quota fails before anything changes. Every refusal is counted and the first one per
// domain and quota is logged (src/quota/refusals.ts). Exemption (dom0 by default) is a policy
// choice passed in; exempt domains are still bound by the hard caps.
import { log as defaultLog } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Commit, Database } from "../store/database.ts";
import { components } from "../store/path.ts";
import type { Perms } from "../store/perms.ts";
import { lookup, type Node } from "../store/tree.ts";
import type { TxLimits } from "../txn/registry.ts";
import type { WatchManager } from "../watch/manager.ts";
import {
  childLen,
  commitDelta,
  grownPaths,
  nodeBytes,
  nodeRecordSize,
  PERM_ENTRY_BYTES,
  quotaPathLength,
  recordSize,
  treeUsage,
  type Usage,
  type UsageByOwner,
  watchBytes,
} from "./accounting.ts";
import type { DomainQuotaReport, QuotaClient, QuotaOptions } from "./options.ts";
import { QuotaError } from "./options.ts";
import { type Logger, RefusalLog } from "./refusals.ts";
import { parseSettingName, QuotaSettings } from "./settings.ts";
import { type QuotaName, quotaRow, SETTING_NAMES, type SettingName, SOFT_MEMORY } from "./table.ts";
import { TransportAccounts } from "./transport.ts";
import { DomainWatchBytes } from "./watch_bytes.ts";

/** Detail strings of the transaction module's size refusals (src/txn/transaction.ts room/absorb). */
const TX_SIZE_REFUSALS = ["transaction touches too many nodes", "transaction has too many operations"];

export class Quotas {
  readonly settings: QuotaSettings;
  readonly refusals: RefusalLog;
  private readonly db: Database;
  private readonly watches: WatchManager;
  private readonly clients: ReadonlyMap<number, QuotaClient>;
  private readonly opts: QuotaOptions;
  /** Nodes and node bytes by owner: always equal to treeUsage(db.root). */
  private readonly owned: UsageByOwner;
  /** Σ owned nodes (the running total behind totalNodes()). */
  private nodeCount = 0;
  /** The delta computed by the validator for the commit now in flight (reused by the listener). */
  private pending: { commit: Commit; delta: UsageByOwner } | null = null;
  /** Connections of non-exempt domains seen by a check (the ones that can hold watches and txs). */
  private readonly byDomain = new Map<number, Set<QuotaClient>>();
  private readonly transport = new TransportAccounts();
  /** Domains currently stalled by the transport gate, and domains over their soft memory quota. */
  private readonly stalled = new Set<number>();
  private readonly overSoft = new Set<number>();
  private readonly watchSums: DomainWatchBytes; // the memory check's watch bytes, per domain
  private readonly logger: Logger;

  constructor(opts: QuotaOptions) {
    this.opts = opts;
    this.db = opts.db;
    this.watches = opts.watches;
    this.clients = opts.clients;
    this.logger = opts.log ?? defaultLog;
    this.settings = new QuotaSettings(opts.defaults, opts.caps, opts.exempt);
    this.refusals = new RefusalLog(this.logger, opts.logRefusals ?? true);
    this.owned = treeUsage(this.db.root);
    for (const u of this.owned.values()) this.nodeCount += u.nodes;
    // First: a commit refused here must not reach persistence (src/backend) or any listener.
    this.db.beforeCommit((c) => this.validateCommit(c), true);
    this.db.onCommit((c) => this.applyCommit(c));
    this.watchSums = new DomainWatchBytes(this.watches, (d) => this.domainWatchBytes(d));
  }

  isExempt(domid: number): boolean {
    return this.settings.exempt(domid);
  }

  // ------------------------------------------------------------------ checks (dispatcher)

  /**
   * Every path of a request: path-max, on the part after "/local/domain/<id>/" (EINVAL). It binds
   * exempt domains too, with their own value (the global one: -M, quota-path-max): cxenstored 4.17
   * checks every connection's paths, dom0's included (is_valid_nodename), so a dom0 path of 2049–3072
   * bytes outside a domain's home is EINVAL there and here (tests/quota/dom0_path_test.ts).
   */
  checkPath(c: QuotaClient, abs: string): void {
    const exempt = this.isExempt(c.domid);
    const lim = exempt ? this.ownPathMax(c.domid) : this.settings.bound(c.domid, c.domid, "path-max");
    if (exempt && abs.length <= lim) return; // the counted length is never longer than the path
    const len = quotaPathLength(abs);
    if (len > lim) this.refuse(c.domid, "path-max", lim, len, `path of ${len} bytes`);
    if (!exempt) this.seen(c.domid, "path-max", len);
  }

  /** An exempt domain's path-max: its value (0: none), never above the cap (the absolute path limit). */
  private ownPathMax(domid: number): number {
    const q = this.settings.value(domid, "path-max");
    const cap = this.settings.caps["path-max"];
    return q === 0 ? cap : Math.min(q, cap);
  }

  /** SET_PERMS: number of entries, owner entry included (node-permissions, ENOSPC). */
  checkPermsCount(c: QuotaClient, next: Perms): void {
    const lim = this.settings.bound(c.domid, c.domid, "node-permissions");
    if (next.count > lim) this.refuse(c.domid, "node-permissions", lim, next.count, "too many permissions");
  }

  /** SET_PERMS on an existing node: its record size with the new permissions, and its memory. */
  checkSetPerms(c: QuotaClient, n: Node, next: Perms): void {
    if (this.isExempt(c.domid)) return;
    this.track(c);
    this.checkSize(c.domid, recordSize(n.value.length, next, childLen(n)));
    const grow = (next.count - n.perms.count) * PERM_ENTRY_BYTES;
    if (grow > 0 && next.owner === n.perms.owner) this.checkMemory(c.domid, next.owner, grow);
  }

  /**
   * WRITE/MKDIR of `path` (`comps`) whose existing prefix in the tree the request sees (the store,
   * or the transaction's view) is `chain` (tree.ts existingChain): nodes it would create (nodes,
   * against the committed count — a transaction is checked as a whole again at commit), record
   * sizes of the nodes it writes and of the parent that gains a child (node-size), and the memory it
   * adds. Nothing is changed.
   */
  checkWrite(
    c: QuotaClient,
    path: string,
    comps: readonly string[],
    chain: readonly Node[],
    value: string | null,
    permsForNew: (parentPerms: Perms) => Perms,
  ): void {
    const depth = chain.length - 1;
    const deepest = chain[depth];
    const sized = !this.isExempt(c.domid);
    if (sized) this.track(c);
    if (depth === comps.length) {
      if (value === null) return; // MKDIR of an existing node: no change
      if (sized) this.checkSize(c.domid, recordSize(value.length, deepest.perms, childLen(deepest)));
      const grow = value.length - deepest.value.length;
      if (grow > 0) this.checkMemory(c.domid, deepest.perms.owner, grow);
      return;
    }
    const perms = permsForNew(deepest.perms);
    const created = comps.length - depth;
    const lim = this.settings.bound(c.domid, perms.owner, "nodes");
    const used = this.ownedNodes(perms.owner);
    if (used + created > lim) {
      this.refuse(c.domid, "nodes", lim, used + created, `${created} new node(s) for domain ${perms.owner}`);
    }
    // The new nodes (each but the last has one child), and the new child name in the deepest node.
    let bytes = 0;
    let pathLen = path.length; // of comps[i], walking up from the leaf
    for (let i = comps.length - 1; i >= depth; pathLen -= comps[i].length + 1, i--) {
      const leaf = i === comps.length - 1;
      const valueLen = leaf ? (value ?? "").length : 0;
      const kids = leaf ? 0 : comps[i + 1].length + 1;
      if (sized) this.checkSize(c.domid, recordSize(valueLen, perms, kids));
      bytes += nodeBytes(pathLen, valueLen, perms, kids);
    }
    const nameBytes = comps[depth].length + 1;
    if (sized) this.checkSize(c.domid, nodeRecordSize(deepest) + nameBytes);
    if (deepest.perms.owner === perms.owner) this.checkMemory(c.domid, perms.owner, bytes + nameBytes);
    else {
      this.checkMemory(c.domid, perms.owner, bytes);
      this.checkMemory(c.domid, deepest.perms.owner, nameBytes);
    }
  }

  /** WATCH: watches per connection (cap, everyone) and per domain (quota), E2BIG; memory. */
  checkWatch(c: QuotaClient, path: string, token: string): void {
    const mine = this.watches.countOwner(c.id);
    if (mine >= this.settings.caps.watches) {
      this.refuse(c.domid, "watches", this.settings.caps.watches, mine + 1, "watches per connection");
    }
    if (this.isExempt(c.domid)) return;
    this.track(c);
    const lim = this.settings.bound(c.domid, c.domid, "watches");
    const used = this.domainWatches(c.domid);
    if (used >= lim) this.refuse(c.domid, "watches", lim, used + 1, "watches per domain");
    this.checkMemory(c.domid, c.domid, watchBytes(path, token));
    this.seen(c.domid, "watches", used + 1);
  }

  /** TRANSACTION_START: open transactions per connection (cap) and per domain (quota), ENOSPC. */
  checkTransactionStart(c: QuotaClient): void {
    const mine = c.txns.size;
    if (mine >= this.settings.caps.transactions) {
      this.refuse(c.domid, "transactions", this.settings.caps.transactions, mine + 1, "per connection");
    }
    if (this.isExempt(c.domid)) return;
    this.track(c);
    const lim = this.settings.bound(c.domid, c.domid, "transactions");
    const used = this.domainTransactions(c.domid);
    if (used >= lim) this.refuse(c.domid, "transactions", lim, used + 1, "per domain");
    this.seen(c.domid, "transactions", used + 1);
  }

  /**
   * A request failed with `e`: if it is the transaction module's size limit (which enforces
   * transaction-nodes, see txLimits), count it as a transaction-nodes refusal. Quota errors of this
   * module are counted where they are thrown.
   */
  noteError(c: QuotaClient, e: XsError): void {
    if (e instanceof QuotaError || e.errno !== "ENOSPC") return;
    if (!TX_SIZE_REFUSALS.some((s) => e.detail?.startsWith(s))) return;
    const lim = this.settings.bound(c.domid, c.domid, "transaction-nodes");
    this.refusals.record({
      domid: c.domid,
      quota: "transaction-nodes",
      limit: lim,
      wanted: lim + 1,
      outcome: "ENOSPC",
    });
  }

  /**
   * Transaction limits for a connection of `domid`: pass to `new Client(...)`. The getters read the
   * current quotas, so SET_QUOTA transaction-nodes applies to transactions started afterwards. The
   * open-transaction limit here is the per-connection cap; the per-domain quota is checked by
   * checkTransactionStart (so its refusals are counted and logged).
   */
  txLimits(domid: number): TxLimits {
    const q = this.settings;
    const base = () => (this.isExempt(domid) ? this.opts.tx?.exempt : this.opts.tx?.quota);
    return {
      get maxOpen() {
        return q.caps.transactions;
      },
      get maxTouched() {
        return q.bound(domid, domid, "transaction-nodes");
      },
      get maxAgeMs() {
        return base()?.maxAgeMs ?? 0;
      },
      get maxOps() {
        return base()?.maxOps ?? 4 * q.bound(domid, domid, "transaction-nodes");
      },
      get snapshotOnOverflow() {
        return base()?.snapshotOnOverflow ?? false;
      },
    };
  }

  // ------------------------------------------------------------------ commits

  /** Before a commit: refuse it if it takes an account over its node or memory quota, or grows an
   *  oversized node. Throws QuotaError; nothing has changed yet. */
  private validateCommit(c: Commit): void {
    this.pending = null;
    const delta = commitDelta(c);
    for (const [owner, u] of delta) {
      if (u.nodes > 0) {
        const lim = this.settings.bound(c.domid, owner, "nodes");
        const used = this.ownedNodes(owner);
        if (used + u.nodes > lim) {
          this.refuse(
            c.domid,
            "nodes",
            lim,
            used + u.nodes,
            `commit adds ${u.nodes} node(s) to domain ${owner}`,
          );
        }
      }
      if (u.bytes > 0) this.checkMemory(c.domid, owner, u.bytes);
    }
    if (!this.isExempt(c.domid)) {
      for (const p of grownPaths(c)) {
        const n = lookup(c.after, components(p));
        if (n !== undefined) this.checkSize(c.domid, nodeRecordSize(n));
      }
    }
    this.pending = { commit: c, delta };
  }

  /** After a commit: apply its delta (computed by the validator for this very commit). */
  private applyCommit(c: Commit): void {
    const delta = this.pending?.commit === c ? this.pending.delta : commitDelta(c);
    this.pending = null;
    for (const [owner, d] of delta) {
      this.nodeCount += d.nodes;
      const u = this.owned.get(owner);
      const next: Usage = { nodes: (u?.nodes ?? 0) + d.nodes, bytes: (u?.bytes ?? 0) + d.bytes };
      if (next.nodes === 0 && next.bytes === 0) this.owned.delete(owner);
      else this.owned.set(owner, next);
      if (!this.isExempt(owner)) {
        this.seen(owner, "nodes", next.nodes);
        this.noteMemory(owner);
      }
    }
  }

  // ------------------------------------------------------------------ transport (outstanding)

  /** The transport read a request of `c` and handed it to the core. */
  requestReceived(c: QuotaClient): void {
    const n = this.transport.received(c.id, c.domid);
    if (!this.isExempt(c.domid)) this.seen(c.domid, "outstanding", n);
  }

  /** The reply to one of `c`'s requests has been handed to the client (written to its ring). */
  replyDelivered(c: QuotaClient): void {
    this.transport.delivered(c.id);
  }

  /** Bytes the transport holds for `c` and has not yet handed over (charged to memory). */
  setQueuedOutput(c: QuotaClient, bytes: number): void {
    this.transport.queued(c.id, c.domid, bytes);
  }

  /**
   * May the transport read another request of `c`? No while the domain has `outstanding` requests
   * unanswered or is over its memory quota: the domain is stalled, not refused (cxenstored), and
   * resumes as replies drain. The start of each stall is counted and logged like a refusal.
   */
  mayReceive(c: QuotaClient): boolean {
    const outstanding = this.transport.of(c.domid).outstanding;
    const lim = this.settings.bound(c.domid, c.domid, "outstanding");
    let over: QuotaName | null = outstanding >= lim ? "outstanding" : null;
    let limit = lim;
    let wanted = outstanding + 1;
    if (over === null && !this.isExempt(c.domid)) {
      const mlim = this.settings.bound(c.domid, c.domid, "memory");
      const mem = this.memoryOf(c.domid, true);
      if (mem > mlim) [over, limit, wanted] = ["memory", mlim, mem];
    }
    if (over === null) {
      if (this.stalled.size !== 0) this.stalled.delete(c.domid);
      return true;
    }
    if (!this.stalled.has(c.domid)) {
      this.stalled.add(c.domid);
      this.refusals.record({ domid: c.domid, quota: over, limit, wanted, outcome: "stall" });
    }
    return false;
  }

  /** The connection is gone: its outstanding requests and queued output no longer count. */
  connectionGone(c: QuotaClient): void {
    this.transport.closed(c.id);
    this.byDomain.get(c.domid)?.delete(c);
  }

  // ------------------------------------------------------------------ domain lifecycle

  /**
   * Domain `domid` is gone (destroyed or released), after its connection was closed and the nodes it
   * owned were removed or handed over (those commits already updated the counts). Forgets its
   * SET_QUOTA overrides, refusal counters, log-once flags, high-water marks and transport accounts,
   * so a domain that reuses the id starts from nothing. Returns the nodes still owned by `domid`
   * (0 unless the caller left some; they stay counted, because they still exist).
   */
  domainGone(domid: number): number {
    this.settings.clearOverrides(domid);
    this.refusals.forget(domid);
    this.transport.forget(domid);
    this.byDomain.delete(domid);
    this.watchSums.forget(domid);
    this.stalled.delete(domid);
    this.overSoft.delete(domid);
    const left = this.ownedNodes(domid);
    if (left > 0) {
      this.logger("warn", `quota: domain ${domid} is gone but still owns ${left} node(s); they stay counted`);
    }
    return left;
  }

  // ------------------------------------------------------------------ GET_QUOTA / SET_QUOTA / CONTROL

  /** Set a global quota value (EINVAL above its cap); the next refusal of it is logged again. */
  setGlobal(name: SettingName, value: number): void {
    this.settings.setGlobal(name, value);
    this.rearm(name);
  }

  /** Set one domain's value (EINVAL above the cap); persisted through onOverridesChanged. */
  setOverride(domid: number, name: SettingName, value: number): void {
    this.settings.setOverride(domid, name, value);
    this.rearm(name, domid);
    this.opts.onOverridesChanged?.(domid);
  }

  /** ENOENT unless domain `domid` exists (per the domainKnown option; without it, every id does). */
  requireDomain(domid: number): void {
    if (this.opts.domainKnown !== undefined && !this.opts.domainKnown(domid)) {
      throw new XsError("ENOENT", `no domain ${domid}`);
    }
  }

  /** Restore a domain's overrides (from a backend's domain record). Unknown names: EINVAL. */
  restoreOverrides(domid: number, values: Readonly<Record<string, number>>): void {
    for (const [n, v] of Object.entries(values)) this.settings.setOverride(domid, parseSettingName(n), v);
  }

  // ------------------------------------------------------------------ read API

  /** Nodes owned by `domid` (exact, including exempt domains). */
  ownedNodes(domid: number): number {
    return this.owned.get(domid)?.nodes ?? 0;
  }

  /** Nodes in the store (every owner's), kept as commits apply: O(1). */
  totalNodes(): number {
    return this.nodeCount;
  }

  /** Usage, limits, refusals and high-water marks of one domain. */
  report(domid: number): DomainQuotaReport {
    const nodeBytes = this.owned.get(domid)?.bytes ?? 0;
    const wBytes = this.domainWatchBytes(domid);
    const { output, outstanding } = this.transport.of(domid);
    const quotas: Record<string, number> = {};
    for (const n of SETTING_NAMES) quotas[n] = this.settings.value(domid, n);
    return {
      domid,
      exempt: this.isExempt(domid),
      usage: {
        nodes: this.ownedNodes(domid),
        watches: this.domainWatches(domid),
        transactions: this.domainTransactions(domid),
        outstanding,
        memory: nodeBytes + wBytes + output,
      },
      memoryParts: { nodes: nodeBytes, watches: wBytes, output },
      quotas,
      refusals: this.refusals.ofDomain(domid),
      maxSeen: this.refusals.highWater(domid),
    };
  }

  /**
   * `CONTROL quota <domid>` usage, or null for a domain that does not exist (cxenstored: ENOENT):
   * per the domainKnown option, else dom0 and domains with a connection.
   */
  usage(domid: number): DomainQuotaReport["usage"] | null {
    const known = this.opts.domainKnown !== undefined
      ? this.opts.domainKnown(domid)
      : domid === 0 || [...this.clients.values()].some((c) => c.domid === domid);
    return known ? this.report(domid).usage : null;
  }

  /** Domains with anything to report: nodes, connections, overrides or refusals; sorted. */
  domains(): number[] {
    const s = new Set<number>(this.owned.keys());
    for (const c of this.clients.values()) s.add(c.domid);
    for (const d of this.settings.overriddenDomains()) s.add(d);
    for (const d of this.refusals.domains()) s.add(d);
    return [...s].sort((a, b) => a - b);
  }

  /**
   * Recount node ownership from the tree and compare (cxenstored's `CONTROL check` for accounting):
   * the differences, empty when the accounting is exact.
   */
  verify(): string[] {
    const fresh = treeUsage(this.db.root);
    const out: string[] = [];
    for (const d of new Set([...fresh.keys(), ...this.owned.keys()])) {
      const a = this.owned.get(d) ?? { nodes: 0, bytes: 0 };
      const b = fresh.get(d) ?? { nodes: 0, bytes: 0 };
      if (a.nodes !== b.nodes || a.bytes !== b.bytes) {
        out.push(`domain ${d}: counted ${a.nodes} nodes/${a.bytes} bytes, tree has ${b.nodes}/${b.bytes}`);
      }
    }
    let total = 0;
    for (const u of fresh.values()) total += u.nodes;
    if (total !== this.nodeCount) out.push(`total: counted ${this.nodeCount} nodes, tree has ${total}`);
    return out;
  }

  /** Sizes of internal per-domain/per-connection state (tests: stays bounded). */
  get trackedEntries(): number {
    let n = this.transport.size + this.stalled.size + this.overSoft.size + this.watchSums.size;
    for (const s of this.byDomain.values()) n += s.size;
    return n + this.refusals.tracked + this.settings.overriddenDomains().length;
  }

  // ------------------------------------------------------------------ internals

  private refuse(domid: number, quota: QuotaName, limit: number, wanted: number, detail: string): never {
    const errno = quotaRow(quota).errno ?? "ENOSPC";
    this.refusals.record({ domid, quota, limit, wanted, outcome: errno });
    throw new QuotaError(
      errno,
      quota,
      limit,
      wanted,
      `${quota} quota (${limit}) of domain ${domid}: ${detail}`,
    );
  }

  private checkSize(domid: number, size: number): void {
    const lim = this.settings.bound(domid, domid, "node-size");
    if (size > lim) this.refuse(domid, "node-size", lim, size, `node of ${size} bytes`);
    this.seen(domid, "node-size", size);
  }

  /** Would `owner`'s memory stay within its bound if it grew by `bytes` in a request of `requester`? */
  private checkMemory(requester: number, owner: number, bytes: number): void {
    if (bytes <= 0) return;
    const lim = this.settings.bound(requester, owner, "memory");
    const used = this.memoryOf(owner, !this.isExempt(owner));
    if (used + bytes > lim) {
      this.refuse(requester, "memory", lim, used + bytes, `${bytes} more bytes for domain ${owner}`);
    }
  }

  /**
   * Memory charged to a domain: its nodes, its watches (non-exempt domains; exempt ones are bounded
   * per connection instead, and summing them would cost a scan of every connection) and the output
   * the transport holds for it.
   */
  private memoryOf(domid: number, withWatches: boolean): number {
    const nodes = this.owned.get(domid)?.bytes ?? 0;
    const output = this.transport.of(domid).output;
    return nodes + output + (withWatches ? this.watchSums.of(domid) : 0);
  }

  /** Soft memory quota: a warning when a domain crosses it, a notice when it is back below. */
  private noteMemory(domid: number): void {
    const mem = this.memoryOf(domid, true);
    this.seen(domid, "memory", mem);
    const soft = this.settings.value(domid, SOFT_MEMORY);
    if (soft > 0 && mem > soft && !this.overSoft.has(domid)) {
      this.overSoft.add(domid);
      this.logger("warn", `quota soft limit: domid=${domid} quota=soft-memory limit=${soft} used=${mem}`);
    } else if (this.overSoft.has(domid) && (soft === 0 || mem <= soft)) {
      this.overSoft.delete(domid);
      this.logger("info", `quota soft limit: domid=${domid} is below soft-memory again (used=${mem})`);
    }
  }

  private seen(domid: number, quota: QuotaName, value: number): void {
    this.refusals.seen(domid, quota, value, !this.isExempt(domid));
  }

  private rearm(name: string, domid?: number): void {
    this.refusals.rearm(name === SOFT_MEMORY ? "memory" : name as QuotaName, domid);
  }

  /** Remember a connection of a non-exempt domain: every watch and transaction is made through a
   *  check that calls this first, so the set covers every connection that holds any. */
  private track(c: QuotaClient): void {
    let s = this.byDomain.get(c.domid);
    if (s === undefined) {
      s = new Set();
      this.byDomain.set(c.domid, s);
    }
    s.add(c);
  }

  /** The live connections of a domain: the tracked ones (pruned of closed ones), or for an exempt
   *  domain a scan of all connections (reports only, never on a request path). */
  private connectionsOf(domid: number): QuotaClient[] {
    if (this.isExempt(domid)) return [...this.clients.values()].filter((c) => c.domid === domid);
    const s = this.byDomain.get(domid);
    if (s === undefined) return [];
    const out: QuotaClient[] = [];
    for (const c of s) {
      if (this.clients.get(c.id) === c) out.push(c);
      else s.delete(c);
    }
    if (s.size === 0) this.byDomain.delete(domid);
    return out;
  }

  private domainWatches(domid: number): number {
    let n = 0;
    for (const c of this.connectionsOf(domid)) n += this.watches.countOwner(c.id);
    return n;
  }

  private domainWatchBytes(domid: number): number {
    let n = 0;
    for (const c of this.connectionsOf(domid)) {
      this.watches.trie.forEachWatch(c.id, (w) => {
        n += watchBytes(w.path, w.token);
      });
    }
    return n;
  }

  private domainTransactions(domid: number): number {
    let n = 0;
    for (const c of this.connectionsOf(domid)) n += c.txns.size;
    return n;
  }
}
