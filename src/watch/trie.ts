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
 * Throws TypeError on relative paths or empty components (`//`, trailing `/`).
 */
export function splitPath(path: string): string[] {
  if (path === "/") return [];
  let parts: string[];
  if (path.charCodeAt(0) === 0x2f /* '/' */) {
    parts = path.slice(1).split("/");
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

/** Key of a watch inside a trie node: owner ids never contain NUL. */
function nodeKey(owner: number, token: string): string {
  return `${owner}\u0000${token}`;
}

/** Key of a watch inside an owner's index: canonical paths never contain NUL. */
function ownerKey(path: string, token: string): string {
  return `${path}\u0000${token}`;
}

class TrieNode {
  /** Child nodes by component; null when there are none. */
  children: Map<string, TrieNode> | null = null;
  /** Watches with no depth limit. */
  unbounded: Map<string, Watch> | null = null;
  /** Depth-limited watches, bucketed by depth. */
  bounded: Map<number, Map<string, Watch>> | null = null;
  /** Number of watches stored at this node. */
  watchCount = 0;

  constructor(
    /** Parent node, null for the two namespace anchors. */
    readonly parent: TrieNode | null,
    /** Map this node is stored in (its parent's children, or the special namespace). */
    readonly container: Map<string, TrieNode> | null,
    /** Component key in `container`. */
    readonly key: string,
    /** Number of components of the path this node represents. */
    readonly level: number,
  ) {}

  isEmpty(): boolean {
    return this.watchCount === 0 && (this.children === null || this.children.size === 0);
  }

  /** Append watches firing for a change `distance` levels below this node. */
  collect(distance: number, out: Watch[]): void {
    if (this.watchCount === 0) return;
    if (this.unbounded !== null) {
      for (const w of this.unbounded.values()) out.push(w);
    }
    if (this.bounded !== null) {
      for (const [depth, bucket] of this.bounded) {
        if (distance <= depth) {
          for (const w of bucket.values()) out.push(w);
        }
      }
    }
  }

  /** Append all watches at this node. */
  collectAll(out: Watch[]): void {
    this.collect(0, out); // distance 0 matches every depth
  }
}

interface OwnerEntry {
  readonly watch: Watch;
  readonly node: TrieNode;
}

/** Trie of watches with a per-owner index. */
export class WatchTrie {
  /** Node for `/`; plain paths hang below it. */
  readonly #root = new TrieNode(null, null, "", 0);
  /** First components of special paths (`@releaseDomain`, ...). */
  readonly #special = new Map<string, TrieNode>();
  /** owner → (path,token key) → entry. */
  readonly #owners = new Map<number, Map<string, OwnerEntry>>();
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
    const okey = ownerKey(w.path, w.token);
    let idx = this.#owners.get(w.owner);
    if (idx !== undefined && idx.has(okey)) return false;

    const node = this.#descend(w.path, comps, true)!;
    const nkey = nodeKey(w.owner, w.token);
    if (w.depth === undefined) {
      (node.unbounded ??= new Map()).set(nkey, w);
    } else {
      const bounded = node.bounded ??= new Map();
      let bucket = bounded.get(w.depth);
      if (bucket === undefined) {
        bucket = new Map();
        bounded.set(w.depth, bucket);
      }
      bucket.set(nkey, w);
    }
    node.watchCount++;

    if (idx === undefined) {
      idx = new Map();
      this.#owners.set(w.owner, idx);
    }
    idx.set(okey, { watch: w, node });
    this.#size++;
    return true;
  }

  /** Remove one watch; returns it, or undefined if it was not registered. */
  remove(owner: number, path: string, token: string): Watch | undefined {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return undefined;
    const okey = ownerKey(path, token);
    const entry = idx.get(okey);
    if (entry === undefined) return undefined;
    idx.delete(okey);
    if (idx.size === 0) this.#owners.delete(owner);
    this.#detach(entry);
    return entry.watch;
  }

  /** Remove all watches of a connection; returns how many were removed. */
  removeOwner(owner: number): number {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return 0;
    this.#owners.delete(owner);
    for (const entry of idx.values()) this.#detach(entry);
    return idx.size;
  }

  /** Is (path, token) registered for `owner`? */
  has(owner: number, path: string, token: string): boolean {
    return this.#owners.get(owner)?.has(ownerKey(path, token)) ?? false;
  }

  /** Number of watches owned by a connection. */
  countOwner(owner: number): number {
    return this.#owners.get(owner)?.size ?? 0;
  }

  /** Visit a connection's watches (in registration order). Do not mutate the trie from `fn`. */
  forEachWatch(owner: number, fn: (w: Watch) => void): void {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return;
    for (const entry of idx.values()) fn(entry.watch);
  }

  /** Snapshot of a connection's watches (in registration order). */
  watchesOf(owner: number): Watch[] {
    const idx = this.#owners.get(owner);
    if (idx === undefined) return [];
    const out: Watch[] = [];
    for (const entry of idx.values()) out.push(entry.watch);
    return out;
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
      if (n.children !== null) {
        for (const c of n.children.values()) stack.push(c);
      }
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
    for (const c of node.children.values()) stack.push(c);
    while (stack.length > 0) {
      const n = stack.pop()!;
      n.collectAll(below);
      if (n.children !== null) {
        for (const c of n.children.values()) stack.push(c);
      }
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
   * nor does anything deeper than `base/<domid>`. Cost O(matches + distinct depths at `base`).
   */
  matchSpecial(base: string, domid: number, plain: boolean, perDomain: boolean): WatchMatch[] {
    const out: WatchMatch[] = [];
    const node = this.#special.get(base);
    if (node === undefined) return out;
    const domPath = `${base}/${domid}`;
    if (plain && node.unbounded !== null) {
      for (const watch of node.unbounded.values()) out.push({ watch, eventPath: base });
    }
    if (!perDomain) return out;
    if (node.bounded !== null) {
      for (const [depth, bucket] of node.bounded) {
        if (depth < 1) continue;
        for (const watch of bucket.values()) out.push({ watch, eventPath: domPath });
      }
    }
    const child = node.children?.get(String(domid));
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
  #matchAncestors(path: string, comps: string[], out: Watch[]): TrieNode | null {
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
    while (node !== undefined) {
      node.collect(n - node.level, out);
      if (i === n) return node;
      node = node.children?.get(comps[i]);
      i++;
    }
    return null;
  }

  /** Find (and optionally create) the node for a path. */
  #descend(path: string, comps: string[], create: boolean): TrieNode | null {
    let node: TrieNode;
    let i: number;
    if (isSpecialPath(path)) {
      const first = comps[0];
      let top = this.#special.get(first);
      if (top === undefined) {
        if (!create) return null;
        top = new TrieNode(null, this.#special, first, 1);
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
      let next = node.children?.get(c);
      if (next === undefined) {
        if (!create) return null;
        const children = node.children ??= new Map();
        next = new TrieNode(node, children, c, node.level + 1);
        children.set(c, next);
      }
      node = next;
    }
    return node;
  }

  /** Remove an indexed watch from its node and prune empty nodes upward. */
  #detach(entry: OwnerEntry): void {
    const { watch: w, node } = entry;
    const nkey = nodeKey(w.owner, w.token);
    if (w.depth === undefined) {
      node.unbounded!.delete(nkey);
      if (node.unbounded!.size === 0) node.unbounded = null;
    } else {
      const bucket = node.bounded!.get(w.depth)!;
      bucket.delete(nkey);
      if (bucket.size === 0) {
        node.bounded!.delete(w.depth);
        if (node.bounded!.size === 0) node.bounded = null;
      }
    }
    node.watchCount--;
    this.#size--;
    this.#prune(node);
  }

  #prune(start: TrieNode): void {
    let node: TrieNode | null = start;
    while (node !== null && node !== this.#root && node.isEmpty()) {
      node.container!.delete(node.key);
      const parent: TrieNode | null = node.parent;
      if (parent !== null && parent.children !== null && parent.children.size === 0) {
        parent.children = null;
      }
      node = parent;
    }
  }
}
