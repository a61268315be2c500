// Watch registration and event dispatch. Owns the one WatchTrie; turns each database commit into
// WATCH_EVENT deliveries in O(depth + matches) per changed path. Whether a watcher may see an event
// is asked through `canSee` (the dispatcher answers it with the policy): this module decides nothing
// about permissions and knows nothing about the wire format or transports.
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import { eventPathFor, type Watch, WatchTrie } from "./trie.ts";

export interface WatchHooks {
  /** Queue a WATCH_EVENT for connection `owner`. Returns false if it could not be queued. */
  deliver(owner: number, epath: string, token: string): boolean;
  /**
   * May `owner` learn of a change at `path` (kind "rm": removal; "change": write or permissions)?
   * `before`/`after` are the trees around the commit; null for special events.
   */
  canSee(
    owner: number,
    path: string,
    kind: "change" | "rm",
    before: Node | null,
    after: Node | null,
  ): boolean;
}

export interface WatchLimits {
  /** Watches per connection (ENOSPC beyond). */
  readonly maxPerConnection: number;
}

export interface WatchStats {
  fired: number;
  filtered: number;
  undelivered: number;
}

export class WatchManager {
  readonly trie = new WatchTrie();
  readonly stats: WatchStats = { fired: 0, filtered: 0, undelivered: 0 };

  constructor(private readonly hooks: WatchHooks) {}

  /** Register; false if (path, token) already exists for this owner (EEXIST). */
  add(w: Watch): boolean {
    return this.trie.add(w);
  }

  /** The registration event: fired once, at once, with the path as the client gave it. */
  fireInitial(w: Watch): void {
    this.send(w, w.path);
  }

  remove(owner: number, path: string, token: string): boolean {
    return this.trie.remove(owner, path, token) !== undefined;
  }

  removeOwner(owner: number): number {
    return this.trie.removeOwner(owner);
  }

  countOwner(owner: number): number {
    return this.trie.countOwner(owner);
  }

  /** Fire the watches matching every change of a commit; each watch at most once per event path. */
  onCommit(c: Commit): void {
    const sent = new Set<Watch>();
    const seenPaths = new Set<string>();
    for (const ch of c.changes) {
      if (seenPaths.has(ch.path)) continue; // once per changed path, even if a transaction wrote it twice
      seenPaths.add(ch.path);
      sent.clear();
      if (ch.kind === "rm") {
        for (const m of this.trie.matchRemoval(ch.path)) {
          if (sent.has(m.watch)) continue;
          sent.add(m.watch);
          if (this.hooks.canSee(m.watch.owner, m.eventPath, "rm", c.before, c.after)) {
            this.send(m.watch, m.eventPath);
          } else this.stats.filtered++;
        }
      } else {
        for (const w of this.trie.matchChange(ch.path)) {
          if (sent.has(w)) continue;
          sent.add(w);
          if (this.hooks.canSee(w.owner, ch.path, "change", c.before, c.after)) this.send(w, ch.path);
          else this.stats.filtered++;
        }
      }
    }
  }

  /** Fire a special event (@introduceDomain, @releaseDomain, @releaseDomain/<domid>). */
  fireSpecial(path: string): void {
    for (const w of this.trie.matchChange(path)) {
      if (this.hooks.canSee(w.owner, path, "change", null, null)) this.send(w, path);
      else this.stats.filtered++;
    }
  }

  private send(w: Watch, absPath: string): void {
    this.stats.fired++;
    if (!this.hooks.deliver(w.owner, eventPathFor(w, absPath), w.token)) this.stats.undelivered++;
  }
}
