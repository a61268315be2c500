// The immutable node tree. A tree is its root Node; every operation returns a new root and shares
// every untouched subtree with the old one, so a snapshot is a pointer copy (O(1)) and a write copies
// only the nodes on its path (O(depth), each with an O(log32 fanout) child-map update). Nothing here
// recurses over user-controlled depth.
import { type Hamt, hamtForEach, hamtGet, hamtKeys, hamtRemove, hamtSet } from "./hamt.ts";
import type { Perms } from "./perms.ts";
import { joinPath } from "./path.ts";

export class Node {
  constructor(
    /** The value, one char per byte (Latin-1). */
    readonly value: string,
    readonly perms: Perms,
    readonly children: Hamt<Node>,
    /**
     * Version of this node's own content (value, permissions or set of child names), drawn from
     * the database's global counter. Unchanged when only a descendant changes. DIRECTORY_PART
     * reports it as the generation count.
     */
    readonly gen: number,
  ) {}

  child(name: string): Node | undefined {
    return hamtGet(this.children, name);
  }

  /** Child names, sorted (DIRECTORY order). Cached per immutable node. */
  childNames(): readonly string[] {
    let names = sortedNames.get(this);
    if (names === undefined) {
      names = hamtKeys(this.children).sort();
      sortedNames.set(this, names);
    }
    return names;
  }
}

/** Sorted child lists, computed on first DIRECTORY; freed with the node. */
const sortedNames = new WeakMap<Node, readonly string[]>();

export function lookup(root: Node, comps: readonly string[]): Node | undefined {
  let n: Node | undefined = root;
  for (let i = 0; i < comps.length && n !== undefined; i++) n = n.child(comps[i]);
  return n;
}

/** The existing prefix of `comps`: chain[0] = root, chain[i] = node at comps[0..i). */
export function existingChain(root: Node, comps: readonly string[]): Node[] {
  const chain: Node[] = [root];
  let n: Node = root;
  for (let i = 0; i < comps.length; i++) {
    const c = n.child(comps[i]);
    if (c === undefined) break;
    chain.push(c);
    n = c;
  }
  return chain;
}

/** Rebuild ancestors chain[0..depth) above a replacement for the node at depth `depth`. */
function rebuild(
  chain: readonly Node[],
  comps: readonly string[],
  depth: number,
  replacement: Node | null,
): Node {
  let cur = replacement;
  for (let i = depth - 1; i >= 0; i--) {
    const p = chain[i];
    const name = comps[i];
    const children = cur === null ? hamtRemove(p.children, name) : hamtSet(p.children, name, cur);
    cur = new Node(p.value, p.perms, children, p.gen);
  }
  return cur!;
}

export interface WriteResult {
  readonly root: Node;
  /** Nodes created (missing ancestors and the node itself), shallowest first. */
  readonly created: readonly string[];
  /** Permissions given to the created nodes (all share them), or null if none were created. */
  readonly createdPerms: Perms | null;
}

/**
 * Set the value at `comps`, creating missing ancestors with empty values (Xen WRITE semantics).
 * `permsForNew(parentPerms)` decides the permissions of created nodes (the policy's choice, passed in
 * by the caller). `value === null` means MKDIR: an existing node is left untouched.
 */
export function writeValue(
  root: Node,
  comps: readonly string[],
  value: string | null,
  permsForNew: (parentPerms: Perms) => Perms,
  gen: number,
): WriteResult {
  const chain = existingChain(root, comps);
  const depth = chain.length - 1; // depth of the deepest existing node
  if (depth === comps.length) {
    if (value === null) return { root, created: [], createdPerms: null };
    const old = chain[depth];
    return {
      root: rebuild(chain, comps, depth, new Node(value, old.perms, old.children, gen)),
      created: [],
      createdPerms: null,
    };
  }
  // Build the missing tail bottom-up: comps[depth..] do not exist yet.
  const perms = permsForNew(chain[depth].perms);
  let sub: Node = new Node(value ?? "", perms, null, gen);
  const created: string[] = [];
  for (let i = comps.length - 1; i > depth; i--) sub = new Node("", perms, hamtSet(null, comps[i], sub), gen);
  let p = "/";
  for (let i = 0; i < comps.length; i++) {
    p = joinPath(p, comps[i]);
    if (i >= depth) created.push(p);
  }
  // The deepest existing node gains a child: its child set changed, so it gets a new generation.
  const parent = chain[depth];
  const newParent = new Node(parent.value, parent.perms, hamtSet(parent.children, comps[depth], sub), gen);
  return { root: rebuild(chain, comps, depth, newParent), created, createdPerms: perms };
}

export interface RemoveResult {
  readonly root: Node;
  /** The removed subtree (for accounting and export), or null if nothing existed. */
  readonly removed: Node | null;
}

/** Remove the node at `comps` and its whole subtree. `comps` must not be empty (the root stays). */
export function removeNode(root: Node, comps: readonly string[], gen: number): RemoveResult {
  if (comps.length === 0) throw new Error("removeNode: the root cannot be removed");
  const chain = existingChain(root, comps);
  if (chain.length - 1 !== comps.length) return { root, removed: null };
  const depth = comps.length - 1;
  const parent = chain[depth];
  const newParent = new Node(parent.value, parent.perms, hamtRemove(parent.children, comps[depth]), gen);
  return { root: rebuild(chain, comps, depth, newParent), removed: chain[comps.length] };
}

/** Replace the permissions of an existing node; returns null if it does not exist. */
export function setPerms(root: Node, comps: readonly string[], perms: Perms, gen: number): Node | null {
  const chain = existingChain(root, comps);
  if (chain.length - 1 !== comps.length) return null;
  const old = chain[comps.length];
  return rebuild(chain, comps, comps.length, new Node(old.value, perms, old.children, gen));
}

/** Visit a subtree depth-first (parents before children), iteratively. */
export function walk(node: Node, path: string, fn: (path: string, node: Node) => void): void {
  const stack: Array<[string, Node]> = [[path, node]];
  while (stack.length > 0) {
    const [p, n] = stack.pop()!;
    fn(p, n);
    hamtForEach(n.children, (name, c) => stack.push([joinPath(p, name), c]));
  }
}

/** Number of nodes in a subtree (iterative). */
export function countNodes(node: Node): number {
  let n = 0;
  const stack: Node[] = [node];
  while (stack.length > 0) {
    const x = stack.pop()!;
    n++;
    hamtForEach(x.children, (_, c) => stack.push(c));
  }
  return n;
}
