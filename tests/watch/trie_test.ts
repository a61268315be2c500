import assert from "../helpers/assert.ts";
import fc from "fast-check";
import { eventPathFor, isSpecialPath, splitPath, type Watch, WatchTrie } from "../../src/watch/trie.ts";

function w(
  owner: number,
  path: string,
  token: string,
  depth?: number,
  relativeBase: string | null = null,
): Watch {
  return { owner, path, token, depth, relativeBase };
}

function tokens(ws: Watch[]): string[] {
  return ws.map((x) => x.token).sort();
}

function trieWith(...ws: Watch[]): WatchTrie {
  const t = new WatchTrie();
  for (const x of ws) assert.equal(t.add(x), true);
  return t;
}

// ---------------------------------------------------------------- helpers

Deno.test("splitPath / isSpecialPath", () => {
  assert.deepEqual(splitPath("/"), []);
  assert.deepEqual(splitPath("/local/domain/3"), ["local", "domain", "3"]);
  assert.deepEqual(splitPath("@releaseDomain"), ["@releaseDomain"]);
  assert.deepEqual(splitPath("@releaseDomain/5"), ["@releaseDomain", "5"]);
  assert.equal(isSpecialPath("@introduceDomain"), true);
  assert.equal(isSpecialPath("/@introduceDomain"), false);
  assert.throws(() => splitPath("local/domain"), TypeError);
  assert.throws(() => splitPath("/a//b"), TypeError);
  assert.throws(() => splitPath("/a/"), TypeError);
  assert.throws(() => splitPath(""), TypeError);
});

Deno.test("add rejects invalid depth and relative paths", () => {
  const t = new WatchTrie();
  assert.throws(() => t.add(w(1, "/a", "t", -1)), RangeError);
  assert.throws(() => t.add(w(1, "/a", "t", 1.5)), RangeError);
  assert.throws(() => t.add(w(1, "a", "t")), TypeError);
  assert.equal(t.size, 0);
  assert.equal(t.nodeCount(), 1);
});

// ---------------------------------------------------------------- change matching

Deno.test("exact match", () => {
  const t = trieWith(w(1, "/a/b", "x"));
  assert.deepEqual(tokens(t.matchChange("/a/b")), ["x"]);
  assert.deepEqual(t.matchChange("/a/c"), []);
  assert.deepEqual(t.matchChange("/a/bb"), []);
});

Deno.test("ancestor match, not descendant or sibling", () => {
  const t = trieWith(w(1, "/a", "a"), w(1, "/a/b", "ab"), w(1, "/a/b/c/d", "abcd"), w(1, "/z", "z"));
  assert.deepEqual(tokens(t.matchChange("/a/b/c")), ["a", "ab"]);
  assert.deepEqual(tokens(t.matchChange("/a")), ["a"]);
  assert.deepEqual(tokens(t.matchChange("/a/b/c/d/e/f")), ["a", "ab", "abcd"]);
});

Deno.test("root watch sees every plain path, no special path", () => {
  const t = trieWith(w(1, "/", "root"));
  assert.deepEqual(tokens(t.matchChange("/")), ["root"]);
  assert.deepEqual(tokens(t.matchChange("/a")), ["root"]);
  assert.deepEqual(tokens(t.matchChange("/x/y/z/w")), ["root"]);
  assert.deepEqual(tokens(t.matchChange("/@releaseDomain")), ["root"]);
  assert.deepEqual(t.matchChange("@releaseDomain"), []);
  assert.deepEqual(t.matchChange("@releaseDomain/5"), []);
  assert.deepEqual(t.matchChange("@introduceDomain"), []);
  assert.deepEqual(t.matchRemoval("@releaseDomain/5"), []);
});

Deno.test("special paths: own namespace and depth", () => {
  const t = trieWith(
    w(1, "@releaseDomain", "any"),
    w(1, "@releaseDomain", "d0", 0),
    w(1, "@releaseDomain", "d1", 1),
    w(1, "@introduceDomain", "intro"),
    w(1, "/@releaseDomain", "plain"),
  );
  assert.deepEqual(tokens(t.matchChange("@releaseDomain/5")), ["any", "d1"]);
  assert.deepEqual(tokens(t.matchChange("@releaseDomain")), ["any", "d0", "d1"]);
  assert.deepEqual(tokens(t.matchChange("@introduceDomain")), ["intro"]);
  assert.deepEqual(tokens(t.matchChange("/@releaseDomain/5")), ["plain"]);
  assert.deepEqual(t.matchChange("@releaseDomainX"), []);
});

Deno.test("depth 0 / 1 / 2", () => {
  const t = trieWith(
    w(1, "/a", "d0", 0),
    w(1, "/a", "d1", 1),
    w(1, "/a", "d2", 2),
    w(1, "/a", "inf"),
  );
  assert.deepEqual(tokens(t.matchChange("/a")), ["d0", "d1", "d2", "inf"]);
  assert.deepEqual(tokens(t.matchChange("/a/b")), ["d1", "d2", "inf"]);
  assert.deepEqual(tokens(t.matchChange("/a/b/c")), ["d2", "inf"]);
  assert.deepEqual(tokens(t.matchChange("/a/b/c/d")), ["inf"]);
  const r = trieWith(w(1, "/", "r0", 0), w(1, "/", "r1", 1));
  assert.deepEqual(tokens(r.matchChange("/")), ["r0", "r1"]);
  assert.deepEqual(tokens(r.matchChange("/a")), ["r1"]);
  assert.deepEqual(r.matchChange("/a/b"), []);
});

// ---------------------------------------------------------------- removal matching

Deno.test("removal fires watches below with their own path, depth irrelevant", () => {
  const t = trieWith(
    w(1, "/", "root0", 0),
    w(1, "/", "root"),
    w(1, "/a", "a"),
    w(1, "/a/b", "ab0", 0),
    w(1, "/a/b/c/d", "abcd0", 0),
    w(2, "/a/b/e", "abe"),
    w(1, "/a/bc", "abc"),
  );
  const got = t.matchRemoval("/a/b")
    .map((m) => `${m.watch.token}@${m.eventPath}`)
    .sort();
  assert.deepEqual(got, ["a@/a/b", "ab0@/a/b", "abcd0@/a/b/c/d", "abe@/a/b/e", "root@/a/b"]);
  // removal of a node absent from the trie still fires ancestors
  assert.deepEqual(
    t.matchRemoval("/q/r").map((m) => `${m.watch.token}@${m.eventPath}`).sort(),
    ["root@/q/r"],
  );
  // removal of the root fires everything plain, nothing special
  t.add(w(1, "@releaseDomain", "rel"));
  assert.deepEqual(
    t.matchRemoval("/").map((m) => `${m.watch.token}@${m.eventPath}`).sort(),
    ["a@/a", "ab0@/a/b", "abc@/a/bc", "abcd0@/a/b/c/d", "abe@/a/b/e", "root0@/", "root@/"],
  );
});

Deno.test("each watch fires at most once per change", () => {
  const t = trieWith(w(1, "/a", "x"), w(2, "/a", "x"), w(1, "/a/b", "x"));
  assert.equal(t.matchChange("/a/b/c").length, 3);
  assert.equal(t.matchRemoval("/a").length, 3);
  assert.equal(new Set(t.matchRemoval("/a").map((m) => m.watch)).size, 3);
});

// ---------------------------------------------------------------- registration

Deno.test("duplicate (owner, path, token) rejected; other combinations ok", () => {
  const t = new WatchTrie();
  const first = w(1, "/a", "tok");
  assert.equal(t.add(first), true);
  assert.equal(t.add(w(1, "/a", "tok", 3)), false);
  assert.equal(t.add(w(1, "/a", "tok2")), true);
  assert.equal(t.add(w(1, "/b", "tok")), true);
  assert.equal(t.add(w(2, "/a", "tok")), true);
  assert.equal(t.size, 4);
  assert.equal(t.countOwner(1), 3);
  assert.equal(t.countOwner(2), 1);
  assert.equal(t.countOwner(3), 0);
  // the rejected duplicate did not replace the original
  assert.equal(t.remove(1, "/a", "tok"), first);
  assert.equal(t.remove(1, "/a", "tok"), undefined);
  assert.equal(t.add(w(1, "/a", "tok")), true);
});

Deno.test("tokens/paths that look like key separators do not collide", () => {
  const t = new WatchTrie();
  assert.equal(t.add(w(1, "/a", "2\u0000x")), true);
  assert.equal(t.add(w(12, "/a", "x")), true);
  assert.equal(t.add(w(1, "/a", "x\u0000/b")), true);
  assert.equal(t.add(w(1, "/a/x", "/b")), true);
  assert.equal(t.size, 4);
  assert.equal(t.matchChange("/a").length, 3);
});

Deno.test("remove and removeOwner shrink the trie back to the root", () => {
  const t = new WatchTrie();
  assert.equal(t.nodeCount(), 1);
  t.add(w(1, "/a/b/c", "x"));
  t.add(w(1, "/a/b", "y", 0));
  t.add(w(2, "/a/d", "x"));
  t.add(w(2, "@releaseDomain/3", "r"));
  t.add(w(2, "/", "root"));
  assert.equal(t.nodeCount(), 7); // / a b c d + @releaseDomain 3
  assert.equal(t.remove(1, "/a/b", "nope"), undefined);
  assert.equal(t.remove(9, "/a/b", "y"), undefined);
  assert.equal(t.remove(1, "/a/b", "y")?.token, "y");
  assert.equal(t.nodeCount(), 7); // /a/b still has child c
  assert.equal(t.remove(1, "/a/b/c", "x")?.token, "x");
  assert.equal(t.nodeCount(), 5);
  assert.equal(t.countOwner(1), 0);
  assert.deepEqual(t.watchesOf(1), []);
  assert.equal(t.removeOwner(1), 0);
  assert.equal(t.removeOwner(2), 3);
  assert.equal(t.nodeCount(), 1);
  assert.equal(t.size, 0);
  assert.deepEqual(t.matchRemoval("/"), []);
});

Deno.test("forEachWatch / watchesOf list an owner's watches in registration order", () => {
  const t = trieWith(w(1, "/b", "1"), w(2, "/a", "x"), w(1, "/a", "2"), w(1, "@introduceDomain", "3"));
  assert.deepEqual(t.watchesOf(1).map((x) => x.token), ["1", "2", "3"]);
  const seen: string[] = [];
  t.forEachWatch(1, (x) => seen.push(x.path));
  assert.deepEqual(seen, ["/b", "/a", "@introduceDomain"]);
  // watchesOf is a snapshot: safe to remove while iterating it
  for (const x of t.watchesOf(1)) t.remove(x.owner, x.path, x.token);
  assert.equal(t.size, 1);
  t.forEachWatch(7, () => assert.fail("no watches"));
});

Deno.test("2000-component path: add / match / removal / prune without recursion", () => {
  const comps = Array.from({ length: 2000 }, (_, i) => `n${i}`);
  const deep = "/" + comps.join("/");
  const mid = "/" + comps.slice(0, 1000).join("/");
  const t = new WatchTrie();
  t.add(w(1, deep, "deep"));
  t.add(w(1, mid, "mid", 0));
  t.add(w(2, deep + "/x", "deeper"));
  assert.equal(t.nodeCount(), 2002);
  assert.deepEqual(tokens(t.matchChange(deep + "/x/y")), ["deep", "deeper"]);
  assert.deepEqual(tokens(t.matchChange(mid)), ["mid"]);
  const rm = t.matchRemoval("/n0");
  assert.deepEqual(rm.map((m) => m.eventPath).sort(), [mid, deep, deep + "/x"].sort());
  assert.equal(t.removeOwner(1), 2);
  assert.equal(t.nodeCount(), 2002);
  assert.equal(t.remove(2, deep + "/x", "deeper")?.token, "deeper");
  assert.equal(t.nodeCount(), 1);

  // wide-and-deep subtree for the removal walk
  const t2 = new WatchTrie();
  for (let i = 0; i < 1500; i += 10) t2.add(w(i, "/" + comps.slice(0, i + 1).join("/"), "t"));
  assert.equal(t2.matchRemoval("/").length, 150);
  for (let i = 0; i < 1500; i += 10) t2.removeOwner(i);
  assert.equal(t2.nodeCount(), 1);
});

Deno.test("eventPathFor strips relativeBase", () => {
  const rel = w(3, "/local/domain/3/device", "t", undefined, "/local/domain/3/");
  assert.equal(eventPathFor(rel, "/local/domain/3/device/vif/0"), "device/vif/0");
  assert.equal(eventPathFor(rel, "/local/domain/3/device"), "device");
  const abs = w(0, "/local/domain/3/device", "t");
  assert.equal(eventPathFor(abs, "/local/domain/3/device/vif"), "/local/domain/3/device/vif");
  // paths outside the base are left alone
  assert.equal(eventPathFor(rel, "@releaseDomain"), "@releaseDomain");
  assert.equal(eventPathFor(rel, "/local/domain/3/"), "/local/domain/3/");
  // via the removal API
  const t = trieWith(rel);
  const [m] = t.matchRemoval("/local/domain/3");
  assert.equal(eventPathFor(m.watch, m.eventPath), "device");
});

// ---------------------------------------------------------------- properties

/** Straightforward reference implementation of the firing rules. */
function refComponents(p: string): { special: boolean; comps: string[] } {
  if (p.startsWith("@")) return { special: true, comps: p.split("/") };
  return { special: false, comps: p === "/" ? [] : p.slice(1).split("/") };
}

function refIsPrefix(a: string[], b: string[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function refDeliveries(watches: Watch[], path: string, removal: boolean): string[] {
  const p = refComponents(path);
  const out: string[] = [];
  for (const x of watches) {
    const q = refComponents(x.path);
    if (q.special !== p.special) continue;
    if (refIsPrefix(q.comps, p.comps)) {
      const dist = p.comps.length - q.comps.length;
      if (x.depth === undefined || dist <= x.depth) out.push(key(x, path));
    } else if (removal && refIsPrefix(p.comps, q.comps)) {
      out.push(key(x, x.path));
    }
  }
  return out.sort();
}

function key(x: Watch, eventPath: string): string {
  return JSON.stringify([x.owner, x.token, x.path, x.depth ?? null, eventPath]);
}

const plainComp = fc.constantFrom("a", "b", "c", "@releaseDomain");
const plainPath = fc.array(plainComp, { maxLength: 4 }).map((cs) => "/" + cs.join("/"));
const specialPath = fc.tuple(
  fc.constantFrom("@releaseDomain", "@introduceDomain"),
  fc.array(fc.constantFrom("1", "2", "a"), { maxLength: 2 }),
).map(([head, rest]) => [head, ...rest].join("/"));
const anyPath = fc.oneof({ weight: 4, arbitrary: plainPath }, { weight: 1, arbitrary: specialPath });
const watchArb = fc.record({
  owner: fc.integer({ min: 0, max: 2 }),
  path: anyPath,
  token: fc.constantFrom("t1", "t2", "t3"),
  depth: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  relativeBase: fc.constant(null),
}) as fc.Arbitrary<Watch>;
const changeArb = fc.record({ path: anyPath, removal: fc.boolean() });

function idKey(x: { owner: number; path: string; token: string }): string {
  return JSON.stringify([x.owner, x.path, x.token]);
}

Deno.test("property: trie deliveries equal brute-force matcher", () => {
  fc.assert(
    fc.property(
      fc.array(watchArb, { maxLength: 40 }),
      fc.array(changeArb, { maxLength: 20 }),
      (ws, changes) => {
        const t = new WatchTrie();
        const accepted = new Map<string, Watch>();
        for (const x of ws) {
          const expected = !accepted.has(idKey(x));
          assert.equal(t.add(x), expected);
          if (expected) accepted.set(idKey(x), x);
        }
        const model = [...accepted.values()];
        assert.equal(t.size, model.length);
        for (const c of changes) {
          const got = c.removal
            ? t.matchRemoval(c.path).map((m) => key(m.watch, m.eventPath))
            : t.matchChange(c.path).map((x) => key(x, c.path));
          assert.deepEqual(got.sort(), refDeliveries(model, c.path, c.removal));
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: add then remove everything in random order leaves an empty root", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(watchArb, fc.nat(), fc.boolean()), { maxLength: 50 }),
      (items) => {
        const t = new WatchTrie();
        const live = new Map<string, Watch>();
        for (const [x] of items) if (t.add(x)) live.set(idKey(x), x);
        const order = [...items].sort((a, b) => a[1] - b[1]);
        for (const [x, , byOwner] of order) {
          if (byOwner) {
            const n = [...live.values()].filter((y) => y.owner === x.owner).length;
            assert.equal(t.countOwner(x.owner), n);
            assert.equal(t.removeOwner(x.owner), n);
            for (const [k, y] of live) if (y.owner === x.owner) live.delete(k);
          } else {
            const got = t.remove(x.owner, x.path, x.token);
            assert.equal(got, live.get(idKey(x)));
            live.delete(idKey(x));
          }
          assert.equal(t.size, live.size);
        }
        assert.equal(t.size, 0);
        assert.equal(t.nodeCount(), 1);
        for (let o = 0; o <= 2; o++) assert.equal(t.countOwner(o), 0);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: interleaved add/remove keeps matches equal to the model", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), w: watchArb }),
    fc.record({ kind: fc.constant("remove" as const), w: watchArb }),
    fc.record({ kind: fc.constant("removeOwner" as const), owner: fc.integer({ min: 0, max: 2 }) }),
    fc.record({ kind: fc.constant("match" as const), c: changeArb }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const t = new WatchTrie();
      const live = new Map<string, Watch>();
      for (const o of ops) {
        switch (o.kind) {
          case "add": {
            const ok = !live.has(idKey(o.w));
            assert.equal(t.add(o.w), ok);
            if (ok) live.set(idKey(o.w), o.w);
            break;
          }
          case "remove":
            assert.equal(t.remove(o.w.owner, o.w.path, o.w.token), live.get(idKey(o.w)));
            live.delete(idKey(o.w));
            break;
          case "removeOwner": {
            let n = 0;
            for (const [k, y] of live) {
              if (y.owner === o.owner) {
                live.delete(k);
                n++;
              }
            }
            assert.equal(t.removeOwner(o.owner), n);
            break;
          }
          case "match": {
            const got = o.c.removal
              ? t.matchRemoval(o.c.path).map((m) => key(m.watch, m.eventPath))
              : t.matchChange(o.c.path).map((x) => key(x, o.c.path));
            assert.deepEqual(got.sort(), refDeliveries([...live.values()], o.c.path, o.c.removal));
            break;
          }
        }
        assert.equal(t.size, live.size);
        for (let owner = 0; owner <= 2; owner++) {
          assert.deepEqual(
            t.watchesOf(owner).map(idKey).sort(),
            [...live.values()].filter((y) => y.owner === owner).map(idKey).sort(),
          );
        }
      }
      if (live.size === 0) assert.equal(t.nodeCount(), 1);
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------- has / domain events

Deno.test("has reports exactly the registered (owner, path, token)", () => {
  const t = trieWith(w(1, "/a", "x"), w(2, "@releaseDomain", "x"));
  assert.equal(t.has(1, "/a", "x"), true);
  assert.equal(t.has(1, "/a", "y"), false);
  assert.equal(t.has(2, "/a", "x"), false);
  assert.equal(t.has(2, "@releaseDomain", "x"), true);
  t.remove(1, "/a", "x");
  assert.equal(t.has(1, "/a", "x"), false);
});

Deno.test("matchSpecial: plain, depth >= 1 and per-domain watches (Xen WATCHDEPTH rules)", () => {
  const t = trieWith(
    w(1, "@releaseDomain", "plain"),
    w(1, "@releaseDomain", "d0", 0),
    w(1, "@releaseDomain", "d1", 1),
    w(1, "@releaseDomain", "d2", 2),
    w(1, "@releaseDomain/7", "seven"),
    w(1, "@releaseDomain/7", "seven0", 0),
    w(1, "@releaseDomain/8", "eight"),
    w(1, "@releaseDomain/7/x", "deeper"),
    w(1, "@introduceDomain", "intro"),
    w(1, "/@releaseDomain", "plainpath"),
    w(1, "/", "root"),
  );
  const ev = (ms: { watch: Watch; eventPath: string }[]) =>
    ms.map((m) => `${m.watch.token}:${m.eventPath}`).sort();
  assert.deepEqual(ev(t.matchSpecial("@releaseDomain", 7, true, true)), [
    "d1:@releaseDomain/7",
    "d2:@releaseDomain/7",
    "plain:@releaseDomain",
    "seven0:@releaseDomain/7",
    "seven:@releaseDomain/7",
  ]);
  assert.deepEqual(ev(t.matchSpecial("@releaseDomain", 7, true, false)), ["plain:@releaseDomain"]);
  assert.deepEqual(ev(t.matchSpecial("@releaseDomain", 8, false, true)), [
    "d1:@releaseDomain/8",
    "d2:@releaseDomain/8",
    "eight:@releaseDomain/8",
  ]);
  assert.deepEqual(ev(t.matchSpecial("@introduceDomain", 7, true, true)), ["intro:@introduceDomain"]);
  assert.deepEqual(ev(t.matchSpecial("@nothing", 7, true, true)), []);
});

/** Brute-force reference for matchSpecial. */
function refSpecial(ws: Watch[], base: string, domid: number, plain: boolean, perDomain: boolean): string[] {
  const dom = `${base}/${domid}`;
  const out: string[] = [];
  for (const x of ws) {
    if (plain && x.path === base && x.depth === undefined) out.push(key(x, base));
    if (perDomain && x.path === base && x.depth !== undefined && x.depth >= 1) out.push(key(x, dom));
    if (perDomain && x.path === dom) out.push(key(x, dom));
  }
  return out.sort();
}

Deno.test("property: matchSpecial equals the brute-force rule", () => {
  fc.assert(
    fc.property(
      fc.array(watchArb, { maxLength: 40 }),
      fc.constantFrom("@releaseDomain", "@introduceDomain"),
      fc.constantFrom(1, 2, 3),
      fc.boolean(),
      fc.boolean(),
      (ws, base, domid, plain, perDomain) => {
        const t = new WatchTrie();
        const live = new Map<string, Watch>();
        for (const x of ws) if (t.add(x)) live.set(idKey(x), x);
        const got = t.matchSpecial(base, domid, plain, perDomain).map((m) => key(m.watch, m.eventPath));
        assert.deepEqual(got.sort(), refSpecial([...live.values()], base, domid, plain, perDomain));
      },
    ),
    { numRuns: 300 },
  );
});
