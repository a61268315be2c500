// A node of the immutable tree and its children container: the memory layout of the store
// (docs/architecture.md, "Memory: where the bytes go").
//
// Most nodes are leaves, so a leaf costs no object of its own: a directory with up to FLAT_MAX
// children keeps them in one flat array sorted by name, four slots per child —
//   [name, value, perms, gen]  for a leaf (value is a string),
//   [name, node,  null,  0]    for a child that has children (a Node object),
// which is 32 bytes per leaf plus its value string, where a Node object alone is 56 (V8 here runs
// without pointer compression: every field is 8 bytes). A child without children is always stored
// inline (the canonical form checkStore verifies); `child()` hands out a fresh Node for it, so a
// leaf's Node is not a stable identity (compare gen, value, perms — never leaf objects).
// A directory with more children uses the persistent hash trie (hamt.ts) of Node objects, so an
// insert into a 10 000-child directory stays O(log32 n); it goes back to the flat form when it
// shrinks to FLAT_MIN children (hysteresis: no flapping at the boundary).
import {
  type Hamt,
  hamtCheck,
  hamtCountUpTo,
  hamtForEach,
  hamtGet,
  hamtKeys,
  hamtRemove,
  hamtSet,
  hamtSize,
} from "./hamt.ts";
import type { Perms } from "./perms.ts";
import { ownName } from "./strings.ts";

/** Most children a flat container holds; one more and it becomes a hash trie. */
export const FLAT_MAX = 128;
/** A hash trie that shrinks to this many children becomes flat again. */
export const FLAT_MIN = 64;
const STRIDE = 4;

/** Children sorted by name, STRIDE slots each (see the header). Never empty (null is). */
export type FlatChildren = readonly unknown[];

/** A node's children: none (null), flat (≤ FLAT_MAX) or a hash trie of Nodes. */
export type Children = FlatChildren | Hamt<Node>;

export class Node {
  constructor(
    /** The value, one char per byte (Latin-1). */
    readonly value: string,
    readonly perms: Perms,
    readonly children: Children,
    /**
     * Version of this node's own content (value, permissions or set of child names), drawn from
     * the database's global counter. Unchanged when only a descendant changes. DIRECTORY_PART
     * reports it as the generation count.
     */
    readonly gen: number,
  ) {}

  /** The child called `name` (a fresh object each time for a child without children). */
  child(name: string): Node | undefined {
    const c = this.children;
    if (c === null) return undefined;
    if (!Array.isArray(c)) return hamtGet(c as Hamt<Node>, name);
    const i = flatIndex(c, name);
    return i < 0 ? undefined : flatNode(c, i);
  }

  /** Child names, sorted (DIRECTORY order). */
  childNames(): readonly string[] {
    const c = this.children;
    if (c === null) return [];
    if (Array.isArray(c)) {
      const names = new Array<string>(c.length / STRIDE);
      for (let i = 0; i < names.length; i++) names[i] = c[i * STRIDE] as string;
      return names;
    }
    // A hash trie is in hash order: sort once per (immutable) node.
    let names = sortedNames.get(this);
    if (names === undefined) {
      names = hamtKeys(c as Hamt<Node>).sort();
      sortedNames.set(this, names);
    }
    return names;
  }

  /** Visit every child (name order for a flat container, hash order for a trie). */
  forEachChild(fn: (name: string, child: Node) => void): void {
    forEachChild(this.children, fn);
  }

  /**
   * Σ (child name length + 1): the bytes of the child names as cxenstored stores them. Reads the names
   * only — forEachChild would hand out a fresh Node for every leaf.
   */
  childNameBytes(): number {
    const c = this.children;
    if (c === null) return 0;
    let len = 0;
    if (Array.isArray(c)) {
      for (let i = 0; i < c.length; i += STRIDE) len += (c[i] as string).length + 1;
      return len;
    }
    hamtForEach(c as Hamt<Node>, (name) => {
      len += name.length + 1;
    });
    return len;
  }

  get childCount(): number {
    const c = this.children;
    if (c === null) return 0;
    return Array.isArray(c) ? c.length / STRIDE : hamtSize(c as Hamt<Node>);
  }
}

/**
 * Is `b` the very node `a` (the same stored version)? Identity for nodes with children; for a node
 * without children — handed out fresh by child() — the same value, permissions object and generation.
 */
export function sameNode(a: Node, b: Node): boolean {
  if (a === b) return true;
  return a.children === null && b.children === null && a.gen === b.gen && a.perms === b.perms &&
    a.value === b.value;
}

/** Sorted child lists of hash-trie directories, computed on first DIRECTORY; freed with the node. */
const sortedNames = new WeakMap<Node, readonly string[]>();

/** Slot of `name` in a flat container, or -(insertion slot) - 1. */
function flatIndex(c: FlatChildren, name: string): number {
  let lo = 0;
  let hi = c.length / STRIDE - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const k = c[mid * STRIDE] as string;
    if (k === name) return mid * STRIDE;
    if (k < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return -(lo * STRIDE) - 1;
}

function flatNode(c: FlatChildren, i: number): Node {
  const v = c[i + 1];
  return typeof v === "string" ? new Node(v, c[i + 2] as Perms, null, c[i + 3] as number) : v as Node;
}

/** Write `child` as entry `i` of `out` (inline when it has no children). */
function putEntry(out: unknown[], i: number, name: string, child: Node): void {
  out[i] = name;
  if (child.children === null) {
    out[i + 1] = child.value;
    out[i + 2] = child.perms;
    out[i + 3] = child.gen;
  } else {
    out[i + 1] = child;
    out[i + 2] = null;
    out[i + 3] = 0;
  }
}

export function forEachChild(c: Children, fn: (name: string, child: Node) => void): void {
  if (c === null) return;
  if (!Array.isArray(c)) return hamtForEach(c as Hamt<Node>, fn);
  for (let i = 0; i < c.length; i += STRIDE) fn(c[i] as string, flatNode(c, i));
}

/** `c` with `name` set to `child` (added or replaced). A new name is stored as ownName() gives it. */
export function withChild(c: Children, name: string, child: Node): Children {
  if (c === null) {
    const out = new Array<unknown>(STRIDE);
    putEntry(out, 0, ownName(name), child);
    return out;
  }
  if (!Array.isArray(c)) return hamtSet(c as Hamt<Node>, name, child, ownName);
  const i = flatIndex(c, name);
  if (i >= 0) {
    const out = c.slice();
    putEntry(out, i, c[i] as string, child); // keep the stored name (not the request's copy)
    return out;
  }
  if (c.length / STRIDE >= FLAT_MAX) {
    let h: Hamt<Node> = hamtSet(null, ownName(name), child);
    forEachChild(c, (n, x) => h = hamtSet(h, n, x));
    return h;
  }
  // Exact-size copy: an insert into a slice() would leave the engine's growth slack behind.
  const at = -i - 1;
  const out = new Array<unknown>(c.length + STRIDE);
  for (let j = 0; j < at; j++) out[j] = c[j];
  putEntry(out, at, ownName(name), child);
  for (let j = at; j < c.length; j++) out[j + STRIDE] = c[j];
  return out;
}

/** `c` without `name` (the same container if it has no such child); null when empty. */
export function withoutChild(c: Children, name: string): Children {
  if (c === null) return null;
  if (!Array.isArray(c)) {
    const h = hamtRemove(c as Hamt<Node>, name);
    if (h === c || h === null || hamtCountUpTo(h, FLAT_MIN) > FLAT_MIN) return h;
    return flatFrom(h);
  }
  const at = flatIndex(c, name);
  if (at < 0) return c;
  if (c.length === STRIDE) return null;
  const out = new Array<unknown>(c.length - STRIDE);
  for (let j = 0; j < at; j++) out[j] = c[j];
  for (let j = at + STRIDE; j < c.length; j++) out[j - STRIDE] = c[j];
  return out;
}

function flatFrom(h: Hamt<Node>): FlatChildren {
  const entries: Array<[string, Node]> = [];
  hamtForEach(h, (name, node) => entries.push([name, node]));
  entries.sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const out = new Array<unknown>(entries.length * STRIDE);
  for (let i = 0; i < entries.length; i++) putEntry(out, i * STRIDE, entries[i][0], entries[i][1]);
  return out;
}

/** A container holding `entries` (distinct names, any order), built in one go (loading a store). */
export function childrenFrom(entries: ReadonlyArray<readonly [string, Node]>): Children {
  if (entries.length === 0) return null;
  if (entries.length > FLAT_MAX) {
    let h: Hamt<Node> = null;
    for (const [name, node] of entries) h = hamtSet(h, name, node, ownName);
    return h;
  }
  const sorted = [...entries].sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const out = new Array<unknown>(sorted.length * STRIDE);
  for (let i = 0; i < sorted.length; i++) putEntry(out, i * STRIDE, ownName(sorted[i][0]), sorted[i][1]);
  return out;
}

/** Invariants of a container (for checkStore): form, order, canonical entries. */
export function childrenCheck(c: Children): string[] {
  if (c === null) return [];
  if (!Array.isArray(c)) {
    const problems = hamtCheck(c as Hamt<Node>);
    const n = hamtSize(c as Hamt<Node>);
    if (n <= FLAT_MIN) problems.push(`hash trie of ${n} children (flat up to ${FLAT_MIN})`);
    return problems;
  }
  const problems: string[] = [];
  if (c.length === 0 || c.length % STRIDE !== 0) problems.push(`flat container of ${c.length} slots`);
  if (c.length / STRIDE > FLAT_MAX) problems.push(`flat container of ${c.length / STRIDE} children`);
  for (let i = 0; i + STRIDE <= c.length; i += STRIDE) {
    if (typeof c[i] !== "string") problems.push("flat container: a name is not a string");
    if (i > 0 && !((c[i - STRIDE] as string) < (c[i] as string))) {
      problems.push(`flat container: "${c[i]}" out of order`);
    }
    const v = c[i + 1];
    if (typeof v === "string") {
      if (typeof c[i + 3] !== "number") problems.push(`flat container: "${c[i]}" has no generation`);
      if (c[i + 2] === null || typeof c[i + 2] !== "object") {
        problems.push(`flat container: "${c[i]}" has no permissions`);
      }
    } else if (!(v instanceof Node)) {
      problems.push(`flat container: "${c[i]}" is neither a value nor a node`);
    } else if (v.children === null) {
      problems.push(`flat container: "${c[i]}" has no children but is not inline`);
    }
  }
  return problems;
}
