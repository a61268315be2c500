// The dispatcher: one request in, one reply out. It parses the payload, resolves paths against the
// caller, asks the policy, and applies the operation to the store or the caller's transaction — in
// that order, synchronously, so no other request can change what a decision was about before it is
// applied. Every refusal is an XsError turned into an ERROR reply here, and nowhere else.
import { XsError } from "../common/xs_error.ts";
import { log } from "../common/log.ts";
import type { Message } from "../protocol/codec.ts";
import { parseRequest, type Request } from "../protocol/request.ts";
import { MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { type Capability, CHECK_WATCH_EVENT, type NodeAccess, type Policy } from "../policy/policy.ts";
import type { Quotas } from "../domains/quota.ts";
import type { Database } from "../store/database.ts";
import { components, domainPath, parentOf, type ResolvedPath, resolvePath } from "../store/path.ts";
import { Perms } from "../store/perms.ts";
import { own, ownValue } from "../store/strings.ts";
import { existingChain, lookup, type Node } from "../store/tree.ts";
import {
  accessAspect,
  commitToDatabase,
  commitToParent,
  OBS_CHILDREN,
  OBS_EXISTS,
  OBS_PERMS,
  OBS_READ,
  OBS_VALUE,
  OBS_WRITE,
  TxConflict,
} from "../txn/transaction.ts";
import type { EventKind, WatchManager } from "../watch/manager.ts";
import type { Client } from "./client.ts";
import type { ControlHandler, DomainHandler, RequestObserver } from "./extensions.ts";
import { DatabaseView, TransactionView, type View } from "./view.ts";

const OK = "OK\0";

/** Feature bits reported by GET_FEATURE (xs_wire.h XENSTORE_SERVER_FEATURE_*, plus our extension). */
export const FEATURE_WATCH_DEPTH = 4;
/** dxenstored extension: TRANSACTION_START with a non-zero tx_id starts a nested transaction. */
export const FEATURE_NESTED_TRANSACTIONS = 0x40000000;
export const SERVER_FEATURES = FEATURE_WATCH_DEPTH | FEATURE_NESTED_TRANSACTIONS;

/**
 * Request types whose tx_id must name an open transaction of the connection: all but WATCH and UNWATCH,
 * which ignore it (as cxenstored 4.17; RESET_WATCHES checks it there too, and then ends them all).
 */
const CHECKS_TX_ID: ReadonlySet<number> = new Set([
  MsgType.CONTROL,
  MsgType.DIRECTORY,
  MsgType.READ,
  MsgType.GET_PERMS,
  MsgType.TRANSACTION_START,
  MsgType.TRANSACTION_END,
  MsgType.INTRODUCE,
  MsgType.RELEASE,
  MsgType.GET_DOMAIN_PATH,
  MsgType.WRITE,
  MsgType.MKDIR,
  MsgType.RM,
  MsgType.SET_PERMS,
  MsgType.IS_DOMAIN_INTRODUCED,
  MsgType.RESUME,
  MsgType.SET_TARGET,
  MsgType.RESET_WATCHES,
  MsgType.DIRECTORY_PART,
  MsgType.GET_FEATURE,
  MsgType.SET_FEATURE,
  MsgType.GET_QUOTA,
  MsgType.SET_QUOTA,
]);

export interface DispatcherStats {
  requests: number;
  errors: number;
  commits: number;
  conflicts: number;
}

export class Dispatcher {
  readonly stats: DispatcherStats = { requests: 0, errors: 0, commits: 0, conflicts: 0 };
  /** Guest-domain and quota requests (src/domains); null = ENOSYS. */
  domainHandler: DomainHandler | null = null;
  /** CONTROL commands (daemon control); null = ENOSYS. */
  controlHandler: ControlHandler | null = null;
  /** Sees every reply and connection (metrics, refusal and access logs: src/observe); null = none. */
  observer: RequestObserver | null = null;
  /** Work to do once the current reply is queued (the WATCH registration event). */
  private readonly afterReply: Array<() => void> = [];

  constructor(
    readonly db: Database,
    public policy: Policy,
    readonly watches: WatchManager,
    /** Per-domain quotas and hard caps (src/domains/quota.ts); checked at the points cxenstored checks. */
    readonly quotas: Quotas,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Handle one framed request from `c`; the reply (or ERROR) is sent through c.sink. */
  handle(c: Client, m: Message): void {
    this.stats.requests++;
    const started = this.observer !== null ? performance.now() : 0;
    let reply: string;
    let type = m.type;
    let failure: unknown = null;
    try {
      // As cxenstored: a transaction id that names no transaction of the connection is refused
      // (ENOENT) before the payload is looked at, by every request but WATCH and UNWATCH.
      if (m.txId !== 0 && CHECKS_TX_ID.has(m.type)) c.txns.get(m.txId, this.now(), false);
      const req = parseRequest(m);
      // Protocol-level policy (e.g. strict-protocol), on the raw request, before it runs.
      const refused = this.policy.checkMessage?.(c, m.type, m.txId, m.payload);
      if (refused !== undefined) throw new XsError(refused, "refused by policy");
      reply = this.execute(c, req, m.txId);
      if (reply.length > PAYLOAD_MAX) throw new XsError("E2BIG", "reply exceeds 4096 bytes");
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
      this.observer.replied(c, m, type, reply, failure, performance.now() - started);
    }
    while (this.afterReply.length > 0) this.afterReply.shift()!();
  }

  private execute(c: Client, req: Request, txId: number): string {
    switch (req.op) {
      case MsgType.READ:
      case MsgType.WRITE:
      case MsgType.MKDIR:
      case MsgType.RM:
      case MsgType.DIRECTORY:
      case MsgType.DIRECTORY_PART:
      case MsgType.GET_PERMS:
      case MsgType.SET_PERMS:
        return this.nodeOp(c, req, this.viewFor(c, txId));
      case MsgType.TRANSACTION_START: {
        // Without the nested-transactions feature a transaction cannot be started inside one (as
        // cxenstored: EBUSY while the request's transaction is open).
        if (txId !== 0 && (c.features & FEATURE_NESTED_TRANSACTIONS) === 0) {
          throw new XsError("EBUSY", "nested transactions are not enabled for this domain");
        }
        this.quotas.checkTransactionStart(c);
        const tx = c.txns.start(
          () => this.db.root,
          txId,
          this.now(),
          (access, path, perms) => this.policy.checkNode(c, access, path, perms),
        );
        return `${tx.id}\0`;
      }
      case MsgType.TRANSACTION_END:
        return this.endTransaction(c, txId, req.commit);
      // WATCH and UNWATCH ignore tx_id (xenstore.txt): watches are not transactional.
      case MsgType.WATCH:
        return this.watch(c, req.path, req.token, req.depth);
      case MsgType.UNWATCH: {
        const p = this.resolve(c, req.path, true);
        if (!this.watches.remove(c.id, p.abs, req.token)) throw new XsError("ENOENT", "no such watch");
        return OK;
      }
      case MsgType.RESET_WATCHES:
        // As cxenstored and oxenstored: forget the caller's watches and transactions.
        this.watches.removeOwner(c.id);
        c.txns.clear();
        return OK;
      case MsgType.GET_DOMAIN_PATH:
        return `${domainPath(req.domid)}\0`;
      case MsgType.INTRODUCE:
      case MsgType.RELEASE:
      case MsgType.RESUME:
      case MsgType.SET_TARGET:
      case MsgType.SET_FEATURE:
      case MsgType.GET_QUOTA:
      case MsgType.SET_QUOTA:
        if (this.domainHandler === null) {
          throw new XsError("ENOSYS", `message type ${req.op} not implemented`);
        }
        return this.domainHandler.handle(c, req);
      case MsgType.IS_DOMAIN_INTRODUCED:
        if (this.domainHandler !== null) return this.domainHandler.handle(c, req);
        this.requireCap(c, "is-domain-introduced");
        return req.domid === 0 ? "T\0" : "F\0";
      case MsgType.GET_FEATURE:
        if (this.domainHandler !== null) return this.domainHandler.handle(c, req);
        if (req.domid !== undefined && req.domid !== c.domid) this.requireCap(c, "get-feature-other");
        return `${SERVER_FEATURES}\0`;
      case MsgType.CONTROL:
        if (this.controlHandler === null) throw new XsError("ENOSYS", "CONTROL not implemented");
        this.requireCap(c, "control");
        return this.controlHandler.handle(c, req.args);
      default:
        // Every request type is handled above; parseRequest already refused the rest with ENOSYS.
        throw new XsError("ENOSYS", `message type ${(req as Request).op} not implemented`);
    }
  }

  private viewFor(c: Client, txId: number): View {
    if (txId === 0) return new DatabaseView(this.db, c.domid);
    return new TransactionView(c.txns.get(txId, this.now()), () => this.db.nextGen());
  }

  private endTransaction(c: Client, txId: number, commit: boolean): string {
    const tx = c.txns.get(txId, this.now(), commit); // an abort needs no age check
    if (tx.children > 0) throw new XsError("EBUSY", "nested transactions still open");
    c.txns.end(tx);
    if (!commit) return OK;
    try {
      if (tx.parent) commitToParent(tx, tx.parent, () => this.db.nextGen());
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
    return OK;
  }

  private watch(c: Client, raw: string, token: string, depth: number | undefined): string {
    if (depth !== undefined && (c.features & FEATURE_WATCH_DEPTH) === 0) {
      throw new XsError("EINVAL", "watch depth is not enabled for this domain");
    }
    const p = this.resolve(c, raw, true);
    if (this.watches.has(c.id, p.abs, token)) throw new XsError("EEXIST", "watch already registered");
    this.quotas.checkWatch(c, p.abs, token);
    // A watch lives long: its strings are copies, not slices that keep the request payload alive
    // (src/store/strings.ts); a relative watch's base is shared with the domain's other watches.
    const base = p.relativeBase === null ? null : ownValue(p.relativeBase);
    const w = { owner: c.id, path: own(p.abs), token: own(token), depth, relativeBase: base };
    if (!this.watches.add(w)) throw new XsError("EEXIST", "watch already registered");
    this.afterReply.push(() => this.watches.fireInitial(w));
    return OK;
  }

  private requireCap(c: Client, cap: Capability): void {
    const d = this.policy.checkCapability(c, cap);
    if (d !== undefined) throw new XsError(d, cap);
  }

  private resolve(c: Client, raw: string, allowSpecial = false): ResolvedPath {
    const p = resolvePath(raw, c.base, allowSpecial);
    this.quotas.checkPath(c, p.abs);
    return p;
  }

  private check(c: Client, access: NodeAccess, path: string, perms: Perms): void {
    const d = this.policy.checkNode(c, access, path, perms);
    if (d !== undefined) throw new XsError(d, path);
  }

  /**
   * Refuse a missing node without revealing whether it exists to a caller that cannot read the
   * deepest existing ancestor (EACCES instead of ENOENT, as cxenstored).
   */
  private missing(c: Client, v: View, comps: string[], path: string): never {
    const chain = existingChain(v.root, comps);
    const deepest = chain[chain.length - 1];
    v.observe(path, OBS_EXISTS | OBS_READ);
    const d = this.policy.checkNode(c, "read", path, deepest.perms);
    throw new XsError(d ?? "ENOENT", path);
  }

  /** The existing node at `path`, after an access check; records what the check observed. */
  private existing(c: Client, v: View, path: string, access: NodeAccess, aspects: number): Node {
    const comps = components(path);
    const n = lookup(v.root, comps);
    if (n === undefined) this.missing(c, v, comps, path);
    const d = this.policy.checkNode(c, access, path, n.perms);
    // A refusal reveals only that the node exists and the decision; success reveals `aspects` too.
    v.observe(path, (d === undefined ? aspects : OBS_EXISTS) | accessAspect(access));
    if (d !== undefined) throw new XsError(d, path);
    return n;
  }

  /** Write-access decision for WRITE/MKDIR at `comps` on `root` (deepest existing node decides). */
  private writeAllowed(c: Client, root: Node, path: string): boolean {
    const chain = existingChain(root, components(path));
    return this.policy.checkNode(c, "write", path, chain[chain.length - 1].perms) === undefined;
  }

  private nodeOp(c: Client, req: Request, v: View): string {
    switch (req.op) {
      case MsgType.READ:
        return this.existing(c, v, this.resolve(c, req.path).abs, "read", OBS_VALUE).value;
      case MsgType.DIRECTORY: {
        const names = this.existing(c, v, this.resolve(c, req.path).abs, "read", OBS_CHILDREN).childNames();
        let out = "";
        for (const n of names) out += n + "\0";
        return out;
      }
      case MsgType.DIRECTORY_PART: {
        const n = this.existing(c, v, this.resolve(c, req.path).abs, "read", OBS_CHILDREN);
        return directoryPart(n, req.offset);
      }
      case MsgType.WRITE:
      case MsgType.MKDIR: {
        const path = this.resolve(c, req.path).abs;
        const value = req.op === MsgType.WRITE ? req.value : null;
        const comps = components(path);
        const chain = existingChain(v.root, comps);
        const decider = chain[chain.length - 1];
        const exists = chain.length - 1 === comps.length;
        const d = this.policy.checkNode(c, "write", path, decider.perms);
        if (d !== undefined) {
          v.observe(path, OBS_WRITE);
          throw new XsError(d, path);
        }
        // In a transaction a successful write is blind: its recheck re-evaluates the decision at commit.
        if (value === null && exists && v instanceof DatabaseView) return OK; // MKDIR of an existing node
        this.quotas.checkWrite(c, path, comps, chain, value, (pp) => this.policy.permsForCreate(c, pp));
        v.write(
          path,
          value,
          (pp) => this.policy.permsForCreate(c, pp),
          (root) => this.writeAllowed(c, root, path),
        );
        return OK;
      }
      case MsgType.RM: {
        const path = this.resolve(c, req.path).abs;
        if (path === "/") throw new XsError("EINVAL", "cannot remove /");
        const comps = components(path);
        const n = lookup(v.root, comps);
        const ppath = parentOf(path);
        if (n === undefined) {
          // Not an error if the parent exists (Xen RM semantics), but don't leak existence either.
          const parent = lookup(v.root, comps.slice(0, -1));
          if (parent === undefined) this.missing(c, v, comps.slice(0, -1), ppath);
          const d = this.policy.checkNode(c, "read", ppath, parent.perms);
          if (d !== undefined) {
            v.observe(path, OBS_EXISTS);
            v.observe(ppath, OBS_EXISTS | OBS_READ);
            throw new XsError(d, ppath);
          }
        } else {
          const d = this.policy.checkNode(c, "write", path, n.perms);
          if (d !== undefined) {
            v.observe(path, OBS_EXISTS | OBS_WRITE);
            throw new XsError(d, path);
          }
        }
        // Blind (also when the node is already absent): at commit the RM must still answer OK.
        v.remove(path, (root) => {
          const cur = lookup(root, comps);
          if (cur !== undefined) return this.policy.checkNode(c, "write", path, cur.perms) === undefined;
          const parent = lookup(root, comps.slice(0, -1));
          return parent !== undefined && this.policy.checkNode(c, "read", ppath, parent.perms) === undefined;
        });
        return OK;
      }
      case MsgType.GET_PERMS: {
        const p = this.resolve(c, req.path, true);
        if (p.special) return this.specialPerms(c, p.abs, "read").text;
        return this.existing(c, v, p.abs, "read", OBS_PERMS).perms.text;
      }
      case MsgType.SET_PERMS: {
        // The list is judged before the path, as cxenstored does: malformed (EINVAL), too long
        // (ENOSPC), an owner that is no existing domain (ENOENT) — so a node is never given to a
        // domain that does not exist, to be inherited by whichever domain gets that domid next.
        const asked = Perms.parse(req.perms);
        this.quotas.checkPermsCount(c, asked);
        const domains = this.incarnations(asked);
        // PERM-9/PERM-10: an entry naming no existing domain is kept as written but inactive — it
        // grants nothing, not even to a domain created later with that domid, until the list is set
        // again. Decided here, at the SET_PERMS itself (also inside a transaction), as cxenstored.
        const next = asked.decided((_domid, i) => domains[i + 1] !== null);
        const p = this.resolve(c, req.path, true);
        if (p.special) {
          const old = this.specialPerms(c, p.abs, "setperms");
          const d = this.policy.checkSetPerms(c, old, next);
          if (d !== undefined) throw new XsError(d, p.abs);
          this.db.specialPerms.set(p.abs, next);
          return OK;
        }
        const n = this.existing(c, v, p.abs, "setperms", 0);
        const d = this.policy.checkSetPerms(c, n.perms, next);
        if (d !== undefined) {
          v.observe(p.abs, OBS_PERMS); // the refusal depended on the current permissions
          throw new XsError(d, p.abs);
        }
        this.quotas.checkSetPerms(c, n, next);
        const comps = components(p.abs);
        v.setPerms(p.abs, next, n.perms, (root) => {
          const cur = lookup(root, comps);
          return cur !== undefined && this.policy.checkNode(c, "setperms", p.abs, cur.perms) === undefined &&
            this.policy.checkSetPerms(c, cur.perms, next) === undefined && this.sameDomains(next, domains);
        });
        return OK;
      }
      default:
        throw new Error("unreachable");
    }
  }

  /**
   * The incarnation of the domain `domid` names, or null if none has it (docs/protocol.md,
   * Permissions). The domain handler knows (the daemon always has one); a bare core without one does
   * not know which domains exist and takes every domid for an existing domain.
   */
  private incarnation(domid: number): string | null {
    const h = this.domainHandler;
    return h?.domainIncarnation !== undefined ? h.domainIncarnation(domid) : "unknown";
  }

  /**
   * The incarnations of the domains a permission list names, owner first; ENOENT if the owner does
   * not exist. An entry naming another unknown domain (null) is kept, inactive (docs/protocol.md,
   * Permissions).
   */
  private incarnations(p: Perms): Array<string | null> {
    const owner = this.incarnation(p.owner);
    if (owner === null) throw new XsError("ENOENT", `no domain ${p.owner} to own the node`);
    return [owner, ...p.acl.map((e) => this.incarnation(e.domid))];
  }

  /**
   * At a transaction's commit: every domain the list named when it was set is still the same one.
   * Otherwise the commit fails (EAGAIN): the owner may be gone, and an entry meant for a domain that
   * died since would go to the next domain given its domid (XSA-417), after the cleanup at its death
   * removed every other entry naming it. Entries that named no domain at the SET_PERMS are inactive
   * and stay so whatever exists at the commit.
   */
  private sameDomains(p: Perms, then: ReadonlyArray<string | null>): boolean {
    if (this.incarnation(p.owner) !== then[0]) return false;
    return p.acl.every((e, i) => then[i + 1] === null || this.incarnation(e.domid) === then[i + 1]);
  }

  private specialPerms(c: Client, path: string, access: "read" | "setperms"): Perms {
    const perms = this.db.specialPerms.get(path);
    // Only @introduceDomain and @releaseDomain have permissions (spec PERM-13: ENOENT for another).
    if (perms === undefined) throw new XsError("ENOENT", `${path.slice(0, 64)} has no permissions`);
    this.check(c, access, path, perms);
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
    if (path[0] === "@") {
      const slash = path.indexOf("/");
      const base = slash > 0 ? path.slice(0, slash) : path;
      const perms = this.db.specialPerms.get(base);
      return perms !== undefined &&
        this.policy.checkNode(c, "read", base, perms, CHECK_WATCH_EVENT) === undefined;
    }
    const comps = components(path);
    const readableIn = (root: Node | null): boolean => {
      if (root === null) return false;
      const n = lookup(root, comps);
      return n !== undefined &&
        this.policy.checkNode(c, "read", path, n.perms, CHECK_WATCH_EVENT) === undefined;
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

/**
 * DIRECTORY_PART reply: "<generation>\0" then the child list ("name\0" each, sorted) from byte `offset`,
 * as much as fits in one payload; an extra "\0" marks the end of the list. The generation changes
 * whenever the child set does, so a client restarts its walk if it sees a different one.
 */
export function directoryPart(node: Node, offset: number): string {
  const gen = `${node.gen}\0`;
  let all = "";
  for (const n of node.childNames()) all += n + "\0";
  // At or past the end — an empty list, or a directory that shrank since the client's previous part —
  // the end marker alone (docs/spec/operations.md NODE-8, as cxenstored): a client that stops at the
  // marker stops, and libxenstore compares generations and restarts instead of failing.
  if (offset >= all.length) return gen + "\0";
  let end = offset;
  // Whole names only; leave room for the terminating "\0".
  while (end < all.length) {
    const next = all.indexOf("\0", end) + 1;
    if (gen.length + (next - offset) + 1 > PAYLOAD_MAX) break;
    end = next;
  }
  return gen + all.slice(offset, end) + (end === all.length ? "\0" : "");
}
