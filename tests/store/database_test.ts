// The live database and its single commit point: src/store/database.ts.
import assert from "../helpers/assert.ts";
import { type Commit, Database } from "../../src/store/database.ts";
import { Perms } from "../../src/store/perms.ts";
import { lookup } from "../../src/store/tree.ts";

Deno.test("initial tree: / and /tool/xenstored owned by dom0, nothing else; special paths dom0-only", () => {
  const db = new Database();
  assert.deepEqual(db.root.childNames(), ["tool"]);
  assert.deepEqual(lookup(db.root, ["tool"])!.childNames(), ["xenstored"]);
  assert.equal(db.root.perms.text, "n0\0");
  assert.equal(lookup(db.root, ["tool", "xenstored"])!.perms.text, "n0\0");
  assert.deepEqual([...db.specialPerms.keys()].sort(), ["@introduceDomain", "@releaseDomain"]);
  for (const p of db.specialPerms.values()) assert.equal(p.text, "n0\0");
});

Deno.test("write/remove/setPerms commit once each, with the change, and listeners see before/after", () => {
  const db = new Database();
  const seen: Commit[] = [];
  db.onCommit((c) => seen.push(c));
  const r0 = db.root;
  const ch = db.write("/a/b", "v", (p) => p.withOwner(3), 3);
  assert.deepEqual(ch, {
    kind: "write",
    path: "/a/b",
    value: "v",
    created: ["/a", "/a/b"],
    createdPerms: Perms.of(3, 0),
  });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].before, r0);
  assert.equal(seen[0].after, db.root);
  assert.equal(seen[0].domid, 3);
  assert.deepEqual(seen[0].changes, [ch]);

  assert.equal(db.remove("/a/zz", 0), null, "removing a missing node is no change");
  assert.equal(seen.length, 1, "and no commit");

  const old = lookup(db.root, ["a", "b"])!.perms;
  db.setPerms("/a/b", Perms.of(4, 1), old, 0);
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[1].changes, [{ kind: "perms", path: "/a/b", perms: Perms.of(4, 1), old }]);

  const before = db.root;
  const rm = db.remove("/a", 0);
  assert.ok(rm !== null && rm.kind === "rm");
  assert.equal(rm.removed, lookup(before, ["a"]));
  assert.equal(seen.length, 3);
  assert.equal(lookup(db.root, ["a"]), undefined);
});

Deno.test("generation counter only grows; commit from a stale base is refused", () => {
  const db = new Database();
  const g0 = db.generation;
  db.write("/x", "1", (p) => p, 0);
  assert.ok(db.generation > g0);
  const g1 = db.generation;
  assert.equal(db.nextGen(), g1 + 1);
  const stale = db.root;
  db.write("/y", "1", (p) => p, 0);
  assert.throws(() => db.commit({ before: stale, after: stale, changes: [], domid: 0 }), Error);
});
