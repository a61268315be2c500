// Optimistic transactions over the immutable tree. The rule is written down in docs/transactions.md;
// this file implements exactly that rule.
//
// START is O(1): a transaction keeps the root it started from (`base`) and a working root (`root`) that
// its own modifications path-copy. Its `log` is the sequence of what it did, in order:
//   - a "check" for every observation (what a reply depended on: existence, value, permissions, child
//     names of a path, or the access decision taken on the deepest existing node at or above it),
//     together with what the transaction saw;
//   - a "write" / "rm" / "perms" for every modification, with a `recheck` supplied by the dispatcher:
//     the policy decision that made the client's request succeed.
// COMMIT replays the log onto the current tree: each check compares what the transaction saw with
// what the same observation gives at that point of the replay (current tree + the transaction's own
// earlier modifications), each modification re-evaluates its recheck there and is applied. EAGAIN iff
// one of them differs, i.e. exactly when some reply the client got would have been different had the
// whole transaction run at its commit point. Checks are deduplicated (an observation already checked
// is not logged again unless the transaction modified that path's line since), so validation is
// O(distinct observations · depth). A transaction without modifications commits at once: it
// serialises at its snapshot and never fails.
//
// A transaction allowed to (`snapshotOnOverflow`: dom0's) does not fail when its observations outgrow
// the limits: it drops them and from then on depends on its whole snapshot instead, committing only if
// the store is still the tree it started from. Reading a whole 100 000-node store inside one
// transaction (`dxenstored export --socket`) then costs O(1) memory for the observations and the
// copy is still a snapshot; modifications stay bounded as before.
//
// This module knows nothing about policy, the wire protocol or transports: access decisions come in
// through a `Decide` function and rechecks through closures.
import { XsError } from "../common/xs_error.ts";
import type { Errno } from "../common/xs_error.ts";
// Structurally the policy's own types (src/policy/policy.ts); declared here so that transactions
// import nothing from the policy layer: they only replay decisions through the `Decide` function.
type NodeAccess = "read" | "write" | "setperms";
type Decision = Errno | undefined;
import { type Change, type Database } from "../store/database.ts";
import { components } from "../store/path.ts";
import { type Perms, samePerms } from "../store/perms.ts";
import { existingChain, lookup, type Node, removeNode, setPerms, writeValue } from "../store/tree.ts";

/** Aspects of a path a reply can depend on. */
export const OBS_EXISTS = 1;
export const OBS_VALUE = 2;
export const OBS_PERMS = 4;
export const OBS_CHILDREN = 8;
/** The read / write / setperms decision on the deepest existing node at or above the path. */
export const OBS_READ = 16;
export const OBS_WRITE = 32;
export const OBS_SETPERMS = 64;

const OBS_DATA = OBS_EXISTS | OBS_VALUE | OBS_PERMS | OBS_CHILDREN;
const OBS_ACCESS = OBS_READ | OBS_WRITE | OBS_SETPERMS;
const ACCESS_KINDS: ReadonlyArray<[number, NodeAccess]> = [
  [OBS_READ, "read"],
  [OBS_WRITE, "write"],
  [OBS_SETPERMS, "setperms"],
];

/** The observation bit for an access decision of kind `access`. */
export function accessAspect(access: NodeAccess): number {
  return access === "read" ? OBS_READ : access === "write" ? OBS_WRITE : OBS_SETPERMS;
}

/** The client's access decision on a node with `perms` (the policy, bound to the connection). */
export type Decide = (access: NodeAccess, path: string, perms: Perms) => Decision;

/** Re-evaluated at replay: does the modification still succeed (same reply) on this tree? */
export type Recheck = (root: Node) => boolean;

/** An observation: what the transaction saw of `path` (in its own view, at that point). */
export interface TxCheck {
  readonly kind: "check";
  readonly path: string;
  readonly aspects: number;
  /** The node at `path` as seen (undefined = absent). */
  readonly node: Node | undefined;
  /** Permissions of the deepest existing node at or above `path`, as seen (access decisions). */
  readonly decider: Perms;
  /** How access decisions are evaluated; null = compare the decider's permissions instead. */
  readonly decide: Decide | null;
}

export type TxOp =
  | TxCheck
  | {
    readonly kind: "write";
    readonly path: string;
    readonly value: string | null; // null = MKDIR
    readonly permsForNew: (parentPerms: Perms) => Perms;
    readonly recheck: Recheck;
  }
  | { readonly kind: "rm"; readonly path: string; readonly recheck: Recheck }
  | { readonly kind: "perms"; readonly path: string; readonly perms: Perms; readonly recheck: Recheck };

export interface TxOptions {
  /** Distinct paths a transaction may observe or modify (ENOSPC beyond; Infinity = unbounded). */
  readonly maxTouched?: number;
  /** Log entries (observations + modifications) a transaction may hold (ENOSPC beyond). */
  readonly maxOps?: number;
  /** Access decisions for OBS_READ/OBS_WRITE/OBS_SETPERMS; without it, the decider's perms are compared. */
  readonly decide?: Decide | null;
  /**
   * When observations would exceed the limits: drop them and validate the whole snapshot at commit
   * (see Transaction.observesWholeSnapshot) instead of refusing with ENOSPC. Modifications that do not
   * fit are refused either way.
   */
  readonly snapshotOnOverflow?: boolean;
}

/** Why a transaction that observes its whole snapshot conflicts. */
const SNAPSHOT_CHANGED = "the store changed since the transaction started (it observed too many nodes to " +
  "check them one by one)";

export class TxConflict extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`conflict on ${path}: ${reason}`);
  }
}

interface LastCheck {
  aspects: number;
  /** `epoch` when checked. */
  epoch: number;
  /** Invalidated by any modification at all (access decisions on a missing path). */
  global: boolean;
}

export class Transaction {
  /** The working tree: `base` plus this transaction's own modifications. */
  root: Node;
  /** Observations and modifications, in order (replayed at commit). */
  readonly log: TxOp[] = [];
  /** Open nested transactions started inside this one. */
  children = 0;
  /** Number of modifications in `log` (0 = read-only). */
  private mods = 0;
  /** Distinct paths observed or modified (the "nodes touched" limit). */
  private readonly paths = new Set<string>();
  /** Bumped by every modification; dedup bookkeeping below is in these units. */
  private epoch = 0;
  /** The path of every modification, in order: `modPaths[e - 1]` made epoch `e`. */
  private readonly modPaths: string[] = [];
  /**
   * Per path, the last epoch that modified it (`at`) or a node below it (`below`): built from
   * `modPaths` the first time a check must look past MOD_SCAN_MAX modifications, kept up to date from
   * then on (see modifiedSince). Most transactions make a few modifications and never build it.
   */
  private modIndex: ModIndex | null = null;
  private readonly lastCheck = new Map<string, LastCheck>();
  readonly decide: Decide | null;
  private readonly maxTouched: number;
  private readonly maxOps: number;
  private readonly snapshotOnOverflow: boolean;
  /** Observations overflowed: none are kept; the commit requires the untouched snapshot. */
  private wholeSnapshot = false;

  constructor(
    readonly id: number,
    /** The tree this transaction started from (a parent transaction's view, if nested). */
    readonly base: Node,
    readonly parent: Transaction | null,
    readonly startedAt: number,
    opts: TxOptions = {},
  ) {
    this.root = base;
    this.decide = opts.decide ?? null;
    this.maxTouched = opts.maxTouched ?? Infinity;
    this.maxOps = opts.maxOps ?? Infinity;
    this.snapshotOnOverflow = opts.snapshotOnOverflow ?? false;
  }

  /**
   * True once the observations outgrew the limits (snapshotOnOverflow): the transaction then depends
   * on everything in its snapshot and commits only if the tree it validates against is still `base`.
   */
  get observesWholeSnapshot(): boolean {
    return this.wholeSnapshot;
  }

  /** Distinct paths observed or modified: what the "nodes touched" limit counts. */
  get touched(): number {
    return this.paths.size;
  }

  /** Modifications logged (0 for a read-only transaction). */
  get modifications(): number {
    return this.mods;
  }

  /** Observations logged. */
  get checks(): number {
    return this.log.length - this.mods;
  }

  /**
   * Record that a reply depended on `aspects` of `path` as this transaction's view shows them now.
   * Throws XsError("ENOSPC") if that would exceed the transaction's limits.
   */
  observe(path: string, aspects: number): void {
    if (aspects === 0 || this.wholeSnapshot) return;
    const comps = components(path);
    const chain = existingChain(this.root, comps);
    const exists = chain.length - 1 === comps.length;
    // An access decision on an existing node is only meaningful while the node exists.
    if (exists && aspects & OBS_ACCESS) aspects |= OBS_EXISTS;
    // Deduplication: an identical earlier observation still stands for this one unless this
    // transaction has modified the path, an ancestor or a descendant since (see modifiedSince).
    const prev = this.lastCheck.get(path);
    const prevValid = prev !== undefined &&
      (prev.global ? prev.epoch === this.epoch : !this.modifiedSince(path, prev.epoch));
    if (prevValid && (prev.aspects & aspects) === aspects) return;
    const full = this.overflow(path, 1);
    if (full !== null) {
      if (!this.snapshotOnOverflow) throw new XsError("ENOSPC", full);
      this.collapse();
      return;
    }
    this.paths.add(path);
    this.log.push({
      kind: "check",
      path,
      aspects,
      node: exists ? chain[chain.length - 1] : undefined,
      decider: chain[chain.length - 1].perms,
      decide: this.decide,
    });
    const all = prevValid ? prev.aspects | aspects : aspects;
    // The decider of a missing path can change in the replayed tree when a modification elsewhere
    // creates one of its ancestors there (say the commit-time store lacks a node this view has):
    // such an observation is reused only while nothing at all was modified.
    this.lastCheck.set(path, {
      aspects: all,
      epoch: this.epoch,
      global: !exists && (all & OBS_ACCESS) !== 0,
    });
  }

  /** Apply a WRITE/MKDIR to the working tree and log it. */
  write(op: TxOp & { kind: "write" }, gen: number): void {
    this.room(op.path, 1);
    this.root = writeValue(this.root, components(op.path), op.value, op.permsForNew, gen).root;
    this.logMod(op);
  }

  /** Apply an RM to the working tree (a no-op if the node is absent) and log it. */
  remove(op: TxOp & { kind: "rm" }, gen: number): void {
    this.room(op.path, 1);
    this.root = removeNode(this.root, components(op.path), gen).root;
    this.logMod(op);
  }

  setPerms(op: TxOp & { kind: "perms" }, gen: number): void {
    this.room(op.path, 1);
    const root = setPerms(this.root, components(op.path), op.perms, gen);
    if (root === null) throw new Error("Transaction.setPerms: node missing in the working tree");
    this.root = root;
    this.logMod(op);
  }

  /**
   * Merge a committed nested transaction: validate its log against this transaction's current view
   * (TxConflict if it no longer holds), then append it, so this transaction's own commit re-validates
   * it at its position. Throws XsError("ENOSPC") if the merged transaction would exceed the limits.
   * On any failure this transaction is left unchanged.
   */
  absorb(child: Transaction, nextGen: () => number): void {
    // A child that observes its whole snapshot holds only if this view is still that snapshot; this
    // transaction then inherits the dependency (its own commit must find its snapshot untouched).
    if (child.wholeSnapshot && this.root !== child.base) throw new TxConflict("/", SNAPSHOT_CHANGED);
    let whole = this.wholeSnapshot || child.wholeSnapshot;
    let full = this.mergeOverflow(child, whole);
    if (full !== null && !whole && this.snapshotOnOverflow) {
      whole = true;
      full = this.mergeOverflow(child, true);
    }
    if (full !== null) throw new XsError("ENOSPC", full);
    const { root } = replay(this.root, child.log, nextGen);
    if (whole) this.collapse();
    this.root = root;
    for (const op of child.log) {
      if (op.kind === "check" && whole) continue;
      this.log.push(op);
      this.paths.add(op.path);
      if (op.kind !== "check") this.noteMod(op.path);
    }
  }

  /** Why merging `child` would exceed the limits (only modifications counted if `whole`), or null. */
  private mergeOverflow(child: Transaction, whole: boolean): string | null {
    let touched: number;
    let entries: number;
    if (!whole) {
      touched = this.paths.size;
      for (const p of child.paths) if (!this.paths.has(p)) touched++;
      entries = this.log.length + child.log.length;
    } else {
      const paths = new Set<string>();
      entries = 0;
      for (const log of [this.log, child.log]) {
        for (const op of log) {
          if (op.kind === "check") continue;
          paths.add(op.path);
          entries++;
        }
      }
      touched = paths.size;
    }
    if (touched > this.maxTouched) return "transaction touches too many nodes";
    if (entries > this.maxOps) return "transaction has too many operations";
    return null;
  }

  /** Drop every observation: from now on the transaction depends on its whole snapshot. */
  private collapse(): void {
    if (this.wholeSnapshot) return;
    this.wholeSnapshot = true;
    let n = 0;
    for (const op of this.log) if (op.kind !== "check") this.log[n++] = op;
    this.log.length = n;
    this.paths.clear();
    for (const op of this.log) this.paths.add(op.path);
    this.lastCheck.clear();
  }

  private logMod(op: TxOp): void {
    this.log.push(op);
    this.noteMod(op.path);
  }

  private noteMod(path: string): void {
    this.mods++;
    this.epoch++;
    this.modPaths.push(path);
    if (this.modIndex !== null) indexMod(this.modIndex, path, this.epoch);
  }

  /**
   * Did a modification since `epoch` touch `path`, one of its ancestors or a descendant? Others
   * cannot change what an observation of `path` sees, in this view or in the replayed tree. (Strictly,
   * only re-creation of the node, which can change its inherited permissions, and changes of its own
   * permissions matter: existence, value and child names that agreed stay in agreement under the
   * same modifications. Invalidating more only costs an extra check.) Up to MOD_SCAN_MAX
   * modifications since are compared one by one; past that, the index answers in O(depth).
   */
  private modifiedSince(path: string, epoch: number): boolean {
    if (this.epoch === epoch) return false;
    if (this.epoch - epoch <= MOD_SCAN_MAX) {
      for (let e = epoch; e < this.epoch; e++) if (lineRelated(this.modPaths[e], path)) return true;
      return false;
    }
    if (this.modIndex === null) {
      const index: ModIndex = { at: new Map(), below: new Map() };
      for (let e = 0; e < this.modPaths.length; e++) indexMod(index, this.modPaths[e], e + 1);
      this.modIndex = index;
    }
    const { at, below } = this.modIndex;
    if ((below.get(path) ?? -1) > epoch) return true;
    if ((at.get("/") ?? -1) > epoch) return true;
    if (path === "/") return false;
    // `path` and each of its ancestors below "/", as slices of `path`.
    for (let end = path.indexOf("/", 1); end > 0; end = path.indexOf("/", end + 1)) {
      if ((at.get(path.slice(0, end)) ?? -1) > epoch) return true;
    }
    return (at.get(path) ?? -1) > epoch;
  }

  /** Why `entries` more log entries about `path` would exceed the limits, or null if they fit. */
  private overflow(path: string, entries: number): string | null {
    if (!this.paths.has(path) && this.paths.size >= this.maxTouched) {
      return "transaction touches too many nodes";
    }
    if (this.log.length + entries > this.maxOps) return "transaction has too many operations";
    return null;
  }

  /**
   * ENOSPC unless one more modification of `path` fits the limits (after dropping the observations,
   * if they are what fills them and the transaction may do so).
   */
  private room(path: string, entries: number): void {
    let full = this.overflow(path, entries);
    if (full !== null && this.snapshotOnOverflow && this.checks > 0) {
      this.collapse();
      full = this.overflow(path, entries);
    }
    if (full !== null) throw new XsError("ENOSPC", full);
    this.paths.add(path);
  }
}

/**
 * Modifications a dedup check compares one by one (Transaction.modifiedSince); more, and it builds the
 * index, so that a long transaction re-reading what it writes stays O(depth) per observation.
 */
const MOD_SCAN_MAX = 16;

/** Transaction.modIndex: per path, the last epoch that modified it / a node below it. */
interface ModIndex {
  readonly at: Map<string, number>;
  readonly below: Map<string, number>;
}

/** Record in `index` that epoch `epoch` modified `path`. */
function indexMod(index: ModIndex, path: string, epoch: number): void {
  index.at.set(path, epoch);
  if (path === "/") return;
  // Every proper ancestor, "/" included, as a slice of `path` (no string is built piece by piece).
  index.below.set("/", epoch);
  for (let end = path.indexOf("/", 1); end > 0; end = path.indexOf("/", end + 1)) {
    index.below.set(path.slice(0, end), epoch);
  }
}

/**
 * Is the modified path `mod` on `path`'s line — `path` itself, an ancestor or a descendant? "/" is on
 * every line (exactly what the index answers: a modification of "/" invalidates every observation, an
 * observation of "/" is invalidated by every modification).
 */
export function lineRelated(mod: string, path: string): boolean {
  if (mod === path || mod === "/" || path === "/") return true;
  if (mod.length < path.length) return path.charCodeAt(mod.length) === 47 && path.startsWith(mod);
  return mod.length > path.length && mod.charCodeAt(path.length) === 47 && mod.startsWith(path);
}

function sameChildren(a: Node, b: Node): boolean {
  if (a.children === b.children) return true;
  const x = a.childNames();
  const y = b.childNames();
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Why observation `c` comes out differently on `root`, or null if it holds. */
export function checkFails(c: TxCheck, root: Node): string | null {
  const comps = components(c.path);
  const chain = existingChain(root, comps);
  const cur = chain.length - 1 === comps.length ? chain[chain.length - 1] : undefined;
  const was = c.node;
  if (c.aspects & OBS_DATA && cur !== was) {
    if (cur === undefined || was === undefined) return cur === undefined ? "removed" : "created";
    if (c.aspects & OBS_VALUE && cur.value !== was.value) return "value changed";
    if (c.aspects & OBS_PERMS && !samePerms(cur.perms, was.perms)) return "permissions changed";
    if (c.aspects & OBS_CHILDREN && !sameChildren(cur, was)) return "children changed";
  }
  if (c.aspects & OBS_ACCESS) {
    const perms = chain[chain.length - 1].perms;
    if (!samePerms(perms, c.decider)) {
      if (c.decide === null) return "permissions changed";
      for (const [bit, access] of ACCESS_KINDS) {
        if (c.aspects & bit && c.decide(access, c.path, perms) !== c.decide(access, c.path, c.decider)) {
          return `${access} access changed`;
        }
      }
    }
  }
  return null;
}

/**
 * Replay `ops` onto `root`: validate each check, re-evaluate each recheck and apply each modification.
 * Returns the new root and the changes actually made, or throws TxConflict. `nextGen` supplies
 * generations for the nodes written.
 */
export function replay(
  root: Node,
  ops: readonly TxOp[],
  nextGen: () => number,
): { root: Node; changes: Change[] } {
  const changes: Change[] = [];
  for (const op of ops) {
    if (op.kind === "check") {
      const why = checkFails(op, root);
      if (why !== null) throw new TxConflict(op.path, why);
      continue;
    }
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
        const nr = old === undefined ? null : setPerms(root, comps, op.perms, nextGen());
        if (old === undefined || nr === null) throw new TxConflict(op.path, "node vanished");
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
  if (tx.modifications === 0) return []; // read-only: serialises at its snapshot, never fails
  const current = db.root;
  if (tx.observesWholeSnapshot && current !== tx.base) throw new TxConflict("/", SNAPSHOT_CHANGED);
  const { root, changes } = replay(current, tx.log, () => db.nextGen());
  if (changes.length > 0) db.commit({ before: current, after: root, changes, domid });
  return changes;
}

/**
 * Merge a nested transaction into its parent, validated against the parent's current view (throws
 * TxConflict → EAGAIN, or XsError ENOSPC; the parent is unchanged then).
 */
export function commitToParent(child: Transaction, parent: Transaction, nextGen: () => number): void {
  parent.absorb(child, nextGen);
}
