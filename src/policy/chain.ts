// An ordered chain of WebAssembly policy plugins as a Policy. Composition (docs/plugins.md):
// - node, set-perms, capability and message questions: plugins are asked in order; the first deny wins
//   (its errno is the answer) and later plugins are not asked; a chain that allows is unanimous.
// - create questions: a pipeline; each plugin may keep or rewrite the permissions the previous one
//   produced, or deny the creation.
// - a plugin that did not subscribe to a kind (policy_info mask) passes it through; an empty chain
//   allows everything.
// - a failed call (trap, budget, malformed answer) is a deny with EACCES: fail closed.
//
// Decision cache: a plugin marks an answer cacheable when it depends only on (kind, access, flags,
// domid, target, permissions) — not on the path, the value or plugin state. When every plugin that
// answered marked it so, the chain's decision is remembered per permission-list object (lists are
// interned, so nodes share them) and per subject; a new chain (reload) starts with an empty cache.
// Cache hits are still the plugins' decisions, made earlier; nothing is decided in TypeScript.
//
// Plugins see permission lists as they grant: without their inactive entries (spec PERM-10,
// src/store/perms.ts `effective`), in every question. So no plugin, old or new, can let an inactive
// entry grant anything, and the ABI is unchanged.
import { type Errno, XsError } from "../common/xs_error.ts";
import { type PermBits, type PermEntry, Perms } from "../store/perms.ts";
import {
  ACCESS_CODES,
  CAPABILITY_CODES,
  errnoOf,
  FLAG_HAS_TARGET,
  FLAG_PRIVILEGED,
  FLAG_SPECIAL,
  FLAG_TRANSACTION,
  KIND_CAPABILITY,
  KIND_COUNT,
  KIND_CREATE,
  KIND_MESSAGE,
  KIND_NODE,
  KIND_SETPERMS,
  OUT_CACHEABLE,
  QuestionEncoder,
  VERDICT_ALLOW,
  VERDICT_REWRITE,
} from "./abi.ts";
import type { PluginFailure, PluginInstance } from "./plugin.ts";
import type { Capability, Decision, NodeAccess, Policy, Subject } from "./policy.ts";

export interface ChainStats {
  /** Decisions answered from the cache / by calling plugins. */
  cacheHits: number;
  cacheMisses: number;
  denies: number;
  /** Plugin calls that failed (and were turned into denies). */
  failures: number;
}

/** Cached decisions per chain before the cache is dropped and refilled. */
const CACHE_MAX = 65536;

export class PluginChain implements Policy {
  readonly name: string;
  readonly stats: ChainStats = { cacheHits: 0, cacheMisses: 0, denies: 0, failures: 0 };
  private readonly enc = new QuestionEncoder();
  /** Plugins per question kind, in chain order. */
  private readonly byKind: PluginInstance[][];
  private nodeCache = new WeakMap<Perms, Map<number, Errno | null>>();
  private createCache = new WeakMap<Perms, Map<number, Perms>>();
  private cached = 0;

  constructor(readonly plugins: readonly PluginInstance[], readonly generation = 0) {
    this.name = plugins.length === 0 ? "(empty)" : plugins.map((p) => p.name).join(",");
    this.byKind = [];
    for (let k = 0; k < KIND_COUNT; k++) this.byKind.push(plugins.filter((p) => (p.interests >> k) & 1));
  }

  /** Every plugin's per-domain variables of `domid` go (a plugin's state is shared by name). */
  domainGone(domid: number): void {
    for (const p of this.plugins) p.vars.dropDomain(domid);
  }

  checkNode(who: Subject, access: NodeAccess, path: string, perms: Perms, flags = 0): Decision {
    const list = this.byKind[KIND_NODE];
    if (list.length === 0) return undefined;
    const f = subjectFlags(who) | flags | (path.charCodeAt(0) === 64 ? FLAG_SPECIAL : 0);
    const code = ACCESS_CODES[access];
    const key = cacheKey(code, f, who);
    // Decided on the effective list (spec PERM-10): an inactive entry is never shown to a plugin.
    const view = perms.effective;
    const hit = this.nodeCache.get(view)?.get(key);
    if (hit !== undefined) {
      this.stats.cacheHits++;
      return hit ?? undefined;
    }
    this.stats.cacheMisses++;
    const e = this.enc;
    e.header(KIND_NODE, code, f, who.domid, who.target ?? 0);
    e.perms(view, path.length);
    e.latin1(path);
    let cacheable = true;
    let decision: Errno | null = null;
    for (const p of list) {
      const out = p.decide(e);
      if (!(out instanceof Uint8Array)) {
        decision = this.failed(out);
        cacheable = false;
        break;
      }
      if ((out[2] & OUT_CACHEABLE) === 0) cacheable = false;
      if (out[0] !== VERDICT_ALLOW) {
        decision = errnoOf(out[1]);
        break;
      }
    }
    if (decision !== null) this.stats.denies++;
    if (cacheable) {
      let m = this.nodeCache.get(view);
      if (m === undefined) this.nodeCache.set(view, m = new Map());
      m.set(key, decision);
      this.countCached();
    }
    return decision ?? undefined;
  }

  permsForCreate(who: Subject, parentPerms: Perms): Perms {
    const list = this.byKind[KIND_CREATE];
    if (list.length === 0) return parentPerms;
    const f = subjectFlags(who);
    const key = cacheKey(0, f, who);
    const hit = this.createCache.get(parentPerms)?.get(key);
    if (hit !== undefined) {
      this.stats.cacheHits++;
      return hit;
    }
    this.stats.cacheMisses++;
    let cur = parentPerms;
    let cacheable = true;
    for (const p of list) {
      const e = this.enc;
      e.header(KIND_CREATE, 0, f, who.domid, who.target ?? 0);
      e.perms(cur.effective, 0);
      const out = p.decide(e);
      if (!(out instanceof Uint8Array)) throw new XsError(this.failed(out), "policy plugin failed");
      if ((out[2] & OUT_CACHEABLE) === 0) cacheable = false;
      if (out[0] === VERDICT_REWRITE) {
        const next = decodePerms(out, 8);
        if (next === null) {
          throw new XsError(this.failed({ kind: "output", message: "malformed permissions" }), p.name);
        }
        cur = withInactiveOf(cur, next);
      } else if (out[0] !== VERDICT_ALLOW) {
        this.stats.denies++;
        throw new XsError(errnoOf(out[1]), `creation refused by policy ${p.name}`);
      }
    }
    if (cacheable) {
      let m = this.createCache.get(parentPerms);
      if (m === undefined) this.createCache.set(parentPerms, m = new Map());
      m.set(key, cur);
      this.countCached();
    }
    return cur;
  }

  checkSetPerms(who: Subject, old: Perms, next: Perms): Decision {
    const list = this.byKind[KIND_SETPERMS];
    if (list.length === 0) return undefined;
    const e = this.enc;
    e.header(KIND_SETPERMS, 0, subjectFlags(who), who.domid, who.target ?? 0);
    e.perms(old.effective, 0);
    e.perms(next.effective, 0);
    return this.ask(list);
  }

  checkCapability(who: Subject, cap: Capability): Decision {
    const list = this.byKind[KIND_CAPABILITY];
    if (list.length === 0) return undefined;
    this.enc.header(KIND_CAPABILITY, CAPABILITY_CODES[cap], subjectFlags(who), who.domid, who.target ?? 0);
    return this.ask(list);
  }

  checkMessage(who: Subject, type: number, txId: number, payload: string): Decision {
    const list = this.byKind[KIND_MESSAGE];
    if (list.length === 0) return undefined;
    const e = this.enc;
    const f = subjectFlags(who) | (txId !== 0 ? FLAG_TRANSACTION : 0);
    e.header(KIND_MESSAGE, type & 0xff, f, who.domid, who.target ?? 0);
    e.buf.fill(0, 8, 16);
    new DataView(e.buf.buffer).setUint32(8, payload.length, true);
    e.length = 16;
    e.latin1(payload);
    return this.ask(list);
  }

  /** Ask `list` the question in the encoder; first deny wins. */
  private ask(list: readonly PluginInstance[]): Decision {
    for (const p of list) {
      const out = p.decide(this.enc);
      if (!(out instanceof Uint8Array)) return this.failed(out);
      if (out[0] !== VERDICT_ALLOW) {
        this.stats.denies++;
        return errnoOf(out[1]);
      }
    }
    return undefined;
  }

  private failed(_f: PluginFailure): Errno {
    // The plugin logged and counted the failure; the chain only turns it into a deny.
    this.stats.failures++;
    this.stats.denies++;
    return "EACCES";
  }

  private countCached(): void {
    if (++this.cached <= CACHE_MAX) return;
    this.nodeCache = new WeakMap();
    this.createCache = new WeakMap();
    this.cached = 0;
  }
}

function subjectFlags(who: Subject): number {
  return (who.privileged ? FLAG_PRIVILEGED : 0) | (who.target !== null ? FLAG_HAS_TARGET : 0);
}

/** (target+1, domid, flags, code) as one integer below 2^53. */
function cacheKey(code: number, flags: number, who: Subject): number {
  return (((who.target ?? -1) + 1) * 65536 + who.domid) * 8192 + flags * 32 + code;
}

/**
 * The list a create rewrite gives, given that the plugin saw only `asked.effective`: when the plugin
 * kept the entries it saw (changing owner or other access, as the legacy plugin does for a guest's
 * node), the inactive entries of `asked` are kept too, in place (PERM-9: a child inherits them, still
 * inactive); when it changed the entries, its list is the answer. Either way no entry the plugin
 * never saw becomes active.
 */
export function withInactiveOf(asked: Perms, answer: Perms): Perms {
  if (!asked.hasInactive) return answer;
  const seen = asked.effective.acl;
  const got = answer.acl;
  if (got.length !== seen.length) return answer;
  for (let i = 0; i < got.length; i++) {
    if (got[i].domid !== seen[i].domid || got[i].bits !== seen[i].bits) return answer;
  }
  return Perms.of(answer.owner, answer.other, asked.acl);
}

/** A permission block from plugin output at `at`, or null if malformed. */
export function decodePerms(out: Uint8Array, at: number): Perms | null {
  if (at + 8 > out.length) return null;
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const owner = v.getUint16(at, true);
  const other = v.getUint8(at + 2);
  const n = v.getUint16(at + 4, true);
  if (other > 3 || at + 8 + 4 * n > out.length) return null;
  const acl: PermEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = at + 8 + 4 * i;
    const bits = v.getUint8(o + 2);
    if (bits > 3) return null;
    acl.push({ domid: v.getUint16(o, true), bits: bits as PermBits });
  }
  return Perms.of(owner, other as PermBits, acl);
}
