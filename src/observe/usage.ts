// Per-domain usage as cxenstored's `xenstore-control quota <domid>` reports it, computed from the store
// and the live connections. This is the fallback while no quota module keeps running totals: it walks
// the tree (iteratively, caching the result per immutable root, so an unchanged store is not walked
// twice). Memory follows cxenstored 4.17's accounting of node records, checked against its output in
// tests/ops/golden: path + 24-byte header + 8 per permission + value + child names (each + NUL).
import type { Core } from "../dispatch/core.ts";
import type { DomainUsage } from "../dispatch/control.ts";
import type { Node } from "../store/tree.ts";

const RECORD_HEADER = 24;
const PERM_ENTRY = 8;

export interface NodeTotals {
  nodes: number;
  memory: number;
}

/** Nodes and cxenstored record bytes per owning domain, for the whole tree (no recursion). */
export function nodeTotalsByOwner(root: Node): Map<number, NodeTotals> {
  const byOwner = new Map<number, NodeTotals>();
  // (node, length of its path): "/" is 1, "/a" is 2, "/a/b" is 4...
  // Parallel stacks, not [node, length] pairs (see walk() in src/store/tree.ts).
  const nodes: Node[] = [root];
  const lens: number[] = [1];
  while (nodes.length > 0) {
    const n = nodes.pop()!;
    const pathLen = lens.pop()!;
    let childBytes = 0;
    n.forEachChild((name, child) => {
      childBytes += name.length + 1;
      nodes.push(child);
      lens.push((pathLen === 1 ? 0 : pathLen) + 1 + name.length);
    });
    const bytes = pathLen + RECORD_HEADER + PERM_ENTRY * n.perms.count + n.value.length + childBytes;
    const owner = n.perms.owner;
    const t = byOwner.get(owner);
    if (t === undefined) byOwner.set(owner, { nodes: 1, memory: bytes });
    else {
      t.nodes++;
      t.memory += bytes;
    }
  }
  return byOwner;
}

export class TreeUsage {
  /**
   * The root the totals were computed for, held weakly: a strong reference would keep a whole old
   * version of the store alive (after removing a million nodes, all of them) until the next query.
   */
  private cachedRoot: WeakRef<Node> | null = null;
  private cached = new Map<number, NodeTotals>();

  constructor(private readonly core: Core) {}

  /** Node totals per owner for the current store (cached while the root is unchanged). */
  totals(): Map<number, NodeTotals> {
    const root = this.core.db.root;
    if (root !== this.cachedRoot?.deref()) {
      this.cached = nodeTotalsByOwner(root);
      this.cachedRoot = new WeakRef(root);
    }
    return this.cached;
  }

  /** Nodes in the store. */
  totalNodes(): number {
    let n = 0;
    for (const t of this.totals().values()) n += t.nodes;
    return n;
  }

  /** Domains that exist: dom0, every connected domain, every node owner. */
  domains(): Set<number> {
    const s = new Set<number>([0]);
    for (const c of this.core.clients.values()) s.add(c.domid);
    for (const d of this.totals().keys()) s.add(d);
    return s;
  }

  /** `quota <domid>`: null if no connection is from `domid` and it is not dom0 (cxenstored: ENOENT). */
  usage(domid: number): DomainUsage | null {
    let watches = 0;
    let transactions = 0;
    let connected = domid === 0;
    for (const c of this.core.clients.values()) {
      if (c.domid !== domid) continue;
      connected = true;
      watches += this.core.watches.countOwner(c.id);
      transactions += c.txns.size;
    }
    if (!connected) return null;
    const t = this.totals().get(domid);
    // Requests are answered synchronously, inside one turn: none is outstanding between turns.
    return { nodes: t?.nodes ?? 0, watches, transactions, outstanding: 0, memory: t?.memory ?? 0 };
  }
}
