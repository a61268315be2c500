// What a domain's nodes cost, and how a commit changes it. Pure functions over the immutable tree:
// the quota manager (src/quota/quotas.ts) applies the deltas; nothing here keeps state except a
// per-node cache that dies with the node.
//
// Both measures are cxenstored 4.17's, so a guest that fits under cxenstored fits here and
// `xenstore-control quota <domid>` shows the same numbers:
//  - recordSize: the node's TDB record — a 24-byte header, 8 bytes per permission entry, the value,
//    and the child names each with its NUL (the node-size quota);
//  - nodeBytes: the record plus the key, i.e. the length of the node's path (memory charged to the
//    node's owner). A child's name is part of its parent's record, so creating or removing a node
//    also changes what its parent's owner is charged, as in cxenstored.
import type { Change, Commit } from "../store/database.ts";
import { components, isAncestorOrSelf } from "../store/path.ts";
import type { Perms } from "../store/perms.ts";
import { lookup, type Node } from "../store/tree.ts";

/** Cost of one permission entry (sizeof(struct xs_permissions)). */
export const PERM_ENTRY_BYTES = 8;
/** cxenstored 4.17's record header (generation u64, num_perms, datalen, childlen u32), padded. */
export const RECORD_HEADER_BYTES = 24;

/** cxenstored 4.17's record size: header + permissions + value + child names. */
export function recordSize(valueLen: number, perms: Perms, childBytes: number): number {
  return RECORD_HEADER_BYTES + PERM_ENTRY_BYTES * perms.count + valueLen + childBytes;
}

/** Memory charged for a node at a path of `pathLen` bytes: its key and its record. */
export function nodeBytes(pathLen: number, valueLen: number, perms: Perms, childBytes: number): number {
  return pathLen + recordSize(valueLen, perms, childBytes);
}

/** Memory charged for a watch: its absolute path and its token (cxenstored 4.17 add_watch). */
export function watchBytes(path: string, token: string): number {
  return path.length + token.length;
}

/** Length of the path of a child called `name` of a node whose path is `parentLen` bytes long. */
function childPathLen(parentLen: number, name: string): number {
  return (parentLen === 1 ? 0 : parentLen) + 1 + name.length;
}

const childLenCache = new WeakMap<Node, number>();
/**
 * Only directories with at least this many children keep their childLen in the cache: smaller ones
 * are summed again when needed (cheaper than a WeakMap entry, which also costs the GC).
 */
const CACHE_MIN_CHILDREN = 32;

/** Σ (child name length + 1), cxenstored's `childlen`. Cached for large (immutable) directories. */
export function childLen(n: Node): number {
  const known = childLenCache.get(n);
  if (known !== undefined) return known;
  const len = n.childNameBytes();
  if (n.childCount >= CACHE_MIN_CHILDREN) childLenCache.set(n, len);
  return len;
}

/**
 * childLen of `after`, a new version of `before` whose child set differs at most in `names`: for a
 * large directory derived from `before`'s in O(|names|), so it is not rescanned on every commit
 * that adds or removes one of its children.
 */
function childLenAfter(before: Node, after: Node, names: Iterable<string> | undefined): number {
  const known = childLenCache.get(after);
  if (known !== undefined) return known;
  const prev = childLenCache.get(before);
  if (prev === undefined) return childLen(after);
  let len = prev;
  for (const name of names ?? []) {
    const was = before.child(name) !== undefined;
    const is = after.child(name) !== undefined;
    if (was !== is) len += (is ? 1 : -1) * (name.length + 1);
  }
  childLenCache.set(after, len);
  return len;
}

export function nodeRecordSize(n: Node): number {
  return recordSize(n.value.length, n.perms, childLen(n));
}

/** Per-owner usage: nodes owned and bytes charged. */
export interface Usage {
  nodes: number;
  bytes: number;
}

export type UsageByOwner = Map<number, Usage>;

function add(m: UsageByOwner, owner: number, nodes: number, bytes: number): void {
  const u = m.get(owner);
  if (u === undefined) m.set(owner, { nodes, bytes });
  else {
    u.nodes += nodes;
    u.bytes += bytes;
  }
}

/** Add `sign` × every node of the subtree at `n` (path `pathLen` bytes long) to the owners. Iterative. */
function addSubtree(m: UsageByOwner, pathLen: number, n: Node, sign: 1 | -1): void {
  // Parallel stacks, not [length, node] pairs (see walk() in src/store/tree.ts).
  const lens: number[] = [pathLen];
  const nodes: Node[] = [n];
  while (nodes.length > 0) {
    const len = lens.pop()!;
    const x = nodes.pop()!;
    let kids = 0;
    x.forEachChild((name, c) => {
      kids += name.length + 1;
      lens.push(childPathLen(len, name));
      nodes.push(c);
    });
    add(m, x.perms.owner, sign, sign * nodeBytes(len, x.value.length, x.perms, kids));
  }
}

/** Usage of every owner in a whole tree (startup, and the consistency check). */
export function treeUsage(root: Node): UsageByOwner {
  const m: UsageByOwner = new Map();
  addSubtree(m, 1, root, 1);
  return m;
}

function parentPath(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

/** `path` itself or one of its ancestors is in `set`; with `proper`, ancestors only. */
function coveredBy(path: string, set: ReadonlySet<string>, proper: boolean): boolean {
  if (set.size === 0) return false;
  if (!proper && set.has(path)) return true;
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    if (set.has(path.slice(0, i))) return true;
  }
  if (path !== "/" && set.has("/")) return true;
  return false;
}

/** Which nodes a commit can have changed. */
export interface CommitShape {
  /**
   * Nodes outside every removed subtree whose record may differ: the ones written, created or
   * re-permissioned, and the parents whose child set changed.
   */
  readonly touched: ReadonlySet<string>;
  /** Top-most removed paths (a removal inside another removed subtree is covered by it). */
  readonly removedRoots: readonly string[];
  /** Per parent path, the child names created or removed below it (for childLenAfter). */
  readonly childChanges: ReadonlyMap<string, ReadonlySet<string>>;
}

export function commitShape(c: Commit): CommitShape {
  const touched = new Set<string>();
  const removed = new Set<string>();
  const childChanges = new Map<string, Set<string>>();
  const childChanged = (p: string): void => {
    const parent = parentPath(p);
    let s = childChanges.get(parent);
    if (s === undefined) {
      s = new Set();
      childChanges.set(parent, s);
    }
    s.add(lastName(p));
    touched.add(parent);
  };
  for (const ch of c.changes) {
    if (ch.kind === "rm") {
      removed.add(ch.path);
      childChanged(ch.path);
      continue;
    }
    touched.add(ch.path);
    if (ch.kind === "write" && ch.created.length > 0) {
      for (const p of ch.created) touched.add(p);
      childChanged(ch.created[0]);
    }
  }
  const removedRoots: string[] = [];
  for (const r of removed) if (!coveredBy(r, removed, true)) removedRoots.push(r);
  const top = new Set(removedRoots);
  for (const p of touched) if (coveredBy(p, top, false)) touched.delete(p);
  return { touched, removedRoots, childChanges };
}

/**
 * The exact change in every owner's usage made by a commit, from the trees around it: for each
 * top-most removed subtree, everything in it before minus everything in it after (a transaction may
 * remove and re-create); for every other node the commit wrote, created, re-permissioned or gave
 * or took a child, the node after minus the node before. No other node can have changed, so this is
 * exact whatever the order of the changes inside a transaction. Cost: the removed subtrees plus
 * O(depth + changed children) per touched node. Owners whose usage does not change are left out.
 */
export function commitDelta(c: Commit): UsageByOwner {
  if (c.changes.length === 1) return singleChangeDelta(c, c.changes[0]);
  if (independentChanges(c.changes)) {
    const m: UsageByOwner = new Map();
    for (const ch of c.changes) addChangeDelta(m, c.before, ch);
    return withoutZeros(m);
  }
  return commitDeltaByShape(c);
}

/**
 * commitDelta the general way, from the commit's shape and the trees around it, whatever its changes
 * (commitDelta takes this path unless the changes are independent; the tests compare the two).
 */
export function commitDeltaByShape(c: Commit): UsageByOwner {
  const shape = commitShape(c);
  const m: UsageByOwner = new Map();
  for (const r of shape.removedRoots) {
    const comps = components(r);
    const b = lookup(c.before, comps);
    if (b !== undefined) addSubtree(m, r.length, b, -1);
    const a = lookup(c.after, comps);
    if (a !== undefined) addSubtree(m, r.length, a, 1);
  }
  for (const p of shape.touched) {
    const comps = components(p);
    const b = lookup(c.before, comps);
    const a = lookup(c.after, comps);
    if (a === b) continue;
    if (b !== undefined) {
      add(m, b.perms.owner, -1, -nodeBytes(p.length, b.value.length, b.perms, childLen(b)));
    }
    if (a !== undefined) {
      const kids = b !== undefined ? childLenAfter(b, a, shape.childChanges.get(p)) : childLen(a);
      add(m, a.perms.owner, 1, nodeBytes(p.length, a.value.length, a.perms, kids));
    }
  }
  return withoutZeros(m);
}

/** `m` without the owners whose usage does not change. */
function withoutZeros(m: UsageByOwner): UsageByOwner {
  for (const [owner, u] of m) if (u.nodes === 0 && u.bytes === 0) m.delete(owner);
  return m;
}

/**
 * The subtree whose nodes a change's delta (addChangeDelta) reads or changes: the node rewritten or
 * re-permissioned; for a creation or a removal, the parent whose child names change and whose owner
 * is charged for them (the created or removed nodes are below it).
 */
function footprint(ch: Change): string {
  if (ch.kind === "rm") return parentPath(ch.path);
  if (ch.kind === "write" && ch.created.length > 0) return parentPath(ch.created[0]);
  return ch.path;
}

/** More changes than this in one commit: the general path (the pairwise test is quadratic). */
const INDEPENDENT_MAX = 8;

/**
 * True if no change's footprint is the same as, an ancestor of or a descendant of another's. Then no
 * change alters what another's delta reads (each reads only inside its own footprint, and outside it
 * a change only path-copies ancestors, whose values, permissions and child names stay the same), so
 * each change's delta computed against `before` is its delta where it happened, and the commit's is
 * their sum: xsbench's txn/create commits a counter and a child of another parent, for instance.
 * Exported for the tests.
 */
export function independentChanges(changes: readonly Change[]): boolean {
  const n = changes.length;
  if (n < 2 || n > INDEPENDENT_MAX) return false;
  for (let i = 0; i < n; i++) {
    const a = footprint(changes[i]);
    for (let j = i + 1; j < n; j++) {
      const b = footprint(changes[j]);
      if (isAncestorOrSelf(a, b) || isAncestorOrSelf(b, a)) return false;
    }
  }
  return true;
}

function lastName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/**
 * commitDelta of a commit with one change (every plain request, and many transactions), from the
 * change itself and one or two lookups in `before`: what the general case computes, without its sets.
 */
function singleChangeDelta(c: Commit, ch: Change): UsageByOwner {
  const m: UsageByOwner = new Map();
  addChangeDelta(m, c.before, ch);
  return withoutZeros(m);
}

/** Add what change `ch`, made to the tree `before`, changes in its owners' usage to `m`. */
function addChangeDelta(m: UsageByOwner, before: Node, ch: Change): void {
  switch (ch.kind) {
    case "write": {
      if (ch.created.length === 0) {
        const old = lookup(before, components(ch.path));
        if (old !== undefined && ch.value !== null) {
          add(m, old.perms.owner, 0, ch.value.length - old.value.length);
        }
        break;
      }
      const perms = ch.createdPerms!;
      const first = ch.created[0];
      const parent = lookup(before, components(parentPath(first)));
      if (parent !== undefined) add(m, parent.perms.owner, 0, lastName(first).length + 1);
      const last = ch.created.length - 1;
      let bytes = 0;
      for (let i = 0; i <= last; i++) {
        const p = ch.created[i];
        const kids = i === last ? 0 : lastName(ch.created[i + 1]).length + 1;
        bytes += nodeBytes(p.length, i === last ? (ch.value ?? "").length : 0, perms, kids);
      }
      add(m, perms.owner, ch.created.length, bytes);
      break;
    }
    case "rm": {
      addSubtree(m, ch.path.length, ch.removed, -1);
      const parent = lookup(before, components(parentPath(ch.path)));
      if (parent !== undefined) add(m, parent.perms.owner, 0, -(lastName(ch.path).length + 1));
      break;
    }
    case "perms": {
      const old = lookup(before, components(ch.path));
      if (old === undefined) break;
      const kids = childLen(old);
      add(m, ch.old.owner, -1, -nodeBytes(ch.path.length, old.value.length, ch.old, kids));
      add(m, ch.perms.owner, 1, nodeBytes(ch.path.length, old.value.length, ch.perms, kids));
      break;
    }
  }
}

/**
 * Paths of the nodes whose record a commit may have grown: every node written, created or
 * re-permissioned, and each node that gained a child. Removals grow nothing. (Repeats possible.)
 */
export function grownPaths(c: Commit): string[] {
  const out: string[] = [];
  for (const ch of c.changes) {
    if (ch.kind === "rm") continue;
    out.push(ch.path);
    if (ch.kind === "write" && ch.created.length > 0) {
      out.push(parentPath(ch.created[0]));
      for (let i = 0; i < ch.created.length - 1; i++) out.push(ch.created[i]);
    }
  }
  return out;
}

/** Length of a path as the path-max quota counts it: without a leading "/local/domain/<id>/". */
export function quotaPathLength(abs: string): number {
  // /^\/local\/domain\/[0-9]{1,5}\//, without a regular expression's call and match array: this runs
  // for every path of a guest's request.
  if (!abs.startsWith(DOMAIN_PREFIX)) return abs.length;
  let i = DOMAIN_PREFIX.length;
  while (i < abs.length && i - DOMAIN_PREFIX.length <= 5) {
    const ch = abs.charCodeAt(i);
    if (ch < 0x30 || ch > 0x39) break;
    i++;
  }
  const digits = i - DOMAIN_PREFIX.length;
  if (digits < 1 || digits > 5 || abs.charCodeAt(i) !== 0x2f) return abs.length;
  return abs.length - (i + 1);
}

const DOMAIN_PREFIX = "/local/domain/";
