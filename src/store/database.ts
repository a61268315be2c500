// The live database: the current root of the immutable tree, the global generation counter, and the
// single commit point through which every change (a plain write or a whole transaction) passes.
// Listeners (watch dispatch, persistence, accounting) see each commit once, atomically.
import { Node, removeNode, setPerms, writeValue } from "./tree.ts";
import { Perms } from "./perms.ts";
import { components } from "./path.ts";

/** One change inside a commit, in the order it was made. */
export type Change =
  | {
    readonly kind: "write";
    readonly path: string;
    /** The new value, or null for MKDIR (value left unchanged / created empty). */
    readonly value: string | null;
    readonly created: readonly string[];
    readonly createdPerms: Perms | null;
  }
  | { readonly kind: "rm"; readonly path: string; readonly removed: Node }
  | { readonly kind: "perms"; readonly path: string; readonly perms: Perms; readonly old: Perms };

export interface Commit {
  readonly before: Node;
  readonly after: Node;
  readonly changes: readonly Change[];
  /** Who made it (domid), for accounting and logs. */
  readonly domid: number;
}

export type CommitListener = (c: Commit) => void;

/**
 * Runs before a commit takes effect (persistence: src/backend). Throwing (an XsError such as EIO or
 * ENOSPC) aborts the commit: the root stays as it was and no listener runs, so the client gets the
 * error and the change is never acknowledged.
 */
export type BeforeCommitHook = (c: Commit) => void;

/** Initial tree: "/" and "/tool/xenstored", owned by dom0, readable by nobody else (as cxenstored). */
export function initialRoot(gen = 0): Node {
  const perms = Perms.of(0, 0);
  let root = new Node("", perms, null, gen);
  root = writeValue(root, ["tool", "xenstored"], null, () => perms, gen).root;
  return root;
}

export class Database {
  private _root: Node;
  private _gen: number;
  private readonly listeners: CommitListener[] = [];
  private readonly beforeHooks: BeforeCommitHook[] = [];
  /** Permissions of the special watch paths, settable with SET_PERMS (Xen: dom0-only by default). */
  readonly specialPerms = new Map<string, Perms>([
    ["@introduceDomain", Perms.of(0, 0)],
    ["@releaseDomain", Perms.of(0, 0)],
  ]);

  constructor(root?: Node, gen?: number) {
    this._gen = gen ?? 0;
    this._root = root ?? initialRoot(this._gen);
  }

  get root(): Node {
    return this._root;
  }

  /** The highest generation handed out so far. */
  get generation(): number {
    return this._gen;
  }

  nextGen(): number {
    return ++this._gen;
  }

  onCommit(l: CommitListener): void {
    this.listeners.push(l);
  }

  /**
   * Register a hook that may veto a commit by throwing (see BeforeCommitHook). `first`: run it before
   * the hooks registered without it — validators (quotas) must run before persistence (backends,
   * registered earlier), so that a commit they refuse is never written.
   */
  beforeCommit(h: BeforeCommitHook, first = false): void {
    if (first) this.beforeHooks.unshift(h);
    else this.beforeHooks.push(h);
  }

  /** Install a new root (computed from `before === this.root`) and tell every listener. */
  commit(c: Commit): void {
    if (c.before !== this._root) throw new Error("Database.commit: stale base (caller must rebase)");
    for (const h of this.beforeHooks) h(c); // may throw: nothing has changed yet
    this._root = c.after;
    for (const l of this.listeners) l(c);
  }

  // Convenience single-change commits for non-transactional requests.

  write(path: string, value: string | null, permsForNew: (p: Perms) => Perms, domid: number): Change {
    const r = writeValue(this._root, components(path), value, permsForNew, this.nextGen());
    const ch: Change = { kind: "write", path, value, created: r.created, createdPerms: r.createdPerms };
    if (r.root !== this._root) this.commit({ before: this._root, after: r.root, changes: [ch], domid });
    return ch;
  }

  remove(path: string, domid: number): Change | null {
    const r = removeNode(this._root, components(path), this.nextGen());
    if (r.removed === null) return null;
    const ch: Change = { kind: "rm", path, removed: r.removed };
    this.commit({ before: this._root, after: r.root, changes: [ch], domid });
    return ch;
  }

  setPerms(path: string, perms: Perms, old: Perms, domid: number): Change {
    const root = setPerms(this._root, components(path), perms, this.nextGen());
    if (root === null) throw new Error("Database.setPerms: node vanished");
    const ch: Change = { kind: "perms", path, perms, old };
    this.commit({ before: this._root, after: root, changes: [ch], domid });
    return ch;
  }
}
