// Batching on the ring (issue 20): a real daemon on the simulated Xen, a guest in this process that
// writes many requests into its ring and signals once, and the notifications the daemon sends back
// counted as they arrive in the guest's event-channel FIFO. The daemon must signal each ring at most
// once per loop turn (not once per reply), and serve requests already in the ring without waiting
// for another signal: K requests after one guest notification come back in ceil(K / per-ring budget)
// turns, so with exactly that many notifications. Counts, not timings. Also the blocking client
// (callSync) the guest benchmark drives the ring with.
import assert from "../helpers/assert.ts";
import { XS } from "../helpers/wire.ts";
import { startSimXen } from "./sim_harness.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";
import { GuestClient, RingClientError } from "../../src/client/guest.ts";
import { hasErrno } from "../../src/client/errors.ts";
import { MessageReader, MessageWriter, REQUESTS, RESPONSES, type RingMessage } from "../../src/xen/ring.ts";
import { DEFAULT_PER_RING_BUDGET } from "../../src/transport/ring_server.ts";

/** Wait (bounded) until `cond` holds, polling every few ms; false if it never did. */
async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

for (const k of [10, DEFAULT_PER_RING_BUDGET, 40]) {
  const turns = Math.ceil(k / DEFAULT_PER_RING_BUDGET);
  Deno.test(`ring batching: ${k} requests after one guest signal are all served, with ${turns} notification(s)`, async () => {
    await using x = await startSimXen();
    const g = await x.introduce(5);
    assert.equal(await g.read("name"), "guest5", "the ring works");
    const sim = g.transport as SimGuest;
    const page = g.transport.page;
    sim.evtchn.take(); // what INTRODUCE and the first READ were signalled with

    // K READs of a short relative path (21 bytes each, replies 22: both sides fit the 1 KiB ring,
    // so no side ever fills and nothing is signalled for freed space), then one notification.
    const w = new MessageWriter();
    for (let i = 0; i < k; i++) w.enqueue(XS.READ, 1000 + i, 0, "name\0");
    assert.equal(w.write(page, REQUESTS), k * 21, "all requests are in the ring before the signal");
    sim.notify();

    // The replies, read straight off the page (as they arrive; no waiting on the event channel).
    const reader = new MessageReader();
    const replies: RingMessage[] = [];
    const got = await until(() => {
      for (let m = reader.read(page, RESPONSES); m !== null; m = reader.read(page, RESPONSES)) {
        if (typeof m === "string") throw new Error(`response ring fault: ${m}`);
        replies.push(m);
      }
      return replies.length >= k;
    });
    assert.ok(
      got,
      `only ${replies.length} of ${k} replies came (requests left unserved without a new signal?)`,
    );
    assert.deepEqual(replies.map((r) => r.reqId), Array.from({ length: k }, (_, i) => 1000 + i));
    assert.ok(replies.every((r) => r.type === XS.READ && r.payload === "guest5"));

    // The last turn signals after writing its replies: two dom0 round trips later (each served in a
    // later turn than the one before) every notification the daemon sent for them is in the FIFO.
    await x.ok(XS.READ, "/local/domain/5/name\0");
    await x.ok(XS.READ, "/local/domain/5/name\0");
    const events = sim.evtchn.take();
    assert.ok(events.every((e) => e.domid === 5 && e.port === sim.port), JSON.stringify(events));
    assert.equal(events.length, turns, `notifications for ${k} requests: one per loop turn, not per reply`);
    assert.equal(sim.undelivered, 0);
  });
}

// The blocking client the guest benchmark's load loop uses (bench/guests.ts, bench/syscalls.ts): no
// promise per round trip, the thread blocked on the event channel while it waits.
Deno.test("GuestClient.callSync: blocking round trips over the ring, ERROR replies as XsError", async () => {
  await using x = await startSimXen();
  await x.introduce(5);
  const sim = new SimGuest(x.dir, 5);
  const g = new GuestClient(sim, { blocking: true, timeoutMs: 10_000 });
  try {
    for (let i = 0; i < 50; i++) assert.equal(g.callSync(XS.READ, "name\0"), "guest5");
    assert.throws(() => g.callSync(XS.READ, "no-such-node\0"), Error, (e) => hasErrno(e, "ENOENT"));
    g.callSync(XS.WRITE, "data/k\0v");
    assert.equal(g.callSync(XS.READ, "data/k\0"), "v");
  } finally {
    g.close();
  }
  const async = x.attach(5); // not blocking: the synchronous calls refuse rather than spin
  assert.throws(() => async.replySync(1), RingClientError);
});
