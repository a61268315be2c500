// XenStore over a guest's ring (the simulated Xen): the same API as over the socket.
import assert from "../helpers/assert.ts";
import { XenStore, XsError } from "../../src/client/mod.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";
import { startSimXen } from "../xen/sim_harness.ts";

Deno.test("client over a ring: relative paths, pipelining, transactions, depth watches, features", async () => {
  await using x = await startSimXen();
  const g = await x.introduce(7);
  g.close(); // the harness's own client: this process runs the domain through XenStore instead
  using xs = await XenStore.open({ ring: new SimGuest(x.dir, 7), resetRing: true, timeoutMs: 10_000 });
  await xs.write("data/a", "1");
  assert.equal(await xs.read("/local/domain/7/data/a"), "1");
  const got = await Promise.all(
    Array.from({ length: 50 }, (_, i) => xs.write(`data/n${i}`, `${i}`).then(() => xs.read(`data/n${i}`))),
  );
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => `${i}`));
  await assert.rejects(xs.write("/local/domain/0/x", "no"), XsError, (e) => e.errno === "EACCES");
  const f = await xs.features();
  assert.equal(f.watchDepth, true);
  assert.equal(f.control, null, "a guest may not use CONTROL");
  await xs.transaction(async (tx) => {
    await tx.write("data/t", String(Number(await tx.read("data/a")) + 1));
  });
  assert.equal(await xs.read("data/t"), "2");
  const w = await xs.watch("data", { depth: 1 });
  const it = w[Symbol.asyncIterator]();
  assert.equal((await it.next()).value.path, "data");
  await x.ok(2, /* READ */ "/local/domain/7/data/a\0");
  await x.ok(11, /* WRITE */ "/local/domain/7/data/deep/er\0no");
  await x.ok(11, /* WRITE */ "/local/domain/7/data/b\0yes");
  assert.equal(
    (await it.next()).value.path,
    "data/b",
    "dom0's write one level down; the deeper one was not reported",
  );
  await w.close();
});
