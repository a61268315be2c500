/**
 * One test per example in docs/transactions.md (same numbering), driving the Core directly. "other" is
 * a second dom0 connection making plain (non-transactional) requests unless said otherwise.
 */
import assert from "../helpers/assert.ts";
import { guestSetup, setup } from "./harness.ts";

// ---- Conflicts: the commit fails with EAGAIN ----

Deno.test("C1 a value read changed", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  assert.equal(a.tryRead("/a", t), "1");
  a.tryWrite("/b", "x", t);
  o.tryWrite("/a", "2");
  assert.equal(a.commit(t), "EAGAIN");
  assert.equal(o.tryRead("/b"), "E:ENOENT", "nothing of a failed commit is applied");
});

Deno.test("C2 a node read as ENOENT was created", () => {
  const { a, o } = setup();
  const t = a.startTx();
  assert.equal(a.tryRead("/a", t), "E:ENOENT");
  a.tryWrite("/b", "x", t);
  o.tryWrite("/a", "1");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C3 a listed child list gained a child", () => {
  const { a, o } = setup();
  o.tryWrite("/d/x", "1");
  const t = a.startTx();
  assert.equal(a.tryDir("/d", t), "x");
  a.tryWrite("/b", "x", t);
  o.tryWrite("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C4 a listed child list lost a child (DIRECTORY_PART)", () => {
  const { a, o } = setup();
  o.tryWrite("/d/x", "1");
  o.tryWrite("/d/y", "1");
  const t = a.startTx();
  assert.equal(a.tryDirPart("/d", t), "x,y");
  a.tryWrite("/b", "x", t);
  o.tryRm("/d/y");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C5 permissions read with GET_PERMS changed", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  assert.equal(a.tryGetPerms("/a", t), "n0");
  a.tryWrite("/b", "x", t);
  o.trySetPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C6 a node read was removed", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryRead("/a", t);
  a.tryWrite("/b", "x", t);
  o.tryRm("/a");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C7 DIRECTORY of a node the transaction created, sibling created meanwhile", () => {
  const { a, o } = setup();
  const t = a.startTx();
  a.tryWrite("/d/x", "1", t);
  assert.equal(a.tryDir("/d", t), "x");
  o.tryWrite("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C8 READ of an ancestor the transaction created implicitly, created with a value meanwhile", () => {
  const { a, o } = setup();
  const t = a.startTx();
  a.tryWrite("/d/x", "1", t);
  assert.equal(a.tryRead("/d", t), "");
  o.tryWrite("/d", "v");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C9 ENOENT below a node the transaction created, created meanwhile", () => {
  const { a, o } = setup();
  const t = a.startTx();
  a.tryWrite("/d", "1", t);
  assert.equal(a.tryRead("/d/e", t), "E:ENOENT");
  o.tryWrite("/d/e", "v");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C10 permissions a re-created node inherited, the parent's changed meanwhile", () => {
  const { a, o } = setup();
  o.tryWrite("/p/a", "1");
  const t = a.startTx();
  assert.equal(a.tryGetPerms("/p/a", t), "n0");
  a.tryRm("/p/a", t);
  a.tryWrite("/p/a", "v", t);
  assert.equal(a.tryGetPerms("/p/a", t), "n0");
  o.trySetPerms("/p", "n0,r5");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C11 DIRECTORY after creating a child of an existing node, sibling created meanwhile", () => {
  const { a, o } = setup();
  o.tryMkdir("/d");
  const t = a.startTx();
  a.tryWrite("/d/x", "1", t);
  assert.equal(a.tryDir("/d", t), "x");
  o.tryWrite("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C12 RM whose parent was missing (ENOENT), parent created meanwhile", () => {
  const { a, o } = setup();
  const t = a.startTx();
  assert.equal(a.tryRm("/a/b", t), "E:ENOENT");
  a.tryWrite("/z", "1", t);
  o.tryWrite("/a", "1");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C13 guest: a read it was allowed was revoked", () => {
  const { g, o } = guestSetup();
  o.tryWrite("/pub", "1");
  o.trySetPerms("/pub", "r0");
  const t = g.startTx();
  assert.equal(g.tryRead("/pub", t), "1");
  g.tryWrite("/g/x", "1", t);
  o.trySetPerms("/pub", "n0");
  assert.equal(g.commit(t), "EAGAIN");
});

Deno.test("C14 guest: a blind write it was allowed was revoked", () => {
  const { g, o } = guestSetup();
  o.tryWrite("/w", "1");
  o.trySetPerms("/w", "w0");
  const t = g.startTx();
  assert.equal(g.tryWrite("/w", "2", t), "OK");
  o.trySetPerms("/w", "r0");
  assert.equal(g.commit(t), "EAGAIN");
  assert.equal(o.tryRead("/w"), "1");
});

Deno.test("C15 guest: a write refused (EACCES) inside the transaction was granted meanwhile", () => {
  const { g, o } = guestSetup();
  o.tryWrite("/w", "1");
  const t = g.startTx();
  assert.equal(g.tryWrite("/w", "2", t), "E:EACCES");
  g.tryWrite("/g/x", "1", t);
  o.trySetPerms("/w", "w0");
  assert.equal(g.commit(t), "EAGAIN");
});

Deno.test("C16 guest: an EACCES read of a missing path became ENOENT through the transaction's own write", () => {
  // The commit-time store lacks /a, which the transaction's view has; its own write re-creates /a
  // (owned by the guest) during the replay, so a repeated read would have answered ENOENT.
  const { g, o } = guestSetup();
  o.trySetPerms("/", "w0");
  o.tryWrite("/a", "");
  o.trySetPerms("/a", "w0");
  const t = g.startTx();
  assert.equal(g.tryRead("/a/b", t), "E:EACCES");
  o.tryRm("/a");
  assert.equal(g.tryWrite("/a/z", "1", t), "OK");
  assert.equal(g.tryRead("/a/b", t), "E:EACCES");
  assert.equal(g.commit(t), "EAGAIN");
});

// ---- No conflict: the commit succeeds ----

Deno.test("N1 disjoint paths", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryRead("/a", t);
  a.tryWrite("/b", "x", t);
  o.tryWrite("/c", "1");
  o.tryWrite("/a/child", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(o.tryRead("/b"), "x");
});

Deno.test("N2 blind writes of one node by two transactions: the later commit wins", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  const t1 = a.startTx();
  const t2 = b.startTx();
  a.tryWrite("/a", "1", t1);
  b.tryWrite("/a", "2", t2);
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(a.tryRead("/a"), "1");
});

Deno.test("N3 creating siblings under a common parent", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  a.tryMkdir("/d");
  const t1 = a.startTx();
  const t2 = b.startTx();
  a.tryWrite("/d/x", "1", t1);
  b.tryWrite("/d/y", "2", t2);
  assert.equal(a.commit(t1), "OK");
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.tryDir("/d"), "x,y");
});

Deno.test("N4 removing siblings under a common parent", () => {
  const { a, o } = setup();
  o.tryWrite("/d/x", "1");
  o.tryWrite("/d/y", "1");
  const t = a.startTx();
  assert.equal(a.tryRm("/d/x", t), "OK");
  o.tryRm("/d/y");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryDir("/d"), "");
});

Deno.test("N5 a read-only transaction never fails", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  assert.equal(a.tryRead("/a", t), "1");
  assert.equal(a.tryDir("/", t), "a,tool");
  o.tryWrite("/a", "2");
  o.tryWrite("/n", "2");
  assert.equal(a.tryRead("/a", t), "1", "the snapshot is stable");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N6 a value changed and changed back (ABA) is not a conflict", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryRead("/a", t);
  a.tryWrite("/b", "x", t);
  o.tryWrite("/a", "2");
  o.tryWrite("/a", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N7 a node read was rewritten with the same value", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryRead("/a", t);
  a.tryWrite("/b", "x", t);
  o.tryWrite("/a", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N8 dom0 read vs permission change: dom0's reply cannot change", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryRead("/a", t);
  a.tryDir("/a", t);
  a.tryWrite("/b", "x", t);
  o.trySetPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N9 blind create under a parent whose permissions changed: it inherits the new ones", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryWrite("/a/new", "x", t);
  o.trySetPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryGetPerms("/a/new"), "n0,r5");
});

Deno.test("N10 reading back one's own write: determined by the transaction", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  a.tryWrite("/a", "mine", t);
  assert.equal(a.tryRead("/a", t), "mine");
  o.tryWrite("/a", "theirs");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/a"), "mine");
});

Deno.test("N11 RM of an absent node is blind: created meanwhile, removed at commit", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  assert.equal(a.tryRm("/a/x", t), "OK");
  a.tryWrite("/b", "1", t);
  o.tryWrite("/a/x", "v");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/a/x"), "E:ENOENT");
});

Deno.test("N12 two blind SET_PERMS of one node: the later commit wins", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  a.tryWrite("/a", "1");
  const t1 = a.startTx();
  const t2 = b.startTx();
  assert.equal(a.trySetPerms("/a", "n0,r1", t1), "OK");
  assert.equal(b.trySetPerms("/a", "n0,r2", t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.tryGetPerms("/a"), "n0,r2");
});

Deno.test("N13 a failed request does not poison the commit", () => {
  const { a } = setup();
  const t = a.startTx();
  assert.equal(a.tryRead("/nope", t), "E:ENOENT");
  assert.equal(a.tryRm("/nope/x", t), "E:ENOENT");
  assert.equal(a.tryWrite("bad//path", "x", t), "E:EINVAL");
  assert.equal(a.tryWrite("/b", "1", t), "OK");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/b"), "1");
});

Deno.test("N14 dom0 ENOENT below a node created meanwhile is still ENOENT", () => {
  const { a, o } = setup();
  o.tryMkdir("/a");
  const t = a.startTx();
  assert.equal(a.tryRead("/a/b/c", t), "E:ENOENT");
  a.tryWrite("/z", "1", t);
  o.tryWrite("/a/b", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N15 creating a child of a node created meanwhile by someone else", () => {
  const { a, o } = setup();
  const t = a.startTx();
  a.tryWrite("/d/x", "1", t);
  o.tryWrite("/d/y", "2");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryDir("/d"), "x,y");
});

Deno.test('N16 an implicitly created ancestor read as "", created meanwhile with ""', () => {
  const { a, o } = setup();
  const t = a.startTx();
  a.tryWrite("/d/x", "1", t);
  assert.equal(a.tryRead("/d", t), "");
  o.tryMkdir("/d");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N17 RM of a subtree that gained a child meanwhile removes it too", () => {
  const { a, o } = setup();
  o.tryWrite("/a/x", "1");
  const t = a.startTx();
  assert.equal(a.tryRm("/a", t), "OK");
  o.tryWrite("/a/y", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/a"), "E:ENOENT");
});

Deno.test("N18 a listed node's value changed, not its children", () => {
  const { a, o } = setup();
  o.tryWrite("/d/x", "1");
  const t = a.startTx();
  a.tryDir("/d", t);
  a.tryWrite("/b", "1", t);
  o.tryWrite("/d", "new");
  o.tryWrite("/d/x", "2");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N19 a blind write of a node removed meanwhile re-creates it", () => {
  const { a, o } = setup();
  o.tryWrite("/a/b", "1");
  const t = a.startTx();
  a.tryWrite("/a/b", "2", t);
  o.tryRm("/a");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/a/b"), "2");
  assert.equal(a.tryRead("/a"), "");
});

Deno.test("N20 RM of a subtree the transaction partly wrote", () => {
  const { a, o } = setup();
  o.tryWrite("/a/x", "1");
  o.tryWatch("/a/x", "w");
  o.events(); // drop what is queued
  const t = a.startTx();
  a.tryWrite("/a/x", "2", t);
  a.tryWrite("/a/new/deep", "3", t);
  assert.equal(a.tryRead("/a/new/deep", t), "3");
  assert.equal(a.tryRm("/a", t), "OK");
  assert.equal(a.tryRead("/a/x", t), "E:ENOENT");
  assert.equal(a.tryDir("/", t), "tool");
  o.tryWrite("/a/y", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryDir("/"), "tool");
  assert.ok(o.events().some((e) => e.startsWith("/a/x ")), "the watcher of /a/x heard of the change");
});

Deno.test("N21 guest: permission changes that keep every decision are not conflicts", () => {
  const { g, o } = guestSetup();
  o.tryWrite("/pub", "1");
  o.trySetPerms("/pub", "r0");
  const t = g.startTx();
  assert.equal(g.tryRead("/pub", t), "1");
  g.tryWrite("/g/x", "1", t);
  o.trySetPerms("/pub", "r0,n7"); // other perms, same decision for domain 5
  assert.equal(g.commit(t), "OK");
});

Deno.test("N22 MKDIR of an existing node, removed meanwhile: re-created at commit", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const t = a.startTx();
  assert.equal(a.tryMkdir("/a", t), "OK");
  o.tryRm("/a");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/a"), "");
});
