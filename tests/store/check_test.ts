// checkStore must accept every tree the store builds and reject the corruptions it exists to catch.
import { Database } from "../../src/store/database.ts";
import { checkStore } from "../../src/store/check.ts";
import { Perms } from "../../src/store/perms.ts";
import { Node } from "../../src/store/tree.ts";
import { hamtSet } from "../../src/store/hamt.ts";
import { deepEqual, ok } from "../helpers/assert.ts";

const keep = (p: Perms) => p;

Deno.test("checkStore: a store built by writes and removals is sound", () => {
  const db = new Database();
  for (let i = 0; i < 3000; i++) db.write(`/a/b${i % 400}/c${i}`, `v${i}`, keep, 0);
  for (let i = 0; i < 3000; i += 3) db.remove(`/a/b${i % 400}/c${i}`, 0);
  deepEqual(checkStore(db.root, db.generation), []);
});

Deno.test("checkStore: reports a generation above the counter", () => {
  const db = new Database();
  db.write("/x", "1", keep, 0);
  const problems = checkStore(db.root, 0);
  ok(problems.some((p) => p.includes("generation")), problems.join("; "));
});

Deno.test("checkStore: reports a bad child name and a non-byte value", () => {
  const perms = Perms.of(0, 0);
  const bad = new Node("\u0100", perms, null, 0);
  const root = new Node("", perms, hamtSet(hamtSet(null, "a/b", bad), "ok", new Node("", perms, null, 0)), 0);
  const problems = checkStore(root, 10);
  ok(problems.some((p) => p.includes('bad child name "a/b"')), problems.join("; "));
  ok(problems.some((p) => p.includes("non-byte")), problems.join("; "));
});

Deno.test("checkStore: reports one node object reachable at two paths", () => {
  const perms = Perms.of(0, 0);
  const shared = new Node("", perms, null, 0);
  const root = new Node("", perms, hamtSet(hamtSet(null, "a", shared), "b", shared), 0);
  ok(checkStore(root, 0).some((p) => p.includes("shared")));
});
