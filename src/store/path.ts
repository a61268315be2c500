// Path syntax (Xen docs/misc/xenstore.txt): characters [A-Za-z0-9-/_@], no "//", no trailing "/"
// except the root, absolute ≤ 3072 bytes, relative ≤ 2048 bytes. Relative paths are resolved against
// the caller's domain path. "@"-prefixed paths name special watch events and are only accepted where
// the caller says so (WATCH, UNWATCH, GET_PERMS, SET_PERMS).
import { XsError } from "../common/xs_error.ts";
import { ABS_PATH_MAX, REL_PATH_MAX } from "../protocol/wire.ts";

export interface ResolvedPath {
  /** Canonical absolute path ("/", "/local/domain/1") or special path ("@releaseDomain"). */
  readonly abs: string;
  readonly special: boolean;
  /** For a relative request path: the prefix (with trailing "/") that events must strip. */
  readonly relativeBase: string | null;
}

const SLASH = 0x2f;

/** A character of a path other than "/": [A-Za-z0-9-_@]. */
function isNameChar(ch: number): boolean {
  return (ch >= 0x61 && ch <= 0x7a) || (ch >= 0x41 && ch <= 0x5a) || (ch >= 0x30 && ch <= 0x39) ||
    ch === 0x2d || ch === 0x5f || ch === 0x40;
}
const NODE_PATH = /^\/$|^(\/[A-Za-z0-9\-_@]+)+$/;

/** A canonical absolute node path: what a stored node's key must be (backends check what they load). */
export function isNodePath(p: string): boolean {
  return p.length <= ABS_PATH_MAX && NODE_PATH.test(p);
}

function einval(detail: string): never {
  throw new XsError("EINVAL", detail);
}

/** The base of relative paths for a domain. */
export function domainPath(domid: number): string {
  return `/local/domain/${domid}`;
}

/**
 * Validate and canonicalise a request path.
 * @param base the caller's domain path (relative paths are `${base}/${raw}`)
 */
export function resolvePath(raw: string, base: string, allowSpecial: boolean): ResolvedPath {
  if (raw.length === 0) einval("empty path");
  // Xen's characters ([A-Za-z0-9-/_@]), "//" and the trailing "/" in one pass: every request's path
  // is checked, and a regular expression's call costs more than this scan of a short path.
  let doubleSlash = false;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === SLASH) {
      if (i > 0 && raw.charCodeAt(i - 1) === SLASH) doubleSlash = true;
    } else if (!isNameChar(ch)) einval("invalid character in path");
  }
  if (doubleSlash) einval("'//' in path");
  if (raw.length > 1 && raw.charCodeAt(raw.length - 1) === SLASH) einval("trailing '/' in path");
  if (raw[0] === "@") {
    if (!allowSpecial) einval("special path not allowed here");
    if (raw.length === 1) einval("empty special path");
    if (raw.length > ABS_PATH_MAX) einval("path too long");
    return { abs: raw, special: true, relativeBase: null };
  }
  if (raw[0] === "/") {
    if (raw.length > ABS_PATH_MAX) einval("path too long");
    return { abs: raw, special: false, relativeBase: null };
  }
  if (raw.length > REL_PATH_MAX) einval("relative path too long");
  const abs = `${base}/${raw}`;
  if (abs.length > ABS_PATH_MAX) einval("path too long");
  return { abs, special: false, relativeBase: `${base}/` };
}

const NO_COMPONENTS: readonly string[] = Object.freeze([]);

/**
 * Paths split recently. One request's path is split by several layers — the handler, the transaction's
 * observation and modification log, the commit's replay, the quota accounting — and a transaction
 * splits the same few paths again at each step: a hit costs a hash lookup where a split allocates an
 * array and a string per component (issue 20: split was the largest allocation of a transaction).
 * Bounded (cleared when full) because a key may be a slice of a request's payload and keeps it alive.
 */
const SPLIT_CACHE_MAX = 64;
const splitCache = new Map<string, readonly string[]>();

/**
 * Components of a canonical absolute path: "/" → [], "/a/b" → ["a", "b"]. The array is shared
 * between callers (frozen): copy it to change it.
 */
export function components(abs: string): readonly string[] {
  if (abs === "/") return NO_COMPONENTS;
  let comps = splitCache.get(abs);
  if (comps === undefined) {
    comps = Object.freeze(abs.slice(1).split("/"));
    if (splitCache.size >= SPLIT_CACHE_MAX) splitCache.clear();
    splitCache.set(abs, comps);
  }
  return comps;
}

export function parentOf(abs: string): string {
  const i = abs.lastIndexOf("/");
  return i <= 0 ? "/" : abs.slice(0, i);
}

export function joinPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

/** True if `ancestor` is `path` or one of its ancestors (both canonical absolute). */
export function isAncestorOrSelf(ancestor: string, path: string): boolean {
  if (ancestor === path) return true;
  if (ancestor === "/") return path.charCodeAt(0) === 47; // "/" is no ancestor of "@special" paths
  return path.length > ancestor.length && path.startsWith(ancestor) &&
    path.charCodeAt(ancestor.length) === 47;
}
