// Hostile guests flooding each quota for a long time, and domains dying and coming back under the same
// ids: the daemon keeps answering, other guests keep working, the quota module's own state stays
// bounded by the number of live domains, the accounting stays exact, and RSS stays bounded.
import assert from "../helpers/assert.ts";
import { assertExact, guestConn, makeDomainHome, MsgType, newGuest, quotaCore } from "./harness.ts";

Deno.test("floods: nodes, watches, transactions, requests and oversized writes, 2·10^4 rounds", () => {
  const h = quotaCore({ defaults: { nodes: 50, watches: 20, transactions: 4, outstanding: 8 } });
  const bad = newGuest(h, 5);
  const good = newGuest(h, 6);
  const q = h.core.quotas;
  for (let i = 0; i < 49; i++) bad.write(`n${i}`, "x");
  const rss0 = Deno.memoryUsage().rss;
  for (let round = 0; round < 20_000; round++) {
    switch (round % 5) {
      case 0:
        assert.equal(bad.tryWrite(`more/${round}/a/b`, "x"), "E:ENOSPC");
        break;
      case 1:
        assert.equal(bad.tryWrite("n0", "x".repeat(3000)), "E:ENOSPC"); // node-size
        break;
      case 2: {
        // Watches up to the quota, one more, then RESET_WATCHES; every 50th round.
        if (round % 50 !== 2) break;
        for (let i = 0; i < 20; i++) bad.ok(MsgType.WATCH, [`w${i}`, `t${round}`]);
        assert.equal(bad.err(MsgType.WATCH, ["w20", "t"]), "E2BIG");
        bad.ok(MsgType.RESET_WATCHES, []);
        bad.events();
        break;
      }
      case 3: {
        if (round % 50 !== 3) break;
        for (let i = 0; i < 4; i++) bad.startTx();
        assert.equal(bad.tryStart(), "E:ENOSPC");
        bad.ok(MsgType.RESET_WATCHES, []); // drops the transactions too
        break;
      }
      case 4: {
        // A transport that reads while it may; replies are consumed every 50th round only.
        if (q.mayReceive(bad.client)) {
          q.requestReceived(bad.client);
          bad.try(MsgType.READ, ["n1"]);
        }
        if (round % 50 === 4) { while (q.report(5).usage.outstanding > 0) q.replyDelivered(bad.client); }
        break;
      }
    }
    if (round % 1000 === 0) {
      // The other guest is served normally throughout.
      assert.equal(good.tryWrite(`g${round % 7}`, "ok"), "OK");
      assert.ok(q.mayReceive(good.client));
    }
  }
  const r = q.report(5);
  assert.equal(r.usage.nodes, 50);
  assert.equal(r.usage.watches, 0);
  assert.equal(r.usage.transactions, 0);
  assert.equal(r.refusals.nodes, 4000);
  assert.equal(r.refusals["node-size"], 4000);
  assert.equal(r.refusals.watches, 400);
  assert.equal(r.refusals.transactions, 400);
  assert.ok((r.refusals.outstanding ?? 0) >= 400, `${r.refusals.outstanding} stalls`);
  assert.equal(h.logs.filter((l) => l.msg.includes("domid=5 ")).length, 5, "one line per quota");
  assert.equal(h.core.watches.trie.size, 0);
  assert.ok(q.trackedEntries < 32, `quota state: ${q.trackedEntries} entries`);
  assertExact(h.core);
  const grown = Deno.memoryUsage().rss - rss0;
  assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
});

Deno.test("domains die and their ids are reused, 500 times: no usage, state or node survives", () => {
  const h = quotaCore({ defaults: { nodes: 30 } });
  const q = h.core.quotas;
  const rss0 = Deno.memoryUsage().rss;
  for (let life = 0; life < 500; life++) {
    const domid = 10 + (life % 5);
    makeDomainHome(h.admin, domid);
    const g = guestConn(h.core, domid);
    // Each life fills its quota, watches, opens transactions, gets refused, has requests in flight.
    for (let i = 0; i < 29; i++) {
      assert.equal(g.tryWrite(`n/${i}`.replace("n/0", "n"), "x"), "OK", `life ${life} n${i}`);
    }
    assert.equal(g.tryWrite("over", "x"), "E:ENOSPC");
    g.ok(MsgType.WATCH, ["n", "t"]);
    g.startTx();
    h.admin.ok(MsgType.SET_QUOTA, [String(domid), "watches", "7"]);
    q.requestReceived(g.client);
    // Death, as the lifecycle does it: close, remove its nodes, then domainGone.
    h.core.close(g.client);
    h.admin.rm(`/local/domain/${domid}`);
    assert.equal(q.domainGone(domid), 0);
    const r = q.report(domid);
    assert.deepEqual(r.usage, { nodes: 0, watches: 0, transactions: 0, outstanding: 0, memory: 0 });
    assert.equal(r.quotas.watches, 128);
  }
  assert.equal(h.logs.filter((l) => l.msg.includes("quota=nodes")).length, 500, "each life logs its own");
  assert.equal(h.core.clients.size, 1);
  assert.ok(q.trackedEntries < 8, `quota state: ${q.trackedEntries} entries`);
  assertExact(h.core);
  const grown = Deno.memoryUsage().rss - rss0;
  assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${grown} bytes`);
});
