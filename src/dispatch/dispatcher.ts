// The dispatcher: one request in, one reply out. It parses the payload, looks the operation up in the
// operation table (./op_table.ts), asks the policy for the operation's capability, and runs the
// operation's handler against the store or the caller's transaction — in that order, synchronously,
// so no other request can change what a decision was about before it is applied. Every refusal is an
// XsError turned into an ERROR reply here, and nowhere else. The helpers below are the handlers'
// common steps: path resolution, the access checks that record what a transaction observed.
import { type Errno, XsError } from "../common/xs_error.ts";
import { log } from "../common/log.ts";
import { turnClock } from "../common/clock.ts";
import type { DomainManager } from "../domains/manager.ts";
import { type Capability, CHECK_WATCH_EVENT, type NodeAccess, type Policy } from "../policy/policy.ts";
import type { Message } from "../protocol/codec.ts";
import { parseRequest, type Request } from "../protocol/request.ts";
import { MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import type { Quotas } from "../quota/quotas.ts";
import type { Database } from "../store/database.ts";
import { components, type ResolvedPath, resolvePath } from "../store/path.ts";
import type { Perms } from "../store/perms.ts";
import { own, ownValue } from "../store/strings.ts";
import { existingChain, lookup, type Node } from "../store/tree.ts";
import {
  accessAspect,
  commitToDatabase,
  commitToParent,
  OBS_EXISTS,
  OBS_READ,
  TxConflict,
} from "../txn/transaction.ts";
import type { EventKind, WatchManager } from "../watch/manager.ts";
import type { Client } from "./client.ts";
import type { ControlHandler, RequestObserver } from "./extensions.ts";
import { type OpDef, OPERATIONS } from "./op_table.ts";
import { DatabaseView, TransactionView, type View } from "./view.ts";

/**
 * A refusal a handler returns instead of throwing it: the READ of a missing or unreadable node, which
 * probing tools and drivers make all the time. Making an XsError and throwing it through the handler's
 * frames cost ~60 000 user-space instructions per refused READ (an Error's construction in this runtime
 * captures a stack trace; callgrind, bench/instructions.ts socket-enoent), ten times the READ itself.
 * The reply, the counters and what the observer sees are the same as for a thrown XsError.
 */
export class Refusal {
  constructor(readonly errno: Errno, readonly detail: string) {}
}

export interface DispatcherStats {
  requests: number;
  errors: number;
  commits: number;
  conflicts: number;
}

/** Where the policy in force comes from: a fixed one, or the policy manager's (swapped on reload). */
export interface PolicySource {
  readonly current: Policy;
}

export interface DispatcherParts {
  readonly db: Database;
  readonly policy: PolicySource;
  readonly watches: WatchManager;
  /** Per-domain quotas and hard caps (src/quota/quotas.ts); checked at the points cxenstored checks. */
  readonly quotas: Quotas;
  /** The introduced domains: INTRODUCE, RELEASE, ... (src/domains). */
  readonly domains: DomainManager;
  /** CONTROL commands (daemon control); null = ENOSYS. */
  readonly control: ControlHandler | null;
  /** Sees every reply (metrics, refusal and access logs: src/observe); null = none. */
  readonly observer: RequestObserver | null;
  readonly now: () => number;
}

export class Dispatcher {
  readonly stats: DispatcherStats = { requests: 0, errors: 0, commits: 0, conflicts: 0 };
  readonly db: Database;
  readonly watches: WatchManager;
  readonly quotas: Quotas;
  readonly domains: DomainManager;
  readonly control: ControlHandler | null;
  private readonly observer: RequestObserver | null;
  private readonly policies: PolicySource;
  private readonly now: () => number;
  /** The database's generation counter, as transactions draw from it (one closure, not one per request). */
  private readonly nextGen = (): number => this.db.nextGen();
  /** Work to do once the current reply is queued (the WATCH registration event). */
  private readonly afterReply: Array<() => void> = [];

  constructor(parts: DispatcherParts) {
    this.db = parts.db;
    this.policies = parts.policy;
    this.watches = parts.watches;
    this.quotas = parts.quotas;
    this.domains = parts.domains;
    this.control = parts.control;
    this.observer = parts.observer;
    this.now = parts.now;
  }

  /** The policy in force (a reload swaps it between two requests). */
  get policy(): Policy {
    return this.policies.current;
  }

  /** Handle one framed request from `c`; the reply (or ERROR) is sent through c.sink. */
  handle(c: Client, m: Message): void {
    this.stats.requests++;
    // The turn clock's latest reading (the turn's start or the previous request's end): no clock read
    // of its own, so a request's time includes taking it off its socket or ring.
    const started = this.observer !== null ? turnClock.recent() : 0;
    let reply: string;
    let type = m.type;
    let failure: unknown = null;
    try {
      // As cxenstored: a transaction id that names no transaction of the connection is refused
      // (ENOENT) before the payload is looked at, unless the operation ignores it (flags.txn).
      const def = (OPERATIONS as Partial<Record<number, OpDef<Request>>>)[m.type];
      if (m.txId !== 0 && def !== undefined && def.flags.txn !== "ignored") {
        c.txns.get(m.txId, this.now(), false);
      }
      const req = parseRequest(m);
      // Protocol-level policy (e.g. strict-protocol), on the raw request, before it runs.
      const refused = this.policy.checkMessage?.(c, m.type, m.txId, m.payload);
      if (refused !== undefined) throw new XsError(refused, "refused by policy");
      const op = OPERATIONS[req.op] as OpDef<Request>;
      if (op.flags.priv !== undefined) this.requireCap(c, op.flags.priv);
      const out = op.run(this, c, req, m.txId, op.flags.txn === "view" ? this.view(c, m.txId) : null);
      if (typeof out === "string") {
        reply = out;
        if (reply.length > PAYLOAD_MAX) throw new XsError("E2BIG", "reply exceeds 4096 bytes");
      } else {
        // As the catch below does for an XsError (whose quota bookkeeping concerns no READ refusal).
        failure = out;
        this.afterReply.length = 0;
        this.stats.errors++;
        type = MsgType.ERROR;
        reply = `${out.errno}\0`;
      }
    } catch (e) {
      failure = e;
      this.afterReply.length = 0;
      if (!(e instanceof XsError)) {
        // A bug, not a client error: log it loudly, answer EIO, keep serving everyone else.
        log("error", `internal error handling type ${m.type} from ${c.label}: ${(e as Error).stack ?? e}`);
      }
      if (e instanceof XsError) this.quotas.noteError(c, e);
      this.stats.errors++;
      type = MsgType.ERROR;
      reply = `${e instanceof XsError ? e.errno : "EIO"}\0`;
    }
    c.sink.send(type, m.reqId, m.txId, reply);
    if (this.observer !== null) {
      const end = turnClock.read();
      this.observer.replied(c, m, type, reply, failure, end - started, end);
    }
    while (this.afterReply.length > 0) this.afterReply.shift()!();
  }

  // ---- transactions and watches -------------------------------------------------------------------

  /** The store as `c`'s request in transaction `txId` sees it (0: the live store). */
  view(c: Client, txId: number): View {
    if (txId === 0) return c.liveView ??= new DatabaseView(this.db, c.domid); // one per connection
    return new TransactionView(c.txns.get(txId, this.now()), this.nextGen);
  }

  /** TRANSACTION_START (nested in `parentId` if non-zero); returns the new transaction's id. */
  startTransaction(c: Client, parentId: number): number {
    this.quotas.checkTransactionStart(c);
    const tx = c.txns.start(
      () => this.db.root,
      parentId,
      this.now(),
      (access, path, perms) => this.policy.checkNode(c, access, path, perms),
    );
    return tx.id;
  }

  /** TRANSACTION_END: commit (into the parent or the store; EAGAIN on a conflict) or abort. */
  endTransaction(c: Client, txId: number, commit: boolean): void {
    const tx = c.txns.get(txId, this.now(), commit); // an abort needs no age check
    if (tx.children > 0) throw new XsError("EBUSY", "nested transactions still open");
    c.txns.end(tx);
    if (!commit) return;
    try {
      if (tx.parent) commitToParent(tx, tx.parent, this.nextGen);
      else commitToDatabase(tx, this.db, c.domid);
    } catch (e) {
      if (e instanceof TxConflict) {
        this.stats.conflicts++;
        log("debug", `${c.label}: transaction ${tx.id} conflict: ${e.message}`);
        throw new XsError("EAGAIN", e.message);
      }
      throw e;
    }
    this.stats.commits++;
  }

  /** WATCH: register, and fire the registration event once the reply is queued. */
  watch(c: Client, raw: string, token: string, depth: number | undefined): void {
    const p = this.resolve(c, raw, true);
    if (this.watches.has(c.id, p.abs, token)) throw new XsError("EEXIST", "watch already registered");
    this.quotas.checkWatch(c, p.abs, token);
    // A watch lives long: its strings are copies, not slices that keep the request payload alive
    // (src/store/strings.ts); a relative watch's base is shared with the domain's other watches.
    const base = p.relativeBase === null ? null : ownValue(p.relativeBase);
    const w = { owner: c.id, path: own(p.abs), token: own(token), depth, relativeBase: base };
    if (!this.watches.add(w)) throw new XsError("EEXIST", "watch already registered");
    this.afterReply.push(() => this.watches.fireInitial(w));
  }

  // ---- the handlers' common steps -----------------------------------------------------------------

  requireCap(c: Client, cap: Capability): void {
    const d = this.policy.checkCapability(c, cap);
    if (d !== undefined) throw new XsError(d, cap);
  }

  /** A request's path, resolved against the caller's domain and checked against its path-max quota. */
  resolve(c: Client, raw: string, allowSpecial = false): ResolvedPath {
    // A special path ("@...") where one is allowed is resolved afresh; any other, through the
    // connection's recent ones (the same answers and errors as resolvePath).
    const p = allowSpecial && raw.charCodeAt(0) === 64
      ? resolvePath(raw, c.base, true)
      : c.resolveNodePath(raw);
    this.quotas.checkPath(c, p.abs);
    return p;
  }

  /**
   * Refuse a missing node without revealing whether it exists to a caller that cannot read the
   * deepest existing ancestor (EACCES instead of ENOENT, as cxenstored).
   */
  missing(c: Client, v: View, comps: readonly string[], path: string): never {
    throw new XsError(this.missingErrno(c, v, comps, path), path);
  }

  /** missing()'s errno, without throwing it. */
  private missingErrno(c: Client, v: View, comps: readonly string[], path: string): Errno {
    const chain = existingChain(v.root, comps);
    const deepest = chain[chain.length - 1];
    v.observe(path, OBS_EXISTS | OBS_READ);
    return this.policy.checkNode(c, "read", path, deepest.perms) ?? "ENOENT";
  }

  /** The existing node at `path`, after an access check; records what the check observed. */
  existing(c: Client, v: View, path: string, access: NodeAccess, aspects: number): Node {
    const n = this.existingOrNull(c, v, path, access, aspects);
    if (n === null) throw new XsError(this.refusal!.errno, this.refusal!.detail);
    return n;
  }

  /**
   * existing(), with its refusal not thrown: null, and the refusal in `refusal` (READ: see Refusal).
   * (A Node | Refusal result, told apart with instanceof, cost a successful READ ~300 instructions.)
   */
  existingOrNull(c: Client, v: View, path: string, access: NodeAccess, aspects: number): Node | null {
    const comps = components(path);
    const n = lookup(v.root, comps);
    if (n === undefined) {
      this.refusal = new Refusal(this.missingErrno(c, v, comps, path), path);
      return null;
    }
    const d = this.policy.checkNode(c, access, path, n.perms);
    // A refusal reveals only that the node exists and the decision; success reveals `aspects` too.
    v.observe(path, (d === undefined ? aspects : OBS_EXISTS) | accessAspect(access));
    if (d === undefined) return n;
    this.refusal = new Refusal(d, path);
    return null;
  }

  /** The refusal existingOrNull() last answered null for. */
  refusal: Refusal | null = null;

  /** Write-access decision for WRITE/MKDIR at `path` on `root` (deepest existing node decides). */
  writeAllowed(c: Client, root: Node, path: string): boolean {
    const chain = existingChain(root, components(path));
    return this.policy.checkNode(c, "write", path, chain[chain.length - 1].perms) === undefined;
  }

  /** The permissions of a special path (`@introduceDomain`...), after an access check. */
  specialPerms(c: Client, path: string, access: "read" | "setperms"): Perms {
    const perms = this.db.specialPerms.get(path);
    // Only @introduceDomain and @releaseDomain have permissions (spec PERM-13: ENOENT for another).
    if (perms === undefined) throw new XsError("ENOENT", `${path.slice(0, 64)} has no permissions`);
    const d = this.policy.checkNode(c, access, path, perms);
    if (d !== undefined) throw new XsError(d, path);
    return perms;
  }

  /**
   * May client `c` receive a watch event of `kind` at absolute `path`? (XSA-115 class; see
   * docs/watches.md.) Never for a path it cannot read, with two exceptions that tell it about a path
   * it could read: the removal of a node it could read, and a permission change that took its read
   * access away (as cxenstored, which checks the old permissions too). Special `@...` events: only
   * privileged callers and domains given read access to the special path with SET_PERMS
   * (`@releaseDomain/<domid>` is governed by `@releaseDomain`).
   */
  canSee(c: Client, path: string, kind: EventKind, before: Node | null, after: Node | null): boolean {
    const policy = this.policy;
    if (path[0] === "@") {
      const slash = path.indexOf("/");
      const base = slash > 0 ? path.slice(0, slash) : path;
      const perms = this.db.specialPerms.get(base);
      return perms !== undefined && policy.checkNode(c, "read", base, perms, CHECK_WATCH_EVENT) === undefined;
    }
    const comps = components(path);
    const readableIn = (root: Node | null): boolean => {
      if (root === null) return false;
      const n = lookup(root, comps);
      return n !== undefined && policy.checkNode(c, "read", path, n.perms, CHECK_WATCH_EVENT) === undefined;
    };
    switch (kind) {
      case "write":
        return readableIn(after);
      case "perms":
        return readableIn(after) || readableIn(before);
      case "rm":
        return readableIn(before);
      case "special":
        return false;
    }
  }
}
