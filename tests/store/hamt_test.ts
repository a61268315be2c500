// The persistent hash trie: src/store/hamt.ts, against a plain Map.
import assert from "../helpers/assert.ts";
import fc from "fast-check";
import {
  type Hamt,
  hamtForEach,
  hamtGet,
  hamtKeys,
  hamtRemove,
  hamtSet,
  hamtSize,
  hashKey,
} from "../../src/store/hamt.ts";

/** A birthday search over generated names: groups of keys whose hashes agree on the low `bits` bits. */
// Pseudo-random names (xorshift32, fixed seed): sequential names like "c0", "c1"... share too much
// structure for FNV-1a and give no 30/32-bit collisions at this size.
const SEARCH_KEYS = (() => {
  let s = 12345;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const keys = new Set<string>();
  while (keys.size < 300_000) keys.add(rnd().toString(36) + rnd().toString(36).slice(0, 3));
  return [...keys];
})();
const SEARCH_HASHES = Uint32Array.from(SEARCH_KEYS, hashKey);

function sharedPrefixGroups(bits: number, groups: number): string[][] {
  const mask = bits >= 32 ? 0xffffffff : (1 << bits) - 1;
  const seen = new Map<number, number>();
  const out = new Map<number, string[]>();
  for (let i = 0; i < SEARCH_KEYS.length && out.size < groups; i++) {
    const m = (SEARCH_HASHES[i] & mask) >>> 0;
    const prev = seen.get(m);
    if (prev === undefined) seen.set(m, i);
    else out.set(m, [...(out.get(m) ?? [SEARCH_KEYS[prev]]), SEARCH_KEYS[i]]);
  }
  return [...out.values()];
}

/** Keys whose FNV-1a hashes are fully identical (all 32 bits). */
function fullCollisions(groups: number): string[][] {
  return sharedPrefixGroups(32, groups);
}

/** A group of `n` keys sharing the low `bits` hash bits (the same path through the first bits/5 levels). */
function prefixGroup(bits: number, n: number): string[] {
  const g = sharedPrefixGroups(bits, 1_000_000).find((x) => x.length >= n);
  if (g === undefined) throw new Error(`no ${n} keys sharing ${bits} bits among the search keys`);
  return g.slice(0, n);
}

const COLLISIONS = fullCollisions(3);

function toMap<V>(h: Hamt<V>): Map<string, V> {
  const m = new Map<string, V>();
  hamtForEach(h, (k, v) => {
    assert.ok(!m.has(k), `key ${k} visited twice`);
    m.set(k, v);
  });
  return m;
}

Deno.test("hashKey is FNV-1a 32-bit", () => {
  assert.equal(hashKey(""), 0x811c9dc5);
  assert.equal(hashKey("a"), 0xe40c292c);
  assert.equal(hashKey("foobar"), 0xbf9cf968);
});

Deno.test("the collision search found real full-hash collisions", () => {
  assert.equal(COLLISIONS.length, 3);
  for (const g of COLLISIONS) {
    assert.ok(g.length >= 2);
    for (const k of g) assert.equal(hashKey(k), hashKey(g[0]));
    assert.equal(new Set(g).size, g.length);
  }
});

Deno.test("get/set/remove basics and persistence", () => {
  const e: Hamt<number> = null;
  assert.equal(hamtGet(e, "a"), undefined);
  assert.equal(hamtSize(e), 0);
  assert.equal(hamtRemove(e, "a"), null);
  const a = hamtSet(e, "a", 1);
  const ab = hamtSet(a, "b", 2);
  const ab2 = hamtSet(ab, "a", 10);
  assert.equal(hamtGet(a, "a"), 1);
  assert.equal(hamtGet(a, "b"), undefined);
  assert.equal(hamtGet(ab, "b"), 2);
  assert.equal(hamtGet(ab2, "a"), 10);
  assert.equal(hamtGet(ab, "a"), 1, "old version unchanged by a later set");
  const b = hamtRemove(ab2, "a");
  assert.equal(hamtGet(b, "a"), undefined);
  assert.equal(hamtGet(ab2, "a"), 10, "old version unchanged by a later remove");
  assert.equal(hamtRemove(b, "zzz"), b, "removing an absent key returns the same map");
  assert.equal(hamtRemove(hamtRemove(b, "b"), "b"), null, "empty map is null");
  assert.deepEqual(hamtKeys(ab).sort(), ["a", "b"]);
});

Deno.test("full-hash collisions: set, overwrite, remove each, in every order", () => {
  for (const g of COLLISIONS) {
    const keys = [...g, "other", `${g[0]}x`];
    let h: Hamt<string> = null;
    for (const k of keys) h = hamtSet(h, k, `v-${k}`);
    for (const k of keys) assert.equal(hamtGet(h, k), `v-${k}`);
    assert.equal(hamtSize(h), keys.length);
    h = hamtSet(h, g[1], "new");
    assert.equal(hamtGet(h, g[1]), "new");
    assert.equal(hamtGet(h, g[0]), `v-${g[0]}`);
    for (const order of [keys, [...keys].reverse()]) {
      let r = h;
      for (let i = 0; i < order.length; i++) {
        r = hamtRemove(r, order[i]);
        assert.equal(hamtGet(r, order[i]), undefined, `removed ${order[i]}`);
        for (const k of order.slice(i + 1)) assert.ok(hamtGet(r, k) !== undefined, `kept ${k}`);
        assert.equal(hamtSize(r), order.length - i - 1);
      }
      assert.equal(r, null);
    }
  }
});

Deno.test("1000 keys: size, keys, iteration", () => {
  let h: Hamt<number> = null;
  for (let i = 0; i < 1000; i++) h = hamtSet(h, `key${i}`, i);
  assert.equal(hamtSize(h), 1000);
  const m = toMap(h);
  for (let i = 0; i < 1000; i++) assert.equal(m.get(`key${i}`), i);
  for (let i = 0; i < 1000; i += 2) h = hamtRemove(h, `key${i}`);
  assert.equal(hamtSize(h), 500);
  for (let i = 0; i < 1000; i++) assert.equal(hamtGet(h, `key${i}`), i % 2 ? i : undefined);
});

// Key pool for the property: random-ish names, full collisions, and groups sharing 5..30 low hash bits.
const POOL = [
  ...COLLISIONS.flat(),
  ...prefixGroup(5, 4),
  ...prefixGroup(10, 4),
  ...prefixGroup(15, 3),
  ...prefixGroup(20, 3),
  ...prefixGroup(25, 2),
  ...prefixGroup(30, 2),
  "",
  "a",
  "b",
  "backend",
  "device",
  "0",
  "1",
  "65535",
];

Deno.test("prefix groups really share hash prefixes", () => {
  const g = prefixGroup(20, 3);
  for (const k of g) assert.equal(hashKey(k) & 0xfffff, hashKey(g[0]) & 0xfffff);
});

type Op = { kind: "set"; key: string; val: number } | { kind: "rm"; key: string };

Deno.test("property: any set/remove sequence behaves like a Map (and old versions stay intact)", () => {
  const key = fc.constantFrom(...POOL);
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("set" as const), key, val: fc.integer() }),
    fc.record({ kind: fc.constant("rm" as const), key }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 150, size: "max" }), (ops) => {
      let h: Hamt<number> = null;
      const ref = new Map<string, number>();
      const history: Array<[Hamt<number>, Map<string, number>]> = [];
      for (const o of ops) {
        if (o.kind === "set") {
          h = hamtSet(h, o.key, o.val);
          ref.set(o.key, o.val);
        } else {
          const before = h;
          h = hamtRemove(h, o.key);
          if (!ref.has(o.key)) assert.equal(h, before, "removing an absent key must return the same map");
          ref.delete(o.key);
        }
        for (const k of POOL) assert.equal(hamtGet(h, k), ref.get(k), `get ${JSON.stringify(k)}`);
        assert.equal(hamtSize(h), ref.size);
        assert.deepEqual(toMap(h), ref);
        if (ref.size === 0) assert.equal(h, null, "empty map must be null");
        history.push([h, new Map(ref)]);
      }
      for (const [old, snap] of history) assert.deepEqual(toMap(old), snap, "a past version changed");
    }),
    { numRuns: 300 },
  );
});
