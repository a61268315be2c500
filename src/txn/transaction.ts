// Optimistic transactions over the immutable tree (see docs/transactions.md for the rule).
//
// START is O(1): a transaction keeps the root it started from (`base`) and a working root (`root`) that
// its own writes path-copy. It records what the client OBSERVED of `base` — per path: existence, value,
// permissions, child names — skipping whatever its own earlier writes determined. Writes are logged.
// Commit validates the observations against the current tree in O(observed set), then replays the
// log onto the current tree (O(write set · depth)); each logged write carries a `recheck` supplied by
// the caller (the policy decision that made it succeed), re-evaluated at its replay point. EAGAIN iff
// an observation changed or a recheck fails: exactly the cases where a reply the client saw would now
// differ. A read-only transaction has an empty log, so it always commits.
//
// This module knows nothing about policy, the wire protocol or transports.
import { type Change, type Database } from "../store/database.ts";
import { components, parentOf } from "../store/path.ts";
import { type Perms, samePerms } from "../store/perms.ts";
import { lookup, type Node, removeNode, setPerms, writeValue } from "../store/tree.ts";

/** Aspects of a node a client can observe. */
export const OBS_EXISTS = 1;
export const OBS_VALUE = 2;
export const OBS_PERMS = 4;
export const OBS_CHILDREN = 8;

/** Why a path's state is known without looking at `base`. */
const LOCAL_VALUE = 1; // value written by this transaction
const LOCAL_PERMS = 2; // permissions set by this transaction
const LOCAL_FRESH = 4; // created by this transaction: everything at and below it is local
const LOCAL_REMOVED = 8; // removed by this transaction: absent, and so is everything below it

/** Re-evaluated at replay: does the write still succeed on this tree? */
export type Recheck = (root: Node) => boolean;

export type TxOp =
  | {
    readonly kind: "write";
    readonly path: string;
    readonly value: string | null; // null = MKDIR
    readonly permsForNew: (parentPerms: Perms) => Perms;
    readonly recheck: Recheck;
  }
  | { readonly kind: "rm"; readonly path: string; readonly recheck: Recheck }
  | { readonly kind: "perms"; readonly path: string; readonly perms: Perms; readonly recheck: Recheck };

interface Observation {
  /** The node in `base` (undefined = absent). */
  readonly node: Node | undefined;
  aspects: number;
}

export class TxConflict extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`conflict on ${path}: ${reason}`);
  }
}

export class Transaction {
  /** The working tree: `base` plus this transaction's own writes. */
  root: Node;
  readonly log: TxOp[] = [];
  private readonly observed = new Map<string, Observation>();
  private readonly local = new Map<string, number>();
  /** Open nested transactions started inside this one. */
  children = 0;

  constructor(
    readonly id: number,
    /** The tree this transaction started from (a parent transaction's view, if nested). */
    readonly base: Node,
    readonly parent: Transaction | null,
    readonly startedAt: number,
  ) {
    this.root = base;
  }

  /** Paths observed plus writes logged: the "nodes touched" the size limit counts. */
  get touched(): number {
    return this.observed.size + this.log.length;
  }

  get observedCount(): number {
    return this.observed.size;
  }

  /** True if `aspect` of `path` is determined by this transaction's own writes. */
  private isLocal(path: string, aspect: number): boolean {
    if (this.local.size === 0) return false;
    const own = this.local.get(path);
    if (own !== undefined) {
      if (own & (LOCAL_FRESH | LOCAL_REMOVED)) return true;
      // A written node exists and holds what was written, whatever happens to it meanwhile.
      if ((aspect === OBS_VALUE || aspect === OBS_EXISTS) && own & LOCAL_VALUE) return true;
      if (aspect === OBS_PERMS && own & LOCAL_PERMS) return true;
    }
    for (let p = path; p !== "/";) {
      p = parentOf(p);
      const f = this.local.get(p);
      if (f !== undefined && f & (LOCAL_FRESH | LOCAL_REMOVED)) return true;
    }
    return false;
  }

  /**
   * Record that the client saw `aspects` of the node at `path` (as it is in this transaction's view).
   * Aspects this transaction determined itself are skipped: they cannot conflict.
   */
  observe(path: string, aspects: number): void {
    let need = 0;
    for (const a of [OBS_EXISTS, OBS_VALUE, OBS_PERMS, OBS_CHILDREN]) {
      if (aspects & a && !this.isLocal(path, a)) need |= a;
    }
    if (need === 0) return;
    const o = this.observed.get(path);
    if (o !== undefined) {
      o.aspects |= need;
      return;
    }
    this.observed.set(path, { node: lookup(this.base, components(path)), aspects: need });
  }

  private mark(path: string, flag: number): void {
    this.local.set(path, flag & (LOCAL_FRESH | LOCAL_REMOVED) ? flag : (this.local.get(path) ?? 0) | flag);
  }

  /** Apply a write to the working tree and log it. */
  write(op: TxOp & { kind: "write" }, gen: number): void {
    const r = writeValue(this.root, components(op.path), op.value, op.permsForNew, gen);
    this.root = r.root;
    for (const p of r.created) this.mark(p, LOCAL_FRESH);
    if (op.value !== null && r.created.length === 0) this.mark(op.path, LOCAL_VALUE);
    this.log.push(op);
  }

  remove(op: TxOp & { kind: "rm" }, gen: number): void {
    const r = removeNode(this.root, components(op.path), gen);
    this.root = r.root;
    if (r.removed !== null) {
      // Forget finer-grained marks below: the removal determines them all.
      for (const p of [...this.local.keys()]) if (p.startsWith(op.path + "/")) this.local.delete(p);
      this.mark(op.path, LOCAL_REMOVED);
    }
    this.log.push(op);
  }

  setPerms(op: TxOp & { kind: "perms" }, gen: number): void {
    const root = setPerms(this.root, components(op.path), op.perms, gen);
    if (root === null) throw new Error("Transaction.setPerms: node missing in the working tree");
    this.root = root;
    this.mark(op.path, LOCAL_PERMS);
    this.log.push(op);
  }

  /** Throw TxConflict if something observed differs in `root` from what `base` showed. */
  validate(root: Node): void {
    if (root === this.base) return;
    for (const [path, o] of this.observed) {
      const cur = lookup(root, components(path));
      const was = o.node;
      if (cur === was) continue;
      if (cur === undefined || was === undefined) throw new TxConflict(path, "existence changed");
      if (o.aspects & OBS_VALUE && cur.value !== was.value) throw new TxConflict(path, "value changed");
      if (o.aspects & OBS_PERMS && !samePerms(cur.perms, was.perms)) {
        throw new TxConflict(path, "permissions changed");
      }
      if (o.aspects & OBS_CHILDREN && cur.gen !== was.gen && !sameChildren(cur, was)) {
        throw new TxConflict(path, "children changed");
      }
    }
  }

  /** Observations (with their base nodes) for merging into a parent transaction. */
  observations(): Iterable<[string, number]> {
    return [...this.observed].map(([p, o]) => [p, o.aspects] as [string, number]);
  }
}

function sameChildren(a: Node, b: Node): boolean {
  const x = a.childNames();
  const y = b.childNames();
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Replay `ops` onto `root`; returns the new root and the changes actually made, or throws TxConflict
 * if a recheck fails. `nextGen` supplies generations for the nodes written.
 */
export function replay(
  root: Node,
  ops: readonly TxOp[],
  nextGen: () => number,
): { root: Node; changes: Change[] } {
  const changes: Change[] = [];
  for (const op of ops) {
    if (!op.recheck(root)) throw new TxConflict(op.path, `${op.kind} no longer permitted`);
    const comps = components(op.path);
    switch (op.kind) {
      case "write": {
        const r = writeValue(root, comps, op.value, op.permsForNew, nextGen());
        if (r.root !== root) {
          changes.push({
            kind: "write",
            path: op.path,
            value: op.value,
            created: r.created,
            createdPerms: r.createdPerms,
          });
          root = r.root;
        }
        break;
      }
      case "rm": {
        const r = removeNode(root, comps, nextGen());
        if (r.removed !== null) {
          changes.push({ kind: "rm", path: op.path, removed: r.removed });
          root = r.root;
        }
        break;
      }
      case "perms": {
        const old = lookup(root, comps);
        if (old === undefined) throw new TxConflict(op.path, "node vanished");
        const nr = setPerms(root, comps, op.perms, nextGen());
        if (nr === null) throw new TxConflict(op.path, "node vanished");
        changes.push({ kind: "perms", path: op.path, perms: op.perms, old: old.perms });
        root = nr;
        break;
      }
    }
  }
  return { root, changes };
}

/** Commit a top-level transaction into the database (throws TxConflict → EAGAIN). */
export function commitToDatabase(tx: Transaction, db: Database, domid: number): readonly Change[] {
  const current = db.root;
  if (tx.log.length === 0) return []; // read-only: serialises at its snapshot, never fails
  tx.validate(current);
  const { root, changes } = replay(current, tx.log, () => db.nextGen());
  if (changes.length > 0) db.commit({ before: current, after: root, changes, domid });
  return changes;
}

/** Merge a nested transaction into its parent (throws TxConflict → EAGAIN for the child). */
export function commitToParent(child: Transaction, parent: Transaction, nextGen: () => number): void {
  if (child.log.length === 0) {
    for (const [p, a] of child.observations()) parent.observe(p, a);
    return;
  }
  child.validate(parent.root);
  // Check every recheck on a scratch replay first so a failure leaves the parent untouched.
  replay(parent.root, child.log, nextGen);
  for (const [p, a] of child.observations()) parent.observe(p, a);
  for (const op of child.log) {
    if (op.kind === "write") parent.write(op, nextGen());
    else if (op.kind === "rm") parent.remove(op, nextGen());
    else parent.setPerms(op, nextGen());
  }
}
