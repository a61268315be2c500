// The strings the tree keeps: child names and values. Two costs hide in strings that come straight
// from a request:
//  - V8 makes a substring of 13 or more characters a *slice* of its parent, so a value or name cut
//    out of a request payload would keep the whole payload (path, NUL, value) alive for as long as
//    the node lives;
//  - the same short strings ("state", "backend", "1", "online") recur in every guest's tree.
// So a name, or a value of up to SHARED_VALUE_MAX characters, goes through a small direct-mapped cache
// of recent strings (recent.ts) and is shared when it is there; anything longer is copied into a
// string of its own. The cache is a fixed table of CACHE_SLOTS strings: it never keeps more than a
// few hundred KiB of strings the tree no longer holds.
import { RecentStrings } from "./recent.ts";

/** Strings each cache holds at most (a power of two). */
export const CACHE_SLOTS = 4096;
/** Values up to this length are shared through the cache (most repeated values are short). */
export const SHARED_VALUE_MAX = 32;
/** V8 (SlicedString::kMinLength) cuts substrings at least this long as slices of their parent. */
const SLICE_MIN = 13;

const names = new RecentStrings(CACHE_SLOTS);
const values = new RecentStrings(CACHE_SLOTS);

/** `s` as a string of its own, never a slice of a larger one. */
export function own(s: string): string {
  const n = s.length;
  if (n < SLICE_MIN) return s; // V8 copies short substrings
  const codes = new Array<number>(n);
  for (let i = 0; i < n; i++) codes[i] = s.charCodeAt(i);
  return String.fromCharCode.apply(null, codes);
}

/** A child name as the tree stores it (shared with every other node of that name). */
export function ownName(s: string): string {
  return names.get(s, own);
}

/** A value as the tree stores it: shared if short, else a copy of its own. */
export function ownValue(s: string): string {
  if (s.length <= 1) return s; // V8 shares one-character strings already
  return s.length <= SHARED_VALUE_MAX ? values.get(s, own) : own(s);
}

/** Strings held by the caches (tests, memreport). */
export function cachedStrings(): number {
  return names.size + values.size;
}

/** Empty the caches (tests that count retained objects). */
export function clearStringCaches(): void {
  names.clear();
  values.clear();
}
