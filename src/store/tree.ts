// The immutable node tree. A tree is its root Node; every operation returns a new root and shares
// every untouched subtree with the old one, so a snapshot is a pointer copy (O(1)) and a write copies
// only the nodes on its path (O(depth), each with a copy of a flat child array of at most 128 entries
// or an O(log32 fanout) trie update: src/store/node.ts). Nothing here recurses over user-controlled
// depth.
import { Node, sameNode, withChild, withoutChild } from "./node.ts";
import type { Perms } from "./perms.ts";
import { joinPath } from "./path.ts";
import { ownValue } from "./strings.ts";

export { Node, sameNode };

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
    const children = cur === null ? withoutChild(p.children, name) : withChild(p.children, name, cur);
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
      root: rebuild(chain, comps, depth, new Node(ownValue(value), old.perms, old.children, gen)),
      created: [],
      createdPerms: null,
    };
  }
  // Build the missing tail bottom-up: comps[depth..] do not exist yet.
  const perms = permsForNew(chain[depth].perms);
  let sub: Node = new Node(value === null ? "" : ownValue(value), perms, null, gen);
  const created: string[] = [];
  for (let i = comps.length - 1; i > depth; i--) {
    sub = new Node("", perms, withChild(null, comps[i], sub), gen);
  }
  let p = "/";
  for (let i = 0; i < comps.length; i++) {
    p = joinPath(p, comps[i]);
    if (i >= depth) created.push(p);
  }
  // The deepest existing node gains a child: its child set changed, so it gets a new generation.
  const parent = chain[depth];
  const newParent = new Node(parent.value, parent.perms, withChild(parent.children, comps[depth], sub), gen);
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
  const newParent = new Node(parent.value, parent.perms, withoutChild(parent.children, comps[depth]), gen);
  return { root: rebuild(chain, comps, depth, newParent), removed: chain[comps.length] };
}

/** Replace the permissions of an existing node; returns null if it does not exist. */
export function setPerms(root: Node, comps: readonly string[], perms: Perms, gen: number): Node | null {
  const chain = existingChain(root, comps);
  if (chain.length - 1 !== comps.length) return null;
  const old = chain[comps.length];
  return rebuild(chain, comps, comps.length, new Node(old.value, perms, old.children, gen));
}

/**
 * Visit a subtree depth-first (parents before children), iteratively. Tree walks keep paths and
 * nodes on two parallel stacks, never [path, node] pairs: V8 moves an allocation site whose objects
 * often survive (the pairs of a wide directory wait on the stack) to the old generation, and then a
 * walk of a million nodes leaves a million dead pairs there until the next full collection.
 */
export function walk(node: Node, path: string, fn: (path: string, node: Node) => void): void {
  const paths: string[] = [path];
  const nodes: Node[] = [node];
  while (nodes.length > 0) {
    const p = paths.pop()!;
    const n = nodes.pop()!;
    fn(p, n);
    n.forEachChild((name, c) => {
      paths.push(joinPath(p, name));
      nodes.push(c);
    });
  }
}

/** Number of nodes in a subtree (iterative). */
export function countNodes(node: Node): number {
  let n = 0;
  const stack: Node[] = [node];
  while (stack.length > 0) {
    const x = stack.pop()!;
    n++;
    x.forEachChild((_, c) => stack.push(c));
  }
  return n;
}
