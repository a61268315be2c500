// What a dead or released domain leaves behind, removed by Xen's rule (cxenstored domain_tree_remove,
// oxenstored reset_permissions; XSA-322, XSA-419): every node the domain owns is deleted with its
// subtree, and every permission entry naming it is struck from the nodes that remain, including the
// special @introduceDomain/@releaseDomain permissions. A later domain that is given the same domid
// therefore inherits no node, no access and no quota usage of the old one.
//
// It is one commit through the database, so watchers who could read the deleted nodes get their
// events, transactions that observed them conflict, and accounting sees exact removals. The walk is
// iterative (no recursion over the tree's depth) and costs O(nodes in the store).
import type { Change, Database } from "../store/database.ts";
import { components, joinPath } from "../store/path.ts";
import { Perms } from "../store/perms.ts";
import { type Node, removeNode, setPerms } from "../store/tree.ts";

export interface CleanupResult {
  /** Subtrees deleted because the domain owned their top node. */
  readonly removed: number;
  /** Nodes whose permission list lost the domain's entries (orphans included). */
  readonly stripped: number;
  /** keepOrphans: nodes the domain owned, given to dom0. */
  readonly orphaned: number;
}

/** Perms without any entry for `domid` (the owner entry is kept: owned nodes are deleted instead). */
function withoutDomain(p: Perms, domid: number): Perms {
  return Perms.of(p.owner, p.other, p.acl.filter((e) => e.domid !== domid));
}

/**
 * Remove every trace of domain `domid` from the store in one commit (throws the backend's error if the
 * commit cannot be stored; nothing is changed then). `keepOrphans` (cxenstored -K, a
 * security risk): the nodes it owns are kept and given to dom0 instead of deleted (every such node, as
 * cxenstored moves them), its other permission entries still go.
 */
export function removeDomainTraces(db: Database, domid: number, keepOrphans = false): CleanupResult {
  const before = db.root;
  const owned: string[] = [];
  const strip: Array<{ path: string; old: Perms; next: Perms }> = [];
  // Parallel stacks, not [path, node] pairs (see walk() in src/store/tree.ts).
  const paths: string[] = [];
  const nodes: Node[] = [];
  let orphaned = 0;
  before.forEachChild((name, c) => {
    paths.push(joinPath("/", name));
    nodes.push(c);
  });
  while (nodes.length > 0) {
    const path = paths.pop()!;
    const n = nodes.pop()!;
    if (n.perms.owner === domid && !keepOrphans) {
      owned.push(path); // its subtree goes with it
      continue;
    }
    if (n.perms.owner === domid) {
      const acl = n.perms.acl.filter((e) => e.domid !== domid);
      strip.push({ path, old: n.perms, next: Perms.of(0, n.perms.other, acl) });
      orphaned++;
    } else if (n.perms.acl.some((e) => e.domid === domid)) {
      strip.push({ path, old: n.perms, next: withoutDomain(n.perms, domid) });
    }
    n.forEachChild((name, c) => {
      paths.push(joinPath(path, name));
      nodes.push(c);
    });
  }
  for (const [name, p] of db.specialPerms) {
    if (p.owner === domid) {
      db.specialPerms.set(
        name,
        Perms.of(
          0,
          p.other,
          p.acl.filter((e) => e.domid !== domid),
        ),
      );
    } else if (p.acl.some((e) => e.domid === domid)) db.specialPerms.set(name, withoutDomain(p, domid));
  }
  if (owned.length === 0 && strip.length === 0) return { removed: 0, stripped: 0, orphaned: 0 };

  const gen = db.nextGen();
  let root = before;
  const changes: Change[] = [];
  for (const path of owned) {
    const r = removeNode(root, components(path), gen);
    if (r.removed === null) continue;
    root = r.root;
    changes.push({ kind: "rm", path, removed: r.removed });
  }
  for (const s of strip) {
    const r = setPerms(root, components(s.path), s.next, gen);
    if (r === null) continue;
    root = r;
    changes.push({ kind: "perms", path: s.path, perms: s.next, old: s.old });
  }
  // A backend may refuse the commit (EIO/ENOSPC): that throws, and the caller retries (the nodes of a
  // dead domain must not stay behind for a new domain with the same domid to inherit).
  db.commit({ before, after: root, changes, domid: 0 });
  return { removed: owned.length, stripped: strip.length, orphaned };
}
