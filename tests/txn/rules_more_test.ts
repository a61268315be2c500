/**
 * The rest of docs/transactions.md's examples (same numbering): nested transactions, protocol,
 * isolation and watches, limits, observations. tests/txn/rules_test.ts has the conflict rules.
 */
import assert from "../helpers/assert.ts";
import { FEATURE_NESTED_TRANSACTIONS } from "../../src/protocol/wire.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { brief, Harness, setup } from "./harness.ts";
import { lineRelated } from "../../src/txn/transaction.ts";

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
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 1000, snapshotOnOverflow: false } });
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
  const h = new Harness({ tx: { maxTouched: 100, maxOps: 5, snapshotOnOverflow: false } });
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
  const h = new Harness({ tx: { maxTouched: 3, snapshotOnOverflow: false } });
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

Deno.test("L6 dom0 reads beyond the limits: the transaction keeps its snapshot, a read-only one commits", () => {
  // The default dom0 limits (snapshotOnOverflow), made small.
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 20; i++) o.tryWrite(`/n/${i}`, `${i}`);
  const t = a.startTx();
  o.tryWrite("/n/5", "changed");
  for (let i = 0; i < 20; i++) {
    assert.equal(a.tryRead(`/n/${i}`, t), `${i}`, "the snapshot, beyond the limit");
  }
  assert.equal(a.tryDir("/n", t).split(",").length, 20);
  assert.equal(a.tryGetPerms("/n/19", t), "n0");
  assert.equal(a.commit(t), "OK", "read-only: never fails");
});

Deno.test("L7 dom0 past the observation limit commits only if the store is unchanged since its start", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 10; i++) o.tryWrite(`/n/${i}`, `${i}`);
  const t = a.startTx();
  for (let i = 0; i < 10; i++) a.tryRead(`/n/${i}`, t);
  assert.equal(a.tryWrite("/out", "1", t), "OK");
  assert.equal(a.commit(t), "OK", "nothing changed meanwhile");
  assert.equal(a.tryRead("/out"), "1");
  const u = a.startTx();
  for (let i = 0; i < 10; i++) a.tryRead(`/n/${i}`, u);
  assert.equal(a.tryWrite("/out", "2", u), "OK");
  o.tryWrite("/unrelated", "x"); // not observed, but the observations were dropped: conservative
  assert.equal(a.commit(u), "EAGAIN");
  assert.equal(a.tryRead("/out"), "1", "nothing applied");
});

Deno.test("L8 modifications stay bounded for dom0: past the limit they are refused (ENOSPC)", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const t = a.startTx();
  a.tryRead("/r1", t);
  a.tryRead("/r2", t);
  a.tryRead("/r3", t);
  for (let i = 0; i < 4; i++) assert.equal(a.tryWrite(`/w${i}`, "1", t), "OK", "observations make room");
  assert.equal(a.tryWrite("/w4", "1", t), "E:ENOSPC");
  assert.equal(a.tryRead("/r9", t), "E:ENOENT", "reads go on");
  assert.equal(a.commit(t), "OK");
  assert.equal(a.tryRead("/w3"), "1");
  assert.equal(a.tryRead("/w4"), "E:ENOENT");
});

Deno.test("L9 guests keep the transaction-nodes quota: past it, reads are refused (ENOSPC)", () => {
  const h = new Harness();
  const o = h.conn("o");
  o.tryWrite("/local/domain/7", "");
  o.trySetPerms("/local/domain/7", "n7");
  const g = h.guest(7);
  const t = g.startTx();
  const limit = h.core.limits.tx.maxTouched;
  let refused = 0;
  for (let i = 0; i < limit + 5; i++) if (g.tryRead(`/local/domain/7/x${i}`, t) === "E:ENOSPC") refused++;
  assert.ok(refused >= 5, `refused ${refused}`);
});

Deno.test("L10 a nested transaction past the limit merges only into an unchanged parent view", () => {
  const h = new Harness({ tx: { maxTouched: 4, maxOps: 16 } });
  const a = h.conn();
  const o = h.conn("o");
  for (let i = 0; i < 10; i++) o.tryWrite(`/n/${i}`, `${i}`);
  const p = a.startTx();
  const c = a.startTx(p);
  for (let i = 0; i < 10; i++) a.tryRead(`/n/${i}`, c);
  a.tryWrite("/from-child", "1", c);
  a.tryWrite("/parent-moved", "1", p); // the parent's view is no longer the child's snapshot
  assert.equal(a.commit(c), "EAGAIN");
  const d = a.startTx(p);
  for (let i = 0; i < 10; i++) a.tryRead(`/n/${i}`, d);
  a.tryWrite("/from-child", "2", d);
  assert.equal(a.commit(d), "OK");
  o.tryWrite("/elsewhere", "x"); // the parent inherited the whole-snapshot dependency
  assert.equal(a.commit(p), "EAGAIN");
  assert.equal(a.tryRead("/from-child"), "E:ENOENT");
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

Deno.test("D3 an observation is logged again only after the transaction modified the path, an ancestor or a descendant", () => {
  // What the deduplication's bookkeeping (modifications at and below each path) must see; a sibling
  // or a path sharing a name prefix leaves the observation standing.
  const cases: Array<[string, (a: ReturnType<typeof setup>["a"], t: number) => void, boolean]> = [
    ["the path itself", (a, t) => a.tryWrite("/p/q/s", "2", t), true],
    ["its parent", (a, t) => a.trySetPerms("/p/q", "n0,r3", t), true],
    ["an ancestor two levels up", (a, t) => a.trySetPerms("/p", "n0,r3", t), true],
    ["a child", (a, t) => a.tryWrite("/p/q/s/c", "x", t), true],
    ["a grandchild", (a, t) => a.tryWrite("/p/q/s/c/d", "x", t), true],
    ["a sibling", (a, t) => a.tryWrite("/p/q/t", "x", t), false],
    ["a path sharing its name as a prefix", (a, t) => a.tryWrite("/p/q/s2", "x", t), false],
    ["a sibling's child", (a, t) => a.tryWrite("/p/q/t/c", "x", t), false],
  ];
  // Without and with 20 unrelated modifications in between: a few modifications since are compared
  // one by one, many are looked up in an index (Transaction.modifiedSince); both must answer alike.
  for (const unrelated of [0, 20]) {
    for (const [what, modify, again] of cases) {
      const { a } = setup();
      a.tryWrite("/p/q/s", "1");
      a.tryWrite("/p/q/t", "1");
      const t = a.startTx();
      a.tryRead("/p/q/s", t);
      const tx = a.client.txns.get(t, 0);
      for (let i = 0; i < unrelated; i++) a.tryWrite(`/u/n${i}`, "x", t);
      modify(a, t);
      const checks = tx.checks; // the modification's own observations counted
      a.tryRead("/p/q/s", t);
      assert.equal(tx.checks - checks, again ? 1 : 0, `after ${unrelated} others, modifying ${what}`);
      assert.equal(a.commit(t), "OK", what);
    }
  }
});

Deno.test("D3 lineRelated: a modification is on an observation's line iff it is the path, an ancestor or a descendant", () => {
  const cases: Array<[string, string, boolean]> = [
    ["/a/b", "/a/b", true],
    ["/a", "/a/b", true], // ancestor
    ["/", "/a/b", true], // the root is everyone's ancestor
    ["/a/b/c", "/a/b", true], // descendant
    ["/a/b", "/", true], // an observation of the root
    ["/a/bc", "/a/b", false], // a name prefix, longer
    ["/a/b", "/a/bc", false], // a name prefix, shorter
    ["/a/c", "/a/b", false], // sibling
    ["/x", "/a/b", false],
  ];
  for (const [mod, path, related] of cases) {
    assert.equal(lineRelated(mod, path), related, `${mod} on ${path}`);
  }
});
