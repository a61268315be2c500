// Model-based property test of the store: Database + tree ops against a trivial reference model
// (Map path → value), over random sequences of write/mkdir/rm/read/directory.
import assert from "../helpers/assert.ts";
import fc from "fast-check";
import { Database } from "../../src/store/database.ts";
import { components, parentOf } from "../../src/store/path.ts";
import { lookup, type Node, sameNode, walk } from "../../src/store/tree.ts";

type Op =
  | { kind: "write"; path: string; value: string }
  | { kind: "mkdir"; path: string }
  | { kind: "rm"; path: string }
  | { kind: "read"; path: string }
  | { kind: "directory"; path: string };

/** The reference: every existing path (including "/") and its value. */
class Model {
  readonly nodes = new Map<string, string>([["/", ""], ["/tool", ""], ["/tool/xenstored", ""]]);

  private ensureParents(path: string): void {
    for (let p = parentOf(path); !this.nodes.has(p); p = parentOf(p)) this.nodes.set(p, "");
  }

  write(path: string, value: string): void {
    this.ensureParents(path);
    this.nodes.set(path, value);
  }

  mkdir(path: string): void {
    if (this.nodes.has(path)) return;
    this.ensureParents(path);
    this.nodes.set(path, "");
  }

  rm(path: string): void {
    for (const p of [...this.nodes.keys()]) if (p === path || p.startsWith(path + "/")) this.nodes.delete(p);
  }

  children(path: string): string[] {
    const prefix = path === "/" ? "/" : path + "/";
    return [...this.nodes.keys()]
      .filter((p) => p !== "/" && p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
      .map((p) => p.slice(prefix.length))
      .sort();
  }
}

// Few names and shallow depth, so paths overlap: writes under removed subtrees, rm of parents, etc.
const NAME = fc.constantFrom("a", "b", "c", "tool", "0", "A-_", "xenstored");
const PATH = fc.array(NAME, { minLength: 1, maxLength: 4 }).map((cs) => "/" + cs.join("/"));
const ANY_PATH = fc.oneof({ weight: 9, arbitrary: PATH }, { weight: 1, arbitrary: fc.constant("/") });
// Latin-1 values incl. NUL and high bytes.
const VALUE = fc.oneof(
  fc.constantFrom("", "v", "0", "\0", "\xff\x80\0x"),
  fc.string({ maxLength: 8, unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) }),
);
const OP: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("write" as const), path: PATH, value: VALUE }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("mkdir" as const), path: PATH }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("rm" as const), path: PATH }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("read" as const), path: ANY_PATH }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("directory" as const), path: ANY_PATH }) },
);

function allPaths(root: Node): Map<string, Node> {
  const m = new Map<string, Node>();
  walk(root, "/", (p, n) => m.set(p, n));
  return m;
}

/** Apply `op` to the database the way the dispatcher does (MKDIR of an existing node is a no-op). */
function apply(db: Database, op: Op): void {
  switch (op.kind) {
    case "write":
      db.write(op.path, op.value, (p) => p, 0);
      break;
    case "mkdir":
      if (lookup(db.root, components(op.path)) === undefined) db.write(op.path, null, (p) => p, 0);
      break;
    case "rm":
      db.remove(op.path, 0);
      break;
    default:
      break;
  }
}

Deno.test("property: the store agrees with a Map model after every step", () => {
  fc.assert(
    fc.property(fc.array(OP, { maxLength: 60, size: "max" }), (ops) => {
      const db = new Database();
      const model = new Model();
      for (const [i, op] of ops.entries()) {
        const where = `step ${i} ${JSON.stringify(op)}`;
        const before = allPaths(db.root);
        const beforeChildren = new Map([...before.keys()].map((p) => [p, model.children(p).join("/")]));
        const rootBefore = db.root;
        apply(db, op);
        if (op.kind === "read" || op.kind === "directory") {
          assert.equal(db.root, rootBefore, `${where}: root changed`);
        }
        if (op.kind === "write") model.write(op.path, op.value);
        if (op.kind === "mkdir") model.mkdir(op.path);
        if (op.kind === "rm") model.rm(op.path);
        const node = lookup(db.root, components(op.path));
        if (op.kind === "read") assert.equal(node?.value, model.nodes.get(op.path), `${where}: read`);
        if (op.kind === "directory") {
          assert.deepEqual(
            node?.childNames(),
            model.nodes.has(op.path) ? model.children(op.path) : undefined,
            `${where}: directory`,
          );
        }
        // Existence, values and sorted child lists of every node.
        const after = allPaths(db.root);
        assert.deepEqual(
          [...after.keys()].sort(),
          [...model.nodes.keys()].sort(),
          `${where}: existing paths`,
        );
        for (const [p, n] of after) {
          assert.equal(n.value, model.nodes.get(p), `${where}: value of ${p}`);
          assert.deepEqual(n.childNames(), model.children(p), `${where}: children of ${p}`);
        }
        // Generation rule: a surviving node's gen changes iff it was written or its child set changed.
        for (const [p, n] of after) {
          const old = before.get(p);
          if (old === undefined) continue;
          const written = op.kind === "write" && op.path === p;
          const childSetChanged = beforeChildren.get(p) !== model.children(p).join("/");
          assert.equal(n.gen !== old.gen, written || childSetChanged, `${where}: generation of ${p}`);
          if (n.gen !== old.gen) assert.ok(n.gen > old.gen, `${where}: generations only grow (${p})`);
          // Untouched subtrees are shared, not copied.
          if (!op.path.startsWith(p === "/" ? "/" : p + "/") && op.path !== p) {
            assert.ok(sameNode(n, old), `${where}: ${p} is off the changed path and must be shared`);
          }
        }
      }
    }),
    { numRuns: 200 },
  );
});
