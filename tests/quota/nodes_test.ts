// The node quota: nodes owned per domain, counted from the commit stream (docs/quotas.md).
// Hostile-guest scenarios: XSA-272 (quota not applied), XSA-414/415 (creation failing part-way),
// XSA-421 (unlimited nodes via transactions), XSA-419 (cooperating guests).
import assert from "../helpers/assert.ts";
import {
  assertExact,
  guestConn,
  makeDomainHome,
  MsgType,
  newGuest,
  quotaCore,
  quotaLogs,
  subtreePaths,
} from "./harness.ts";

Deno.test("nodes: a guest owns exactly its quota; the next node is ENOSPC; rm gives room back", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const g = newGuest(h, 5);
  assert.equal(h.core.quotas.ownedNodes(5), 1, "its home counts");
  for (let i = 0; i < 9; i++) assert.equal(g.tryWrite(`n${i}`, "v"), "OK");
  assert.equal(h.core.quotas.ownedNodes(5), 10);
  assert.equal(g.tryWrite("n9", "v"), "E:ENOSPC");
  assert.equal(g.try(MsgType.MKDIR, ["n9"]), "E:ENOSPC");
  assert.equal(g.tryWrite("n0", "rewritten at the quota"), "OK", "writing an existing node creates none");
  assert.equal(g.try(MsgType.MKDIR, ["n1"]), "OK", "MKDIR of an existing node creates none");
  assert.equal(h.core.quotas.ownedNodes(5), 10);
  g.rm("n0");
  assert.equal(g.tryWrite("n9", "v"), "OK");
  assert.equal(g.tryWrite("n10", "v"), "E:ENOSPC");
  assertExact(h.core);
});

Deno.test("nodes: XSA-272 — quota+50 new leaves never take the count past the quota; counted, logged once", () => {
  const h = quotaCore({ defaults: { nodes: 20 } });
  const g = newGuest(h, 5);
  g.write("q");
  let refused = 0;
  for (let i = 0; i < 70; i++) if (g.tryWrite(`q/${i}`, "x") === "E:ENOSPC") refused++;
  assert.equal(h.core.quotas.ownedNodes(5), 20);
  assert.equal(refused, 70 - 18);
  assert.equal(h.core.quotas.report(5).refusals.nodes, refused);
  const lines = quotaLogs(h, 5, "nodes");
  assert.equal(lines.length, 1, `one log line, got ${lines.length}`);
  assert.ok(/domid=5 quota=nodes limit=20 .*result=ENOSPC/.test(lines[0]), lines[0]);
  assertExact(h.core);
});

Deno.test("nodes: XSA-414 — a deep write that does not fit creates none of its nodes, 10^3 times", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const g = newGuest(h, 5);
  for (let i = 0; i < 7; i++) g.write(`n${i}`); // 8 owned: quota − 2
  const before = subtreePaths(h.core, "/local/domain/5");
  const root = h.core.db.root;
  for (let i = 0; i < 1000; i++) assert.equal(g.tryWrite("a/b/c/d/e", "x"), "E:ENOSPC");
  assert.ok(h.core.db.root === root, "the store did not change at all");
  assert.deepEqual(subtreePaths(h.core, "/local/domain/5"), before);
  assert.equal(h.core.quotas.ownedNodes(5), 8);
  assert.equal(h.core.quotas.report(5).refusals.nodes, 1000);
  assert.equal(g.tryWrite("a/b", "x"), "OK", "two still fit");
  assertExact(h.core);
});

Deno.test("nodes in a transaction: eager refusal at the committed count; a deep write leaves no orphan (XSA-415)", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const g = newGuest(h, 5);
  for (let i = 0; i < 7; i++) g.write(`n${i}`); // 8 owned
  const t = g.startTx();
  assert.equal(g.tryWrite("t1", "x", t), "OK");
  assert.equal(g.tryWrite("a/b/c/d/e", "x", t), "E:ENOSPC", "refused at the write, as cxenstored");
  assert.equal(g.try(MsgType.READ, ["a"], t), "E:ENOENT", "no intermediate node in the transaction's view");
  assert.equal(g.tryCommit(t), "OK");
  assert.deepEqual(subtreePaths(h.core, "/local/domain/5/a"), []);
  assert.equal(h.core.quotas.ownedNodes(5), 9);
  assertExact(h.core);
});

Deno.test("nodes: a transaction is checked as a whole at commit; a refused commit applies nothing (XSA-421)", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const g = newGuest(h, 5);
  const t = g.startTx();
  // Each write fits the committed count (1), so each is accepted inside the transaction...
  for (let i = 0; i < 6; i++) assert.equal(g.tryWrite(`x${i}`, "v", t), "OK");
  // ...meanwhile the guest fills most of its quota outside it.
  for (let i = 0; i < 4; i++) g.write(`y${i}`);
  const root = h.core.db.root;
  assert.equal(g.tryCommit(t), "E:ENOSPC", "5 + 6 > 10");
  assert.ok(h.core.db.root === root, "nothing of the transaction was applied");
  assert.equal(g.try(MsgType.READ, ["x0"]), "E:ENOENT");
  assert.equal(g.tryCommit(t), "E:ENOENT", "the refused transaction is gone");
  assert.equal(h.core.quotas.ownedNodes(5), 5);
  assert.equal(h.core.quotas.report(5).refusals.nodes, 1);
  assertExact(h.core);
});

Deno.test("nodes: creations and removals inside one transaction net out at commit", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const g = newGuest(h, 5);
  for (let i = 0; i < 6; i++) g.write(`n${i}`); // quota − 3
  const t = g.startTx();
  // Create and delete the same nodes, and trade two old ones for two new ones: the commit adds 3 − 3
  // + 2 − 2 nodes. (Each write is checked against the committed count plus what it creates, so at
  // quota − 3 a three-node write still fits.)
  g.write("tmp/a/b", "x", t);
  g.rm("tmp", t);
  g.rm("n0", t);
  g.rm("n1", t);
  g.write("m0", "", t);
  g.write("m1", "", t);
  assert.equal(g.tryCommit(t), "OK");
  assert.equal(h.core.quotas.ownedNodes(5), 7);
  // Repeat until the sum would exceed the quota (each round nets +2, every write fitting the committed
  // count on its own): a commit applies fully or not at all, and the count never passes the quota.
  const results: string[] = [];
  for (let round = 0; round < 4; round++) {
    const u = g.startTx();
    for (const x of ["a", "b", "c"]) g.write(`r${round}${x}`, "", u);
    g.rm(`r${round}b`, u);
    results.push(g.tryCommit(u));
    assertExact(h.core);
  }
  assert.deepEqual(results, ["OK", "E:ENOSPC", "E:ENOSPC", "E:ENOSPC"]);
  assert.equal(h.core.quotas.ownedNodes(5), 9);
  assert.equal(g.try(MsgType.READ, ["r1a"]), "E:ENOENT");
});

Deno.test("nodes: dom0 is exempt and may fill a guest's directory past the guest's quota", () => {
  const h = quotaCore({ defaults: { nodes: 5 } });
  const g = newGuest(h, 5);
  for (let i = 0; i < 8; i++) h.admin.write(`/local/domain/5/dev/${i}`, "x"); // inherit owner 5
  assert.equal(h.core.quotas.ownedNodes(5), 10);
  assert.equal(g.tryWrite("mine", "x"), "E:ENOSPC", "the guest itself is over its quota");
  g.rm("dev/0");
  assert.equal(h.core.quotas.ownedNodes(5), 9);
  assertExact(h.core);
});

Deno.test("nodes: the hard cap binds exempt domains too", () => {
  const h = quotaCore({ caps: { nodes: 20 } });
  const base = h.core.quotas.ownedNodes(0);
  let i = 0;
  while (h.admin.tryWrite(`/d0/${i}`, "x") === "OK") i++;
  assert.equal(h.core.quotas.ownedNodes(0), 20);
  assert.equal(i, 20 - base - 1, "/d0 itself is one of them");
  assert.equal(h.admin.tryWrite(`/d0/${i}`, "x"), "E:ENOSPC");
  assert.equal(h.core.quotas.report(0).refusals.nodes, 2);
  assertExact(h.core);
});

Deno.test("exemption is a configuration choice: exempt: () => false puts dom0 under quota", () => {
  const h = quotaCore({ defaults: { nodes: 8 }, exempt: () => false });
  assert.equal(h.core.quotas.isExempt(0), false);
  const owned = h.core.quotas.ownedNodes(0);
  for (let i = owned; i < 7; i++) h.admin.write(`/x${i}`);
  assert.equal(h.core.quotas.ownedNodes(0), 8 - 1);
  assert.equal(h.admin.tryWrite("/last"), "OK");
  assert.equal(h.admin.tryWrite("/over"), "E:ENOSPC");
  assert.equal(quotaLogs(h, 0, "nodes").length, 1);
});

Deno.test("nodes: XSA-419 — nodes a guest creates in another guest's directory are its own, and go with it", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  const a = newGuest(h, 5);
  const b = newGuest(h, 6);
  a.write("shared");
  a.ok(MsgType.SET_PERMS, ["shared", "n5", "b6"]);
  for (let i = 0; i < 9; i++) b.write(`/local/domain/5/shared/${i}`, "x");
  assert.equal(h.core.quotas.ownedNodes(6), 10, "charged to the creator");
  assert.equal(h.core.quotas.ownedNodes(5), 2);
  assert.equal(b.tryWrite("/local/domain/5/shared/more", "x"), "E:ENOSPC");
  // B dies: the lifecycle closes it and removes what it owned, then tells the quotas.
  h.core.close(b.client);
  for (let i = 0; i < 9; i++) h.admin.rm(`/local/domain/5/shared/${i}`);
  h.admin.rm("/local/domain/6");
  assert.equal(h.core.quotas.domainGone(6), 0);
  assert.equal(h.core.quotas.ownedNodes(6), 0);
  assertExact(h.core);
});

Deno.test("domainGone reports (and keeps counting) nodes the lifecycle left owned by the dead domain", () => {
  const h = quotaCore();
  const g = newGuest(h, 7);
  g.write("left/behind");
  h.core.close(g.client);
  assert.equal(h.core.quotas.domainGone(7), 3);
  assert.ok(h.logs.some((l) => l.level === "warn" && l.msg.includes("domain 7 is gone but still owns 3")));
  assertExact(h.core);
});

Deno.test("XSA-483 — a domid reused after death inherits no quota usage, override or refusal state", () => {
  const h = quotaCore({ defaults: { nodes: 10 } });
  let g = newGuest(h, 7);
  h.admin.ok(MsgType.SET_QUOTA, ["7", "nodes", "6"]);
  for (let i = 0; i < 5; i++) g.write(`n${i}`);
  assert.equal(g.tryWrite("full", "x"), "E:ENOSPC");
  g.watch("w", "t");
  g.startTx();
  h.core.quotas.requestReceived(g.client);
  // Death: connection closed, nodes removed (the lifecycle's job), then domainGone.
  h.core.close(g.client);
  h.admin.rm("/local/domain/7");
  assert.equal(h.core.quotas.domainGone(7), 0);
  const r = h.core.quotas.report(7);
  assert.deepEqual(r.usage, { nodes: 0, watches: 0, transactions: 0, outstanding: 0, memory: 0 });
  assert.deepEqual(r.refusals, {});
  assert.deepEqual(r.maxSeen, {});
  assert.equal(r.quotas.nodes, 10, "the old domain's override is gone");
  // The new domain 7 gets the whole (global) quota, and its first refusal is logged again.
  makeDomainHome(h.admin, 7);
  g = guestConn(h.core, 7);
  for (let i = 0; i < 9; i++) assert.equal(g.tryWrite(`m${i}`, "x"), "OK");
  assert.equal(g.tryWrite("over", "x"), "E:ENOSPC");
  assert.equal(quotaLogs(h, 7, "nodes").length, 2, "one per domain lifetime");
  assertExact(h.core);
});
