// Hostile guests against the domain manager, in-process, where the daemon's own counts can be
// checked exactly (the same attacks against a daemon process: tests/xen/hostile_test.ts). One test
// per class of past xenstored advisory that concerns the ring transport and the domain lifecycle.
import assert from "../helpers/assert.ts";
import { ok } from "../helpers/core.ts";
import { rig } from "./harness.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { XsError } from "../../src/common/xs_error.ts";
import {
  ERROR_PROTO,
  ERROR_RINGIDX,
  Field,
  REQUESTS,
  RING_SIZE,
  ringProduce,
  ringUsed,
} from "../../src/xen/ring.ts";
import { DEFAULT_RING_LIMITS } from "../../src/transport/ring_connection.ts";
import { RingClientError } from "../../src/client/guest.ts";
import { encode } from "../../src/xen/ring.ts";

const T = MsgType;

function home(r: ReturnType<typeof rig>, domid: number): void {
  r.create(domid); // the hypervisor's domain first: SET_PERMS refuses an owner that does not exist
  ok(r.core, r.dom0, T.MKDIR, `/local/domain/${domid}\0`);
  ok(r.core, r.dom0, T.SET_PERMS, `/local/domain/${domid}\0n${domid}\0`);
}

function specialEvents(r: ReturnType<typeof rig>): string[] {
  return r.dom0.sink.sent.filter((m) => m.type === T.WATCH_EVENT).map((m) => m.payload.split("\0")[0]);
}

Deno.test("XSA-38: garbage ring indices set the error indicator; the ring is not served, nothing else suffers", async () => {
  for (
    const [what, corrupt] of [
      [
        "producer 5000 ahead",
        (p: import("../../src/xen/ring.ts").RingPage) => p.set(Field.REQ_PROD, p.get(Field.REQ_CONS) + 5000),
      ],
      [
        "producer behind",
        (p: import("../../src/xen/ring.ts").RingPage) => p.set(Field.REQ_PROD, p.get(Field.REQ_CONS) - 1),
      ],
      [
        "response consumer garbage",
        (p: import("../../src/xen/ring.ts").RingPage) => p.set(Field.RSP_CONS, 0xdead0000),
      ],
    ] as const
  ) {
    const r = rig();
    r.dom0.watch("@releaseDomain", "rel");
    home(r, 6);
    const bad = r.guest(6);
    const good = r.guest(7);
    await bad.watch("x", "w");
    await r.events(bad);
    const tx = await bad.transactionStart();
    const clientId = r.domains.ringInfo(6)!.clientId;
    corrupt(bad.page);
    // Something for the daemon to do on that ring: a response to write, or a request to read.
    if (what === "response consumer garbage") ok(r.core, r.dom0, T.WRITE, "/local/domain/6/x\0v");
    bad.transport.notify();
    r.turn();
    assert.equal(bad.page.get(Field.ERROR), ERROR_RINGIDX, what);
    assert.equal(r.domains.ringInfo(6)!.state, "failed", what);
    assert.equal(r.core.watches.countOwner(clientId), 0, `${what}: watches dropped`);
    assert.equal(r.core.clients.get(clientId)!.txns.size, 0, `${what}: transactions dropped (tx ${tx})`);
    assert.deepEqual(specialEvents(r), [], `${what}: no @releaseDomain for a bad ring (XSA-325)`);
    assert.equal(await good.read("/local/domain/6/x").catch((e) => (e as XsError).errno), "EACCES");
    assert.equal(r.domains.isIntroduced(6), true);
    // Requests written now are not read.
    const cons = bad.page.get(Field.REQ_CONS);
    bad.page.set(Field.REQ_PROD, cons);
    ringProduce(bad.page, REQUESTS, encode(T.READ, 1, 0, "x\0"));
    bad.transport.notify();
    r.turn();
    assert.equal(bad.page.get(Field.REQ_CONS), cons, `${what}: not served any more`);
    // It dies later: exactly one @releaseDomain pair then.
    r.xen.destroy(6);
    r.turn();
    assert.deepEqual(specialEvents(r), ["@releaseDomain"], what);
  }
});

Deno.test("XSA-420: a header announcing more than 4096 bytes is a protocol error (3), at once", async () => {
  for (const len of [4097, 0x7fffffff, 0x80000000, 0xffffffff]) {
    const r = rig();
    const bad = r.guest(6);
    const hdr = encode(T.WRITE, 1, 0, "");
    new DataView(hdr.buffer).setUint32(12, len, true);
    ringProduce(bad.page, REQUESTS, hdr);
    bad.transport.notify();
    r.turn();
    assert.equal(bad.page.get(Field.ERROR), ERROR_PROTO, `len ${len}`);
    assert.equal(r.domains.ringInfo(6)!.state, "failed");
    assert.equal(r.domains.stats.ringFaults, 1);
    // The guest may ask for a fresh ring (xenstore-ring.txt allows it) and is then served again.
    await bad.reconnect();
    assert.equal(bad.page.get(Field.ERROR), 0);
    assert.equal(await bad.read("/local/domain/6").catch((e) => (e as XsError).errno), "EACCES");
  }
});

Deno.test("XSA-326: a guest that never consumes its ring holds bounded output; others get every event", async () => {
  const r = rig();
  ok(r.core, r.dom0, T.MKDIR, "/pub\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/pub\0n0\0r3\0r4\0");
  const lazy = r.guest(3);
  const active = r.guest(4);
  await lazy.watch("/pub", "l");
  await r.events(lazy);
  await active.watch("/pub", "a");
  await r.events(active);
  const N = 3000;
  let got = 0;
  for (let i = 0; i < N; i++) {
    ok(r.core, r.dom0, T.WRITE, `/pub/k${i % 50}\0${i}`);
    if (i % 100 === 99) {
      // The active guest reads its events as they come; the lazy one never looks at its ring.
      for (let k = 0; k < 100; k++) if ((await active.nextEvent(1000)) !== null) got++;
      const lazyInfo = r.domains.ringInfo(3)!;
      assert.ok(lazyInfo.queuedEvents <= DEFAULT_RING_LIMITS.maxEvents, `${lazyInfo.queuedEvents} queued`);
      assert.ok(lazyInfo.queuedBytes <= DEFAULT_RING_LIMITS.maxEventBytes + DEFAULT_RING_LIMITS.outHighBytes);
    }
  }
  assert.equal(got, N, "the active guest lost nothing");
  const info = r.domains.ringInfo(3)!;
  assert.equal(info.state, "connected", "not disconnected: dropping is the bound");
  assert.ok(info.droppedEvents > 0 && info.droppedEvents <= N);
  // When the lazy guest finally reads, it gets the oldest events in order; every event was either
  // delivered or dropped and counted.
  const delivered = [];
  for (let batch = await r.events(lazy); batch.length > 0; batch = await r.events(lazy)) {
    delivered.push(...batch);
  }
  assert.ok(delivered.length <= DEFAULT_RING_LIMITS.maxEvents + 1024 / 16, `${delivered.length} delivered`);
  assert.equal(delivered.length + info.droppedEvents, N, "delivered + dropped = fired");
  assert.deepEqual(delivered.slice(0, 3).map((e) => e.path), ["/pub/k0", "/pub/k1", "/pub/k2"]);
  assert.equal(await lazy.read("/pub/k1"), String(N - 49));
});

Deno.test("XSA-326: a guest pipelining requests without reading replies is read no further than its output bound", () => {
  const r = rig();
  ok(r.core, r.dom0, T.WRITE, "/big\0" + "v".repeat(4000));
  ok(r.core, r.dom0, T.SET_PERMS, "/big\0n0\0r5\0");
  const g = r.guest(5);
  // Keep the request ring full of 4000-byte READs and never take a reply.
  let sent = 0;
  for (let round = 0; round < 200; round++) {
    while (RING_SIZE - ringUsed(g.page, REQUESTS) >= 21) {
      ringProduce(g.page, REQUESTS, encode(T.READ, ++sent, 0, "/big\0"));
    }
    g.transport.notify();
    r.turn();
    const info = r.domains.ringInfo(5)!;
    assert.ok(info.queuedBytes <= DEFAULT_RING_LIMITS.outHighBytes + 16 * 4112, `${info.queuedBytes} queued`);
  }
  const info = r.domains.ringInfo(5)!;
  assert.equal(info.state, "connected");
  assert.ok(info.requests < sent, `stopped reading (${info.requests} of ${sent} read)`);
});

Deno.test("XSA-330: 100 watches then a ring reconnection or RESET_WATCHES, looped: nothing leaks, nothing stale fires", async () => {
  const r = rig();
  home(r, 9);
  const g = r.guest(9);
  const baseTrie = r.core.watches.trie.nodeCount();
  const baseClients = r.core.clients.size;
  for (let round = 0; round < 40; round++) {
    const ids = [];
    for (let i = 0; i < 100; i++) ids.push(g.send(T.WATCH, `w${i}/x\0r${round}\0`));
    for (const id of ids) assert.equal((await g.reply(id)).type, T.WATCH);
    assert.equal(r.core.watches.countOwner(r.domains.ringInfo(9)!.clientId), 100);
    if (round % 2 === 0) await g.reconnect();
    else await g.resetWatches();
    g.events.length = 0; // registration events of this round (a reconnection already dropped them)
    assert.equal(r.core.watches.countOwner(r.domains.ringInfo(9)!.clientId), 0);
    assert.equal(r.core.watches.trie.nodeCount(), baseTrie, `round ${round}: trie back to its size`);
    assert.equal(r.core.clients.size, baseClients, `round ${round}: no client left behind`);
  }
  ok(r.core, r.dom0, T.WRITE, "/local/domain/9/w7/x\0after");
  assert.deepEqual(await r.events(g), [], "no stale token fires");
  assert.equal(r.rings.stats.reconnects, 20);
});

Deno.test("XSA-484: RESET_WATCHES inside a transaction ends the transaction; the ring keeps working", async () => {
  const r = rig();
  home(r, 2);
  const g = r.guest(2);
  const tx = await g.transactionStart();
  await g.write("a", "1", tx);
  assert.equal(await g.call(T.RESET_WATCHES, "", tx), "OK\0");
  await assert.rejects(g.read("a", tx), XsError, (e) => e.errno === "ENOENT");
  await assert.rejects(g.transactionEnd(tx, true), XsError, (e) => e.errno === "ENOENT");
  await assert.rejects(g.read("a"), XsError, (e) => e.errno === "ENOENT");
  await g.write("a", "2");
  assert.equal(await g.read("a"), "2");
});

Deno.test("XSA-115: a guest watching / and @introduceDomain gets only what it may read", async () => {
  const r = rig();
  home(r, 1);
  const spy = r.guest(1);
  await spy.watch("/", "root");
  await spy.watch("@introduceDomain", "intro");
  await spy.watch("@releaseDomain", "rel");
  assert.deepEqual((await r.events(spy)).map((e) => e.path), ["/", "@introduceDomain", "@releaseDomain"]);
  ok(r.core, r.dom0, T.WRITE, "/local/domain/0/secret\0s");
  home(r, 2);
  const other = r.guest(2);
  await other.write("private", "p");
  r.xen.destroy(2);
  r.turn();
  assert.deepEqual(await r.events(spy), [], "nothing it cannot read");
  await spy.write("mine", "m"); // its own node: readable, so it is told
  assert.deepEqual(await r.events(spy), [{ path: "/local/domain/1/mine", token: "root" }]);
  // dom0 may open the special events to the guest.
  ok(r.core, r.dom0, T.SET_PERMS, "@introduceDomain\0n0\0r1\0");
  r.guest(3);
  assert.deepEqual(await r.events(spy), [{ path: "@introduceDomain", token: "intro" }]);
});

Deno.test("XSA-322/417: a reused domid inherits no node, permission, watch or target of the old domain", async () => {
  const r = rig();
  ok(r.core, r.dom0, T.WRITE, "/foo\0secret");
  ok(r.core, r.dom0, T.SET_PERMS, "/foo\0n0\0b7\0");
  ok(r.core, r.dom0, T.MKDIR, "/open\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/open\0n0\0w7\0");
  ok(r.core, r.dom0, T.SET_PERMS, "@releaseDomain\0n0\0r7\0");
  const old = r.guest(7);
  r.guest(8);
  await old.write("/open/bar", "mine");
  await old.watch("/foo", "f");
  assert.equal(r.dom0.tryRequest(T.SET_TARGET, "7\0" + "8\0"), "OK");
  r.xen.destroy(7);
  r.turn();
  const fresh = r.guest(7);
  await assert.rejects(fresh.read("/foo"), XsError, (e) => e.errno === "EACCES");
  await assert.rejects(fresh.read("/open/bar"), XsError, (e) => e.errno === "EACCES");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/foo\0"), "n0\0");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "@releaseDomain\0"), "n0\0");
  assert.equal(r.domains.ringInfo(7)!.target, null);
  ok(r.core, r.dom0, T.WRITE, "/foo\0changed");
  assert.deepEqual(await r.events(fresh), []);
  assert.equal(r.core.watches.countOwner(r.domains.ringInfo(7)!.clientId), 0);
});

Deno.test("a guest trying SET_PERMS/WRITE/RM on / or giving its node away is refused, the tree intact", async () => {
  const r = rig();
  home(r, 4);
  r.create(5);
  const g = r.guest(4);
  await g.write("n", "1");
  for (
    const [what, p] of [
      ["SET_PERMS /", g.setPerms("/", ["b4"])],
      ["WRITE /", g.write("/", "x")],
      ["MKDIR /x", g.mkdir("/x")],
      ["give away", g.setPerms("n", ["n0"])],
      ["give to another guest", g.setPerms("n", ["b5"])],
    ] as const
  ) {
    const e = await assert.rejects(p, XsError);
    assert.ok(e.errno === "EACCES" || e.errno === "EPERM", `${what}: ${e.errno}`);
  }
  // A domain that does not exist cannot be given anything (ENOENT before EPERM, as cxenstored).
  await assert.rejects(g.setPerms("n", ["b9"]), XsError, (e) => e.errno === "ENOENT");
  await assert.rejects(g.rm("/"), XsError, (e) => e.errno === "EINVAL");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/\0"), "n0\0");
  assert.deepEqual(await g.getPerms("n"), ["n4"]);
  assert.equal(ok(r.core, r.dom0, T.READ, "/tool/xenstored\0"), "");
});

Deno.test("ring client errors are reported as such (the daemon set the error indicator)", async () => {
  const r = rig();
  const g = r.guest(5);
  g.page.set(Field.REQ_PROD, g.page.get(Field.REQ_CONS) + 2000);
  g.transport.notify();
  r.turn();
  g.page.set(Field.REQ_PROD, g.page.get(Field.REQ_CONS));
  await assert.rejects(g.read("x"), RingClientError, (e) => /error 2/.test(e.message));
});

Deno.test("XSA-233: a guest and its stub domain destroyed in one VIRQ batch: both released and cleaned", () => {
  const r = rig();
  r.dom0.watch("@releaseDomain", "rel", 1);
  home(r, 3);
  home(r, 4);
  r.guest(3);
  r.guest(4);
  assert.equal(r.dom0.tryRequest(T.SET_TARGET, "4\0" + "3\0"), "OK");
  r.xen.domains.delete(3);
  r.xen.domains.delete(4);
  r.xen.raiseDomExc();
  r.turn();
  assert.deepEqual(specialEvents(r).sort(), ["@releaseDomain/3", "@releaseDomain/4"]);
  assert.equal(r.domains.domainCount, 0);
  for (const d of [3, 4]) {
    assert.equal(
      r.dom0.tryRequest(T.READ, `/local/domain/${d}\0`),
      "E:ENOENT",
      `dom${d}'s nodes removed`,
    );
  }
});

Deno.test("XSA-425: RELEASE while a request is in flight, then re-INTRODUCE: nothing of the old connection survives", async () => {
  const r = rig();
  home(r, 6);
  const g = r.guest(6);
  await g.watch("w", "t");
  await r.events(g);
  const tx = await g.transactionStart();
  const oldClient = r.domains.ringInfo(6)!.clientId;
  // A request written and signalled, not yet served, when dom0 releases the domain in the same turn.
  ringProduce(g.page, REQUESTS, encode(T.WRITE, 77, 0, "late\0v"));
  g.transport.notify();
  assert.equal(r.dom0.tryRequest(T.RELEASE, "6\0"), "OK");
  r.turn();
  assert.equal(r.core.clients.has(oldClient), false);
  // Soft reset: the toolstack introduces the (same) domain again; its new kernel uses the ring.
  home(r, 6);
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "6\0" + "1\0" + "7\0"), "OK");
  assert.equal(g.page.get(Field.REQ_PROD), 0, "the ring was reset: the stale request is gone");
  const fresh = r.attach(6);
  assert.equal(await fresh.read("/local/domain/6"), "", "the new connection is served");
  await assert.rejects(fresh.read("w", tx), XsError, (e) => e.errno === "ENOENT");
  assert.equal(r.core.watches.countOwner(r.domains.ringInfo(6)!.clientId), 0);
  assert.equal(
    r.dom0.tryRequest(T.READ, "/local/domain/6/late\0"),
    "E:ENOENT",
    "the stale write never ran",
  );
  assert.equal(r.domains.ringInfo(6)!.requests, 2);
});
