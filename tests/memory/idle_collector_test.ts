// The idle collector's decisions (src/memory/idle_collector.ts), on a simulated clock and heap.
import assert from "../helpers/assert.ts";
import { IdleCollector } from "../../src/memory/idle_collector.ts";

const MiB = 1 << 20;

class World {
  t = 0;
  heap = 10 * MiB;
  footprint = 100 * 1024;
  requests = 0;
  /** Heap a collection leaves (the garbage goes). */
  live = 10 * MiB;
  /** How long a collection takes (ms). */
  pauseMs = 10;
  collections = 0;
  readonly c = new IdleCollector({
    now: () => this.t,
    heapUsed: () => this.heap,
    footprint: () => this.footprint,
    collect: () => {
      this.collections++;
      this.t += this.pauseMs;
      this.heap = this.live;
    },
  });

  /** `ms` of loop turns every 50 ms, with `requests` requests spread over them. */
  run(ms: number, requests = 0): void {
    const turns = Math.max(1, Math.round(ms / 50));
    for (let i = 0; i < turns; i++) {
      this.t += 50;
      if (requests > 0) this.requests += Math.ceil(requests / turns);
      this.c.turnEnd(this.requests);
    }
  }
}

Deno.test("nothing happens while requests arrive, nor when idle with nothing to free", () => {
  const w = new World();
  w.heap = 200 * MiB; // plenty of garbage...
  w.run(10_000, 100_000); // ...but never idle
  assert.equal(w.collections, 0);
  const quiet = new World();
  quiet.run(60_000);
  assert.equal(quiet.collections, 0, "idle, but the heap did not grow and nothing went away");
});

Deno.test("a grown heap is collected once the daemon has been idle for a second", () => {
  const w = new World();
  w.run(2000, 5000);
  w.heap = 40 * MiB; // a fill
  w.live = 30 * MiB;
  w.run(900, 1);
  w.run(500);
  assert.equal(w.collections, 0, "not before a second of quiet");
  w.run(1000);
  assert.equal(w.collections, 1, "growth");
  assert.equal(w.c.stats.liveBytes, 30 * MiB);
  w.run(30_000);
  assert.equal(w.collections, 1, "once: the heap has not grown since");
});

Deno.test("small growth is left to V8", () => {
  const w = new World();
  w.heap = 10 * MiB + 4 * MiB; // below max(8 MiB, 25 %)
  w.run(5000);
  assert.equal(w.collections, 0);
});

Deno.test("a drop of the footprint during a busy period is seen and gives memory back when idle", () => {
  const w = new World();
  // 20 000 watches (10 MB) come and go inside one busy stretch: the collector only sees turn ends.
  w.run(500, 100);
  w.footprint = 10 * MiB;
  w.run(500, 100);
  w.footprint = 100 * 1024;
  w.run(200, 10);
  w.run(3000);
  assert.equal(w.collections, 1, "a drop");
});

Deno.test("small drops do not collect", () => {
  const w = new World();
  w.footprint = 100 * MiB;
  w.run(100, 1);
  w.footprint = 98 * MiB; // below max(4 MiB, 10 %)
  w.run(5000);
  assert.equal(w.collections, 0);
});

Deno.test("collections are spaced by their cost, at most MAX_SPACING apart", () => {
  const w = new World();
  w.pauseMs = 400; // an expensive collection...
  w.footprint = 10 * MiB;
  w.run(100, 1);
  w.footprint = 100;
  w.run(2000);
  assert.equal(w.collections, 1);
  // ...so the next drop, right after, waits (20 × 400 ms would be 8 s; capped at 5 s).
  w.footprint = 10 * MiB;
  w.run(100, 1);
  w.footprint = 100;
  w.run(2500);
  assert.equal(w.collections, 1, "too soon after the last one");
  w.run(3000);
  assert.equal(w.collections, 2, "within 5 s of the last one");
});

Deno.test("the expected cost scales with the footprint: a cheap collection after a removal is not held back", () => {
  const w = new World();
  w.footprint = 100 * MiB; // a big store
  w.heap = 200 * MiB;
  w.live = 100 * MiB;
  w.pauseMs = 2000; // costly
  w.run(100, 1);
  w.run(2000);
  assert.equal(w.collections, 1);
  // Now everything is removed: the next collection concerns almost nothing.
  w.pauseMs = 5;
  w.footprint = 1024;
  w.run(100, 1);
  w.run(2000);
  assert.equal(w.collections, 2);
});

Deno.test("the quiet hook: once after start-up (with a first collection), once per quiet period, spaced", () => {
  let t = 0;
  let requests = 0;
  let quiet = 0;
  let collections = 0;
  const c = new IdleCollector({
    now: () => t,
    heapUsed: () => 10 * MiB,
    footprint: () => 100 * 1024,
    collect: () => collections++,
    quiet: () => quiet++,
  });
  const run = (ms: number, perTurn = 0) => {
    for (let i = 0; i < ms / 50; i++) {
      t += 50;
      requests += perTurn;
      c.turnEnd(requests);
    }
  };
  run(900);
  assert.equal(quiet, 0, "not before a second of quiet");
  run(700);
  assert.equal(quiet, 1, "start-up's quiet period");
  assert.equal(collections, 1, "start-up's garbage collected first");
  run(60_000);
  assert.equal(quiet, 1, "nothing new: no second run");
  run(10_000, 3);
  assert.equal(quiet, 1, "never while requests arrive");
  run(1600);
  assert.equal(quiet, 2, "after the burst");
  run(100, 1); // a short burst right after: spaced
  run(1600);
  assert.equal(quiet, 2, "within QUIET_SPACING_MS of the last");
  run(5000);
  assert.equal(quiet, 3, "once the spacing allows, still in the same quiet period");
  assert.equal(collections, 1, "the hook itself collects nothing after the first");
});
