// Guests over the simulated Xen, end to end: a dxenstored process serving rings that this process
// maps as guest domains, dom0's requests on the Unix socket. No timing assertions: every wait is for
// a message, with a timeout that only turns a hang into a failure.
import assert from "../helpers/assert.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { assertNoPendingEvents, startSimXen } from "./sim_harness.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { Field } from "../../src/xen/ring.ts";
import { crashDomain, destroyDomain, shutdownDomain } from "../../src/xen/sim/control.ts";
import { createDom0Ring } from "../../src/xen/sim/control.ts";

const errno = (name: string) => (e: XsError) => e.errno === name;

Deno.test("sim: a guest reads and writes relative paths, watches, and runs transactions over its ring", async () => {
  await using x = await startSimXen();
  await x.ok(XS.WATCH, "@introduceDomain\0intro\0");
  assert.deepEqual(await x.dom0Event(), { path: "@introduceDomain", token: "intro" });
  const g = await x.introduce(5);
  assert.deepEqual(await x.dom0Event(), { path: "@introduceDomain", token: "intro" });
  assert.equal(await g.read("name"), "guest5");
  assert.equal(await g.read("/local/domain/5/domid"), "5");
  await g.write("data/a", "1");
  assert.equal(await x.ok(XS.READ, "/local/domain/5/data/a\0"), "1");
  // A relative watch: registration event, then events relative to the domain's home.
  await g.watch("data", "w");
  assert.deepEqual(await g.nextEvent(), { path: "data", token: "w" });
  await x.ok(XS.WRITE, "/local/domain/5/data/b\0from-dom0");
  assert.deepEqual(await g.nextEvent(), { path: "data/b", token: "w" });
  // dom0 watches the guest's writes.
  await x.ok(XS.WATCH, "/local/domain/5/data\0d0\0");
  assert.deepEqual(await x.dom0Event(), { path: "/local/domain/5/data", token: "d0" });
  await g.write("data/c", "2");
  assert.deepEqual(await x.dom0Event(), { path: "/local/domain/5/data/c", token: "d0" });
  assert.deepEqual(await g.nextEvent(), { path: "data/c", token: "w" });
  // A transaction commits; a conflicting one gets EAGAIN.
  const t1 = await g.transactionStart();
  assert.equal(await g.read("data/a", t1), "1");
  await g.write("data/a", "11", t1);
  await g.transactionEnd(t1, true);
  assert.equal(await x.ok(XS.READ, "/local/domain/5/data/a\0"), "11");
  const t2 = await g.transactionStart();
  assert.equal(await g.read("data/a", t2), "11");
  await g.write("data/d", "x", t2);
  await x.ok(XS.WRITE, "/local/domain/5/data/a\0changed");
  await assert.rejects(g.transactionEnd(t2, true), XsError, errno("EAGAIN"));
  await x.fails(XS.READ, "/local/domain/5/data/d\0");
  assert.deepEqual((await g.directory("data")).sort(), ["a", "b", "c"]);
  assert.equal(g.ringError, 0);
});

Deno.test("sim: messages longer than the ring pass in both directions", async () => {
  await using x = await startSimXen();
  const g = await x.introduce(5);
  const text = (n: number) =>
    Array.from({ length: n }, (_, i) => String.fromCharCode(32 + (i % 90))).join("");
  // A maximum-size request (4096 payload bytes) through the 1024-byte request ring: it is read whole
  // and answered (OK, or ENOSPC from the node-size quota — either way a reply to that request).
  const r = await g.request(XS.WRITE, `data/max\0${text(4096 - "data/max".length - 1)}`);
  assert.ok(r.type === XS.WRITE || r.payload === "ENOSPC\0", `reply ${r.type} ${r.payload.slice(0, 20)}`);
  await g.write("data/mid", text(1900));
  assert.equal(await x.ok(XS.READ, "/local/domain/5/data/mid\0"), text(1900));
  // Replies longer than the response ring: dom0 writes 4000-byte values the guest may read.
  for (let i = 0; i < 5; i++) {
    await x.ok(XS.WRITE, `/local/domain/5/big${i}\0${text(3996 + i)}`);
  }
  assert.equal(await g.read("big0"), text(3996));
  const ids = [0, 1, 2, 3, 4].map((i) => g.send(XS.READ, `big${i}\0`)); // pipelined
  for (const [i, id] of ids.entries()) assert.equal((await g.reply(id)).payload, text(3996 + i));
});

Deno.test("sim: guests cannot touch each other's nodes until granted; owners cannot give nodes away", async () => {
  await using x = await startSimXen();
  const a = await x.introduce(1);
  const b = await x.introduce(2);
  await b.write("data/secret", "s");
  await assert.rejects(a.read("/local/domain/2/data/secret"), XsError, errno("EACCES"));
  await assert.rejects(a.write("/local/domain/2/data/x", "1"), XsError, errno("EACCES"));
  await assert.rejects(a.read("/local/domain/2/name"), XsError, errno("EACCES"));
  await assert.rejects(a.directory("/local/domain/2"), XsError, errno("EACCES"));
  // B grants A read access to one node.
  await b.setPerms("data/secret", ["n2", "r1"]);
  assert.equal(await a.read("/local/domain/2/data/secret"), "s");
  await assert.rejects(a.write("/local/domain/2/data/secret", "no"), XsError, errno("EACCES"));
  // Handing a node to another owner, or touching the root, is refused.
  await assert.rejects(b.setPerms("data/secret", ["n1"]), XsError, errno("EPERM"));
  await assert.rejects(b.setPerms("data/secret", ["b0"]), XsError, errno("EPERM"));
  await assert.rejects(a.setPerms("/", ["b1"]), XsError, errno("EACCES"));
  await assert.rejects(a.write("/", "x"), XsError, errno("EACCES"));
  await assert.rejects(a.rm("/"), XsError, errno("EINVAL"));
  assert.deepEqual(await b.getPerms("data/secret"), ["n2", "r1"]);
  // GET_QUOTA reaches the quota module through the domain manager (not ENOSYS).
  assert.ok((await x.ok(25, "")).includes("nodes"));
  await assert.rejects(a.call(25, ""), XsError, errno("EACCES"));
  // Domain-management requests are dom0's.
  await assert.rejects(a.call(XS.INTRODUCE, "2\0" + "1\0" + "1\0"), XsError, errno("EACCES"));
  await assert.rejects(a.call(XS.IS_DOMAIN_INTRODUCED, "2\0"), XsError, errno("EACCES"));
});

Deno.test("sim: a crashed domain fires @releaseDomain, and its nodes, watches and transactions are gone", async () => {
  await using x = await startSimXen();
  await x.ok(XS.WATCH, "@releaseDomain\0rel\0");
  await x.dom0Event();
  await x.ok(XS.WATCH, "@releaseDomain/7\0rel7\0");
  await x.dom0Event();
  await x.ok(XS.MKDIR, "/shared\0");
  const g = await x.introduce(7); // before dom0 grants it anything (an entry set earlier stays inactive)
  await x.ok(XS.SET_PERMS, "/shared\0n0\0w7\0");
  await g.write("/shared/by7", "v");
  await g.watch("/shared", "s");
  await g.transactionStart();
  crashDomain(x.dir, 7);
  const got = [await x.dom0Event(), await x.dom0Event()].map((e) => e.path).sort();
  assert.deepEqual(got, ["@releaseDomain", "@releaseDomain/7"]);
  assert.equal(await x.fails(XS.READ, "/shared/by7\0"), "ENOENT", "owned node deleted");
  assert.equal(await x.ok(XS.GET_PERMS, "/shared\0"), "n0\0", "ACL entry of domain 7 struck");
  assert.equal(await x.ok(XS.IS_DOMAIN_INTRODUCED, "7\0"), "F\0");
  destroyDomain(x.dir, 7);
  // The domid is reused: the new domain 7 inherits nothing.
  const g2 = await x.introduce(7, { nodes: false });
  await assert.rejects(g2.write("/shared/again", "v"), XsError, errno("EACCES"));
  await x.ok(XS.WRITE, "/shared/x\0dom0");
  await assertNoPendingEvents(g2, "no watch of the old domain 7 fires");
});

Deno.test("sim: shutdown fires @releaseDomain/<domid> only; destroy releases", async () => {
  await using x = await startSimXen();
  await x.ok(XS.WATCH, "@releaseDomain/3\0three\0");
  await x.dom0Event();
  await x.introduce(3);
  shutdownDomain(x.dir, 3, "reboot");
  assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain/3", token: "three" });
  assert.equal(await x.ok(XS.IS_DOMAIN_INTRODUCED, "3\0"), "T\0", "shut down, not dead");
  destroyDomain(x.dir, 3);
  assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain/3", token: "three" });
  assert.equal(await x.ok(XS.IS_DOMAIN_INTRODUCED, "3\0"), "F\0");
});

Deno.test("sim: ring reconnection drops the guest's watches and transactions; the ring works after", async () => {
  await using x = await startSimXen();
  const g = await x.introduce(4);
  for (let i = 0; i < 10; i++) {
    await g.watch(`data/w${i}`, `t${i}`);
    await g.nextEvent();
  }
  const tx = await g.transactionStart();
  await g.reconnect();
  assert.equal(g.page.get(Field.CONNECTION), 0);
  await x.ok(XS.WRITE, "/local/domain/4/data/w3\0x");
  await assertNoPendingEvents(g, "no watch of the old connection fires");
  await assert.rejects(g.read("data/w3", tx), XsError, errno("ENOENT"));
  assert.equal(await g.read("data/w3"), "x");
  await g.watch("data/w3", "new");
  assert.deepEqual(await g.nextEvent(), { path: "data/w3", token: "new" });
});

Deno.test("sim: dom0's own ring is a privileged ring connection", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-xen-" });
  createDom0Ring(dir);
  // startSimXen makes its own directory: start this one by hand on the prepared one.
  const { startDaemon } = await import("../helpers/daemon.ts");
  const d = await startDaemon({ args: [`--xen=sim:${dir}`] }).catch(async (e) => {
    await Deno.remove(dir, { recursive: true });
    throw e;
  });
  const { GuestClient } = await import("../../src/client/guest.ts");
  const { SimGuest } = await import("../../src/xen/sim/guest.ts");
  const k = new GuestClient(new SimGuest(dir, 0), { timeoutMs: 10_000 });
  try {
    await k.write("/tool/fromkernel", "1");
    assert.equal(await k.read("/tool/xenstored"), "", "dom0 reads what only dom0 may read");
    assert.equal(await k.call(XS.IS_DOMAIN_INTRODUCED, "0\0"), "T\0");
    assert.equal(await k.getDomainPath(0), "/local/domain/0");
  } finally {
    k.close();
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sim: -D (--no-domain-init) leaves dom0's own ring alone; the socket serves dom0's tools", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-xen-" });
  createDom0Ring(dir);
  const { startDaemon } = await import("../helpers/daemon.ts");
  const d = await startDaemon({ args: [`--xen=sim:${dir}`, "-D"] }).catch(async (e) => {
    await Deno.remove(dir, { recursive: true });
    throw e;
  });
  const { GuestClient } = await import("../../src/client/guest.ts");
  const { SimGuest } = await import("../../src/xen/sim/guest.ts");
  const k = new GuestClient(new SimGuest(dir, 0), { timeoutMs: 1500 });
  try {
    await assert.rejects(k.write("/tool/fromkernel", "1"), Error, undefined, "nobody answers dom0's ring");
    const c = await WireClient.connect(d.socket);
    try {
      assert.equal((await c.request(XS.IS_DOMAIN_INTRODUCED, "0\0")).payload, "T\0");
      assert.equal(
        (await c.request(XS.READ, "/tool/fromkernel\0")).type,
        XS.ERROR,
        "the ring's write never ran",
      );
    } finally {
      c.close();
    }
  } finally {
    k.close();
    await d.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
