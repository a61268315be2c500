// Every quota other than nodes, reached by a guest through the Core: node-size, node-permissions,
// path-max, watches, transactions, transaction-nodes, memory (and soft-memory), outstanding.
import assert from "../helpers/assert.ts";
import { RECORD_HEADER_BYTES } from "../../src/quota/accounting.ts";
import { QuotaError } from "../../src/quota/options.ts";
import { Perms } from "../../src/store/perms.ts";
import { assertExact, guestConn, MsgType, newGuest, quotaCore, quotaLogs } from "./harness.ts";

// ------------------------------------------------------------------ node-size

Deno.test("node-size: header + permissions + value + child names ≤ the quota (cxenstored 4.17's record)", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  const fits = 2048 - RECORD_HEADER_BYTES - 8; // one permission entry
  assert.equal(g.tryWrite("v", "x".repeat(fits)), "OK");
  assert.equal(g.tryWrite("w", "x".repeat(fits + 1)), "E:ENOSPC");
  assert.equal(g.try(MsgType.READ, ["w"]), "E:ENOENT", "nothing created");
  assert.equal(g.tryWrite("v", "x".repeat(fits + 1)), "E:ENOSPC", "rewriting an existing node too");
  assert.equal(h.admin.tryWrite("/local/domain/5/big", "x".repeat(4000)), "OK", "dom0 is exempt");
  assert.equal(quotaLogs(h, 5, "node-size").length, 1);
  assert.equal(h.core.quotas.report(5).refusals["node-size"], 2);
});

Deno.test("node-size: a parent's child list counts; removing a child never needs room (XSA-115 d)", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "node-size", "100"]);
  // dir: 24 + 8 + 0 + 11 per 10-character child name: 5 fit (87), a 7th would not (109).
  for (let i = 0; i < 6; i++) assert.equal(g.tryWrite(`dir/child${i}xxxx`.slice(0, 14), ""), "OK");
  assert.equal(g.tryWrite("dir/child6", ""), "E:ENOSPC");
  // dom0 makes a node over the size with a child owned by the guest: the guest may still remove it.
  h.admin.write("/local/domain/5/big", "x".repeat(3000));
  h.admin.write("/local/domain/5/big/kid", "");
  assert.equal(g.try(MsgType.RM, ["big/kid"]), "OK");
  assert.equal(g.tryWrite("big/new", ""), "E:ENOSPC", "adding a child grows the oversized parent");
  assertExact(h.core);
});

Deno.test("node-size: SET_PERMS that grows a record past the quota is ENOSPC", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  g.write("n", "x".repeat(2000)); // 24 + 8 + 2000 = 2032
  assert.equal(g.try(MsgType.SET_PERMS, ["n", "n5", "r0", "r6"]), "OK", "2048 fits");
  assert.equal(g.try(MsgType.SET_PERMS, ["n", "n5", "r0", "r6", "r7"]), "E:ENOSPC");
  assert.equal(g.ok(MsgType.GET_PERMS, ["n"]), "n5\0r0\0r6\0");
});

Deno.test("node-size in a transaction: checked at the write and again at commit", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "node-size", "100"]);
  for (let i = 0; i < 5; i++) g.write(`dir/c${i}xxxxxxxx`); // dir: 32 + 5·11 = 87
  const t = g.startTx();
  assert.equal(g.tryWrite("dir/too-long-name-here", "", t), "E:ENOSPC", "eager");
  assert.equal(g.tryWrite("dir/c5xxxxxxxx", "", t), "OK", "98 fits in the transaction's view");
  g.write("dir/c6xxxxxxxx"); // outside: 98
  const root = h.core.db.root;
  assert.equal(g.tryCommit(t), "E:ENOSPC", "dir would be 109 at commit");
  assert.ok(h.core.db.root === root);
  assertExact(h.core);
});

// ------------------------------------------------------------------ node-permissions

Deno.test("node-permissions: 5 entries (owner included) for a guest, ENOSPC beyond; dom0 exempt", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  g.write("p");
  assert.equal(g.try(MsgType.SET_PERMS, ["p", "n5", "r1", "r2", "r3", "r4"]), "OK");
  assert.equal(g.try(MsgType.SET_PERMS, ["p", "n5", "r1", "r2", "r3", "r4", "r6"]), "E:ENOSPC");
  assert.equal(g.try(MsgType.SET_PERMS, ["@releaseDomain", "n0", "r1", "r2", "r3", "r4", "r6"]), "E:ENOSPC");
  assert.equal(
    h.admin.try(MsgType.SET_PERMS, ["/local/domain/5/p", "n5", "r1", "r2", "r3", "r4", "r6", "r7"]),
    "OK",
  );
  h.admin.ok(MsgType.SET_QUOTA, ["5", "permissions", "7"]); // cxenstored 4.17's name for it
  assert.equal(g.try(MsgType.SET_PERMS, ["p", "n5", "r1", "r2", "r3", "r4", "r6", "r7"]), "OK");
});

// ------------------------------------------------------------------ path-max

Deno.test("path-max: the part after /local/domain/<id>/ for guests (EINVAL); a guest's override does not bind dom0", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "path-max", "100"]);
  const rel = "a".repeat(49) + "/" + "b".repeat(50); // 100
  assert.equal(g.tryWrite(rel, "x"), "OK");
  assert.equal(g.tryWrite(rel + "c", "x"), "E:EINVAL");
  assert.equal(g.try(MsgType.READ, [`/local/domain/5/${rel}c`]), "E:EINVAL", "absolute paths alike");
  assert.equal(g.try(MsgType.READ, [`/local/domain/6/${rel}c`]), "E:EINVAL", "whatever domain they name");
  assert.equal(g.try(MsgType.WATCH, [`${rel}c`, "t"]), "E:EINVAL");
  assert.equal(h.admin.tryWrite(`/local/domain/5/${rel}c`, "x"), "OK");
  assert.equal(quotaLogs(h, 5, "path-max").length, 1);
});

Deno.test("path-max default: 2048 relative bytes for a guest", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  const comp = "p".repeat(200);
  const rel2048 = Array(10).fill(comp).join("/") + "/" + "q".repeat(38); // 2000 + 10 + 38
  assert.equal(rel2048.length, 2048);
  assert.equal(g.tryWrite(rel2048, ""), "OK");
  assert.equal(g.try(MsgType.READ, [`/local/domain/5/${rel2048}r`]), "E:EINVAL");
});

// ------------------------------------------------------------------ watches

Deno.test("watches: per domain, over all its connections; E2BIG; dom0 exempt (per-connection cap)", () => {
  const h = quotaCore({}, { maxWatchesPrivileged: 6 });
  const g = newGuest(h, 5);
  const g2 = guestConn(h.core, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "watches", "3"]);
  g.watch("a", "t");
  g2.watch("b", "t");
  g.watch("c", "t");
  assert.equal(g2.err(MsgType.WATCH, ["d", "t"]), "E2BIG");
  assert.equal(g.err(MsgType.WATCH, ["d", "t"]), "E2BIG");
  assert.equal(h.core.quotas.report(5).usage.watches, 3);
  g.unwatch("a", "t");
  g2.watch("d", "t");
  for (let i = 0; i < 6; i++) h.admin.watch(`/w${i}`, "t");
  assert.equal(h.admin.err(MsgType.WATCH, ["/w6", "t"]), "E2BIG", "the cap binds dom0");
  assert.equal(h.core.quotas.report(5).refusals.watches, 2);
  assert.equal(h.core.quotas.report(0).refusals.watches, 1);
});

// ------------------------------------------------------------------ transactions

Deno.test("transactions: per domain over its connections (ENOSPC), nested ones included", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  const g2 = guestConn(h.core, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "transactions", "3"]);
  const t1 = g.startTx();
  g2.startTx();
  const nested = Number(g.ok(MsgType.TRANSACTION_START, [""], t1).replace(/\0$/, ""));
  assert.ok(nested > 0);
  assert.equal(g2.tryStart(), "E:ENOSPC");
  assert.equal(g.tryStart(), "E:ENOSPC");
  assert.equal(h.core.quotas.report(5).usage.transactions, 3);
  g.endTx(nested, false);
  assert.ok(Number(g2.tryStart()) > 0);
  for (let i = 0; i < 20; i++) h.admin.startTx(); // dom0: exempt
  assert.equal(h.core.quotas.report(5).refusals.transactions, 2);
  assert.equal(quotaLogs(h, 5, "transactions").length, 1);
});

Deno.test("transaction-nodes: the transaction module enforces the quota in force at its start; counted", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "transaction-nodes", "3"]);
  const t = g.startTx();
  assert.equal(g.tryWrite("a", "1", t), "OK");
  assert.equal(g.tryWrite("b", "1", t), "OK");
  assert.equal(g.try(MsgType.READ, ["a"], t), "1");
  assert.equal(g.tryWrite("c", "1", t), "OK");
  assert.equal(g.tryWrite("d", "1", t), "E:ENOSPC");
  assert.equal(g.try(MsgType.READ, ["e"], t), "E:ENOSPC");
  assert.equal(g.tryWrite("a", "2", t), "OK", "a path already touched");
  assert.equal(g.tryCommit(t), "OK");
  assert.equal(h.core.quotas.report(5).refusals["transaction-nodes"], 2);
  assert.equal(quotaLogs(h, 5, "transaction-nodes").length, 1);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "transaction-nodes", "5"]);
  const u = g.startTx();
  for (const p of ["a", "b", "c", "d", "e"]) assert.equal(g.tryWrite(p, "3", u), "OK");
  assert.equal(g.tryWrite("f", "3", u), "E:ENOSPC");
});

// ------------------------------------------------------------------ memory

Deno.test("memory: nodes and watches are charged; ENOMEM past the quota; exact after removals", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", "4000"]);
  const home = h.core.quotas.report(5).usage.memory;
  assert.equal(home, 15 + 24 + 8, "path + record header + one permission entry");
  let i = 0;
  while (g.tryWrite(`v${i}`, "x".repeat(500)) === "OK") i++;
  assert.equal(g.tryWrite(`v${i}`, "x".repeat(500)), "E:ENOMEM");
  const r = h.core.quotas.report(5);
  // Each node: path (18) + header + permission + value, and its name ("vN\0") in the home's record.
  assert.equal(i, 7);
  assert.equal(r.usage.memory, home + i * (18 + 24 + 8 + 500 + 3));
  assert.equal(g.err(MsgType.WATCH, ["w", "t".repeat(1000)]), "ENOMEM");
  g.rm("v0");
  g.watch("w", "t".repeat(100));
  assert.equal(h.core.quotas.report(5).memoryParts.watches, "/local/domain/5/w".length + 100);
  assert.equal(h.core.quotas.report(5).refusals.memory, 3);
  assertExact(h.core);
});

Deno.test("soft-memory: a warning when a domain crosses it, a notice when it is back below; no refusal", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "soft-memory", "1000"]);
  g.write("a", "x".repeat(900));
  g.write("b", "x".repeat(100));
  g.write("c", "x".repeat(100));
  const warn = h.logs.filter((l) => l.msg.includes("domid=5 quota=soft-memory"));
  assert.equal(warn.length, 1);
  assert.equal(warn[0].level, "warn");
  g.rm("a");
  assert.ok(h.logs.some((l) => l.level === "info" && l.msg.includes("domid=5 is below soft-memory")));
  assert.deepEqual(h.core.quotas.report(5).refusals, {});
});

// ------------------------------------------------------------------ outstanding

Deno.test("outstanding: the transport stops reading a flooding guest at its quota; others are served", () => {
  const h = quotaCore();
  const flood = newGuest(h, 5);
  const other = newGuest(h, 6);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "outstanding", "4"]);
  const q = h.core.quotas;
  // A transport that reads while allowed and never gets the replies consumed.
  let read = 0;
  for (let poll = 0; poll < 100; poll++) {
    if (!q.mayReceive(flood.client)) continue;
    q.requestReceived(flood.client);
    flood.write(`n${read++}`, "x");
  }
  assert.equal(read, 4);
  assert.equal(q.report(5).usage.outstanding, 4);
  assert.ok(q.mayReceive(other.client), "another guest is unaffected");
  assert.ok(q.mayReceive(h.admin.client), "dom0 too");
  assert.equal(q.report(5).refusals.outstanding, 1, "one stall, however often polled");
  assert.equal(quotaLogs(h, 5, "outstanding").length, 1);
  q.replyDelivered(flood.client);
  assert.ok(q.mayReceive(flood.client), "resumes as replies drain");
  q.requestReceived(flood.client);
  assert.ok(!q.mayReceive(flood.client));
  assert.equal(q.report(5).refusals.outstanding, 2);
  q.connectionGone(flood.client);
  assert.equal(q.report(5).usage.outstanding, 0);
});

Deno.test("memory: output the transport holds counts, and stalls the domain when over", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", "10000"]);
  const q = h.core.quotas;
  q.setQueuedOutput(g.client, 9000);
  assert.ok(q.mayReceive(g.client));
  assert.equal(g.tryWrite("big", "x".repeat(1000)), "E:ENOMEM");
  q.setQueuedOutput(g.client, 20000);
  assert.ok(!q.mayReceive(g.client));
  assert.equal(q.report(5).memoryParts.output, 20000);
  q.setQueuedOutput(g.client, 0);
  assert.ok(q.mayReceive(g.client));
  assert.equal(g.tryWrite("big", "x".repeat(1000)), "OK");
});

Deno.test("memory: the transport's check sees watches added, removed and closed with their connection", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  const q = h.core.quotas;
  const home = q.report(5).usage.memory;
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", String(home + 1000)]);
  assert.ok(q.mayReceive(g.client)); // the watch sum is taken (and kept) here
  g.watch("w", "t".repeat(300));
  g.watch("x", "t".repeat(300));
  assert.ok(q.mayReceive(g.client), "two watches: under the quota");
  // Watches are checked when they are made; a lower quota then leaves the domain over it.
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", String(home + 500)]);
  assert.ok(!q.mayReceive(g.client), "two watches: over the lower quota");
  g.ok(MsgType.UNWATCH, ["x", "t".repeat(300)]);
  assert.ok(q.mayReceive(g.client), "one removed: under again");
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", String(home + 1000)]);
  g.watch("x", "t".repeat(300));
  h.admin.ok(MsgType.SET_QUOTA, ["5", "memory", String(home + 500)]);
  assert.ok(!q.mayReceive(g.client));
  h.core.close(g.client); // its watches go with it
  const again = guestConn(h.core, 5);
  assert.ok(q.mayReceive(again.client), "a new connection of the domain holds none");
  assert.equal(q.report(5).memoryParts.watches, 0);
});

Deno.test("a refusal is a QuotaError naming the quota, its bound and what was asked", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  const e = assert.throws(
    () => h.core.quotas.checkPermsCount(g.client, Perms.parse(["n5", "r1", "r2", "r3", "r4", "r6", "r7"])),
    QuotaError,
  );
  assert.equal(e.errno, "ENOSPC");
  assert.equal(e.quota, "node-permissions");
  assert.equal(e.limit, 5);
  assert.equal(e.wanted, 7);
  assert.equal(h.core.quotas.report(5).refusals["node-permissions"], 1);
});
