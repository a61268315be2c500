// Group commit (--sync=group:<ms>): the gate's decisions with a fake clock, and the real server loop
// in-process: a reply (or watch event) is written only after the fsync covering its commit, and a
// failed fsync sends neither.
import { openDatabase } from "../../src/backend/backend.ts";
import { DirectAppender } from "../../src/backend/direct_log.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { GroupCommitGate, groupCommitGate } from "../../src/backend/group.ts";
import { SqliteBackend } from "../../src/backend/sqlite.ts";
import type { Client } from "../../src/dispatch/client.ts";
import { Core } from "../../src/dispatch/core.ts";
import type { Commit } from "../../src/store/database.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { UnixServer } from "../../src/server/unix_server.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { directIoWorks, Harness } from "./harness.ts";

class FakeSync {
  pending = 0;
  syncs = 0;
  fail = false;
  unsynced(): number {
    return this.pending;
  }
  syncNow(): void {
    if (this.fail) throw new Error("fsync: EIO");
    this.syncs++;
    this.pending = 0;
  }
}

Deno.test("group gate: window 0 syncs once per turn that committed, never holds", () => {
  const s = new FakeSync();
  const g = new GroupCommitGate(s, 0, () => assert.fail("no failure expected"), () => 0);
  assert.equal(g.hold(), false);
  assert.equal(s.syncs, 0, "nothing to sync");
  s.pending = 5;
  assert.equal(g.hold(), false);
  assert.equal(s.syncs, 1);
  assert.equal(s.pending, 0);
  assert.deepEqual(g.stats, { syncs: 1, records: 5, syncMs: 0 });
});

Deno.test("group gate: a window gathers a growing burst, up to its length; a trickle is synced", () => {
  let now = 0;
  const s = new FakeSync();
  const g = new GroupCommitGate(s, 5, () => assert.fail("no failure expected"), () => now);
  s.pending = 2;
  assert.equal(g.hold(), true, "first commits: hold, more may come");
  now = 1;
  s.pending = 4;
  assert.equal(g.hold(), true, "the batch doubled: keep gathering");
  now = 2;
  assert.equal(g.hold(), false, "none arrived since: sync now");
  assert.equal(s.syncs, 1);
  // A burst that keeps doubling is cut at the window's end.
  s.pending = 1;
  now = 10;
  assert.equal(g.hold(), true);
  for (let t = 11; t < 15; t++) {
    now = t;
    s.pending *= 2;
    assert.equal(g.hold(), true, `t=${t}`);
  }
  now = 15;
  s.pending *= 2;
  assert.equal(g.hold(), false, "window over");
  assert.deepEqual(g.stats, { syncs: 2, records: 4 + 32, syncMs: 0 });
  // A trickle (one more per poll) is not worth waiting for.
  s.pending = 8;
  now = 20;
  assert.equal(g.hold(), true);
  s.pending = 9;
  assert.equal(g.hold(), false, "grew by 1 of 8: sync");
  assert.equal(s.syncs, 3);
});

Deno.test("group gate: a failed sync is reported once and holds the output for ever", () => {
  const s = new FakeSync();
  const failures: Error[] = [];
  const g = new GroupCommitGate(s, 0, (e) => failures.push(e), () => 0);
  s.pending = 3;
  s.fail = true;
  assert.equal(g.hold(), true);
  s.fail = false;
  assert.equal(g.hold(), true, "still held: the commits it covered are not on disk");
  assert.equal(failures.length, 1);
  assert.ok(/EIO/.test(failures[0].message));
});

Deno.test("group mode: only the group's sync makes commits durable (file, sqlite)", () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-group-" });
  try {
    for (
      const make of [
        () => new FileBackend(`${dir}/f`, { sync: "group:0" }),
        () => new SqliteBackend(`${dir}/s.db`, { sync: "group:0" }),
      ]
    ) {
      const b = make();
      const h = new Harness(b);
      const d = b.deferredSync()!;
      assert.ok(d !== null);
      assert.equal(d.unsynced(), 0, "the initial tree is synced at start");
      h.write("/a", "1");
      const tx = h.start();
      h.write("/b", "2", tx);
      h.write("/c", "3", tx);
      h.end(tx);
      assert.equal(d.unsynced(), 2, "a write and a transaction: two change sets");
      d.syncNow();
      assert.equal(d.unsynced(), 0);
      h.close();
      const r = new Harness(make());
      assert.equal(r.req(XS.READ, "/c\0"), "3");
      r.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * A file backend that counts change sets appended and made durable (by an fdatasync, or by an
 * O_DIRECT|O_DSYNC group write), and can fail its next sync.
 */
class WatchedLog extends FileBackend {
  appended = 0;
  durable = 0;
  directWrites = 0;
  failSync = false;
  override persist(c: Commit, gen: number): void {
    super.persist(c, gen);
    this.appended++;
  }
  protected override syncLog(f: Deno.FsFile): void {
    if (this.failSync) throw new Error("Input/output error (injected)");
    super.syncLog(f);
    this.durable = this.appended;
  }
  protected override writeLogDirect(d: DirectAppender, frames: readonly Uint8Array[], bytes: number): number {
    if (this.failSync) throw new Error("Input/output error (injected)");
    const reached = super.writeLogDirect(d, frames, bytes);
    this.directWrites++;
    this.durable = this.appended;
    return reached;
  }
}

const DIRECT_OK = directIoWorks();

async function withServer(
  directIo: boolean,
  fn: (ctx: { socket: string; backend: WatchedLog; failures: Error[] }) => Promise<void>,
): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-group-" });
  const backend = new WatchedLog(`${dir}/s`, { sync: "group:0", directIo });
  const core = new Core({ policy: new LegacyPolicy(), db: openDatabase(backend) });
  const socket = `${dir}/sock`;
  const server = new UnixServer<Client>({ path: socket }, core);
  const failures: Error[] = [];
  server.setOutputGate(
    groupCommitGate(backend, 0, (e) => {
      failures.push(e);
      server.stop();
    })!,
  );
  server.listen();
  const running = server.run();
  try {
    await fn({ socket, backend, failures });
  } finally {
    server.stop();
    await running;
    backend.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

for (const directIo of [false, true]) {
  const how = directIo ? "O_DIRECT|O_DSYNC writes" : "write + fdatasync";
  const ignore = directIo && !DIRECT_OK;

  Deno.test({
    name: `group commit (${how}): every reply arrives after the sync that covers its record`,
    ignore,
    fn: async () => {
      await withServer(directIo, async ({ socket, backend }) => {
        const c = await WireClient.connect(socket);
        try {
          for (let i = 0; i < 10; i++) {
            const r = await c.request(XS.WRITE, `/k${i % 5}\0v${i}`);
            assert.equal(r.type, XS.WRITE);
            assert.equal(backend.appended, i + 1, "one change set per write");
            assert.ok(backend.durable >= i + 1, `reply ${i}: ${backend.durable} change sets durable`);
          }
          assert.equal(backend.directWrites > 0, directIo, "the sync path under test was used");
        } finally {
          c.close();
        }
      });
    },
  });

  Deno.test({
    name: `group commit (${how}): a failed sync sends neither the reply nor the watch event`,
    ignore,
    fn: async () => {
      await withServer(directIo, async ({ socket, backend, failures }) => {
        const watcher = await WireClient.connect(socket);
        const writer = await WireClient.connect(socket);
        try {
          assert.equal((await watcher.request(XS.WATCH, "/w\0tok\0")).type, XS.WATCH);
          assert.equal((await watcher.recv()).type, XS.WATCH_EVENT, "the initial event");
          assert.equal((await writer.request(XS.WRITE, "/w\0before")).type, XS.WRITE);
          assert.equal((await watcher.recv()).type, XS.WATCH_EVENT, "event of a synced write");
          backend.failSync = true;
          await writer.send(XS.WRITE, "/w\0lost");
          assert.equal(await writer.expectClosed(), "eof", "no reply");
          assert.equal(await watcher.expectClosed(), "eof", "no event");
          assert.equal(failures.length, 1);
        } finally {
          watcher.close();
          writer.close();
        }
      });
    },
  });
}
