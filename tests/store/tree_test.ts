// The immutable node tree: src/store/tree.ts (write/remove/setPerms, generations, sharing, depth).
import assert from "../helpers/assert.ts";
import { Perms } from "../../src/store/perms.ts";
import {
  countNodes,
  existingChain,
  lookup,
  Node,
  removeNode,
  sameNode,
  setPerms,
  walk,
  writeValue,
} from "../../src/store/tree.ts";
import { components } from "../../src/store/path.ts";

const P0 = Perms.of(0, 0);
const P5 = Perms.of(5, 1);
const same = (p: Perms) => p;

function emptyRoot(): Node {
  return new Node("", P0, null, 0);
}

/** Write `path` with `value` at generation `gen`; returns the new root. */
function w(root: Node, path: string, value: string | null, gen: number, perms = same): Node {
  return writeValue(root, components(path), value, perms, gen).root;
}

function at(root: Node, path: string): Node {
  const n = lookup(root, components(path));
  assert.ok(n !== undefined, `${path} should exist`);
  return n;
}

Deno.test("write creates missing parents with empty values, shallowest first", () => {
  const r0 = emptyRoot();
  const res = writeValue(r0, ["a", "b", "c"], "v", (pp) => pp.withOwner(5), 1);
  assert.deepEqual(res.created, ["/a", "/a/b", "/a/b/c"]);
  assert.equal(res.createdPerms?.owner, 5);
  assert.equal(at(res.root, "/a/b/c").value, "v");
  assert.equal(at(res.root, "/a/b").value, "");
  assert.equal(at(res.root, "/a").value, "");
  for (const p of ["/a", "/a/b", "/a/b/c"]) assert.equal(at(res.root, p).perms.owner, 5, `owner of ${p}`);
  assert.equal(lookup(r0, ["a"]), undefined, "the old root is untouched");
  assert.deepEqual(res.root.childNames(), ["a"]);
  // Writing below an existing prefix creates only the missing tail.
  const res2 = writeValue(res.root, ["a", "x", "y"], "w", same, 2);
  assert.deepEqual(res2.created, ["/a/x", "/a/x/y"]);
  // Overwriting an existing node creates nothing and keeps its perms.
  const res3 = writeValue(res2.root, ["a", "b", "c"], "v2", () => P5, 3);
  assert.deepEqual(res3.created, []);
  assert.equal(res3.createdPerms, null);
  assert.equal(at(res3.root, "/a/b/c").perms.owner, 5);
  assert.equal(at(res3.root, "/a/b/c").value, "v2");
});

Deno.test("values are byte strings: NULs and high bytes survive", () => {
  const v = "\0\x01\x7f\x80\xff\0";
  assert.equal(at(w(emptyRoot(), "/bin", v, 1), "/bin").value, v);
});

Deno.test("MKDIR (value null): creates with empty value, leaves an existing node (and root) untouched", () => {
  const r1 = w(emptyRoot(), "/a", "keep", 1);
  const r2 = w(r1, "/a", null, 2);
  assert.equal(r2, r1, "MKDIR of an existing node returns the same root");
  const r3 = w(r1, "/a/d", null, 3);
  assert.equal(at(r3, "/a/d").value, "");
  assert.equal(at(r3, "/a").value, "keep");
});

Deno.test("generations: a node's own content or child set, not its descendants'", () => {
  let r = w(emptyRoot(), "/a/b", "1", 1); // creates /a, /a/b at gen 1
  assert.equal(at(r, "/a").gen, 1);
  assert.equal(at(r, "/a/b").gen, 1);
  assert.equal(r.gen, 1, "root gained child a");

  r = w(r, "/a/b/c", "x", 2); // /a/b gains child c
  assert.equal(at(r, "/a/b").gen, 2, "parent gen bumps when a child is added");
  assert.equal(at(r, "/a/b/c").gen, 2);
  assert.equal(at(r, "/a").gen, 1, "grandparent unchanged when a grandchild is added");
  assert.equal(r.gen, 1);

  r = w(r, "/a/b/c", "y", 3); // value change of c only
  assert.equal(at(r, "/a/b/c").gen, 3, "node's gen bumps when its value changes");
  assert.equal(at(r, "/a/b").gen, 2, "parent unchanged when a child's value changes");
  assert.equal(at(r, "/a").gen, 1);

  r = w(r, "/a/b/d/e", "z", 4); // /a/b gains d; /a unchanged
  assert.equal(at(r, "/a/b").gen, 4);
  assert.equal(at(r, "/a").gen, 1);

  r = removeNode(r, ["a", "b", "d", "e"], 5).root; // /a/b/d loses e
  assert.equal(at(r, "/a/b/d").gen, 5, "parent gen bumps when a child is removed");
  assert.equal(at(r, "/a/b").gen, 4, "grandparent unchanged when a grandchild is removed");

  r = removeNode(r, ["a", "b", "d"], 6).root;
  assert.equal(at(r, "/a/b").gen, 6);
  assert.equal(at(r, "/a").gen, 1);

  const r7 = setPerms(r, ["a", "b", "c"], P5, 7);
  assert.ok(r7 !== null);
  assert.equal(at(r7, "/a/b/c").gen, 7, "setPerms bumps the node's gen");
  assert.equal(at(r7, "/a/b/c").perms, P5);
  assert.equal(at(r7, "/a/b").gen, 6, "setPerms does not bump the parent");
  assert.equal(at(r7, "/a/b/c").value, "y");
});

Deno.test("structural sharing: untouched subtrees are the same nodes after a write", () => {
  let r = emptyRoot();
  for (const p of ["/x/1", "/x/2", "/y/1/deep", "/z"]) r = w(r, p, p, 1);
  const before = { x: at(r, "/x"), y: at(r, "/y"), z: at(r, "/z"), x1: at(r, "/x/1"), x2: at(r, "/x/2") };
  const r2 = w(r, "/x/1", "changed", 2);
  assert.ok(sameNode(at(r2, "/y"), before.y));
  assert.ok(sameNode(at(r2, "/z"), before.z));
  assert.ok(sameNode(at(r2, "/x/2"), before.x2));
  assert.ok(!sameNode(at(r2, "/x"), before.x), "the path to the change is copied");
  assert.ok(!sameNode(at(r2, "/x/1"), before.x1));
  assert.equal(at(r, "/x/1").value, "/x/1", "old version unchanged");
  const r3 = removeNode(r2, ["y", "1"], 3).root;
  assert.ok(sameNode(at(r3, "/x"), at(r2, "/x")));
  assert.ok(sameNode(at(r3, "/z"), before.z));
  const r4 = setPerms(r3, ["z"], P5, 4)!;
  assert.ok(sameNode(at(r4, "/x"), at(r3, "/x")));
  assert.ok(sameNode(at(r4, "/y"), at(r3, "/y")));
});

Deno.test("removeNode: subtree goes, missing node is a no-op, root is refused", () => {
  let r = emptyRoot();
  for (const p of ["/a/b/c", "/a/b/d", "/a/e"]) r = w(r, p, "v", 1);
  const res = removeNode(r, ["a", "b"], 2);
  assert.ok(res.removed !== null);
  assert.equal(countNodes(res.removed), 3);
  assert.equal(lookup(res.root, ["a", "b", "c"]), undefined);
  assert.equal(lookup(res.root, ["a", "b"]), undefined);
  assert.deepEqual(at(res.root, "/a").childNames(), ["e"]);
  const miss = removeNode(res.root, ["a", "nope", "x"], 3);
  assert.equal(miss.removed, null);
  assert.equal(miss.root, res.root);
  assert.throws(() => removeNode(r, [], 4));
  assert.equal(setPerms(r, ["nope"], P5, 5), null);
});

Deno.test("existingChain, walk, countNodes, childNames sorted", () => {
  let r = emptyRoot();
  for (const name of ["b", "a", "C", "_", "10", "9", "-"]) r = w(r, `/d/${name}`, name, 1);
  assert.deepEqual(at(r, "/d").childNames(), ["-", "10", "9", "C", "_", "a", "b"]);
  const chain = existingChain(r, ["d", "a", "x", "y"]);
  assert.equal(chain.length, 3);
  assert.equal(chain[0], r);
  assert.equal(chain[2].value, "a");
  const seen: string[] = [];
  walk(r, "/", (p, n) => {
    seen.push(p);
    assert.ok(sameNode(lookup(r, components(p))!, n));
  });
  assert.deepEqual(seen.sort(), ["/", "/d", "/d/-", "/d/10", "/d/9", "/d/C", "/d/_", "/d/a", "/d/b"]);
  assert.equal(countNodes(r), 9);
});

Deno.test("deep chains (3000 levels): created, walked, modified and removed without recursion", () => {
  const DEPTH = 3000;
  const comps = Array.from({ length: DEPTH }, (_, i) => `n${i % 10}`);
  const res = writeValue(emptyRoot(), comps, "bottom", same, 1);
  assert.equal(res.created.length, DEPTH);
  let r = res.root;
  assert.equal(lookup(r, comps)?.value, "bottom");
  assert.equal(countNodes(r), DEPTH + 1);
  let visited = 0;
  let deepest = "";
  walk(r, "/", (p) => {
    visited++;
    if (p.length > deepest.length) deepest = p;
  });
  assert.equal(visited, DEPTH + 1);
  assert.equal(deepest, "/" + comps.join("/"));
  // Change the bottom, then grow the chain by one level, one step at a time near the bottom.
  r = writeValue(r, comps, "changed", same, 2).root;
  assert.equal(lookup(r, comps)?.value, "changed");
  r = writeValue(r, [...comps, "extra"], "x", same, 3).root;
  assert.equal(lookup(r, comps)?.gen, 3);
  // Remove from the bottom upwards for a while, then the whole rest at once.
  for (let d = DEPTH + 1; d > DEPTH - 50; d--) {
    const comps2 = [...comps, "extra"].slice(0, d);
    const rr = removeNode(r, comps2, 10 + d);
    assert.ok(rr.removed !== null, `remove at depth ${d}`);
    r = rr.root;
  }
  assert.equal(countNodes(r), DEPTH - 50 + 1);
  const all = removeNode(r, [comps[0]], 99999);
  assert.equal(countNodes(all.removed!), DEPTH - 50);
  assert.equal(countNodes(all.root), 1);
});
