/**
 * Watch registry for dxenstored.
 *
 * `WatchTrie` stores every registered watch in a trie keyed by path
 * components and keeps a per-owner (per-connection) index inside the same
 * class, so there is exactly one owner of the watch set.
 *
 * Path model (absolute, canonical — validation of the XenStore path syntax is
 * the caller's job; this module only rejects shapes it cannot represent):
 *  - plain paths: `/` (root, zero components) or `/a/b/c`;
 *  - special paths: `@introduceDomain`, `@releaseDomain`,
 *    `@releaseDomain/<domid>`. They live in their own namespace: the root `/`
 *    is never an ancestor of a special path, and `/@x` is a different node
 *    from `@x`.
 *
 * Firing rules (docs/misc/xenstore.txt):
 *  - a change at P fires every watch whose path is P or an ancestor of P,
 *    provided `components(P) - components(wpath) <= depth` when a depth is set;
 *  - a recursive removal of P additionally fires every watch strictly below P,
 *    with the event path being the watch's own path (depth is irrelevant);
 *  - a watch fires at most once per change.
 *
 * Nothing here recurses on path depth: every walk is a loop, so paths with
 * thousands of components are fine.
 */
import { components } from "../store/path.ts";

/** A registered watch. `path` is always absolute. */
export interface Watch {
  /** Connection id owning the watch. */
  readonly owner: number;
  /** Absolute canonical watched path (plain or special). */
  readonly path: string;
  /** Client-supplied token, echoed back in events. */
  readonly token: string;
  /** Maximum depth below `path` that fires, or undefined for unlimited. */
  readonly depth: number | undefined;
  /**
   * For watches registered with a relative path: the absolute prefix (e.g.
   * `/local/domain/3/`) to strip from event paths before delivery.
   */
  readonly relativeBase: string | null;
}

/** One delivery produced by `matchRemoval`. */
export interface WatchMatch {
  readonly watch: Watch;
  /** Absolute event path (use `eventPathFor` to get the client-visible one). */
  readonly eventPath: string;
}

/** True for `@...` special paths. */
export function isSpecialPath(path: string): boolean {
  return path.charCodeAt(0) === 0x40; /* '@' */
}

/**
 * Split an absolute canonical path into components.
 * `/` → `[]`, `/a/b` → `["a","b"]`, `@releaseDomain/5` → `["@releaseDomain","5"]`.
 * Throws TypeError on relative paths or empty components (`//`, trailing `/`). An absolute path's
 * array is the store's shared split (src/store/path.ts components: every change of a commit is
 * matched here right after the transaction and the accounting split it): do not change it.
 */
export function splitPath(path: string): readonly string[] {
  if (path === "/") return [];
  let parts: readonly string[];
  if (path.charCodeAt(0) === 0x2f /* '/' */) {
    parts = components(path);
  } else if (isSpecialPath(path)) {
    parts = path.split("/");
  } else {
    throw new TypeError(`watch path must be absolute or special: ${JSON.stringify(path)}`);
  }
  for (const p of parts) {
    if (p.length === 0) throw new TypeError(`watch path is not canonical: ${JSON.stringify(path)}`);
  }
  return parts;
}

/**
 * The event path to send to the watch's client for a change at absolute
 * path `absPath`: relative watches get their `relativeBase` stripped.
 * Paths outside the base (e.g. special paths) are returned unchanged.
 */
export function eventPathFor(watch: Watch, absPath: string): string {
  const base = watch.relativeBase;
  if (base !== null && base.length > 0 && absPath.length > base.length && absPath.startsWith(base)) {
    return absPath.slice(base.length);
  }
  return absPath;
}

function checkDepth(depth: number | undefined): void {
  if (depth !== undefined && (!Number.isInteger(depth) || depth < 0)) {
    throw new RangeError(`watch depth must be a non-negative integer: ${depth}`);
  }
}

// Memory layout (docs/architecture.md, "Memory"): a host has thousands of watches, most of them alone
// on their path, and a node of the trie usually has one or two children. A JS Map costs ~140 bytes
// even with one entry, so small sets are kept without one:
//  - a node's children: an array [key0, node0, key1, node1, ...] up to SMALL children, then a Map;
//  - the watches on a node: the Watch itself when there is one, an array up to SMALL, then a Map
//    keyed by owner and token (the only case where a key string is built, so that finding one watch
//    among thousands on the same path stays O(1)).
// A connection's own index maps its Watch objects to their nodes (no per-watch key strings), and
// UNWATCH finds a watch by descending to its node.

/** Largest child array / watch array before a Map is used. */
const SMALL = 8;

type Children = unknown[] | Map<string, TrieNode>;
type Here = Watch | Watch[] | Map<string, Watch>;

/** Key of a watch in a node's Map: owner ids never contain NUL. */
function hereKey(owner: number, token: string): string {
  return `${owner}\u0000${token}`;
}

// Exact-size copies: push() and splice() would leave the engine's growth slack (up to 16 slots) in
// every small array.
function withAppended(a: readonly unknown[], ...items: unknown[]): unknown[] {
  const out = new Array<unknown>(a.length + items.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i];
  for (let i = 0; i < items.length; i++) out[a.length + i] = items[i];
  return out;
}

function withoutAt(a: readonly unknown[], at: number, n: number): unknown[] {
  const out = new Array<unknown>(a.length - n);
  for (let i = 0; i < at; i++) out[i] = a[i];
  for (let i = at + n; i < a.length; i++) out[i - n] = a[i];
  return out;
}

class TrieNode {
  /** Child nodes by component; null when there are none. */
  children: Children | null = null;
  /** The watches on this node's path; null when none. */
  here: Here | null = null;

  constructor(
    /** Parent node, null for the two namespace anchors' tops (the root, a special path's first component). */
    readonly parent: TrieNode | null,
    /** Component key in the parent's children (or in the special namespace). */
    readonly key: string,
  ) {}

  child(key: string): TrieNode | undefined {
    const c = this.children;
    if (c === null) return undefined;
    if (c instanceof Map) return c.get(key);
    for (let i = 0; i < c.length; i += 2) if (c[i] === key) return c[i + 1] as TrieNode;
    return undefined;
  }

  addChild(key: string, node: TrieNode): void {
    const c = this.children;
    if (c === null) this.children = [key, node];
    else if (c instanceof Map) c.set(key, node);
    else if (c.length < 2 * SMALL) this.children = withAppended(c, key, node);
    else {
      const m = new Map<string, TrieNode>();
      for (let i = 0; i < c.length; i += 2) m.set(c[i] as string, c[i + 1] as TrieNode);
      m.set(key, node);
      this.children = m;
    }
  }

  removeChild(key: string): void {
    const c = this.children;
    if (c === null) return;
    if (c instanceof Map) {
      c.delete(key);
      if (c.size === 0) this.children = null;
      return;
    }
    for (let i = 0; i < c.length; i += 2) {
      if (c[i] !== key) continue;
      this.children = c.length === 2 ? null : withoutAt(c, i, 2);
      return;
    }
  }

  forEachChild(fn: (n: TrieNode) => void): void {
    const c = this.children;
    if (c === null) return;
    if (c instanceof Map) { for (const n of c.values()) fn(n); }
    else for (let i = 1; i < c.length; i += 2) fn(c[i] as TrieNode);
  }

  /** The watch of (owner, token) on this node, if any. */
  find(owner: number, token: string): Watch | undefined {
    const h = this.here;
    if (h === null) return undefined;
    if (h instanceof Map) return h.get(hereKey(owner, token));
    if (Array.isArray(h)) return h.find((w) => w.owner === owner && w.token === token);
    return h.owner === owner && h.token === token ? h : undefined;
  }

  addWatch(w: Watch): void {
    const h = this.here;
    if (h === null) this.here = w;
    else if (h instanceof Map) h.set(hereKey(w.owner, w.token), w);
    else if (!Array.isArray(h)) this.here = [h, w];
    else if (h.length < SMALL) this.here = withAppended(h, w) as Watch[];
    else {
      const m = new Map<string, Watch>();
      for (const x of h) m.set(hereKey(x.owner, x.token), x);
      m.set(hereKey(w.owner, w.token), w);
      this.here = m;
    }
  }

  removeWatch(w: Watch): void {
    const h = this.here;
    if (h === null) return;
    if (h instanceof Map) {
      h.delete(hereKey(w.owner, w.token));
      if (h.size === 0) this.here = null;
    } else if (Array.isArray(h)) {
      const i = h.indexOf(w);
      if (i < 0) return;
      this.here = h.length === 2 ? h[1 - i] : withoutAt(h, i, 1) as Watch[];
    } else if (h === w) {
      this.here = null;
    }
  }

  isEmpty(): boolean {
    return this.here === null && this.children === null;
  }

  /** Append watches firing for a change `distance` levels below this node (0: the node itself). */
  collect(distance: number, out: Watch[]): void {
    const h = this.here;
    if (h === null) return;
    if (h instanceof Map) {
      for (const w of h.values()) if (w.depth === undefined || distance <= w.depth) out.push(w);
    } else if (Array.isArray(h)) {
      for (const w of h) if (w.depth === undefined || distance <= w.depth) out.push(w);
    } else if (h.depth === undefined || distance <= h.depth) {
      out.push(h);
    }
  }

  /** Append all watches at this node. */
  collectAll(out: Watch[]): void {
    this.collect(0, out); // distance 0 matches every depth
  }
}

/** Trie of watches with a per-owner index. */
export class WatchTrie {
  /** Node for `/`; plain paths hang below it. */
  readonly #root = new TrieNode(null, "");
  /** First components of special paths (`@releaseDomain`, ...). */
  readonly #special = new Map<string, TrieNode>();
  /** owner → its watches (registration order) → the node each is on. */
  readonly #owners = new Map<number, Map<Watch, TrieNode>>();
  #size = 0;

  /** Total number of watches. */
  get size(): number {
    return this.#size;
  }

  /**
   * Register a watch. Returns false (and changes nothing) if `w.owner`
   * already has a watch with the same (path, token) — the caller answers EEXIST.
   */
  add(w: Watch): boolean {
    checkDepth(w.depth);
    const comps = splitPath(w.path);
    const existing = this.#descend(w.path, comps, false);
    if (existing?.find(w.owner, w.token) !== undefined) return false;
    const node = existing ?? this.#descend(w.path, comps, true)!;
    node.addWatch(w);
    let idx = this.#owners.get(w.owner);
    if (idx === undefined) {
      idx = new Map();
      this.#owners.set(w.owner, idx);
    }
    idx.set(w, node);
    this.#size++;
    return true;
  }

  /** Remove one watch; returns it, or undefined if it was not registered. */
  remove(owner: number, path: string, token: string): Watch | undefined {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return undefined;
    const node = this.#descend(path, splitPath(path), false);
    const w = node?.find(owner, token);
    if (w === undefined) return undefined;
    idx.delete(w);
    if (idx.size === 0) this.#owners.delete(owner);
    this.#detach(w, node!);
    return w;
  }

  /** Remove all watches of a connection; returns how many were removed. */
  removeOwner(owner: number): number {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return 0;
    this.#owners.delete(owner);
    for (const [w, node] of idx) this.#detach(w, node);
    return idx.size;
  }

  /** Is (path, token) registered for `owner`? */
  has(owner: number, path: string, token: string): boolean {
    if (!this.#owners.has(owner)) return false;
    return this.#descend(path, splitPath(path), false)?.find(owner, token) !== undefined;
  }

  /** Number of watches owned by a connection. */
  countOwner(owner: number): number {
    return this.#owners.get(owner)?.size ?? 0;
  }

  /** Visit a connection's watches (in registration order). Do not mutate the trie from `fn`. */
  forEachWatch(owner: number, fn: (w: Watch) => void): void {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return;
    for (const w of idx.keys()) fn(w);
  }

  /** Snapshot of a connection's watches (in registration order). */
  watchesOf(owner: number): Watch[] {
    const idx = this.#owners.get(owner);
    return idx === undefined ? [] : [...idx.keys()];
  }

  /**
   * Number of trie nodes, including the root. An empty trie has exactly 1
   * (the special-namespace anchor is not a node and is not counted).
   */
  nodeCount(): number {
    let count = 0;
    const stack: TrieNode[] = [this.#root];
    for (const n of this.#special.values()) stack.push(n);
    while (stack.length > 0) {
      const n = stack.pop()!;
      count++;
      n.forEachChild((c) => stack.push(c));
    }
    return count;
  }

  /**
   * Watches fired by a change at `path`: watches on `path` and on its
   * ancestors, filtered by depth. Cost O(components + matches) (plus the
   * number of distinct depth values registered on the visited nodes).
   */
  matchChange(path: string): Watch[] {
    const out: Watch[] = [];
    this.#matchAncestors(path, splitPath(path), out);
    return out;
  }

  /**
   * Deliveries for a recursive removal of `path`: every watch `matchChange`
   * returns (event path = `path`), plus every watch strictly below `path`
   * (event path = the watch's own path, regardless of depth).
   */
  matchRemoval(path: string): WatchMatch[] {
    const comps = splitPath(path);
    const above: Watch[] = [];
    const node = this.#matchAncestors(path, comps, above);
    const out: WatchMatch[] = [];
    for (const watch of above) out.push({ watch, eventPath: path });
    if (node === null || node.children === null) return out;

    const below: Watch[] = [];
    const stack: TrieNode[] = [];
    const push = (c: TrieNode) => stack.push(c);
    node.forEachChild(push);
    while (stack.length > 0) {
      const n = stack.pop()!;
      n.collectAll(below);
      n.forEachChild(push);
    }
    for (const watch of below) out.push({ watch, eventPath: watch.path });
    return out;
  }

  /**
   * Deliveries for a domain event invented by the daemon: `base` is `@introduceDomain` or
   * `@releaseDomain`, `domid` the domain concerned. Xen's rules (xenstore.txt, WATCHDEPTH feature):
   *  - `plain`: watches on exactly `base` registered without a depth get event path `base`;
   *  - `perDomain`: watches on `base` with depth >= 1, and every watch on `base/<domid>`, get event
   *    path `base/<domid>`.
   * A watch on `base` with depth 0 matches neither (Xen: "other <depth> values are not supported"),
   * nor does anything deeper than `base/<domid>`. Cost O(watches on `base` and `base/<domid>`).
   */
  matchSpecial(base: string, domid: number, plain: boolean, perDomain: boolean): WatchMatch[] {
    const out: WatchMatch[] = [];
    const node = this.#special.get(base);
    if (node === undefined) return out;
    const domPath = `${base}/${domid}`;
    const onBase: Watch[] = [];
    node.collectAll(onBase);
    for (const watch of onBase) {
      if (watch.depth === undefined) {
        if (plain) out.push({ watch, eventPath: base });
      } else if (perDomain && watch.depth >= 1) {
        out.push({ watch, eventPath: domPath });
      }
    }
    if (!perDomain) return out;
    const child = node.child(String(domid));
    if (child !== undefined) {
      const ws: Watch[] = [];
      child.collectAll(ws);
      for (const watch of ws) out.push({ watch, eventPath: domPath });
    }
    return out;
  }

  /**
   * Walk from the namespace root along `comps`, collecting watches that fire
   * for a change at the end of the walk. Returns the node for the full path,
   * or null if it does not exist in the trie.
   */
  #matchAncestors(path: string, comps: readonly string[], out: Watch[]): TrieNode | null {
    const n = comps.length;
    let node: TrieNode | undefined;
    let i: number;
    if (isSpecialPath(path)) {
      node = this.#special.get(comps[0]);
      i = 1;
    } else {
      node = this.#root;
      i = 0;
    }
    // `i` components consumed so far: the node is at level i, `n - i` levels above the change.
    while (node !== undefined) {
      node.collect(n - i, out);
      if (i === n) return node;
      node = node.child(comps[i]);
      i++;
    }
    return null;
  }

  /** Find (and optionally create) the node for a path. */
  #descend(path: string, comps: readonly string[], create: boolean): TrieNode | null {
    let node: TrieNode;
    let i: number;
    if (isSpecialPath(path)) {
      const first = comps[0];
      let top = this.#special.get(first);
      if (top === undefined) {
        if (!create) return null;
        top = new TrieNode(null, first);
        this.#special.set(first, top);
      }
      node = top;
      i = 1;
    } else {
      node = this.#root;
      i = 0;
    }
    for (; i < comps.length; i++) {
      const c = comps[i];
      let next = node.child(c);
      if (next === undefined) {
        if (!create) return null;
        next = new TrieNode(node, c);
        node.addChild(c, next);
      }
      node = next;
    }
    return node;
  }

  /** Remove a watch from its node and prune empty nodes upward. */
  #detach(w: Watch, node: TrieNode): void {
    node.removeWatch(w);
    this.#size--;
    let n: TrieNode | null = node;
    while (n !== null && n !== this.#root && n.isEmpty()) {
      const parent: TrieNode | null = n.parent;
      if (parent === null) this.#special.delete(n.key); // the top of a special path
      else parent.removeChild(n.key);
      n = parent;
    }
  }
}
