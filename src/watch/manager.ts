// Watch registration and event dispatch. Owns the one WatchTrie; turns each database commit into
// WATCH_EVENT deliveries in O(depth + matches) per changed path. Whether a watcher may see an event
// is asked through `canSee` (the dispatcher answers it with the policy): this module decides nothing
// about permissions and knows nothing about the wire format or transports. See docs/watches.md.
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import { eventPathFor, type Watch, type WatchMatch, WatchTrie } from "./trie.ts";

/**
 * What happened at the event path, for the permission filter:
 *  - "write": the node was created or its value written (it exists in `after`);
 *  - "perms": its permissions changed (old ones in `before`, new ones in `after`);
 *  - "rm": it was removed, with its subtree (it existed in `before`);
 *  - "special": a daemon-invented `@...` event (`before`/`after` are null).
 */
export type EventKind = "write" | "perms" | "rm" | "special";

export interface WatchHooks {
  /**
   * Queue a WATCH_EVENT for connection `owner`, fired by `watch`. Returns false if it could not be
   * queued (connection gone, or the event is too large for the wire: src/dispatch/events.ts).
   */
  deliver(owner: number, epath: string, token: string, watch: Watch): boolean;
  /**
   * May `owner` learn of an event of `kind` at absolute `path`? `before`/`after` are the trees
   * around the commit; null for special events.
   */
  canSee(owner: number, path: string, kind: EventKind, before: Node | null, after: Node | null): boolean;
}

export interface WatchStats {
  /** Events handed to `deliver`. */
  fired: number;
  /** Matches suppressed by the permission filter. */
  filtered: number;
  /** Events `deliver` refused (connection gone, disconnected at its output limit, or too large). */
  undelivered: number;
}

/** Which watchers a domain event reaches (Xen's WATCH_NODOM / WATCH_DOM / WATCH_BOTH). */
export type SpecialScope = "both" | "plain" | "perDomain";

export class WatchManager {
  readonly trie = new WatchTrie();
  readonly stats: WatchStats = { fired: 0, filtered: 0, undelivered: 0 };

  constructor(private readonly hooks: WatchHooks) {}

  /** Register; false if (path, token) already exists for this owner (EEXIST). */
  /** Called with the owner whenever its set of watches changed (e.g. to persist ring watches). */
  private readonly changeListeners: Array<(owner: number) => void> = [];

  onOwnerChanged(fn: (owner: number) => void): void {
    this.changeListeners.push(fn);
  }

  private changed(owner: number): void {
    for (const fn of this.changeListeners) fn(owner);
  }

  add(w: Watch): boolean {
    const added = this.trie.add(w);
    if (added) this.changed(w.owner);
    return added;
  }

  has(owner: number, path: string, token: string): boolean {
    return this.trie.has(owner, path, token);
  }

  /**
   * The registration event: fired once, at once, with the path as the client gave it. Not filtered
   * (as cxenstored): it tells the client nothing but what it sent.
   */
  fireInitial(w: Watch): void {
    this.send(w, w.path);
  }

  remove(owner: number, path: string, token: string): boolean {
    const removed = this.trie.remove(owner, path, token) !== undefined;
    if (removed) this.changed(owner);
    return removed;
  }

  /** Drop every watch of a connection (close, RESET_WATCHES); returns how many. */
  removeOwner(owner: number): number {
    const n = this.trie.removeOwner(owner);
    if (n > 0) this.changed(owner);
    return n;
  }

  countOwner(owner: number): number {
    return this.trie.countOwner(owner);
  }

  /**
   * Fire the watches matching every change of a commit. A watch gets each event path at most once
   * per commit, so a transaction writing a path several times produces one event per watcher.
   */
  onCommit(c: Commit): void {
    if (this.trie.size === 0) return; // nobody to tell (and nothing to allocate for it)
    // (event path → watches already sent it) for this commit only. A match the permission filter
    // refused is not recorded: a later change of another kind at the same path (a transaction that
    // writes a node and then removes it) is judged on its own.
    const told = new Map<string, Set<Watch>>();
    const consider = (m: WatchMatch, kind: EventKind): void => {
      let s = told.get(m.eventPath);
      if (s?.has(m.watch)) return;
      if (!this.filterAndSend(m, kind, c.before, c.after)) return;
      if (s === undefined) {
        s = new Set();
        told.set(m.eventPath, s);
      }
      s.add(m.watch);
    };
    for (const ch of c.changes) {
      if (ch.kind === "rm") {
        for (const m of this.trie.matchRemoval(ch.path)) consider(m, "rm");
      } else {
        for (const watch of this.trie.matchChange(ch.path)) consider({ watch, eventPath: ch.path }, ch.kind);
      }
    }
  }

  /**
   * Fire a domain event: `base` is `@introduceDomain` or `@releaseDomain`, `domid` the domain.
   * "plain" reaches watches on `base` without a depth (event path `base`), "perDomain" watches on
   * `base` with a depth and watches on `base/<domid>` (event path `base/<domid>`), "both" all of them
   * (Xen fires "both" on introduce and domain destruction, "perDomain" on shutdown).
   */
  fireSpecial(base: string, domid: number, scope: SpecialScope = "both"): void {
    const matches = this.trie.matchSpecial(base, domid, scope !== "perDomain", scope !== "plain");
    for (const m of matches) this.filterAndSend(m, "special", null, null);
  }

  /** Send `m` if its owner may see it; true if sent. */
  private filterAndSend(m: WatchMatch, kind: EventKind, before: Node | null, after: Node | null): boolean {
    if (!this.hooks.canSee(m.watch.owner, m.eventPath, kind, before, after)) {
      this.stats.filtered++;
      return false;
    }
    this.send(m.watch, m.eventPath);
    return true;
  }

  private send(w: Watch, absPath: string): void {
    this.stats.fired++;
    if (!this.hooks.deliver(w.owner, eventPathFor(w, absPath), w.token, w)) this.stats.undelivered++;
  }
}
