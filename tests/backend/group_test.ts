// Group commit (--sync=group:<ms>): the gate's decisions with a fake clock, and the real server loop
// in-process: a reply (or watch event) is written only after the fsync covering its commit, and a
// failed fsync sends neither.
import { type AsyncSync, type DeferredSync, openDatabase } from "../../src/backend/backend.ts";
import { DirectAppender } from "../../src/backend/direct_log.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { GroupCommitGate, groupCommitGate } from "../../src/backend/group.ts";
import { SqliteBackend } from "../../src/backend/sqlite.ts";
import type { Commit } from "../../src/store/database.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { testCore } from "../helpers/core.ts";
import { aioWorks, directIoWorks, Harness, rng } from "./harness.ts";
import * as libc from "../../ffi/libc.ts";

/** A backend's sync state in memory: `pending` records stored and not durable. */
class FakeSync implements DeferredSync {
  committed = 0;
  durable = 0;
  syncs = 0;
  fail = false;
  get pending(): number {
    return this.committed - this.durable;
  }
  set pending(n: number) {
    this.committed = this.durable + n;
  }
  committedSeq(): number {
    return this.committed;
  }
  durableSeq(): number {
    return this.durable;
  }
  unsynced(): number {
    return this.pending;
  }
  syncNow(): void {
    if (this.fail) throw new Error("fsync: EIO");
    this.syncs++;
    this.durable = this.committed;
  }
}

/** The same with asynchronous writes: startSync submits, finish() is the disk completing it. */
class FakeAsyncSync extends FakeSync implements AsyncSync {
  readonly completionFd = -1;
  inFlight: number | null = null;
  started: number[] = [];
  asyncSync(): AsyncSync {
    return this;
  }
  inFlightNow(): boolean {
    return this.inFlight !== null;
  }
  startSync(): void {
    if (this.inFlight !== null) return;
    this.inFlight = this.committed;
    this.started.push(this.committed - this.durable);
  }
  complete(): void {
    if (this.inFlight === null) return;
    if (this.fail) throw new Error("O_DIRECT write failed: errno 5");
    this.durable = this.inFlight;
    this.inFlight = null;
  }
}

/** One loop turn as the server runs it: true if the turn's output has to wait. */
function held(g: GroupCommitGate): boolean {
  const tag = g.turnEnd();
  return tag !== 0 && g.durable() < tag;
}

Deno.test("group gate: window 0 syncs once per turn that committed, never holds", () => {
  const s = new FakeSync();
  const g = new GroupCommitGate(s, 0, () => assert.fail("no failure expected"), () => 0);
  assert.equal(g.turnEnd(), 0, "nothing stored: nothing to wait for");
  assert.equal(s.syncs, 0, "nothing to sync");
  s.pending = 5;
  assert.equal(g.turnEnd(), 5, "the turn's output waits for record 5");
  assert.equal(g.durable(), 5, "synced inline: released in the same turn");
  assert.equal(s.syncs, 1);
  assert.equal(s.pending, 0);
  assert.deepEqual(g.stats, { syncs: 1, records: 5, syncMs: 0 });
});

Deno.test("group gate: a window gathers a growing burst, up to its length; a trickle is synced", () => {
  let now = 0;
  const s = new FakeSync();
  const g = new GroupCommitGate(s, 5, () => assert.fail("no failure expected"), () => now);
  s.pending = 2;
  assert.equal(held(g), true, "first commits: hold, more may come");
  assert.equal(g.gathering, true, "the loop polls without blocking");
  now = 1;
  s.pending = 4;
  assert.equal(held(g), true, "the batch doubled: keep gathering");
  now = 2;
  assert.equal(held(g), false, "none arrived since: sync now");
  assert.equal(g.gathering, false);
  assert.equal(s.syncs, 1);
  // A burst that keeps doubling is cut at the window's end.
  s.pending = 1;
  now = 10;
  assert.equal(held(g), true);
  for (let t = 11; t < 15; t++) {
    now = t;
    s.pending *= 2;
    assert.equal(held(g), true, `t=${t}`);
  }
  now = 15;
  s.pending *= 2;
  assert.equal(held(g), false, "window over");
  assert.deepEqual(g.stats, { syncs: 2, records: 4 + 32, syncMs: 0 });
  // A trickle (one more per poll) is not worth waiting for.
  s.pending = 8;
  now = 20;
  assert.equal(held(g), true);
  s.pending = 9;
  assert.equal(held(g), false, "grew by 1 of 8: sync");
  assert.equal(s.syncs, 3);
});

Deno.test("group gate: a failed sync is reported once and holds the output for ever", () => {
  const s = new FakeSync();
  const failures: Error[] = [];
  const g = new GroupCommitGate(s, 0, (e) => failures.push(e), () => 0);
  s.pending = 3;
  s.fail = true;
  assert.equal(held(g), true);
  s.fail = false;
  assert.equal(held(g), true, "still held: the commits it covered are not on disk");
  s.pending = 0;
  assert.equal(held(g), true, "even a turn that stored nothing: the state on disk is unknown");
  assert.equal(failures.length, 1);
  assert.ok(/EIO/.test(failures[0].message));
});

Deno.test("group gate (asynchronous): one write in flight; the next group forms meanwhile", () => {
  const s = new FakeAsyncSync();
  const g = new GroupCommitGate(s, 0, () => assert.fail("no failure expected"), () => 0);
  s.pending = 3;
  assert.equal(g.turnEnd(), 3);
  assert.deepEqual(s.started, [3], "submitted at the turn's end");
  assert.equal(g.durable(), 0, "not durable until it completes");
  s.committed += 2; // the next turn commits two more while the write is in flight
  assert.equal(g.turnEnd(), 5, "their output waits for record 5");
  assert.deepEqual(s.started, [3], "no second write while one is in flight");
  g.completed();
  assert.equal(g.durable(), 3, "the first group is durable: output tagged ≤ 3 may go");
  assert.equal(g.turnEnd(), 5);
  assert.deepEqual(s.started, [3, 2], "the next write starts at the next turn end, with what gathered");
  g.completed();
  assert.equal(g.durable(), 5);
  assert.equal(g.turnEnd(), 0, "all durable: output goes at once");
  assert.deepEqual(g.stats, { syncs: 2, records: 5, syncMs: 0 });
});

Deno.test("group gate (asynchronous): no gathering window: the write in flight gathers instead", () => {
  let now = 0;
  const s = new FakeAsyncSync();
  const g = new GroupCommitGate(s, 5, () => assert.fail("no failure expected"), () => now);
  s.pending = 2;
  assert.equal(g.turnEnd(), 2);
  assert.equal(g.gathering, false);
  assert.deepEqual(s.started, [2], "submitted at once, although the window is 5 ms");
  now = 1;
  s.committed += 4;
  g.turnEnd();
  assert.deepEqual(s.started, [2], "the next group gathers behind the write in flight");
  g.completed();
  g.turnEnd();
  assert.deepEqual(s.started, [2, 4]);
});

Deno.test("group gate (asynchronous): a failed write holds everything for ever", () => {
  const s = new FakeAsyncSync();
  const failures: Error[] = [];
  const g = new GroupCommitGate(s, 0, (e) => failures.push(e), () => 0);
  s.pending = 1;
  g.turnEnd();
  g.completed();
  assert.equal(g.durable(), 1);
  s.pending = 2;
  g.turnEnd();
  s.fail = true;
  g.completed();
  assert.equal(failures.length, 1);
  assert.equal(held(g), true);
  assert.equal(g.durable(), 0, "nothing counts as durable after a failure");
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
 * O_DIRECT|O_DSYNC group write, inline or through AIO), can fail its next sync, and can hold back
 * AIO completions (a slow disk) until the test lets them through.
 */
class WatchedLog extends FileBackend {
  appended = 0;
  durableCount = 0;
  directWrites = 0;
  asyncWrites = 0;
  failSync = false;
  holdCompletions = false;
  private submittedAt = 0;
  override persist(c: Commit, gen: number): void {
    super.persist(c, gen);
    this.appended++;
  }
  protected override syncLog(f: Deno.FsFile): void {
    if (this.failSync) throw new Error("Input/output error (injected)");
    super.syncLog(f);
    this.durableCount = this.appended;
  }
  protected override writeLogDirect(d: DirectAppender, frames: readonly Uint8Array[], bytes: number): number {
    if (this.failSync) throw new Error("Input/output error (injected)");
    const reached = super.writeLogDirect(d, frames, bytes);
    this.directWrites++;
    this.durableCount = this.appended;
    return reached;
  }
  protected override submitDirect(d: DirectAppender, frames: readonly Uint8Array[], bytes: number): void {
    super.submitDirect(d, frames, bytes);
    this.asyncWrites++;
    this.submittedAt = this.appended;
  }
  protected override completeDirect(d: DirectAppender, res: number): number {
    const reached = super.completeDirect(d, this.failSync ? -libc.EIO : res);
    this.durableCount = this.submittedAt;
    return reached;
  }
  override complete(): void {
    if (this.holdCompletions) {
      libc.read(this.completionFd, new Uint8Array(8)); // the event stays queued in the AIO context
      return;
    }
    super.complete();
  }
}

const DIRECT_OK = directIoWorks();
/** The AIO path needs O_DIRECT and Linux AIO; where either is missing the backend syncs inline. */
const AIO_OK = DIRECT_OK && aioWorks();

type SyncPath = "fdatasync" | "direct" | "aio";
const PATHS: Record<SyncPath, string> = {
  fdatasync: "write + fdatasync",
  direct: "O_DIRECT|O_DSYNC writes",
  aio: "O_DIRECT|O_DSYNC writes through AIO",
};

interface ServerCtx {
  socket: string;
  backend: WatchedLog;
  gate: GroupCommitGate;
  failures: Error[];
}

async function withServer(path: SyncPath, fn: (ctx: ServerCtx) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-group-" });
  const backend = new WatchedLog(`${dir}/s`, {
    sync: "group:0",
    directIo: path !== "fdatasync",
    asyncIo: path === "aio",
  });
  const core = testCore({ db: openDatabase(backend) });
  const socket = `${dir}/sock`;
  const failures: Error[] = [];
  const gate = groupCommitGate(backend, 0, (e) => {
    failures.push(e);
    loop.stop();
  })!;
  assert.equal(gate.completionFd !== null, path === "aio", "AIO used exactly when asked for");
  const loop = new EventLoop({ gate });
  const server = new SocketServer(loop, core, { path: socket });
  server.listen();
  const running = loop.run();
  try {
    await fn({ socket, backend, gate, failures });
  } finally {
    loop.stop();
    await running;
    loop.close();
    backend.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Wait (polling, the server runs meanwhile) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Check that `p` (a reply) stays pending for `ms` while the server runs. */
async function stillPending(p: Promise<unknown>, ms: number, what: string): Promise<void> {
  let arrived = false;
  p.then(() => arrived = true, () => arrived = true);
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(arrived, false, `${what} arrived before the write covering it completed`);
}

for (const path of ["fdatasync", "direct", "aio"] as const) {
  const how = PATHS[path];
  const ignore = (path !== "fdatasync" && !DIRECT_OK) || (path === "aio" && !AIO_OK);

  Deno.test({
    name: `group commit (${how}): every reply arrives after the sync that covers its record`,
    ignore,
    fn: async () => {
      await withServer(path, async ({ socket, backend }) => {
        const c = await WireClient.connect(socket);
        try {
          for (let i = 0; i < 10; i++) {
            const r = await c.request(XS.WRITE, `/k${i % 5}\0v${i}`);
            assert.equal(r.type, XS.WRITE);
            assert.equal(backend.appended, i + 1, "one change set per write");
            assert.ok(
              backend.durableCount >= i + 1,
              `reply ${i}: ${backend.durableCount} change sets durable`,
            );
          }
          assert.equal(backend.directWrites > 0, path === "direct", "the inline direct path was used");
          assert.equal(backend.asyncWrites > 0, path === "aio", "the AIO path was used");
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
      await withServer(path, async ({ socket, backend, failures }) => {
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

Deno.test({
  name: "group commit (AIO): while a write is in flight, every reply waits for the write covering it",
  ignore: !AIO_OK,
  fn: async () => {
    await withServer("aio", async ({ socket, backend, gate }) => {
      const a = await WireClient.connect(socket);
      const b = await WireClient.connect(socket);
      const c = await WireClient.connect(socket);
      try {
        backend.holdCompletions = true; // the disk is slow: the first write stays in flight
        await a.send(XS.WRITE, "/x\0one");
        await until(() => backend.asyncWrites === 1, "the first group write");
        // A read of the value in flight, and a write that must go into the next group.
        await b.send(XS.READ, "/x\0");
        await c.send(XS.WRITE, "/y\0two");
        await until(() => backend.appended === 2, "the second write committed (in memory)");
        assert.equal(backend.asyncWrites, 1, "no second write while one is in flight");
        const ra = a.recv();
        const rb = b.recv();
        const rc = c.recv();
        await stillPending(ra, 150, "the first write's reply");
        await stillPending(rb, 0, "a read of a value not yet durable");
        await stillPending(rc, 0, "the second write's reply");
        // The first write completes: its reply goes (the read's too, unless the read was handled in
        // the same loop turn as the second write: a turn's output waits for its last record); the
        // second write is submitted.
        backend.holdCompletions = false;
        gate.completed();
        await until(() => !backend.inFlightNow(), "the first write's completion");
        backend.holdCompletions = true;
        assert.equal((await ra).type, XS.WRITE);
        await until(() => backend.asyncWrites === 2, "the second group write");
        await stillPending(rc, 150, "the second write's reply");
        assert.equal(backend.durableCount, 1);
        backend.holdCompletions = false;
        gate.completed();
        await until(() => !backend.inFlightNow(), "the second write's completion");
        assert.equal((await rc).type, XS.WRITE);
        assert.equal((await rb).payload, "one");
        assert.equal(backend.durableCount, 2);
        // Nothing left in flight: a read is answered at once.
        assert.equal((await b.request(XS.READ, "/y\0")).payload, "two");
      } finally {
        a.close();
        b.close();
        c.close();
      }
    });
  },
});

/** Counts compactions that found a group write in flight; refuses the first completion with EINVAL if asked. */
class AioLog extends FileBackend {
  compactionsInFlight = 0;
  refuseOnce = false;
  override compact(root: Parameters<FileBackend["compact"]>[0], gen: number): void {
    if (this.inFlightNow()) this.compactionsInFlight++;
    super.compact(root, gen);
  }
  protected override completeDirect(d: DirectAppender, res: number): number {
    if (this.refuseOnce) {
      this.refuseOnce = false;
      return super.completeDirect(d, -libc.EINVAL);
    }
    return super.completeDirect(d, res);
  }
}

for (const seed of [3, 33]) {
  Deno.test({
    name:
      `file backend (AIO): writes, syncs, completions and compactions in any order lose nothing (seed ${seed})`,
    ignore: !AIO_OK,
    fn: () => {
      const next = rng(seed);
      const dir = Deno.makeTempDirSync({ prefix: "dxs-group-" });
      const make = () => new AioLog(`${dir}/s`, { sync: "group:0", compactBytes: 6000 });
      try {
        const b = make();
        const h = new Harness(b);
        const a = b.asyncSync();
        assert.ok(a !== null, "AIO available");
        const model = new Map<string, string>();
        for (let i = 0; i < 400; i++) {
          const r = next();
          if (r < 0.6) {
            const k = `/k${Math.floor(next() * 20)}`;
            const v = `v${i}-${"x".repeat(Math.floor(next() * 200))}`;
            h.write(k, v); // may compact, which first waits for a write in flight
            model.set(k, v);
          } else if (r < 0.8) a.startSync();
          else if (r < 0.95) a.complete();
          else b.syncNow();
          assert.ok(b.durableSeq() <= b.committedSeq());
          if (!a.inFlightNow() && b.unsynced() === 0) assert.equal(b.durableSeq(), b.committedSeq());
        }
        assert.ok(b.compactionsInFlight > 0, "some compaction found a write in flight");
        h.close(); // waits for the write in flight, syncs the rest
        const r2 = new Harness(make());
        for (const [k, v] of model) assert.equal(r2.req(XS.READ, `${k}\0`), v, k);
        r2.close();
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "file backend (AIO): a write refused at completion (EINVAL) is redone through the page cache",
  ignore: !AIO_OK,
  fn: () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxs-group-" });
    const make = () => new AioLog(`${dir}/s`, { sync: "group:0" });
    try {
      const b = make();
      const h = new Harness(b);
      const a = b.asyncSync()!;
      // Groups written directly first: the page-cache write below must land after them, not where
      // the log's descriptor last stood.
      for (let i = 0; i < 3; i++) {
        h.write(`/p${i}`, "x".repeat(1500));
        a.startSync();
        b.syncNow();
      }
      h.write("/a", "1");
      b.refuseOnce = true;
      a.startSync();
      assert.equal(a.inFlightNow(), true);
      h.write("/b", "2"); // committed while the write is in flight
      b.syncNow(); // collects the refusal, rewrites both through the page cache, fdatasyncs
      assert.equal(b.unsynced(), 0);
      assert.equal(b.asyncSync(), null, "O_DIRECT is given up for good");
      h.write("/c", "3");
      b.syncNow();
      h.close();
      const r = new Harness(make());
      for (let i = 0; i < 3; i++) assert.equal(r.req(XS.READ, `/p${i}\0`), "x".repeat(1500));
      assert.equal(r.req(XS.READ, "/a\0"), "1");
      assert.equal(r.req(XS.READ, "/b\0"), "2");
      assert.equal(r.req(XS.READ, "/c\0"), "3");
      r.close();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
