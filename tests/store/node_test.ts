// The children container (src/store/node.ts): flat sorted entries up to FLAT_MAX, a hash trie beyond,
// back to flat at FLAT_MIN; leaves inline. Checked against a Map model across both boundaries.
import assert from "../helpers/assert.ts";
import fc from "fast-check";
import {
  type Children,
  childrenCheck,
  childrenFrom,
  FLAT_MAX,
  FLAT_MIN,
  forEachChild,
  Node,
  sameNode,
  withChild,
  withoutChild,
} from "../../src/store/node.ts";
import { Perms } from "../../src/store/perms.ts";

const P = Perms.of(0, 0);
const leaf = (v: string, gen = 1) => new Node(v, P, null, gen);
const dirNode = (name: string) => new Node("", P, withChild(null, "x", leaf(name)), 2);

function names(c: Children): string[] {
  const out: string[] = [];
  forEachChild(c, (n) => out.push(n));
  return out;
}

const isFlat = (c: Children) => Array.isArray(c);

Deno.test("flat up to FLAT_MAX children, a trie beyond, flat again at FLAT_MIN", () => {
  let c: Children = null;
  for (let i = 0; i < FLAT_MAX; i++) c = withChild(c, `k${String(i).padStart(4, "0")}`, leaf(`v${i}`));
  assert.ok(isFlat(c), "FLAT_MAX children stay flat");
  assert.deepEqual(childrenCheck(c), []);
  c = withChild(c, "zzz", leaf("last"));
  assert.ok(!isFlat(c), "one more makes a trie");
  assert.deepEqual(childrenCheck(c), []);
  assert.equal(new Node("", P, c, 0).childCount, FLAT_MAX + 1);
  // Shrinking: still a trie above FLAT_MIN, flat at FLAT_MIN.
  c = withoutChild(c, "zzz");
  for (let i = FLAT_MAX - 1; i >= FLAT_MIN + 1; i--) c = withoutChild(c, `k${String(i).padStart(4, "0")}`);
  assert.ok(!isFlat(c), `${FLAT_MIN + 1} children: still a trie (hysteresis)`);
  c = withoutChild(c, `k${String(FLAT_MIN).padStart(4, "0")}`);
  assert.ok(isFlat(c), `${FLAT_MIN} children: flat again`);
  assert.deepEqual(childrenCheck(c), []);
  assert.deepEqual(names(c), Array.from({ length: FLAT_MIN }, (_, i) => `k${String(i).padStart(4, "0")}`));
});

Deno.test("leaves are inline, directories are objects; a leaf's identity is its content", () => {
  const d = dirNode("inner");
  let c = withChild(null, "b", leaf("B", 5));
  c = withChild(c, "a", d);
  const n = new Node("", P, c, 0);
  assert.equal(n.child("a"), d, "a directory is stored as itself");
  const b1 = n.child("b")!;
  const b2 = n.child("b")!;
  assert.notEqual(b1, b2, "a leaf is handed out fresh");
  assert.ok(sameNode(b1, b2));
  assert.equal(b1.value, "B");
  assert.equal(b1.gen, 5);
  assert.equal(b1.perms, P);
  assert.ok(!sameNode(b1, leaf("B", 6)), "another generation is another node");
  assert.deepEqual(n.childNames(), ["a", "b"]);
  assert.equal(n.child("c"), undefined);
  // A directory that loses its last child becomes inline.
  const emptied = new Node(d.value, d.perms, withoutChild(d.children, "x"), 3);
  const c2 = withChild(c, "a", emptied);
  assert.deepEqual(childrenCheck(c2), []);
  assert.equal(new Node("", P, c2, 0).child("a")!.children, null);
});

Deno.test("childrenCheck finds broken flat containers", () => {
  const good = withChild(withChild(null, "a", leaf("1")), "b", leaf("2")) as unknown[];
  assert.deepEqual(childrenCheck(good), []);
  const swapped = [...good.slice(4), ...good.slice(0, 4)];
  assert.ok(childrenCheck(swapped).some((p) => p.includes("out of order")));
  const boxedLeaf = [...good];
  boxedLeaf[1] = leaf("1");
  assert.ok(childrenCheck(boxedLeaf).some((p) => p.includes("not inline")));
  assert.ok(childrenCheck(good.slice(0, 3)).some((p) => p.includes("slots")));
  const noGen = [...good];
  noGen[3] = "x";
  assert.ok(childrenCheck(noGen).some((p) => p.includes("generation")));
});

Deno.test("childrenFrom builds the same container as one-by-one inserts", () => {
  for (const n of [0, 1, 7, FLAT_MAX, FLAT_MAX + 1, 300]) {
    const entries: Array<[string, Node]> = [];
    for (let i = 0; i < n; i++) {
      entries.push([`n${(i * 7919) % 1000}x${i}`, i % 5 === 0 ? dirNode(`d${i}`) : leaf(`v${i}`, i)]);
    }
    const built = childrenFrom(entries);
    assert.deepEqual(childrenCheck(built), [], `n=${n}`);
    const parent = new Node("", P, built, 0);
    assert.equal(parent.childCount, n);
    for (const [name, node] of entries) assert.ok(sameNode(parent.child(name)!, node), `${name} (n=${n})`);
    assert.deepEqual(parent.childNames(), entries.map((e) => e[0]).sort());
  }
});

Deno.test("property: any sequence of sets and removals agrees with a Map, across both forms", () => {
  // Few distinct names, many operations: containers cross FLAT_MAX and FLAT_MIN repeatedly.
  const name = fc.integer({ min: 0, max: FLAT_MAX + 40 }).map((i) => `c${i}`);
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("set" as const),
      name,
      value: fc.string({ maxLength: 3 }),
      dir: fc.boolean(),
    }),
    fc.record({ kind: fc.constant("rm" as const), name }),
    fc.record({ kind: fc.constant("fill" as const), from: fc.integer({ min: 0, max: 60 }) }),
    fc.record({ kind: fc.constant("drain" as const), from: fc.integer({ min: 0, max: 60 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      let c: Children = null;
      const model = new Map<string, Node>();
      const set = (n: string, node: Node) => {
        c = withChild(c, n, node);
        model.set(n, node);
      };
      const rm = (n: string) => {
        c = withoutChild(c, n);
        model.delete(n);
      };
      let gen = 1;
      for (const o of ops) {
        if (o.kind === "set") set(o.name, o.dir ? dirNode(o.value) : leaf(o.value, gen++));
        else if (o.kind === "rm") rm(o.name);
        else if (o.kind === "fill") {
          for (let i = o.from; i < o.from + 80; i++) set(`c${i}`, leaf("f", gen++));
        } else for (let i = o.from; i < o.from + 80; i++) rm(`c${i}`);
        assert.deepEqual(childrenCheck(c), []);
        const parent = new Node("", P, c, 0);
        assert.equal(parent.childCount, model.size);
        assert.deepEqual(parent.childNames(), [...model.keys()].sort());
        // The quota accounting's child-name bytes, read without materialising the children.
        assert.equal(parent.childNameBytes(), [...model.keys()].reduce((n, k) => n + k.length + 1, 0));
        for (const [n, node] of model) assert.ok(sameNode(parent.child(n)!, node), n);
        if (model.size === 0) assert.equal(c, null);
      }
    }),
    { numRuns: 150 },
  );
});
