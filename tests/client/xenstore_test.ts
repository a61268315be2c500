// The client library against dxenstored, cxenstored and oxenstored: the same calls, the same answers
// where the daemons agree, and "unsupported" (never a hang or a crash) where a daemon lacks a feature.
import assert from "../helpers/assert.ts";
import {
  ConnectionError,
  hasErrno,
  TimeoutError,
  TransactionAbortedError,
  UnsupportedError,
  XenStore,
  XsError,
} from "../../src/client/mod.ts";
import { TARGETS } from "./targets.ts";

for (const t of TARGETS) {
  const open = (socket: string) => XenStore.open({ socket, timeoutMs: 10_000, reconnect: false });

  Deno.test({
    name: `client (${t.kind}): node operations, typed errors, UTF-8 and binary values`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        await xs.write("/c/a", "héllo ✓");
        assert.equal(await xs.read("/c/a"), "héllo ✓");
        const bin = new Uint8Array([0, 1, 0xff, 0x80, 10]);
        await xs.write("/c/bin", bin);
        assert.deepEqual([...await xs.readBytes("/c/bin")], [...bin]);
        await xs.mkdir("/c/dir");
        assert.deepEqual((await xs.ls("/c")).sort(), ["a", "bin", "dir"]);
        assert.equal(await xs.exists("/c/dir"), true);
        assert.equal(await xs.exists("/c/none"), false);
        await xs.setPerms("/c/a", ["n0", { domid: 5, access: "r" }]);
        assert.deepEqual(await xs.getPerms("/c/a"), [{ domid: 0, access: "n" }, { domid: 5, access: "r" }]);
        const e = await assert.rejects(xs.read("/c/none"), XsError);
        assert.equal(e.errno, "ENOENT");
        assert.ok(e.message.includes("READ /c/none"), e.message);
        await assert.rejects(xs.write("bad//path", "x"), XsError, (x) => x.errno === "EINVAL");
        await xs.rm("/c/dir");
        assert.equal(await xs.exists("/c/dir"), false);
        assert.equal(await xs.getDomainPath(3), "/local/domain/3");
      }),
  });

  Deno.test({
    name: `client (${t.kind}): requests are pipelined and each gets its own reply`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        await Promise.all(Array.from({ length: 200 }, (_, i) => xs.write(`/p/n${i}`, `v${i}`)));
        const before = { ...xs.connectionStats };
        const got = await Promise.all(Array.from({ length: 200 }, (_, i) => xs.read(`/p/n${i}`)));
        // The 200 requests went out together, not one write and one reply at a time.
        const after = xs.connectionStats;
        assert.equal(after.requests - before.requests, 200);
        assert.ok(
          after.flushes - before.flushes <= 2,
          `${after.flushes - before.flushes} writes for 200 requests`,
        );
        assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => `v${i}`));
        // An error in the middle of a batch fails only its own request.
        const mixed = await Promise.allSettled([xs.read("/p/n1"), xs.read("/p/none"), xs.read("/p/n2")]);
        assert.deepEqual(mixed.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
      }),
  });

  Deno.test({
    name: `client (${t.kind}): large directories are listed with DIRECTORY_PART`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        const names = Array.from({ length: 150 }, (_, i) =>
          `child-with-a-long-name-${String(i).padStart(4, "0")}`);
        await Promise.all(names.map((n) =>
          xs.write(`/big/${n}`, "")
        ));
        assert.ok(names.join("\0").length > 4096);
        try {
          assert.deepEqual((await xs.ls("/big")).sort(), names);
        } catch (e) {
          // A daemon without DIRECTORY_PART says so; it must not be a hang or a wrong list.
          assert.ok(hasErrno(e, "E2BIG") || hasErrno(e, "ENOSYS") || hasErrno(e, "EINVAL"), String(e));
          assert.equal(t.kind, "oxenstored", `${t.kind} has DIRECTORY_PART: ${e}`);
        }
      }),
  });

  Deno.test({
    name: `client (${t.kind}): transaction(fn) retries conflicts until every increment is counted`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using a = await open(socket);
        using b = await open(socket);
        await a.write("/counter", "0");
        let retries = 0;
        const bump = (xs: XenStore) =>
          xs.transaction(async (tx) => {
            const v = Number(await tx.read("/counter"));
            await tx.write("/counter", String(v + 1));
            return v;
          }, { maxAttempts: 100, onRetry: () => retries++ });
        const runs = [];
        for (let i = 0; i < 20; i++) runs.push(bump(i % 2 === 0 ? a : b));
        await Promise.all(runs);
        assert.equal(await a.read("/counter"), "20");
        assert.ok(retries > 0, "concurrent read-modify-writes conflicted at least once");
      }),
  });

  Deno.test({
    name: `client (${t.kind}): a transaction that always conflicts gives up with EAGAIN; failures abort`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using a = await open(socket);
        using b = await open(socket);
        await a.write("/x", "0");
        let attempts = 0;
        const e = await assert.rejects(
          a.transaction(async (tx) => {
            attempts++;
            await tx.read("/x");
            await tx.write("/y", "mine");
            await b.write("/x", String(attempts)); // someone else changes what we read
          }, { maxAttempts: 3, baseDelayMs: 1 }),
          XsError,
        );
        assert.equal(e.errno, "EAGAIN");
        assert.equal(attempts, 3);
        assert.equal(await a.exists("/y"), false);
        // Any other error aborts: nothing of the transaction is applied.
        await assert.rejects(
          a.transaction(async (tx) => {
            await tx.write("/z", "1");
            throw new Error("changed my mind");
          }),
          Error,
          (x) => x.message === "changed my mind",
        );
        assert.equal(await a.exists("/z"), false);
      }),
  });

  Deno.test({
    name: `client (${t.kind}): nested transactions nest where advertised, else join the outer one safely`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        const nested = (await xs.features()).nestedTransactions;
        assert.equal(nested, t.kind === "dxenstored");
        // A successful inner transaction: everything commits with the outer one.
        await xs.transaction(async (tx) => {
          await tx.write("/n/outer", "1");
          await tx.transaction(async (inner) => await inner.write("/n/inner", "2"));
        });
        assert.equal(await xs.read("/n/inner"), "2");
        // A failed inner transaction whose error the outer function swallows.
        const outcome = await xs.transaction(async (tx) => {
          await tx.write("/n/outer2", "1");
          await tx.transaction(async (inner) => {
            await inner.write("/n/inner2", "2");
            throw new Error("inner fails");
          }).catch(() => {});
          return "outer committed";
        }).catch((e) => e);
        if (nested) {
          // The child alone was discarded.
          assert.equal(outcome, "outer committed");
          assert.equal(await xs.read("/n/outer2"), "1");
          assert.equal(await xs.exists("/n/inner2"), false);
        } else {
          // Joined: the outer transaction cannot commit half of it, so none of it is applied.
          assert.ok(outcome instanceof TransactionAbortedError, String(outcome));
          assert.equal(await xs.exists("/n/outer2"), false);
          assert.equal(await xs.exists("/n/inner2"), false);
        }
      }),
  });

  Deno.test({
    name: `client (${t.kind}): watches are async iterators; depth where supported`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        await xs.mkdir("/w");
        const w = await xs.watch("/w");
        const it = w[Symbol.asyncIterator]();
        assert.equal((await it.next()).value.path, "/w", "the registration event");
        await xs.write("/w/a/b", "1");
        assert.equal((await it.next()).value.path, "/w/a/b");
        await w.close();
        assert.equal((await it.next()).done, true);
        if ((await xs.features()).watchDepth) {
          const d = await xs.watch("/w", { depth: 1 });
          await xs.write("/w/a/b/c", "deep");
          await xs.write("/w/a", "shallow");
          const seen: string[] = [];
          for await (const e of d) {
            seen.push(e.path);
            if (seen.length === 2) break;
          }
          assert.deepEqual(seen, ["/w", "/w/a"], "the change 3 levels down was not reported");
        } else {
          await assert.rejects(xs.watch("/w", { depth: 1 }), UnsupportedError);
        }
      }),
  });

  Deno.test({
    name: `client (${t.kind}): features, quotas and stats report what the daemon has`,
    ignore: !t.available,
    fn: () =>
      t.with(async (socket) => {
        using xs = await open(socket);
        const f = await xs.features();
        assert.equal(f.daemon, t.kind);
        const dx = t.kind === "dxenstored";
        assert.equal(f.quota, dx);
        assert.equal(f.stats, dx);
        if (dx) {
          assert.ok(f.quotaNames.includes("nodes"));
          await xs.quota.set("watches", 77, 0);
          assert.equal(await xs.quota.get("watches", 0), 77);
          assert.ok((await xs.stats("dxenstored_nodes")).some((s) => s.name === "dxenstored_nodes"));
        } else {
          await assert.rejects(xs.quota.get("nodes"), UnsupportedError);
          await assert.rejects(xs.stats(), UnsupportedError);
          await assert.rejects(xs.policy(), UnsupportedError);
        }
        if (t.kind === "oxenstored") {
          await assert.rejects(xs.quota.limits(), UnsupportedError);
          assert.ok((await xs.quota.usage(0)).nodes > 0);
        } else {
          assert.equal((await xs.quota.limits()).nodes, 1000);
          const u = await xs.quota.usage(0);
          assert.ok(u.nodes > 0 && u.memory > 0, JSON.stringify(u));
        }
        // After all those probes the connection still works.
        await xs.write("/after", "ok");
        assert.equal(await xs.read("/after"), "ok");
      }),
  });
}

Deno.test("client: a daemon that is not there is a ConnectionError; a silent one a TimeoutError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-client-" });
  try {
    await assert.rejects(XenStore.open({ socket: `${dir}/none` }), ConnectionError);
    const listener = Deno.listen({ transport: "unix", path: `${dir}/mute` });
    const accepted: Deno.Conn[] = [];
    (async () => {
      for await (const c of listener) accepted.push(c);
    })();
    using xs = await XenStore.open({ socket: `${dir}/mute`, timeoutMs: 200, reconnect: false });
    await assert.rejects(xs.read("/x"), TimeoutError);
    // The daemon goes away: pending and later requests fail, nothing hangs.
    const pending = xs.read("/y");
    for (const c of accepted) c.close();
    listener.close();
    await assert.rejects(pending, ConnectionError);
    await assert.rejects(xs.read("/z"), ConnectionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
