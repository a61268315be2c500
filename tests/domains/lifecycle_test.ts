// Domain lifecycle through the DomainManager, in-process (tests/domains/harness.ts): INTRODUCE,
// RELEASE, death, shutdown/RESUME, SET_TARGET, GET/SET_FEATURE, re-INTRODUCE, domid reuse.
import assert from "../helpers/assert.ts";
import { err, ok } from "../helpers/core.ts";
import { rig } from "./harness.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { Field } from "../../src/xen/ring.ts";
import { DOMAIN_FEATURES } from "../../src/protocol/wire.ts";

const T = MsgType;

/** WATCH_EVENT payloads sent to a dom0 test client since index `from`. */
function events(sent: readonly { type: number; payload: string }[], from = 0): string[] {
  return sent.slice(from).filter((m) => m.type === T.WATCH_EVENT).map((m) => m.payload.split("\0")[0]);
}

Deno.test("INTRODUCE: the guest reads and writes relative paths; @introduceDomain fires", async () => {
  const r = rig();
  r.dom0.watch("@introduceDomain", "intro");
  r.dom0.watch("@introduceDomain", "perdom", 1);
  const mark = r.dom0.sink.sent.length;
  // The toolstack creates the domain, then gives it its home, as xl does.
  r.create(5);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/5\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5\0n0\0r5\0");
  ok(r.core, r.dom0, T.WRITE, "/local/domain/5/name\0guest5");
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/5/data\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5/data\0n5\0");
  const g = r.guest(5);
  assert.deepEqual(events(r.dom0.sink.sent, mark), ["@introduceDomain", "@introduceDomain/5"]);
  assert.equal(await g.read("name"), "guest5");
  await g.write("data/x", "hello");
  assert.equal(ok(r.core, r.dom0, T.READ, "/local/domain/5/data/x\0"), "hello");
  assert.deepEqual(ok(r.core, r.dom0, T.GET_PERMS, "/local/domain/5/data/x\0"), "n5\0", "the guest owns it");
  assert.equal(await g.getDomainPath(5), "/local/domain/5");
  assert.equal(ok(r.core, r.dom0, T.IS_DOMAIN_INTRODUCED, "5\0"), "T\0");
  assert.equal(ok(r.core, r.dom0, T.IS_DOMAIN_INTRODUCED, "6\0"), "F\0");
  assert.equal(g.serverFeatures, 7, "reconnection, error indicator, watch depth advertised in the page");
  assert.equal(r.domains.domainCount, 1);
});

Deno.test("INTRODUCE is refused to guests and for bad arguments", async () => {
  const r = rig();
  const g = r.guest(3);
  await assert.rejects(g.call(T.INTRODUCE, "4\0" + "1\0" + "7\0"), XsError, (e) => e.errno === "EACCES");
  await assert.rejects(g.call(T.RELEASE, "3\0"), XsError, (e) => e.errno === "EACCES");
  await assert.rejects(g.call(T.IS_DOMAIN_INTRODUCED, "3\0"), XsError, (e) => e.errno === "EACCES");
  err(r.core, r.dom0, T.INTRODUCE, "9\0" + "1\0" + "7\0", "ENOENT"); // no such domain
  r.xen.create(9);
  err(r.core, r.dom0, T.INTRODUCE, "9\0" + "1\0" + "0\0", "EINVAL"); // port 0
  err(r.core, r.dom0, T.INTRODUCE, "0\0" + "1\0" + "7\0", "EINVAL"); // dom0 is not introduced
  err(r.core, r.dom0, T.INTRODUCE, "32752\0" + "1\0" + "7\0", "EINVAL"); // DOMID_SELF
  err(r.core, r.dom0, T.INTRODUCE, "9\0" + "1\0" + "8\0", "EINVAL"); // not the guest's unbound port
  assert.equal(r.xen.domains.get(9)!.mapped, 0, "a failed bind leaves the ring unmapped");
  assert.equal(r.domains.isIntroduced(9), false);
});

Deno.test("RELEASE: @releaseDomain, watches and transactions gone, owned nodes and ACL entries removed", async () => {
  const r = rig();
  ok(r.core, r.dom0, T.MKDIR, "/shared\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/shared\0n0\0w7\0");
  ok(r.core, r.dom0, T.WRITE, "/granted\0x");
  ok(r.core, r.dom0, T.SET_PERMS, "/granted\0n0\0r7\0b8\0");
  r.dom0.watch("@releaseDomain", "rel");
  r.dom0.watch("@releaseDomain/7", "rel7");
  r.dom0.watch("/shared", "sh");
  const g = r.guest(7);
  await g.write("/shared/mine/deep", "v");
  await g.watch("/granted", "gw");
  const tx = await g.transactionStart();
  await g.read("/granted", tx);
  const clientsBefore = r.core.clients.size;
  assert.ok(r.core.watches.countOwner([...r.core.clients.values()].find((c) => c.domid === 7)!.id) === 1);
  const mark = r.dom0.sink.sent.length;
  assert.equal(r.dom0.tryRequest(T.RELEASE, "7\0"), "OK");
  const ev = events(r.dom0.sink.sent, mark);
  assert.ok(ev.includes("/shared/mine"), `deletion of the guest's node fires watches: ${ev}`);
  assert.ok(ev.includes("@releaseDomain") && ev.includes("@releaseDomain/7"), `${ev}`);
  err(r.core, r.dom0, T.READ, "/shared/mine\0", "ENOENT");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/granted\0"), "n0\0b8\0", "domain 7's entry struck");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/shared\0"), "n0\0");
  assert.equal(r.core.clients.size, clientsBefore - 1, "the guest's client is gone");
  assert.equal(r.core.watches.trie.nodeCount() > 0, true);
  assert.equal(ok(r.core, r.dom0, T.IS_DOMAIN_INTRODUCED, "7\0"), "F\0");
  assert.equal(r.xen.domains.get(7)!.mapped, 0, "ring unmapped");
  assert.equal(r.xen.boundPorts, 0, "event channel unbound");
  err(r.core, r.dom0, T.RELEASE, "7\0", "ENOENT");
  err(r.core, r.dom0, T.RELEASE, "0\0", "EINVAL");
});

Deno.test("INTRODUCE whose domain record cannot be stored is refused and leaves nothing attached", async () => {
  let full = true;
  const r = rig({
    onDomainsChanged: () => {
      if (full) throw new XsError("ENOSPC", "store full (injected)");
    },
  });
  r.dom0.watch("@introduceDomain", "intro");
  r.xen.create(7);
  const g = r.attach(7);
  const mark = r.dom0.sink.sent.length;
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "7\0" + "1\0" + "7\0"), "E:ENOSPC");
  assert.deepEqual(events(r.dom0.sink.sent, mark), [], "no @introduceDomain");
  assert.equal(ok(r.core, r.dom0, T.IS_DOMAIN_INTRODUCED, "7\0"), "F\0");
  assert.equal(r.xen.domains.get(7)!.mapped, 0, "ring unmapped");
  assert.equal(r.xen.boundPorts, 0, "event channel unbound");
  full = false;
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "7\0" + "1\0" + "7\0"), "OK", "a retry works");
  assert.equal(await g.getDomainPath(7), "/local/domain/7", "the guest is served");
});

Deno.test("--keep-orphans: a released domain's nodes stay, owned by dom0; its ACL entries still go", async () => {
  const r = rig({ keepOrphans: true });
  ok(r.core, r.dom0, T.MKDIR, "/shared\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/shared\0n0\0w7\0");
  ok(r.core, r.dom0, T.WRITE, "/granted\0x");
  ok(r.core, r.dom0, T.SET_PERMS, "/granted\0n0\0r7\0b8\0");
  const g = r.guest(7);
  await g.write("/shared/mine/deep", "v");
  await g.setPerms("/shared/mine", ["n7", "r8", "w7"]);
  assert.equal(r.dom0.tryRequest(T.RELEASE, "7\0"), "OK");
  assert.equal(ok(r.core, r.dom0, T.READ, "/shared/mine/deep\0"), "v", "kept");
  assert.equal(
    ok(r.core, r.dom0, T.GET_PERMS, "/shared/mine\0"),
    "n0\0r8\0",
    "owned by dom0, 7's entry gone",
  );
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/shared/mine/deep\0").split("\0")[0], "n0", "every node");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/granted\0"), "n0\0b8\0", "domain 7's entry struck");
});

Deno.test("death (VIRQ_DOM_EXC): cleanup and @releaseDomain once; shutdown fires the per-domain event until RESUME", async () => {
  const r = rig();
  r.dom0.watch("@releaseDomain", "all");
  r.dom0.watch("@releaseDomain/4", "four");
  r.create(4);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/4\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/4\0n4\0");
  const g = r.guest(4);
  await g.write("data", "1");
  let mark = r.dom0.sink.sent.length;
  r.xen.setState(4, { shutdown: true });
  r.turn();
  assert.deepEqual(events(r.dom0.sink.sent, mark), ["@releaseDomain/4", "@releaseDomain"]);
  mark = r.dom0.sink.sent.length;
  r.xen.raiseDomExc();
  r.turn();
  assert.deepEqual(events(r.dom0.sink.sent, mark), [], "a shutdown is reported once");
  assert.equal(r.dom0.tryRequest(T.RESUME, "4\0"), "OK");
  r.xen.raiseDomExc();
  r.turn();
  assert.deepEqual(
    events(r.dom0.sink.sent, mark),
    ["@releaseDomain/4", "@releaseDomain"],
    "again after RESUME",
  );
  assert.equal(r.domains.isIntroduced(4), true, "shut down is not dead");
  mark = r.dom0.sink.sent.length;
  r.xen.destroy(4);
  r.turn();
  assert.deepEqual(events(r.dom0.sink.sent, mark), ["@releaseDomain", "@releaseDomain/4"]);
  assert.equal(r.domains.isIntroduced(4), false);
  err(r.core, r.dom0, T.READ, "/local/domain/4\0", "ENOENT"); // owned by 4: removed
  assert.equal(r.domains.stats.died, 1);
});

Deno.test("SET_TARGET: the stub domain gets its target's rights; targets must be introduced guests", async () => {
  const r = rig();
  r.create(2);
  ok(r.core, r.dom0, T.WRITE, "/local/domain/2/secret\0s");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/2/secret\0n2\0");
  const guest2 = r.guest(2);
  const stub = r.guest(3);
  await assert.rejects(stub.read("/local/domain/2/secret"), XsError, (e) => e.errno === "EACCES");
  err(r.core, r.dom0, T.SET_TARGET, "3\0" + "0\0", "EINVAL");
  err(r.core, r.dom0, T.SET_TARGET, "3\0" + "9\0", "ENOENT");
  err(r.core, r.dom0, T.SET_TARGET, "9\0" + "2\0", "ENOENT");
  await assert.rejects(guest2.call(T.SET_TARGET, "2\0" + "3\0"), XsError, (e) => e.errno === "EACCES");
  assert.equal(r.dom0.tryRequest(T.SET_TARGET, "3\0" + "2\0"), "OK");
  assert.equal(await stub.read("/local/domain/2/secret"), "s");
  // The target dies: its rights do not pass to whatever domain gets domid 2 next.
  r.xen.destroy(2);
  r.turn();
  ok(r.core, r.dom0, T.WRITE, "/local/domain/2/secret\0s2");
  err(r.core, r.dom0, T.SET_PERMS, "/local/domain/2/secret\0n2\0", "ENOENT"); // no domain 2 now
  r.create(2);
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/2/secret\0n2\0");
  r.guest(2);
  await assert.rejects(stub.read("/local/domain/2/secret"), XsError, (e) => e.errno === "EACCES");
});

Deno.test("GET_FEATURE / SET_FEATURE: per domain, settable only before INTRODUCE", async () => {
  const r = rig();
  assert.equal(
    ok(r.core, r.dom0, T.GET_FEATURE, ""),
    `${0x40000004}\0`,
    "socket clients: the server's features",
  );
  err(r.core, r.dom0, T.GET_FEATURE, "6\0", "ENOENT");
  err(r.core, r.dom0, T.SET_FEATURE, "6\0" + "1\0", "ENOENT");
  r.xen.create(6);
  assert.equal(ok(r.core, r.dom0, T.GET_FEATURE, "6\0"), `${DOMAIN_FEATURES}\0`);
  err(r.core, r.dom0, T.SET_FEATURE, "6\0" + "8\0", "EINVAL"); // DOMID_ANY perms: not supported
  ok(r.core, r.dom0, T.SET_FEATURE, "6\0" + "2\0"); // only the error indicator
  assert.equal(ok(r.core, r.dom0, T.GET_FEATURE, "6\0"), "2\0");
  const g = r.attach(6);
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "6\0" + "1\0" + "7\0"), "OK");
  assert.equal(g.serverFeatures, 2, "the ring advertises what was set");
  assert.equal(await g.getFeature(), 2, "the guest sees its own features");
  await assert.rejects(g.call(T.GET_FEATURE, "0\0"), XsError, (e) => e.errno === "EACCES");
  err(r.core, r.dom0, T.SET_FEATURE, "6\0" + "2\0", "EBUSY");
  err(r.core, r.dom0, T.SET_FEATURE, "0\0" + "2\0", "EBUSY");
  // Without the reconnection feature a reconnection request is not honoured.
  g.page.set(Field.CONNECTION, 1);
  g.transport.notify();
  r.turn();
  assert.equal(g.page.get(Field.CONNECTION), 1, "left alone");
  assert.equal(r.rings.stats.reconnects, 0);
});

Deno.test("GET_QUOTA / SET_QUOTA <domid>: ENOENT unless the hypervisor knows the domain; guests EACCES first", async () => {
  const q = rig(); // the core's operation table asks the domain registry, as the daemon's does
  err(q.core, q.dom0, T.GET_QUOTA, "6\0nodes\0", "ENOENT");
  err(q.core, q.dom0, T.SET_QUOTA, "6\0nodes\0" + "5\0", "ENOENT");
  assert.equal(ok(q.core, q.dom0, T.GET_QUOTA, "nodes\0"), "1000\0", "global values need no domain");
  q.xen.create(6); // exists, not introduced: its quotas may be set before INTRODUCE
  ok(q.core, q.dom0, T.SET_QUOTA, "6\0nodes\0" + "5\0");
  assert.equal(ok(q.core, q.dom0, T.GET_QUOTA, "6\0nodes\0"), "5\0");
  q.xen.create(7);
  const g = q.attach(7);
  assert.equal(q.dom0.tryRequest(T.INTRODUCE, "7\0" + "1\0" + "7\0"), "OK");
  await assert.rejects(g.call(T.GET_QUOTA, "9\0nodes\0"), XsError, (e) => e.errno === "EACCES");
});

Deno.test("SET_FEATURE: a domain without watch depth or nested transactions cannot use them", async () => {
  const r = rig();
  r.xen.create(6);
  ok(r.core, r.dom0, T.SET_FEATURE, "6\0" + `${1 | 2}\0`); // reconnection and error indicator only
  const g = r.attach(6);
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "6\0" + "1\0" + "7\0"), "OK");
  const errnoOf = async (type: number, payload: string, tx = 0) => {
    const m = await g.request(type, payload, tx);
    return m.type === T.ERROR ? m.payload.replace(/\0$/, "") : "OK";
  };
  assert.equal(await errnoOf(T.WATCH, "data\0tok\0" + "1\0"), "EINVAL", "a depth argument");
  assert.equal(await errnoOf(T.WATCH, "data\0tok\0"), "OK", "a plain watch");
  const tx = await g.transactionStart();
  assert.equal(await errnoOf(T.TRANSACTION_START, "", tx), "EBUSY", "no transaction inside a transaction");
  await g.transactionEnd(tx, false);
  // A domain with the default features may use both.
  const h = r.guest(7);
  const tx7 = await h.transactionStart();
  const child = await h.request(T.TRANSACTION_START, "", tx7);
  assert.equal(child.type, T.TRANSACTION_START, "nested");
  assert.equal((await h.request(T.WATCH, "data\0tok\0" + "1\0")).type, T.WATCH, "with a depth");
});

Deno.test("ring reconnection: watches, transactions and queued output of the old connection are gone", async () => {
  const r = rig();
  r.create(8);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/8\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/8\0n8\0");
  const g = r.guest(8);
  for (let i = 0; i < 20; i++) await g.watch(`w${i}`, `t${i}`);
  await r.events(g);
  const tx = await g.transactionStart();
  await g.write("in-tx", "1", tx);
  const oldClient = [...r.core.clients.values()].find((c) => c.domid === 8)!;
  assert.equal(r.core.watches.countOwner(oldClient.id), 20);
  await g.reconnect();
  assert.equal(r.core.watches.countOwner(oldClient.id), 0, "no watch survives, reachable or not");
  assert.equal(r.core.clients.has(oldClient.id), false, "the old client is closed");
  await assert.rejects(g.read("in-tx", tx), XsError, (e) => e.errno === "ENOENT");
  ok(r.core, r.dom0, T.WRITE, "/local/domain/8/w3\0changed");
  assert.deepEqual(await r.events(g), [], "no stale watch fires");
  // The new connection works and can watch again from scratch.
  await g.watch("w3", "again");
  assert.deepEqual(await r.events(g), [{ path: "w3", token: "again" }]);
  assert.equal(r.rings.stats.reconnects, 1);
  assert.equal(r.core.watches.trie.nodeCount() > 1, true);
});

Deno.test("re-INTRODUCE resets the connection; INTRODUCE of a reused domid releases the old domain first", async () => {
  const r = rig();
  r.dom0.watch("@releaseDomain", "rel");
  r.dom0.watch("@introduceDomain", "intro");
  r.create(5);
  ok(r.core, r.dom0, T.WRITE, "/local/domain/5/data\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/5/data\0n5\0");
  const g = r.guest(5);
  await g.watch("data", "tok");
  await g.write("data/kept", "1");
  await r.events(g);
  let mark = r.dom0.sink.sent.length;
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "5\0" + "1\0" + "7\0"), "OK");
  assert.deepEqual(events(r.dom0.sink.sent, mark), [], "no special event for a re-INTRODUCE");
  const fresh = r.attach(5); // the guest starts over on the reset ring
  assert.equal(fresh.page.get(Field.REQ_PROD), 0, "indices zeroed");
  assert.equal(await fresh.read("data/kept"), "1", "nodes survive a connection reset");
  ok(r.core, r.dom0, T.WRITE, "/local/domain/5/data/x\0y");
  assert.deepEqual(await r.events(fresh), [], "the watch was dropped");
  // The domain dies without us hearing of it, and a new domain 5 is introduced.
  r.xen.domains.delete(5);
  r.xen.create(5);
  r.attach(5);
  mark = r.dom0.sink.sent.length;
  assert.equal(r.dom0.tryRequest(T.INTRODUCE, "5\0" + "1\0" + "7\0"), "OK");
  assert.deepEqual(events(r.dom0.sink.sent, mark), ["@releaseDomain", "@introduceDomain"]);
  err(r.core, r.dom0, T.READ, "/local/domain/5/data/kept\0", "ENOENT");
});

Deno.test("records() and restore(): a restarted daemon re-attaches without resetting the rings", async () => {
  const r = rig();
  r.create(3);
  ok(r.core, r.dom0, T.MKDIR, "/local/domain/3\0");
  ok(r.core, r.dom0, T.SET_PERMS, "/local/domain/3\0n3\0");
  const g3 = r.guest(3);
  r.guest(4);
  assert.equal(r.dom0.tryRequest(T.SET_TARGET, "4\0" + "3\0"), "OK");
  await g3.write("x", "1");
  const recs = r.domains.records();
  assert.deepEqual(recs.map((d) => [d.domid, d.eventChannel, d.target]), [[3, 7, undefined], [4, 7, 3]]);
  // A restarted daemon over the same store and "hypervisor" (the first one's ports stay bound in the
  // fake, so they are unbound as the dead process's would have been).
  r.restart(recs);
  const m2 = r.domains;
  assert.equal(m2.isIntroduced(3) && m2.isIntroduced(4), true);
  const again = r.attach(3);
  // The guest continues on its ring as it was (indices not reset).
  assert.equal(await again.read("x"), "1");
  assert.deepEqual(m2.records(), recs);
});
