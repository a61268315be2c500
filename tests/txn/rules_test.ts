/**
 * One test per example in docs/transactions.md (same numbering), driving the Core directly. "other" is
 * a second dom0 connection making plain (non-transactional) requests unless said otherwise.
 */
import assert from "../helpers/assert.ts";
import { FEATURE_NESTED_TRANSACTIONS } from "../../src/protocol/wire.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { brief, type Conn, Harness } from "./harness.ts";

function setup(): { h: Harness; a: Conn; o: Conn } {
  const h = new Harness();
  return { h, a: h.conn("a"), o: h.conn("other") };
}

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

/** dom0 prepares /g owned by guest 5 (so the guest may use it), and a guest connection. */
function guestSetup() {
  const s = setup();
  s.o.tryWrite("/g", "");
  s.o.trySetPerms("/g", "n5");
  return { ...s, g: s.h.guest(5) };
}

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

// ---- Nested transactions (protocol extension) ----

Deno.test("X1 GET_FEATURE advertises nested transactions", () => {
  const { a } = setup();
  const f = Number(brief(a.request(MsgType.GET_FEATURE, "")));
  assert.ok((f & FEATURE_NESTED_TRANSACTIONS) !== 0, `features ${f}`);
});

Deno.test("X2 a child sees its parent's uncommitted writes; its commit merges into the parent only", () => {
  const { a, o } = setup();
  const p = a.startTx();
  a.tryWrite("/a", "p", p);
  const c = a.startTx(p);
  assert.notEqual(c, p);
  assert.equal(a.tryRead("/a", c), "p");
  a.tryWrite("/b", "c", c);
  assert.equal(a.tryRead("/b", p), "E:ENOENT", "the parent does not see the open child");
  assert.equal(a.commit(c), "OK");
  assert.equal(a.tryRead("/b", p), "c", "the parent sees the merged child");
  assert.equal(o.tryRead("/b"), "E:ENOENT", "nobody else does before the parent commits");
  assert.equal(a.commit(p), "OK");
  assert.equal(o.tryRead("/b"), "c");
  assert.equal(o.tryRead("/a"), "p");
});

Deno.test("X3 aborting a child discards only the child", () => {
  const { a, o } = setup();
  const p = a.startTx();
  a.tryWrite("/a", "p", p);
  const c = a.startTx(p);
  a.tryWrite("/b", "c", c);
  assert.equal(a.abort(c), "OK");
  assert.equal(a.tryRead("/b", p), "E:ENOENT");
  assert.equal(a.tryRead("/", c), "E:ENOENT", "the child's id is gone");
  assert.equal(a.commit(p), "OK");
  assert.equal(o.tryRead("/a"), "p");
  assert.equal(o.tryRead("/b"), "E:ENOENT");
});

Deno.test("X4 ending a parent with open children fails with EBUSY and changes nothing", () => {
  const { a } = setup();
  const p = a.startTx();
  a.tryWrite("/a", "1", p);
  const c = a.startTx(p);
  assert.equal(a.commit(p), "EBUSY");
  assert.equal(a.abort(p), "EBUSY");
  assert.equal(a.tryRead("/a", p), "1", "the parent is still open");
  assert.equal(a.commit(c), "OK");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.tryRead("/a"), "1");
});

Deno.test("X5 a child whose read the parent changed meanwhile fails; the parent goes on", () => {
  const { a } = setup();
  a.tryWrite("/a", "0");
  const p = a.startTx();
  const c = a.startTx(p);
  assert.equal(a.tryRead("/a", c), "0");
  a.tryWrite("/x", "c", c);
  a.tryWrite("/a", "p", p);
  assert.equal(a.commit(c), "EAGAIN");
  assert.equal(a.tryRead("/x", p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.tryRead("/a"), "p");
});

Deno.test("X6 a merged child's observations are re-validated when the parent commits", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "0");
  const p = a.startTx();
  const c = a.startTx(p);
  assert.equal(a.tryRead("/a", c), "0");
  a.tryWrite("/x", "c", c);
  assert.equal(a.commit(c), "OK");
  o.tryWrite("/a", "1");
  assert.equal(a.commit(p), "EAGAIN");
  assert.equal(o.tryRead("/x"), "E:ENOENT");
});

Deno.test("X7 a read-only child is validated against the parent's view too", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "1");
  const p = a.startTx();
  const c = a.startTx(p);
  assert.equal(a.tryRead("/a", c), "1");
  a.tryWrite("/a", "2", p);
  o.tryWrite("/a", "3");
  assert.equal(a.commit(c), "EAGAIN");
  assert.equal(a.commit(p), "OK", "blind parent write");
  assert.equal(a.tryRead("/a"), "2");
});

Deno.test("X8 blind writes of one node by a child and its parent: the child's merge comes later", () => {
  const { a } = setup();
  const p = a.startTx();
  const c = a.startTx(p);
  a.tryWrite("/a", "child", c);
  a.tryWrite("/a", "parent", p);
  assert.equal(a.commit(c), "OK");
  assert.equal(a.tryRead("/a", p), "child");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.tryRead("/a"), "child");
});

Deno.test("X9 grandchildren nest; a failed grandchild leaves its parent intact", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "0");
  const t1 = a.startTx();
  const t2 = a.startTx(t1);
  const t3 = a.startTx(t2);
  a.tryWrite("/g", "3", t3);
  assert.equal(a.tryRead("/a", t3), "0");
  a.tryWrite("/a", "2", t2);
  assert.equal(a.commit(t3), "EAGAIN");
  const t4 = a.startTx(t2);
  a.tryWrite("/g", "4", t4);
  assert.equal(a.commit(t4), "OK");
  assert.equal(a.commit(t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(o.tryRead("/g"), "4");
  assert.equal(o.tryRead("/a"), "2");
});

Deno.test("X10 a child cannot be started in another connection's transaction", () => {
  const { a, o } = setup();
  const p = a.startTx();
  assert.equal(o.tryStart(p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
});

// ---- Protocol, isolation, watches ----

Deno.test("P1 transaction ids belong to their connection", () => {
  const { a, o } = setup();
  const t = a.startTx();
  assert.ok(t !== 0 && t >>> 0 === t);
  a.tryWrite("/a", "1", t);
  assert.equal(o.tryRead("/a", t), "E:ENOENT");
  assert.equal(o.tryWrite("/b", "1", t), "E:ENOENT");
  assert.equal(o.commit(t), "ENOENT");
  assert.equal(a.commit(t), "OK");
});

Deno.test("P2 an ended transaction's id is gone", () => {
  const { a } = setup();
  const t = a.startTx();
  assert.equal(a.commit(t), "OK");
  assert.equal(a.commit(t), "ENOENT");
  assert.equal(a.tryRead("/", t), "E:ENOENT");
  const u = a.startTx();
  assert.notEqual(u, t);
  assert.equal(a.abort(u), "OK");
  assert.equal(a.abort(u), "ENOENT");
  assert.equal(a.commit(0), "ENOENT");
});

Deno.test("P3 every node request takes a tx_id and is isolated until commit", () => {
  const { a, o } = setup();
  o.tryWrite("/r", "old");
  o.tryWrite("/gone/x", "1");
  const t = a.startTx();
  assert.equal(a.tryWrite("/w", "1", t), "OK");
  assert.equal(a.tryMkdir("/m", t), "OK");
  assert.equal(a.tryRm("/gone", t), "OK");
  assert.equal(a.trySetPerms("/r", "n0,r3", t), "OK");
  assert.equal(a.tryRead("/w", t), "1");
  assert.equal(a.tryDir("/", t), "m,r,tool,w");
  assert.equal(a.tryDirPart("/", t), "m,r,tool,w");
  assert.equal(a.tryGetPerms("/r", t), "n0,r3");
  // Nobody else sees any of it yet.
  assert.equal(o.tryDir("/"), "gone,r,tool");
  assert.equal(o.tryGetPerms("/r"), "n0");
  assert.equal(a.commit(t), "OK");
  assert.equal(o.tryDir("/"), "m,r,tool,w");
  assert.equal(o.tryGetPerms("/r"), "n0,r3");
});

Deno.test("P4 watches fire at commit only, once per changed path", () => {
  const { a, o } = setup();
  o.tryWatch("/", "all");
  o.events(); // drop what is queued
  const t = a.startTx();
  a.tryWrite("/a", "1", t);
  a.tryWrite("/a", "2", t);
  a.tryWrite("/a", "3", t);
  a.tryWrite("/b", "1", t);
  assert.deepEqual(o.events(), [], "nothing before the commit");
  assert.equal(a.commit(t), "OK");
  assert.deepEqual(o.events().map((e) => e.split(" ")[0]).sort(), ["/a", "/b"]);
});

Deno.test("P5 aborted and failed transactions fire nothing", () => {
  const { a, o } = setup();
  o.tryWrite("/a", "0");
  o.tryWatch("/", "all");
  o.events(); // drop what is queued
  const t = a.startTx();
  a.tryWrite("/b", "1", t);
  assert.equal(a.abort(t), "OK");
  const u = a.startTx();
  a.tryRead("/a", u);
  a.tryWrite("/b", "1", u);
  o.tryWrite("/a", "1");
  o.events(); // drop what is queued
  assert.equal(a.commit(u), "EAGAIN");
  assert.deepEqual(o.events(), []);
});

Deno.test("P6 a closing connection aborts its transactions", () => {
  const { h, a, o } = setup();
  const t = a.startTx();
  const c = a.startTx(t);
  a.tryWrite("/a", "1", t);
  a.tryWrite("/b", "1", c);
  h.close(a);
  assert.equal(a.client.txns.size, 0);
  assert.equal(o.tryRead("/a"), "E:ENOENT");
  assert.equal(o.tryRead("/b"), "E:ENOENT");
});

Deno.test("P7 RESET_WATCHES drops the connection's transactions", () => {
  const { a } = setup();
  const t = a.startTx();
  assert.equal(brief(a.request(MsgType.RESET_WATCHES, "")), "OK");
  assert.equal(a.commit(t), "ENOENT");
});

// ---- Limits ----

Deno.test("L1 open transactions per connection, nested ones included (ENOSPC)", () => {
  const h = new Harness({ tx: { maxOpen: 3 } });
  const a = h.conn();
  const b = h.conn();
  const t1 = a.startTx();
  const t2 = a.startTx(t1);
  a.startTx();
  assert.equal(a.tryStart(), "E:ENOSPC");
  assert.equal(a.tryStart(t2), "E:ENOSPC");
  assert.ok(Number(b.tryStart()) > 0, "per connection");
  assert.equal(a.abort(t2), "OK");
  assert.ok(Number(a.tryStart()) > 0);
});

Deno.test("L2 nodes touched per transaction (ENOSPC), counted as distinct paths", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 1000 } });
  const a = h.conn();
  const t = a.startTx();
  for (let i = 0; i < 50; i++) assert.equal(a.tryWrite("/same", `${i}`, t), "OK");
  assert.equal(a.tryRead("/same", t), "49");
  a.tryWrite("/b", "1", t);
  a.tryRead("/c", t);
  a.tryDir("/d", t);
  assert.equal(a.tryWrite("/e", "1", t), "E:ENOSPC");
  assert.equal(a.tryRead("/f", t), "E:ENOSPC");
  assert.equal(a.tryRead("/b", t), "1", "paths already touched still work");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/same"), "49");
  assert.equal(a.tryRead("/e"), "E:ENOENT");
});

Deno.test("L3 operations logged per transaction (ENOSPC)", () => {
  const h = new Harness({ tx: { maxTouched: 100, maxOps: 5 } });
  const a = h.conn();
  const t = a.startTx();
  for (let i = 0; i < 5; i++) assert.equal(a.tryWrite("/same", `${i}`, t), "OK");
  assert.equal(a.tryWrite("/same", "x", t), "E:ENOSPC");
  assert.equal(a.tryRead("/same", t), "E:ENOSPC");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/same"), "4");
});

Deno.test("L4 transaction age (EAGAIN); an abort still succeeds", () => {
  let now = 1000;
  const h = new Harness({ tx: { maxAgeMs: 500 }, now: () => now });
  const a = h.conn();
  const t = a.startTx();
  a.tryWrite("/a", "1", t);
  now += 400;
  assert.equal(a.tryRead("/a", t), "1");
  now += 200;
  assert.equal(a.tryRead("/a", t), "E:EAGAIN");
  assert.equal(a.commit(t), "ENOENT", "gone after the EAGAIN");
  const u = a.startTx();
  now += 1000;
  assert.equal(a.abort(u), "OK");
  const v = a.startTx();
  now += 1000;
  assert.equal(a.commit(v), "EAGAIN");
  assert.equal(a.tryRead("/a"), "E:ENOENT");
});

Deno.test("L5 a merge that would exceed the parent's limit fails with ENOSPC", () => {
  const h = new Harness({ tx: { maxTouched: 3 } });
  const a = h.conn();
  const p = a.startTx();
  a.tryWrite("/p1", "1", p);
  a.tryWrite("/p2", "1", p);
  const c = a.startTx(p);
  a.tryWrite("/c1", "1", c);
  a.tryWrite("/c2", "1", c);
  assert.equal(a.commit(c), "ENOSPC");
  assert.equal(a.tryRead("/c1", p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
});

// ---- Deduplicated observations stay exact ----

Deno.test("D1 a repeated observation after the transaction re-created the node is checked again", () => {
  // Same as C10 with the two GET_PERMS replies differing only at commit.
  const { a, o } = setup();
  o.tryWrite("/p/a", "1");
  const t = a.startTx();
  a.tryGetPerms("/p/a", t);
  a.tryRm("/p/a", t);
  a.tryWrite("/p/a", "v", t);
  a.tryGetPerms("/p/a", t);
  o.trySetPerms("/p", "n0,r5");
  o.trySetPerms("/p/a", "n0");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("D2 repeated observations are logged once", () => {
  const { a } = setup();
  a.tryWrite("/a", "1");
  const t = a.startTx();
  for (let i = 0; i < 100; i++) {
    a.tryRead("/a", t);
    a.tryDir("/a", t);
    a.tryWrite(`/b${i % 3}`, "x", t);
  }
  const tx = a.client.txns.get(t, 0);
  assert.ok(tx.checks <= 3, `checks ${tx.checks}`);
  assert.equal(tx.modifications, 100);
  assert.equal(tx.touched, 4);
  assert.equal(a.commit(t), "OK");
});
