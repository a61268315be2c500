/**
 * One test per example in docs/transactions.md (same numbering), driving the Core directly. "other" is
 * a second dom0 connection making plain (non-transactional) requests unless said otherwise.
 */
import assert from "../helpers/assert.ts";
import { FEATURE_NESTED_TRANSACTIONS } from "../../src/dispatch/dispatcher.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { brief, type Conn, Harness } from "./harness.ts";

function setup(): { h: Harness; a: Conn; o: Conn } {
  const h = new Harness();
  return { h, a: h.conn("a"), o: h.conn("other") };
}

// ---- Conflicts: the commit fails with EAGAIN ----

Deno.test("C1 a value read changed", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  assert.equal(a.read("/a", t), "1");
  a.write("/b", "x", t);
  o.write("/a", "2");
  assert.equal(a.commit(t), "EAGAIN");
  assert.equal(o.read("/b"), "E:ENOENT", "nothing of a failed commit is applied");
});

Deno.test("C2 a node read as ENOENT was created", () => {
  const { a, o } = setup();
  const t = a.start();
  assert.equal(a.read("/a", t), "E:ENOENT");
  a.write("/b", "x", t);
  o.write("/a", "1");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C3 a listed child list gained a child", () => {
  const { a, o } = setup();
  o.write("/d/x", "1");
  const t = a.start();
  assert.equal(a.dir("/d", t), "x");
  a.write("/b", "x", t);
  o.write("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C4 a listed child list lost a child (DIRECTORY_PART)", () => {
  const { a, o } = setup();
  o.write("/d/x", "1");
  o.write("/d/y", "1");
  const t = a.start();
  assert.equal(a.dirPart("/d", t), "x,y");
  a.write("/b", "x", t);
  o.rm("/d/y");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C5 permissions read with GET_PERMS changed", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  assert.equal(a.getPerms("/a", t), "n0");
  a.write("/b", "x", t);
  o.setPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C6 a node read was removed", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.read("/a", t);
  a.write("/b", "x", t);
  o.rm("/a");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C7 DIRECTORY of a node the transaction created, sibling created meanwhile", () => {
  const { a, o } = setup();
  const t = a.start();
  a.write("/d/x", "1", t);
  assert.equal(a.dir("/d", t), "x");
  o.write("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C8 READ of an ancestor the transaction created implicitly, created with a value meanwhile", () => {
  const { a, o } = setup();
  const t = a.start();
  a.write("/d/x", "1", t);
  assert.equal(a.read("/d", t), "");
  o.write("/d", "v");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C9 ENOENT below a node the transaction created, created meanwhile", () => {
  const { a, o } = setup();
  const t = a.start();
  a.write("/d", "1", t);
  assert.equal(a.read("/d/e", t), "E:ENOENT");
  o.write("/d/e", "v");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C10 permissions a re-created node inherited, the parent's changed meanwhile", () => {
  const { a, o } = setup();
  o.write("/p/a", "1");
  const t = a.start();
  assert.equal(a.getPerms("/p/a", t), "n0");
  a.rm("/p/a", t);
  a.write("/p/a", "v", t);
  assert.equal(a.getPerms("/p/a", t), "n0");
  o.setPerms("/p", "n0,r5");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C11 DIRECTORY after creating a child of an existing node, sibling created meanwhile", () => {
  const { a, o } = setup();
  o.mkdir("/d");
  const t = a.start();
  a.write("/d/x", "1", t);
  assert.equal(a.dir("/d", t), "x");
  o.write("/d/y", "2");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("C12 RM whose parent was missing (ENOENT), parent created meanwhile", () => {
  const { a, o } = setup();
  const t = a.start();
  assert.equal(a.rm("/a/b", t), "E:ENOENT");
  a.write("/z", "1", t);
  o.write("/a", "1");
  assert.equal(a.commit(t), "EAGAIN");
});

/** dom0 prepares /g owned by guest 5 (so the guest may use it), and a guest connection. */
function guestSetup() {
  const s = setup();
  s.o.write("/g", "");
  s.o.setPerms("/g", "n5");
  return { ...s, g: s.h.guest(5) };
}

Deno.test("C13 guest: a read it was allowed was revoked", () => {
  const { g, o } = guestSetup();
  o.write("/pub", "1");
  o.setPerms("/pub", "r0");
  const t = g.start();
  assert.equal(g.read("/pub", t), "1");
  g.write("/g/x", "1", t);
  o.setPerms("/pub", "n0");
  assert.equal(g.commit(t), "EAGAIN");
});

Deno.test("C14 guest: a blind write it was allowed was revoked", () => {
  const { g, o } = guestSetup();
  o.write("/w", "1");
  o.setPerms("/w", "w0");
  const t = g.start();
  assert.equal(g.write("/w", "2", t), "OK");
  o.setPerms("/w", "r0");
  assert.equal(g.commit(t), "EAGAIN");
  assert.equal(o.read("/w"), "1");
});

Deno.test("C15 guest: a write refused (EACCES) inside the transaction was granted meanwhile", () => {
  const { g, o } = guestSetup();
  o.write("/w", "1");
  const t = g.start();
  assert.equal(g.write("/w", "2", t), "E:EACCES");
  g.write("/g/x", "1", t);
  o.setPerms("/w", "w0");
  assert.equal(g.commit(t), "EAGAIN");
});

Deno.test("C16 guest: an EACCES read of a missing path became ENOENT through the transaction's own write", () => {
  // The commit-time store lacks /a, which the transaction's view has; its own write re-creates /a
  // (owned by the guest) during the replay, so a repeated read would have answered ENOENT.
  const { g, o } = guestSetup();
  o.setPerms("/", "w0");
  o.write("/a", "");
  o.setPerms("/a", "w0");
  const t = g.start();
  assert.equal(g.read("/a/b", t), "E:EACCES");
  o.rm("/a");
  assert.equal(g.write("/a/z", "1", t), "OK");
  assert.equal(g.read("/a/b", t), "E:EACCES");
  assert.equal(g.commit(t), "EAGAIN");
});

// ---- No conflict: the commit succeeds ----

Deno.test("N1 disjoint paths", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.read("/a", t);
  a.write("/b", "x", t);
  o.write("/c", "1");
  o.write("/a/child", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(o.read("/b"), "x");
});

Deno.test("N2 blind writes of one node by two transactions: the later commit wins", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  const t1 = a.start();
  const t2 = b.start();
  a.write("/a", "1", t1);
  b.write("/a", "2", t2);
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(a.read("/a"), "1");
});

Deno.test("N3 creating siblings under a common parent", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  a.mkdir("/d");
  const t1 = a.start();
  const t2 = b.start();
  a.write("/d/x", "1", t1);
  b.write("/d/y", "2", t2);
  assert.equal(a.commit(t1), "OK");
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.dir("/d"), "x,y");
});

Deno.test("N4 removing siblings under a common parent", () => {
  const { a, o } = setup();
  o.write("/d/x", "1");
  o.write("/d/y", "1");
  const t = a.start();
  assert.equal(a.rm("/d/x", t), "OK");
  o.rm("/d/y");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.dir("/d"), "");
});

Deno.test("N5 a read-only transaction never fails", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  assert.equal(a.read("/a", t), "1");
  assert.equal(a.dir("/", t), "a,tool");
  o.write("/a", "2");
  o.write("/n", "2");
  assert.equal(a.read("/a", t), "1", "the snapshot is stable");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N6 a value changed and changed back (ABA) is not a conflict", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.read("/a", t);
  a.write("/b", "x", t);
  o.write("/a", "2");
  o.write("/a", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N7 a node read was rewritten with the same value", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.read("/a", t);
  a.write("/b", "x", t);
  o.write("/a", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N8 dom0 read vs permission change: dom0's reply cannot change", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.read("/a", t);
  a.dir("/a", t);
  a.write("/b", "x", t);
  o.setPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N9 blind create under a parent whose permissions changed: it inherits the new ones", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.write("/a/new", "x", t);
  o.setPerms("/a", "n0,r5");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.getPerms("/a/new"), "n0,r5");
});

Deno.test("N10 reading back one's own write: determined by the transaction", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  a.write("/a", "mine", t);
  assert.equal(a.read("/a", t), "mine");
  o.write("/a", "theirs");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/a"), "mine");
});

Deno.test("N11 RM of an absent node is blind: created meanwhile, removed at commit", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  assert.equal(a.rm("/a/x", t), "OK");
  a.write("/b", "1", t);
  o.write("/a/x", "v");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/a/x"), "E:ENOENT");
});

Deno.test("N12 two blind SET_PERMS of one node: the later commit wins", () => {
  const { h, a } = setup();
  const b = h.conn("b");
  a.write("/a", "1");
  const t1 = a.start();
  const t2 = b.start();
  assert.equal(a.setPerms("/a", "n0,r1", t1), "OK");
  assert.equal(b.setPerms("/a", "n0,r2", t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(b.commit(t2), "OK");
  assert.equal(a.getPerms("/a"), "n0,r2");
});

Deno.test("N13 a failed request does not poison the commit", () => {
  const { a } = setup();
  const t = a.start();
  assert.equal(a.read("/nope", t), "E:ENOENT");
  assert.equal(a.rm("/nope/x", t), "E:ENOENT");
  assert.equal(a.write("bad//path", "x", t), "E:EINVAL");
  assert.equal(a.write("/b", "1", t), "OK");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/b"), "1");
});

Deno.test("N14 dom0 ENOENT below a node created meanwhile is still ENOENT", () => {
  const { a, o } = setup();
  o.mkdir("/a");
  const t = a.start();
  assert.equal(a.read("/a/b/c", t), "E:ENOENT");
  a.write("/z", "1", t);
  o.write("/a/b", "1");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N15 creating a child of a node created meanwhile by someone else", () => {
  const { a, o } = setup();
  const t = a.start();
  a.write("/d/x", "1", t);
  o.write("/d/y", "2");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.dir("/d"), "x,y");
});

Deno.test('N16 an implicitly created ancestor read as "", created meanwhile with ""', () => {
  const { a, o } = setup();
  const t = a.start();
  a.write("/d/x", "1", t);
  assert.equal(a.read("/d", t), "");
  o.mkdir("/d");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N17 RM of a subtree that gained a child meanwhile removes it too", () => {
  const { a, o } = setup();
  o.write("/a/x", "1");
  const t = a.start();
  assert.equal(a.rm("/a", t), "OK");
  o.write("/a/y", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/a"), "E:ENOENT");
});

Deno.test("N18 a listed node's value changed, not its children", () => {
  const { a, o } = setup();
  o.write("/d/x", "1");
  const t = a.start();
  a.dir("/d", t);
  a.write("/b", "1", t);
  o.write("/d", "new");
  o.write("/d/x", "2");
  assert.equal(a.commit(t), "OK");
});

Deno.test("N19 a blind write of a node removed meanwhile re-creates it", () => {
  const { a, o } = setup();
  o.write("/a/b", "1");
  const t = a.start();
  a.write("/a/b", "2", t);
  o.rm("/a");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/a/b"), "2");
  assert.equal(a.read("/a"), "");
});

Deno.test("N20 RM of a subtree the transaction partly wrote", () => {
  const { a, o } = setup();
  o.write("/a/x", "1");
  o.watch("/a/x", "w");
  o.events.length = 0;
  const t = a.start();
  a.write("/a/x", "2", t);
  a.write("/a/new/deep", "3", t);
  assert.equal(a.read("/a/new/deep", t), "3");
  assert.equal(a.rm("/a", t), "OK");
  assert.equal(a.read("/a/x", t), "E:ENOENT");
  assert.equal(a.dir("/", t), "tool");
  o.write("/a/y", "1");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.dir("/"), "tool");
  assert.ok(o.events.some(([p]) => p === "/a/x"), "the watcher of /a/x heard of the change");
});

Deno.test("N21 guest: permission changes that keep every decision are not conflicts", () => {
  const { g, o } = guestSetup();
  o.write("/pub", "1");
  o.setPerms("/pub", "r0");
  const t = g.start();
  assert.equal(g.read("/pub", t), "1");
  g.write("/g/x", "1", t);
  o.setPerms("/pub", "r0,n7"); // other perms, same decision for domain 5
  assert.equal(g.commit(t), "OK");
});

Deno.test("N22 MKDIR of an existing node, removed meanwhile: re-created at commit", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const t = a.start();
  assert.equal(a.mkdir("/a", t), "OK");
  o.rm("/a");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/a"), "");
});

// ---- Nested transactions (protocol extension) ----

Deno.test("X1 GET_FEATURE advertises nested transactions", () => {
  const { a } = setup();
  const f = Number(brief(a.req(MsgType.GET_FEATURE, "")));
  assert.ok((f & FEATURE_NESTED_TRANSACTIONS) !== 0, `features ${f}`);
});

Deno.test("X2 a child sees its parent's uncommitted writes; its commit merges into the parent only", () => {
  const { a, o } = setup();
  const p = a.start();
  a.write("/a", "p", p);
  const c = a.start(p);
  assert.notEqual(c, p);
  assert.equal(a.read("/a", c), "p");
  a.write("/b", "c", c);
  assert.equal(a.read("/b", p), "E:ENOENT", "the parent does not see the open child");
  assert.equal(a.commit(c), "OK");
  assert.equal(a.read("/b", p), "c", "the parent sees the merged child");
  assert.equal(o.read("/b"), "E:ENOENT", "nobody else does before the parent commits");
  assert.equal(a.commit(p), "OK");
  assert.equal(o.read("/b"), "c");
  assert.equal(o.read("/a"), "p");
});

Deno.test("X3 aborting a child discards only the child", () => {
  const { a, o } = setup();
  const p = a.start();
  a.write("/a", "p", p);
  const c = a.start(p);
  a.write("/b", "c", c);
  assert.equal(a.abort(c), "OK");
  assert.equal(a.read("/b", p), "E:ENOENT");
  assert.equal(a.read("/", c), "E:ENOENT", "the child's id is gone");
  assert.equal(a.commit(p), "OK");
  assert.equal(o.read("/a"), "p");
  assert.equal(o.read("/b"), "E:ENOENT");
});

Deno.test("X4 ending a parent with open children fails with EBUSY and changes nothing", () => {
  const { a } = setup();
  const p = a.start();
  a.write("/a", "1", p);
  const c = a.start(p);
  assert.equal(a.commit(p), "EBUSY");
  assert.equal(a.abort(p), "EBUSY");
  assert.equal(a.read("/a", p), "1", "the parent is still open");
  assert.equal(a.commit(c), "OK");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.read("/a"), "1");
});

Deno.test("X5 a child whose read the parent changed meanwhile fails; the parent goes on", () => {
  const { a } = setup();
  a.write("/a", "0");
  const p = a.start();
  const c = a.start(p);
  assert.equal(a.read("/a", c), "0");
  a.write("/x", "c", c);
  a.write("/a", "p", p);
  assert.equal(a.commit(c), "EAGAIN");
  assert.equal(a.read("/x", p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.read("/a"), "p");
});

Deno.test("X6 a merged child's observations are re-validated when the parent commits", () => {
  const { a, o } = setup();
  o.write("/a", "0");
  const p = a.start();
  const c = a.start(p);
  assert.equal(a.read("/a", c), "0");
  a.write("/x", "c", c);
  assert.equal(a.commit(c), "OK");
  o.write("/a", "1");
  assert.equal(a.commit(p), "EAGAIN");
  assert.equal(o.read("/x"), "E:ENOENT");
});

Deno.test("X7 a read-only child is validated against the parent's view too", () => {
  const { a, o } = setup();
  o.write("/a", "1");
  const p = a.start();
  const c = a.start(p);
  assert.equal(a.read("/a", c), "1");
  a.write("/a", "2", p);
  o.write("/a", "3");
  assert.equal(a.commit(c), "EAGAIN");
  assert.equal(a.commit(p), "OK", "blind parent write");
  assert.equal(a.read("/a"), "2");
});

Deno.test("X8 blind writes of one node by a child and its parent: the child's merge comes later", () => {
  const { a } = setup();
  const p = a.start();
  const c = a.start(p);
  a.write("/a", "child", c);
  a.write("/a", "parent", p);
  assert.equal(a.commit(c), "OK");
  assert.equal(a.read("/a", p), "child");
  assert.equal(a.commit(p), "OK");
  assert.equal(a.read("/a"), "child");
});

Deno.test("X9 grandchildren nest; a failed grandchild leaves its parent intact", () => {
  const { a, o } = setup();
  o.write("/a", "0");
  const t1 = a.start();
  const t2 = a.start(t1);
  const t3 = a.start(t2);
  a.write("/g", "3", t3);
  assert.equal(a.read("/a", t3), "0");
  a.write("/a", "2", t2);
  assert.equal(a.commit(t3), "EAGAIN");
  const t4 = a.start(t2);
  a.write("/g", "4", t4);
  assert.equal(a.commit(t4), "OK");
  assert.equal(a.commit(t2), "OK");
  assert.equal(a.commit(t1), "OK");
  assert.equal(o.read("/g"), "4");
  assert.equal(o.read("/a"), "2");
});

Deno.test("X10 a child cannot be started in another connection's transaction", () => {
  const { a, o } = setup();
  const p = a.start();
  assert.equal(o.tryStart(p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
});

// ---- Protocol, isolation, watches ----

Deno.test("P1 transaction ids belong to their connection", () => {
  const { a, o } = setup();
  const t = a.start();
  assert.ok(t !== 0 && t >>> 0 === t);
  a.write("/a", "1", t);
  assert.equal(o.read("/a", t), "E:ENOENT");
  assert.equal(o.write("/b", "1", t), "E:ENOENT");
  assert.equal(o.commit(t), "ENOENT");
  assert.equal(a.commit(t), "OK");
});

Deno.test("P2 an ended transaction's id is gone", () => {
  const { a } = setup();
  const t = a.start();
  assert.equal(a.commit(t), "OK");
  assert.equal(a.commit(t), "ENOENT");
  assert.equal(a.read("/", t), "E:ENOENT");
  const u = a.start();
  assert.notEqual(u, t);
  assert.equal(a.abort(u), "OK");
  assert.equal(a.abort(u), "ENOENT");
  assert.equal(a.commit(0), "ENOENT");
});

Deno.test("P3 every node request takes a tx_id and is isolated until commit", () => {
  const { a, o } = setup();
  o.write("/r", "old");
  o.write("/gone/x", "1");
  const t = a.start();
  assert.equal(a.write("/w", "1", t), "OK");
  assert.equal(a.mkdir("/m", t), "OK");
  assert.equal(a.rm("/gone", t), "OK");
  assert.equal(a.setPerms("/r", "n0,r3", t), "OK");
  assert.equal(a.read("/w", t), "1");
  assert.equal(a.dir("/", t), "m,r,tool,w");
  assert.equal(a.dirPart("/", t), "m,r,tool,w");
  assert.equal(a.getPerms("/r", t), "n0,r3");
  // Nobody else sees any of it yet.
  assert.equal(o.dir("/"), "gone,r,tool");
  assert.equal(o.getPerms("/r"), "n0");
  assert.equal(a.commit(t), "OK");
  assert.equal(o.dir("/"), "m,r,tool,w");
  assert.equal(o.getPerms("/r"), "n0,r3");
});

Deno.test("P4 watches fire at commit only, once per changed path", () => {
  const { a, o } = setup();
  o.watch("/", "all");
  o.events.length = 0;
  const t = a.start();
  a.write("/a", "1", t);
  a.write("/a", "2", t);
  a.write("/a", "3", t);
  a.write("/b", "1", t);
  assert.deepEqual(o.events, [], "nothing before the commit");
  assert.equal(a.commit(t), "OK");
  assert.deepEqual(o.events.map(([p]) => p).sort(), ["/a", "/b"]);
});

Deno.test("P5 aborted and failed transactions fire nothing", () => {
  const { a, o } = setup();
  o.write("/a", "0");
  o.watch("/", "all");
  o.events.length = 0;
  const t = a.start();
  a.write("/b", "1", t);
  assert.equal(a.abort(t), "OK");
  const u = a.start();
  a.read("/a", u);
  a.write("/b", "1", u);
  o.write("/a", "1");
  o.events.length = 0;
  assert.equal(a.commit(u), "EAGAIN");
  assert.deepEqual(o.events, []);
});

Deno.test("P6 a closing connection aborts its transactions", () => {
  const { h, a, o } = setup();
  const t = a.start();
  const c = a.start(t);
  a.write("/a", "1", t);
  a.write("/b", "1", c);
  h.close(a);
  assert.equal(a.client.txns.size, 0);
  assert.equal(o.read("/a"), "E:ENOENT");
  assert.equal(o.read("/b"), "E:ENOENT");
});

Deno.test("P7 RESET_WATCHES drops the connection's transactions", () => {
  const { a } = setup();
  const t = a.start();
  assert.equal(brief(a.req(MsgType.RESET_WATCHES, "")), "OK");
  assert.equal(a.commit(t), "ENOENT");
});

// ---- Limits ----

Deno.test("L1 open transactions per connection, nested ones included (ENOSPC)", () => {
  const h = new Harness({ tx: { maxOpen: 3 } });
  const a = h.conn();
  const b = h.conn();
  const t1 = a.start();
  const t2 = a.start(t1);
  a.start();
  assert.equal(a.tryStart(), "E:ENOSPC");
  assert.equal(a.tryStart(t2), "E:ENOSPC");
  assert.ok(Number(b.tryStart()) > 0, "per connection");
  assert.equal(a.abort(t2), "OK");
  assert.ok(Number(a.tryStart()) > 0);
});

Deno.test("L2 nodes touched per transaction (ENOSPC), counted as distinct paths", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 1000, snapshotOnOverflow: false } });
  const a = h.conn();
  const t = a.start();
  for (let i = 0; i < 50; i++) assert.equal(a.write("/same", `${i}`, t), "OK");
  assert.equal(a.read("/same", t), "49");
  a.write("/b", "1", t);
  a.read("/c", t);
  a.dir("/d", t);
  assert.equal(a.write("/e", "1", t), "E:ENOSPC");
  assert.equal(a.read("/f", t), "E:ENOSPC");
  assert.equal(a.read("/b", t), "1", "paths already touched still work");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/same"), "49");
  assert.equal(a.read("/e"), "E:ENOENT");
});

Deno.test("L3 operations logged per transaction (ENOSPC)", () => {
  const h = new Harness({ tx: { maxTouched: 100, maxOps: 5, snapshotOnOverflow: false } });
  const a = h.conn();
  const t = a.start();
  for (let i = 0; i < 5; i++) assert.equal(a.write("/same", `${i}`, t), "OK");
  assert.equal(a.write("/same", "x", t), "E:ENOSPC");
  assert.equal(a.read("/same", t), "E:ENOSPC");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/same"), "4");
});

Deno.test("L4 transaction age (EAGAIN); an abort still succeeds", () => {
  let now = 1000;
  const h = new Harness({ tx: { maxAgeMs: 500 }, now: () => now });
  const a = h.conn();
  const t = a.start();
  a.write("/a", "1", t);
  now += 400;
  assert.equal(a.read("/a", t), "1");
  now += 200;
  assert.equal(a.read("/a", t), "E:EAGAIN");
  assert.equal(a.commit(t), "ENOENT", "gone after the EAGAIN");
  const u = a.start();
  now += 1000;
  assert.equal(a.abort(u), "OK");
  const v = a.start();
  now += 1000;
  assert.equal(a.commit(v), "EAGAIN");
  assert.equal(a.read("/a"), "E:ENOENT");
});

Deno.test("L5 a merge that would exceed the parent's limit fails with ENOSPC", () => {
  const h = new Harness({ tx: { maxTouched: 3, snapshotOnOverflow: false } });
  const a = h.conn();
  const p = a.start();
  a.write("/p1", "1", p);
  a.write("/p2", "1", p);
  const c = a.start(p);
  a.write("/c1", "1", c);
  a.write("/c2", "1", c);
  assert.equal(a.commit(c), "ENOSPC");
  assert.equal(a.read("/c1", p), "E:ENOENT");
  assert.equal(a.commit(p), "OK");
});

Deno.test("L6 dom0 reads beyond the limits: the transaction keeps its snapshot, a read-only one commits", () => {
  // The default dom0 limits (snapshotOnOverflow), made small.
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 20; i++) o.write(`/n/${i}`, `${i}`);
  const t = a.start();
  o.write("/n/5", "changed");
  for (let i = 0; i < 20; i++) assert.equal(a.read(`/n/${i}`, t), `${i}`, "the snapshot, beyond the limit");
  assert.equal(a.dir("/n", t).split(",").length, 20);
  assert.equal(a.getPerms("/n/19", t), "n0");
  assert.equal(a.commit(t), "OK", "read-only: never fails");
});

Deno.test("L7 dom0 past the observation limit commits only if the store is unchanged since its start", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 10; i++) o.write(`/n/${i}`, `${i}`);
  const t = a.start();
  for (let i = 0; i < 10; i++) a.read(`/n/${i}`, t);
  assert.equal(a.write("/out", "1", t), "OK");
  assert.equal(a.commit(t), "OK", "nothing changed meanwhile");
  assert.equal(a.read("/out"), "1");
  const u = a.start();
  for (let i = 0; i < 10; i++) a.read(`/n/${i}`, u);
  assert.equal(a.write("/out", "2", u), "OK");
  o.write("/unrelated", "x"); // not observed, but the observations were dropped: conservative
  assert.equal(a.commit(u), "EAGAIN");
  assert.equal(a.read("/out"), "1", "nothing applied");
});

Deno.test("L8 modifications stay bounded for dom0: past the limit they are refused (ENOSPC)", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const t = a.start();
  a.read("/r1", t);
  a.read("/r2", t);
  a.read("/r3", t);
  for (let i = 0; i < 4; i++) assert.equal(a.write(`/w${i}`, "1", t), "OK", "observations make room");
  assert.equal(a.write("/w4", "1", t), "E:ENOSPC");
  assert.equal(a.read("/r9", t), "E:ENOENT", "reads go on");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.read("/w3"), "1");
  assert.equal(a.read("/w4"), "E:ENOENT");
});

Deno.test("L9 guests keep the transaction-nodes quota: past it, reads are refused (ENOSPC)", () => {
  const h = new Harness();
  const o = h.conn("o");
  o.write("/local/domain/7", "");
  o.setPerms("/local/domain/7", "n7");
  const g = h.guest(7);
  const t = g.start();
  const limit = h.core.limits.tx.maxTouched;
  let refused = 0;
  for (let i = 0; i < limit + 5; i++) if (g.read(`/local/domain/7/x${i}`, t) === "E:ENOSPC") refused++;
  assert.ok(refused >= 5, `refused ${refused}`);
});

Deno.test("L10 a nested transaction past the limit merges only into an unchanged parent view", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 10; i++) o.write(`/n/${i}`, `${i}`);
  const p = a.start();
  const c = a.start(p);
  for (let i = 0; i < 10; i++) a.read(`/n/${i}`, c);
  a.write("/from-child", "1", c);
  a.write("/parent-moved", "1", p); // the parent's view is no longer the child's snapshot
  assert.equal(a.commit(c), "EAGAIN");
  const d = a.start(p);
  for (let i = 0; i < 10; i++) a.read(`/n/${i}`, d);
  a.write("/from-child", "2", d);
  assert.equal(a.commit(d), "OK");
  o.write("/elsewhere", "x"); // the parent inherited the whole-snapshot dependency
  assert.equal(a.commit(p), "EAGAIN");
  assert.equal(a.read("/from-child"), "E:ENOENT");
});

// ---- Deduplicated observations stay exact ----

Deno.test("D1 a repeated observation after the transaction re-created the node is checked again", () => {
  // Same as C10 with the two GET_PERMS replies differing only at commit.
  const { a, o } = setup();
  o.write("/p/a", "1");
  const t = a.start();
  a.getPerms("/p/a", t);
  a.rm("/p/a", t);
  a.write("/p/a", "v", t);
  a.getPerms("/p/a", t);
  o.setPerms("/p", "n0,r5");
  o.setPerms("/p/a", "n0");
  assert.equal(a.commit(t), "EAGAIN");
});

Deno.test("D2 repeated observations are logged once", () => {
  const { a } = setup();
  a.write("/a", "1");
  const t = a.start();
  for (let i = 0; i < 100; i++) {
    a.read("/a", t);
    a.dir("/a", t);
    a.write(`/b${i % 3}`, "x", t);
  }
  const tx = a.client.txns.get(t, 0);
  assert.ok(tx.checks <= 3, `checks ${tx.checks}`);
  assert.equal(tx.modifications, 100);
  assert.equal(tx.touched, 4);
  assert.equal(a.commit(t), "OK");
});
