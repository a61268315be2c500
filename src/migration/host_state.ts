// A validated migration stream as the state of a host, in dxenstored's model: the store as a node
// tree (src/store/tree.ts) with the special nodes' permissions, and the connections with their
// watches, transactions and buffered bytes. And back: the records a store becomes, in the order
// cxenstored 4.17 writes them. Phase B of live update (docs/live-update.md) adopts a HostState into a
// running daemon; nothing here touches file descriptors, transports or the policy.
import { buildTree } from "../backend/records.ts";
import { joinPath } from "../store/path.ts";
import { type PermBits, type PermEntry, Perms } from "../store/perms.ts";
import type { Node } from "../store/tree.ts";
import { PERM_LETTERS, SPECIAL_NODES } from "./format.ts";
import type {
  ConnEndpoint,
  DomainRecord,
  GlobalQuotaRecord,
  GlobalRecord,
  MigrationStream,
  NodePerm,
  NodeRecord,
  OpaqueRecord,
  PermLetter,
  TransactionRecord,
  WatchRecord,
} from "./records.ts";

export interface ConnectionState {
  readonly connId: number;
  readonly endpoint: ConnEndpoint;
  readonly input: Uint8Array;
  readonly output: Uint8Array;
  readonly partialOutput: number;
  readonly watches: readonly WatchRecord[];
  readonly transactions: readonly TransactionRecord[];
  /** Nodes read, written or deleted by this connection's pending transactions, in stream order. */
  readonly transactionNodes: readonly NodeRecord[];
}

export interface StoreImage {
  readonly root: Node;
  /** Permissions of @introduceDomain and @releaseDomain (absent: the receiver's defaults). */
  readonly specialPerms: ReadonlyMap<string, Perms>;
  /**
   * Permission entries 1..n marked stale (XS_STATE_NODE_PERM_IGNORE: cxenstored's ignored entries).
   * Kept as inactive entries (spec PERM-10): shown by GET_PERMS, granting nothing, as in cxenstored.
   */
  readonly inactiveEntries: number;
  readonly nodes: number;
}

export interface HostState {
  readonly global: GlobalRecord | null;
  readonly connections: readonly ConnectionState[];
  readonly store: StoreImage;
  readonly globalQuota: GlobalQuotaRecord | null;
  readonly domains: readonly DomainRecord[];
  /** Records of types this layer does not interpret (dxenstored extensions, future Xen types). */
  readonly opaque: readonly OpaqueRecord[];
}

/**
 * Stream permissions → dxenstored's Perms: a stale entry 1..n is kept as an inactive entry (spec
 * PERM-10), counted. A flag on the owner entry is ignored: entry 0 names the owner and the access of
 * every unlisted domain, which no flag can switch off.
 */
export function permsFromStream(perms: readonly NodePerm[]): { perms: Perms; inactive: number } {
  const bits = (l: PermLetter) => PERM_LETTERS.indexOf(l) as PermBits;
  const acl: PermEntry[] = [];
  let inactive = 0;
  for (let i = 1; i < perms.length; i++) {
    if (perms[i].stale) inactive++;
    acl.push({ domid: perms[i].domid, bits: bits(perms[i].access), inactive: perms[i].stale });
  }
  return { perms: Perms.of(perms[0].domid, bits(perms[0].access), acl), inactive };
}

/** dxenstored's Perms → stream permissions: an inactive entry is a stale one. */
export function permsToStream(p: Perms): NodePerm[] {
  const letter = (b: PermBits) => PERM_LETTERS[b] as PermLetter;
  return [
    { access: letter(p.other), domid: p.owner, stale: false },
    ...p.acl.map((e) => ({ access: letter(e.bits), domid: e.domid, stale: e.inactive === true })),
  ];
}

/** Group a validated stream by connection and build its store. `gen`: the generation all nodes get. */
export function hostStateFromStream(s: MigrationStream, gen = 0): HostState {
  let global: GlobalRecord | null = null;
  let globalQuota: GlobalQuotaRecord | null = null;
  const domains: DomainRecord[] = [];
  const opaque: OpaqueRecord[] = [];
  const conns = new Map<number, {
    connId: number;
    endpoint: ConnEndpoint;
    input: Uint8Array;
    output: Uint8Array;
    partialOutput: number;
    watches: WatchRecord[];
    transactions: TransactionRecord[];
    transactionNodes: NodeRecord[];
  }>();
  const committed: NodeRecord[] = [];
  for (const r of s.records) {
    switch (r.type) {
      case "global":
        global = r;
        break;
      case "conn":
        conns.set(r.connId, { ...r, watches: [], transactions: [], transactionNodes: [] });
        break;
      case "watch":
        conns.get(r.connId)!.watches.push(r);
        break;
      case "transaction":
        conns.get(r.connId)!.transactions.push(r);
        break;
      case "node":
        if (r.txn === null) committed.push(r);
        else conns.get(r.txn.connId)!.transactionNodes.push(r);
        break;
      case "global-quota":
        globalQuota = r;
        break;
      case "domain":
        domains.push(r);
        break;
      case "opaque":
        opaque.push(r);
        break;
    }
  }
  return {
    global,
    connections: [...conns.values()],
    store: storeFromNodes(committed, gen),
    globalQuota,
    domains,
    opaque,
  };
}

/** Committed node records (validated: parents first, "/" anywhere or absent) → a tree. */
export function storeFromNodes(records: readonly NodeRecord[], gen = 0): StoreImage {
  let inactive = 0;
  const specialPerms = new Map<string, Perms>();
  let root = { path: "/", value: "", perms: Perms.of(0, 0), gen };
  const rest: Array<{ path: string; value: string; perms: Perms; gen: number }> = [];
  for (const r of records) {
    const p = permsFromStream(r.perms);
    inactive += p.inactive;
    if (r.path[0] === "@") specialPerms.set(r.path, p.perms);
    else if (r.path === "/") root = { path: "/", value: r.value, perms: p.perms, gen };
    else rest.push({ path: r.path, value: r.value, perms: p.perms, gen });
  }
  return {
    root: buildTree([root, ...rest]),
    specialPerms,
    inactiveEntries: inactive,
    nodes: 1 + rest.length,
  };
}

/**
 * The NODE records of a store as cxenstored 4.17 writes them: the special nodes first, then the tree
 * depth-first, parents before children (siblings in dxenstored's DIRECTORY order), iteratively.
 */
export function nodesToStream(root: Node, specialPerms: ReadonlyMap<string, Perms>): NodeRecord[] {
  const out: NodeRecord[] = [];
  for (const name of SPECIAL_NODES) {
    const p = specialPerms.get(name);
    if (p !== undefined) {
      out.push({ type: "node", path: name, value: "", perms: permsToStream(p), txn: null });
    }
  }
  // Parallel stacks, not [path, node] pairs (see walk() in src/store/tree.ts).
  const paths: string[] = ["/"];
  const nodes: Node[] = [root];
  while (nodes.length > 0) {
    const path = paths.pop()!;
    const n = nodes.pop()!;
    out.push({ type: "node", path, value: n.value, perms: permsToStream(n.perms), txn: null });
    const names = n.childNames();
    for (let i = names.length - 1; i >= 0; i--) {
      paths.push(joinPath(path, names[i]));
      nodes.push(n.child(names[i])!);
    }
  }
  return out;
}
