// Fairness between rings (src/transport/scheduler.ts) and the write throttle (src/transport/throttle.ts),
// in-process with the daemon's per-ring request counts.
import assert from "../helpers/assert.ts";
import { ok } from "../helpers/core.ts";
import { rig } from "./harness.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { encode, REQUESTS, RING_SIZE, ringProduce, ringUsed } from "../../src/xen/ring.ts";
import type { GuestClient } from "../../src/client/guest.ts";
import { type Queueable, ReadyQueue } from "../../src/transport/scheduler.ts";

/** Named queue items (a ring's place in the queue is kept in the ring). */
interface Item extends Queueable {
  readonly name: string;
}
function items(...names: string[]): Item[] {
  return names.map((name) => ({ name, readyTicket: 0 }));
}

const T = MsgType;

/** Fill `g`'s request ring with whole copies of one request (never reading replies); returns how many. */
function flood(g: GuestClient, type: number, payload: string): number {
  const m = encode(type, 1, 0, payload);
  let n = 0;
  // Whole messages only: a partial one would desynchronise the stream.
  while (RING_SIZE - ringUsed(g.page, REQUESTS) >= m.length) {
    ringProduce(g.page, REQUESTS, m);
    n++;
  }
  g.transport.notify();
  return n;
}

Deno.test("ReadyQueue: round-robin, at most perRing each, at most budget in total, the rest goes to the back", () => {
  const q = new ReadyQueue<Item>();
  const work = new Map([["a", 10], ["b", 10], ["c", 1], ["d", 10]]);
  for (const x of items(...work.keys())) q.add(x);
  const order: string[] = [];
  const serve = (x: Item, max: number) => {
    const k = x.name;
    const n = Math.min(max, work.get(k)!);
    work.set(k, work.get(k)! - n);
    for (let i = 0; i < n; i++) order.push(k);
    return { used: n, more: work.get(k)! > 0 };
  };
  assert.equal(q.run(7, 3, serve), 7);
  assert.deepEqual(order.join(""), "aaabbbc");
  assert.equal(q.run(7, 3, serve), 7);
  assert.deepEqual(order.join("").slice(7), "dddaaab", "d was never skipped; a and b went to the back");
  assert.equal(q.size, 3);
});

Deno.test("fairness: a light guest is served within a bounded number of turns, however many rings flood", async () => {
  const r = rig({ perRingBudget: 4, turnBudget: 10 });
  ok(r.core, r.dom0, T.WRITE, "/pub\0v");
  for (let d = 1; d <= 6; d++) r.create(d); // before dom0 grants them (spec PERM-10)
  ok(r.core, r.dom0, T.SET_PERMS, "/pub\0n0\0r1\0r2\0r3\0r4\0r5\0r6\0");
  const flooders = [1, 2, 3, 4, 5].map((d) => r.guest(d));
  const light = r.guest(6);
  for (const f of flooders) assert.ok(flood(f, T.READ, "/pub\0") > 30);
  const id = light.send(T.READ, "/pub\0"); // queued behind every flooder
  let turns = 0;
  const served = () => [1, 2, 3, 4, 5, 6].map((d) => r.domains.ringInfo(d)!.requests);
  let before = served();
  while (r.domains.ringInfo(6)!.requests === 0) {
    r.turn();
    turns++;
    const now = served();
    const delta = now.map((n, i) => n - before[i]);
    assert.ok(delta.every((n) => n <= 4), `turn ${turns}: no ring above its share ${delta}`);
    assert.ok(delta.reduce((a, b) => a + b, 0) <= 10, `turn ${turns}: bounded work ${delta}`);
    before = now;
    assert.ok(turns <= 3, "five flooders ahead × 4 requests / 10 per turn: served by the third turn");
  }
  assert.equal((await light.reply(id)).payload, "v");
  // The flooders are all still being served, none starved either.
  for (let i = 0; i < 20; i++) r.turn();
  const counts = served().slice(0, 5);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 4, `equal shares ${counts}`);
});

Deno.test("XSA-206: while a transaction is open, a guest's writes are throttled, not refused; dom0 never is", async () => {
  let clock = 1000;
  const r = rig({ writeThrottle: { ratePerSec: 200, burst: 10 }, now: () => clock });
  r.create(5);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/5\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5\0n5\0");
  const g = r.guest(5);
  // No transaction open: writes are not limited.
  assert.ok(flood(g, T.WRITE, "x\0v") > 40);
  for (let i = 0; i < 20; i++) r.turn();
  const free = r.domains.ringInfo(5)!.requests;
  assert.ok(free > 40, `${free} writes served freely`);
  await g.eventsWithin(0);
  g.pump(); // drain replies
  // dom0 opens a transaction: the guest gets its burst, then nothing until time passes.
  const tx = ok(r.core, r.dom0, T.TRANSACTION_START, "\0").replace("\0", "");
  flood(g, T.WRITE, "x\0w");
  for (let i = 0; i < 10; i++) r.turn();
  const burst = r.domains.ringInfo(5)!.requests - free;
  assert.ok(burst >= 10 && burst <= 11, `burst of ${burst}`);
  assert.ok(r.rings.stats.throttled > 0);
  clock += 50; // 50 ms at 200/s: 10 more
  for (let i = 0; i < 10; i++) r.turn();
  const more = r.domains.ringInfo(5)!.requests - free - burst;
  assert.ok(more >= 9 && more <= 11, `${more} after 50 ms`);
  // dom0 is not throttled: its transaction commits.
  ok(r.core, r.dom0, T.WRITE, "/local/domain/0/backend\0b", Number(tx));
  ok(r.core, r.dom0, T.TRANSACTION_END, "T\0", Number(tx));
  // No transaction open any more: the rest of the guest's writes go through.
  for (let i = 0; i < 20; i++) r.turn();
  g.pump();
  const all = r.domains.ringInfo(5)!.requests;
  assert.ok(all > free + burst + more, `served after the transaction ended (${all})`);
  assert.equal(r.domains.ringInfo(5)!.state, "connected");
});

Deno.test("a ring stalled by a quota is looked at again without a new signal once the stall ends", () => {
  let open = false;
  const calls: string[] = [];
  const r = rig({
    quotas: {
      mayReceive: () => open,
      requestReceived: () => void calls.push("received"),
      replyDelivered: () => void calls.push("delivered"),
      setQueuedOutput: () => {},
      connectionGone: () => {},
    },
  });
  ok(r.core, r.dom0, T.WRITE, "/pub\0v");
  r.create(5); // before dom0 grants it (spec PERM-10)
  ok(r.core, r.dom0, T.SET_PERMS, "/pub\0n0\0r5\0");
  const g = r.guest(5);
  flood(g, T.READ, "/pub\0"); // one signal only
  r.turn();
  assert.equal(r.domains.ringInfo(5)!.requests, 0, "stalled: nothing read");
  open = true; // e.g. dom0 removed some of the domain's nodes: under its memory quota again
  r.turn(); // the turn's end looks at the parked ring: no signal from the guest needed
  r.turn();
  assert.ok(r.domains.ringInfo(5)!.requests > 0, "served after the stall");
  assert.ok(calls.includes("received") && calls.includes("delivered"), "accounted");
});

Deno.test("ReadyQueue: in the order items were (last) queued; add/delete churn leaves nothing queued", () => {
  const q = new ReadyQueue<Item>();
  const served: string[] = [];
  const serveAll = (x: Item) => {
    served.push(x.name);
    return { used: 1, more: false };
  };
  const [a, b, c, d, e] = items("a", "b", "c", "d", "e");
  for (const x of [a, b, c]) q.add(x);
  q.delete(a);
  q.add(a); // back in, at the back
  q.add(b); // already queued: stays where it is
  assert.equal(q.size, 3);
  assert.equal(q.run(100, 1, serveAll), 3);
  assert.deepEqual(served, ["b", "c", "a"]);
  assert.equal(q.size, 0);
  // Rings that come and go before any round is served leave nothing behind, with nothing else
  // queued and with a ring waiting meanwhile (its place kept).
  for (const waiting of [null, d]) {
    if (waiting !== null) q.add(waiting);
    for (const r of items(...Array.from({ length: 10_000 }, (_, i) => `r${i}`))) {
      q.add(r);
      q.delete(r);
      assert.ok(q.entries <= 2 * q.size + 65, `entries ${q.entries} for ${q.size} queued`);
    }
    assert.equal(q.size, waiting === null ? 0 : 1);
  }
  q.add(e);
  served.length = 0;
  assert.equal(q.run(100, 1, serveAll), 2);
  assert.deepEqual(served, ["d", "e"], "nothing of the churn is served, d kept its place");
  assert.equal(q.entries, 0);
});

Deno.test("ReadyQueue: a round that empties the queue and queues another item keeps it", () => {
  const q = new ReadyQueue<Item>();
  const [a, b, c] = items("a", "b", "c");
  for (const x of [a, b]) q.add(x);
  const served: string[] = [];
  q.run(100, 1, (x) => {
    served.push(x.name);
    if (x === a) {
      q.delete(b); // b fails while a is served...
      q.add(c); // ...and a new ring comes
    }
    return { used: 1, more: false };
  });
  assert.deepEqual(served, ["a"]);
  assert.equal(q.size, 1);
  q.run(100, 1, (x) => {
    served.push(x.name);
    return { used: 1, more: false };
  });
  assert.deepEqual(served, ["a", "c"]);
  assert.equal(q.size, 0);
});
