// Domid reuse end to end (XSA-322, XSA-417, XSA-419, XSA-483): a dxenstored process on the simulated
// Xen, dom0 on its socket, guests over their rings. A domain that dies leaves nothing a new domain
// given its domid could inherit: no node, no permission entry, no watch, no transaction, no quota
// usage, no policy-plugin state — and nothing can be given to a domain that does not exist.
import assert from "../helpers/assert.ts";
import { XS } from "../helpers/wire.ts";
import { assertNoPendingEvents, type SimXen, startSimXen } from "./sim_harness.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { createDomain, destroyDomain } from "../../src/xen/sim/control.ts";
import type { GuestClient } from "../../src/client/guest.ts";

const SETS = "banks:a=/cw/bank-a banks:b=/cw/bank-b";
const NODE_QUOTA = 24;

/** How many nodes `g` can create under its home before ENOSPC (bounded: the quota is small). */
async function fillNodes(g: GuestClient, prefix: string): Promise<number> {
  for (let i = 0; i < 4 * NODE_QUOTA; i++) {
    try {
      await g.write(`data/${prefix}${i}`, "x");
    } catch (e) {
      assert.ok(e instanceof XsError && e.errno === "ENOSPC", `node quota: ${e}`);
      return i;
    }
  }
  throw new Error("the node quota was never reached");
}

async function readErrno(g: GuestClient, path: string): Promise<string> {
  const m = await g.request(XS.READ, `${path}\0`);
  return m.type === XS.ERROR ? m.payload.replace(/\0$/, "") : "ok";
}

/** dom0 polls until `path` is gone (the daemon handles VIRQ_DOM_EXC asynchronously to our requests). */
async function waitGone(x: SimXen, path: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if ((await x.call(XS.READ, `${path}\0`)).type === XS.ERROR) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${path} still exists`);
}

Deno.test("domid reuse: a new guest given a dead guest's domid gets nothing of it (sim Xen, end to end)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-reuse-" });
  const conf = `${dir}/policy.conf`;
  await Deno.writeTextFile(
    conf,
    `policy = legacy,chinese-wall\npolicy-config.chinese-wall.conflict-sets = ${SETS}\n`,
  );
  try {
    await using x = await startSimXen(["--policy-config", conf, "-E", String(NODE_QUOTA)]);
    // The first domain 7 (granted what follows once it exists: spec PERM-10).
    const old = await x.introduce(7);
    // dom0's grants to domain 7, in nodes and in a special path's permissions.
    await x.ok(XS.WRITE, "/shared\0");
    await x.ok(XS.SET_PERMS, "/shared\0n0\0w7\0");
    await x.ok(XS.WRITE, "/granted\0secret");
    await x.ok(XS.SET_PERMS, "/granted\0n0\0r7\0");
    await x.ok(XS.SET_PERMS, "@releaseDomain\0n0\0r7\0");
    for (const p of ["/cw/bank-a/k", "/cw/bank-b/k"]) await x.ok(XS.WRITE, `${p}\0v`);
    await x.ok(XS.SET_PERMS, "/cw\0n0\0b7\0");
    for (const p of ["/cw/bank-a", "/cw/bank-a/k", "/cw/bank-b", "/cw/bank-b/k"]) {
      await x.ok(XS.SET_PERMS, `${p}\0n0\0b7\0`);
    }

    // The first domain 7: nodes (its own and in dom0's tree), quota usage, watches, a transaction,
    // and plugin state (the Chinese Wall: having read bank-a walls it off bank-b).
    await old.write("/shared/by7", "v");
    const oldTx = await old.transactionStart();
    await old.write("data/in-tx", "1", oldTx);
    const quota = await fillNodes(old, "n");
    assert.ok(quota > 0);
    assert.equal(await old.read("/granted"), "secret");
    assert.equal(await readErrno(old, "/cw/bank-a/k"), "ok");
    assert.equal(await readErrno(old, "/cw/bank-b/k"), "EACCES", "walled off after bank-a");
    await old.watch("/shared", "old-shared");
    await old.watch("@releaseDomain", "old-release");
    assert.equal((await old.eventsWithin(200)).length, 2, "the registration events");
    // dom0 grants 7 more in a transaction that will commit only after 7 is gone.
    const dom0Tx = Number((await x.ok(XS.TRANSACTION_START, "\0")).replace(/\0$/, ""));
    await x.ok(XS.SET_PERMS, "/shared\0n0\0w7\0r7\0", dom0Tx);

    // A domain the hypervisor has but that was never introduced may own nodes (toolstacks give a new
    // domain its home before INTRODUCE); when it dies, they go too.
    createDomain(x.dir, 8);
    await x.ok(XS.WRITE, "/pre8/a\0x");
    await x.ok(XS.SET_PERMS, "/pre8\0n8\0");

    await x.ok(XS.WATCH, "@releaseDomain\0d0\0");
    assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain", token: "d0" });
    destroyDomain(x.dir, 7);
    assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain", token: "d0" });
    destroyDomain(x.dir, 8);
    await waitGone(x, "/pre8");

    // Nothing can be given to the dead domain, and what it had is gone.
    assert.equal(await x.fails(XS.SET_PERMS, "/shared\0n7\0"), "ENOENT");
    assert.equal(await x.fails(XS.SET_PERMS, "/shared\0n8\0"), "ENOENT");
    assert.equal(await x.fails(XS.READ, "/shared/by7\0"), "ENOENT", "its node in dom0's tree");
    assert.equal(await x.ok(XS.GET_PERMS, "/shared\0"), "n0\0", "its permission entries");
    assert.equal(await x.ok(XS.GET_PERMS, "/granted\0"), "n0\0");
    assert.equal(await x.ok(XS.GET_PERMS, "/cw/bank-a/k\0"), "n0\0");
    assert.equal(await x.ok(XS.GET_PERMS, "@releaseDomain\0"), "n0\0");
    // The transaction that named the old domain 7 cannot commit its entry now (XSA-417).
    const end = await x.call(XS.TRANSACTION_END, "T\0", dom0Tx);
    assert.equal(end.type, XS.ERROR);
    assert.equal(end.payload, "EAGAIN\0");
    assert.equal(await x.ok(XS.GET_PERMS, "/shared\0"), "n0\0");

    // A new domain 7 (and 8): the toolstack gives 7 its home again and introduces it.
    createDomain(x.dir, 8);
    assert.equal(await x.fails(XS.READ, "/pre8/a\0"), "ENOENT");
    const fresh = await x.introduce(7);
    assert.equal(await readErrno(fresh, "/granted"), "EACCES", "no inherited read access");
    await assert.rejects(fresh.write("/shared/again", "v"), XsError, (e) => e.errno === "EACCES");
    assert.equal(await readErrno(fresh, "data/n0"), "ENOENT", "its home was emptied");
    // The old one also owned /shared/by7; the new one has its whole quota under its home.
    assert.equal(await fillNodes(fresh, "m"), quota + 1, "a whole node quota again (no usage inherited)");
    await assert.rejects(fresh.read("data/in-tx", oldTx), XsError, (e) => e.errno === "ENOENT");
    // No watch of the old domain fires for the new one.
    await x.ok(XS.WRITE, "/shared/y\0dom0");
    await assertNoPendingEvents(fresh, "no event for the old domain's watches");
    // The Chinese Wall's history went with the old domain: the new one chooses freely.
    await x.ok(XS.SET_PERMS, "/cw/bank-b/k\0n0\0b7\0");
    await x.ok(XS.SET_PERMS, "/cw/bank-b\0n0\0b7\0");
    assert.equal(await readErrno(fresh, "/cw/bank-b/k"), "ok", "no plugin state inherited");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("domid reuse: an entry set while its domain did not exist gives a later domain with that domid nothing, until set again (PERM-10, sim Xen)", async () => {
  await using x = await startSimXen();
  await x.ok(XS.WATCH, "@releaseDomain\0d0\0");
  assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain", token: "d0" });
  // XSA-417's race: domain 9 dies, and the toolstack, not knowing yet, grants domain 9 access.
  await x.introduce(9);
  destroyDomain(x.dir, 9);
  assert.deepEqual(await x.dom0Event(), { path: "@releaseDomain", token: "d0" });
  await x.ok(XS.WRITE, "/early\0secret");
  await x.ok(XS.SET_PERMS, "/early\0n0\0r9\0");
  await x.ok(XS.SET_PERMS, "@introduceDomain\0n0\0r9\0");
  await x.ok(XS.WRITE, "/early/child\0c");
  // Kept and shown exactly as written (PERM-9), inherited by the child.
  assert.equal(await x.ok(XS.GET_PERMS, "/early\0"), "n0\0r9\0");
  assert.equal(await x.ok(XS.GET_PERMS, "/early/child\0"), "n0\0r9\0");
  assert.equal(await x.ok(XS.GET_PERMS, "@introduceDomain\0"), "n0\0r9\0");

  // Xen gives the domid to a new domain: it gets nothing of that entry.
  const fresh = await x.introduce(9);
  assert.equal(await readErrno(fresh, "/early"), "EACCES");
  assert.equal(await readErrno(fresh, "/early/child"), "EACCES");
  assert.equal((await fresh.request(XS.GET_PERMS, "@introduceDomain\0")).payload, "EACCES\0");
  await assert.rejects(fresh.write("/early/mine", "v"), XsError, (e) => e.errno === "EACCES");

  // dom0 sets the list again now that domain 9 exists: the entry is active.
  await x.ok(XS.SET_PERMS, "/early\0n0\0r9\0");
  await x.ok(XS.SET_PERMS, "@introduceDomain\0n0\0r9\0");
  assert.equal(await fresh.read("/early"), "secret");
  assert.equal((await fresh.request(XS.GET_PERMS, "@introduceDomain\0")).payload, "n0\0r9\0");
  assert.equal(await readErrno(fresh, "/early/child"), "EACCES", "the child's list was not set again");
  await assert.rejects(fresh.write("/early", "w"), XsError, (e) => e.errno === "EACCES", "read only");
});
