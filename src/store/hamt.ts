// A persistent (immutable, structurally shared) hash array mapped trie from string keys to values.
// Used for a node's children: insert/remove copy O(log32 n) small arrays instead of the whole child
// set, so a write under a directory with 10 000 children costs the same as under one with 10.
// Iteration order is hash order; callers that need a stable order sort the keys.

const BITS = 5;
const MASK = 31;

/** Interior node: `bitmap` marks occupied slots; `items` holds two entries per slot, in slot order:
 *  (key, value) for a leaf, or (undefined, child HamtNode) for a sub-trie. */
class BitmapNode<V> {
  constructor(readonly bitmap: number, readonly items: readonly unknown[]) {}
}

/** All 32 hash bits used up: keys with identical hashes live in a flat list. */
class CollisionNode<V> {
  constructor(readonly keys: readonly string[], readonly vals: readonly V[]) {}
}

type HamtNode<V> = BitmapNode<V> | CollisionNode<V>;

/** An immutable map; `null` is the empty map. */
export type Hamt<V> = HamtNode<V> | null;

/** FNV-1a over UTF-16 code units: fast, and good enough for short path components. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function hamtGet<V>(map: Hamt<V>, key: string): V | undefined {
  let node = map;
  if (node === null) return undefined;
  const h = hashKey(key);
  let shift = 0;
  for (;;) {
    if (node instanceof CollisionNode) {
      const i = node.keys.indexOf(key);
      return i < 0 ? undefined : node.vals[i];
    }
    const bit = 1 << ((h >>> shift) & MASK);
    if ((node.bitmap & bit) === 0) return undefined;
    const idx = 2 * popcount(node.bitmap & (bit - 1));
    const k = node.items[idx];
    if (k === undefined) {
      node = node.items[idx + 1] as HamtNode<V>;
      shift += BITS;
      continue;
    }
    return k === key ? node.items[idx + 1] as V : undefined;
  }
}

/** Build the smallest sub-trie holding two leaves whose hashes first differ at or after `shift`. */
function pair<V>(shift: number, k1: string, h1: number, v1: V, k2: string, h2: number, v2: V): HamtNode<V> {
  if (shift >= 32) return new CollisionNode([k1, k2], [v1, v2]);
  const i1 = (h1 >>> shift) & MASK;
  const i2 = (h2 >>> shift) & MASK;
  if (i1 === i2) return new BitmapNode<V>(1 << i1, [undefined, pair(shift + BITS, k1, h1, v1, k2, h2, v2)]);
  return i1 < i2
    ? new BitmapNode<V>((1 << i1) | (1 << i2), [k1, v1, k2, v2])
    : new BitmapNode<V>((1 << i1) | (1 << i2), [k2, v2, k1, v1]);
}

function setIn<V>(
  node: HamtNode<V>,
  shift: number,
  h: number,
  key: string,
  val: V,
  keyForInsert: (k: string) => string,
): HamtNode<V> {
  if (node instanceof CollisionNode) {
    const i = node.keys.indexOf(key);
    if (i >= 0) {
      const vals = node.vals.slice();
      vals[i] = val;
      return new CollisionNode(node.keys, vals);
    }
    return new CollisionNode([...node.keys, keyForInsert(key)], [...node.vals, val]);
  }
  const bit = 1 << ((h >>> shift) & MASK);
  const idx = 2 * popcount(node.bitmap & (bit - 1));
  if ((node.bitmap & bit) === 0) {
    return new BitmapNode(node.bitmap | bit, withPair(node.items, idx, keyForInsert(key), val));
  }
  const k = node.items[idx];
  const items = node.items.slice();
  if (k === undefined) {
    items[idx + 1] = setIn(node.items[idx + 1] as HamtNode<V>, shift + BITS, h, key, val, keyForInsert);
  } else if (k === key) {
    items[idx + 1] = val;
  } else {
    const other = k as string;
    items[idx] = undefined;
    items[idx + 1] = pair(
      shift + BITS,
      other,
      hashKey(other),
      node.items[idx + 1] as V,
      keyForInsert(key),
      h,
      val,
    );
  }
  return new BitmapNode(node.bitmap, items);
}

/**
 * `map` with `key` set to `val`. A replaced entry keeps its stored key; a new one is stored as
 * `keyForInsert(key)` (the tree passes its string cache, src/store/strings.ts).
 */
export function hamtSet<V>(
  map: Hamt<V>,
  key: string,
  val: V,
  keyForInsert: (k: string) => string = (k) => k,
): Hamt<V> {
  const h = hashKey(key);
  if (map === null) return new BitmapNode<V>(1 << (h & MASK), [keyForInsert(key), val]);
  return setIn(map, 0, h, key, val, keyForInsert);
}

/** Returns the same node if `key` is absent; null when the result is empty. */
function removeIn<V>(node: HamtNode<V>, shift: number, h: number, key: string): HamtNode<V> | null {
  if (node instanceof CollisionNode) {
    const i = node.keys.indexOf(key);
    if (i < 0) return node;
    if (node.keys.length === 1) return null;
    return new CollisionNode(node.keys.filter((_, j) => j !== i), node.vals.filter((_, j) => j !== i));
  }
  const bit = 1 << ((h >>> shift) & MASK);
  if ((node.bitmap & bit) === 0) return node;
  const idx = 2 * popcount(node.bitmap & (bit - 1));
  const k = node.items[idx];
  if (k === undefined) {
    const sub = node.items[idx + 1] as HamtNode<V>;
    const nsub = removeIn(sub, shift + BITS, h, key);
    if (nsub === sub) return node;
    if (nsub === null) {
      const bitmap = node.bitmap & ~bit;
      return bitmap === 0 ? null : new BitmapNode(bitmap, withoutPair(node.items, idx));
    }
    const items = node.items.slice();
    // Pull a lone leaf up so the trie stays minimal (keeps iteration and size cheap).
    if (nsub instanceof BitmapNode && nsub.items.length === 2 && nsub.items[0] !== undefined) {
      items[idx] = nsub.items[0];
      items[idx + 1] = nsub.items[1];
    } else {
      items[idx + 1] = nsub;
    }
    return new BitmapNode(node.bitmap, items);
  }
  if (k !== key) return node;
  const bitmap = node.bitmap & ~bit;
  if (bitmap === 0) return null;
  return new BitmapNode(bitmap, withoutPair(node.items, idx));
}

// Exact-size copies: splice() on a copy would leave the engine's growth slack (or a trimmed tail)
// in every interior node, a large share of the trie's memory.

function withPair(items: readonly unknown[], idx: number, key: string, val: unknown): unknown[] {
  const out = new Array<unknown>(items.length + 2);
  for (let i = 0; i < idx; i++) out[i] = items[i];
  out[idx] = key;
  out[idx + 1] = val;
  for (let i = idx; i < items.length; i++) out[i + 2] = items[i];
  return out;
}

function withoutPair(items: readonly unknown[], idx: number): unknown[] {
  const out = new Array<unknown>(items.length - 2);
  for (let i = 0; i < idx; i++) out[i] = items[i];
  for (let i = idx + 2; i < items.length; i++) out[i - 2] = items[i];
  return out;
}

export function hamtRemove<V>(map: Hamt<V>, key: string): Hamt<V> {
  if (map === null) return null;
  return removeIn(map, 0, hashKey(key), key);
}

/** Visit every entry (iteratively: no recursion). */
export function hamtForEach<V>(map: Hamt<V>, fn: (key: string, val: V) => void): void {
  if (map === null) return;
  const stack: HamtNode<V>[] = [map];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (node instanceof CollisionNode) {
      for (let i = 0; i < node.keys.length; i++) fn(node.keys[i], node.vals[i]);
      continue;
    }
    const items = node.items;
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (k === undefined) stack.push(items[i + 1] as HamtNode<V>);
      else fn(k as string, items[i + 1] as V);
    }
  }
}

/** min(size, limit + 1): stops counting past `limit` (cheap "more than limit?" on a big trie). */
export function hamtCountUpTo<V>(map: Hamt<V>, limit: number): number {
  if (map === null) return 0;
  let n = 0;
  const stack: HamtNode<V>[] = [map];
  while (stack.length > 0 && n <= limit) {
    const node = stack.pop()!;
    if (node instanceof CollisionNode) {
      n += node.keys.length;
      continue;
    }
    const items = node.items;
    for (let i = 0; i < items.length; i += 2) {
      if (items[i] === undefined) stack.push(items[i + 1] as HamtNode<V>);
      else n++;
    }
  }
  return Math.min(n, limit + 1);
}

export function hamtSize<V>(map: Hamt<V>): number {
  let n = 0;
  hamtForEach(map, () => n++);
  return n;
}

export function hamtKeys<V>(map: Hamt<V>): string[] {
  const keys: string[] = [];
  hamtForEach(map, (k) => keys.push(k));
  return keys;
}

/** Structural invariants (for checkStore): slot counts match bitmaps, no empty interior nodes,
 *  every key sits on its hash path, collisions only once all hash bits are used. */
export function hamtCheck<V>(map: Hamt<V>): string[] {
  const problems: string[] = [];
  if (map === null) return problems;
  const stack: Array<[HamtNode<V>, number, number]> = [[map, 0, 0]]; // node, shift, hash prefix
  while (stack.length > 0) {
    const [node, shift, prefix] = stack.pop()!;
    if (node instanceof CollisionNode) {
      if (shift < 32) problems.push("collision node above full hash depth");
      for (const k of node.keys) {
        if (hashKey(k) !== prefix) problems.push(`key ${k} in the wrong collision node`);
      }
      continue;
    }
    if (node.bitmap === 0) problems.push("empty interior node");
    if (2 * popcount(node.bitmap) !== node.items.length) problems.push("bitmap does not match slots");
    let slot = 0;
    for (let bit = 0; bit < 32; bit++) {
      if ((node.bitmap & (1 << bit)) === 0) continue;
      const k = node.items[2 * slot];
      const p = (prefix | (bit << shift)) >>> 0;
      if (k === undefined) stack.push([node.items[2 * slot + 1] as HamtNode<V>, shift + BITS, p]);
      else if (((hashKey(k as string) ^ p) & (shift + BITS >= 32 ? -1 : (1 << (shift + BITS)) - 1)) !== 0) {
        problems.push(`key ${k} off its hash path`);
      }
      slot++;
    }
  }
  return problems;
}
