// A watch outlives the daemon: the store reconnects, registers the watch again and reports the gap.
import assert from "../helpers/assert.ts";
import { ConnectionError, XenStore } from "../../src/client/mod.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** A dxenstored on `socket` (kept by the test, so a second one can take the same path). */
async function daemonOn(socket: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--socket", socket],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return child;
    } catch (e) {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw e;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
}

Deno.test("client: watches survive a daemon restart (re-registered, gap reported); requests wait for it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-reconnect-" });
  const socket = `${dir}/socket`;
  let d = await daemonOn(socket);
  try {
    using xs = await XenStore.open({
      socket,
      timeoutMs: 10_000,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    await xs.write("/r/x", "1");
    const w = await xs.watch("/r");
    const it = w[Symbol.asyncIterator]();
    assert.equal((await it.next()).value.path, "/r");
    const genBefore = xs.generation;
    const tx = await xs.startTransaction();
    await stop(d);
    // Restarted (memory backend: the store is empty again).
    d = await daemonOn(socket);
    // A request made now waits for the reconnection instead of failing.
    await xs.write("/r/y", "2");
    assert.equal(xs.generation, genBefore + 1);
    const gap = (await it.next()).value;
    assert.equal(gap.gap, "reconnect");
    assert.equal(gap.path, "/r");
    assert.equal((await it.next()).value.path, "/r", "the registration event of the renewed watch");
    await xs.write("/r/z", "3");
    const seen: string[] = [];
    for (;;) {
      const e = (await it.next()).value;
      seen.push(e.path);
      if (e.path === "/r/z") break;
    }
    assert.ok(seen.includes("/r/z"), JSON.stringify(seen));
    // The transaction was opened on the old connection: it is gone, and says so.
    await assert.rejects(tx.read("/r/x"), ConnectionError);
    await w.close();
  } finally {
    await stop(d);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: a transaction interrupted by a restart before its commit runs again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-reconnect-" });
  const socket = `${dir}/socket`;
  let d = await daemonOn(socket);
  try {
    using xs = await XenStore.open({
      socket,
      timeoutMs: 10_000,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    let attempts = 0;
    const r = await xs.transaction(async (tx) => {
      attempts++;
      if (attempts === 1) {
        await stop(d);
        d = await daemonOn(socket);
      }
      await tx.write("/t/v", `attempt ${attempts}`);
      return attempts;
    });
    assert.equal(r, 2);
    assert.equal(await xs.read("/t/v"), "attempt 2");
  } finally {
    await stop(d);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client: with reconnect off, or once it gives up, a watch ends with ConnectionError", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-reconnect-" });
  const socket = `${dir}/socket`;
  const d = await daemonOn(socket);
  try {
    using xs = await XenStore.open({
      socket,
      reconnect: { initialDelayMs: 10, maxDelayMs: 20, giveUpAfterMs: 300 },
    });
    const w = await xs.watch("/g");
    const it = w[Symbol.asyncIterator]();
    await it.next();
    await stop(d);
    await assert.rejects(it.next(), ConnectionError);
    await assert.rejects(xs.read("/g"), ConnectionError);
  } finally {
    await stop(d);
    await Deno.remove(dir, { recursive: true });
  }
});
