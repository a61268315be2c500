import assert from "../helpers/assert.ts";
import fc from "fast-check";
import { EVENT_HEADER_BYTES, eventCost, EventQueue, UnsentEvents } from "../../src/watch/queue.ts";

Deno.test("eventCost = epath + token + 2 NULs + 16-byte header", () => {
  assert.equal(EVENT_HEADER_BYTES, 16);
  assert.equal(eventCost("/a", "tok"), 2 + 3 + 2 + 16);
  assert.equal(eventCost("", ""), 18);
});

Deno.test("FIFO order, length and bytes", () => {
  const q = new EventQueue({ maxEvents: 10, maxBytes: 1000 });
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
  assert.equal(q.push("/a", "1"), true);
  assert.equal(q.push("/b/c", "22"), true);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, eventCost("/a", "1") + eventCost("/b/c", "22"));
  assert.deepEqual(q.peek(), { epath: "/a", token: "1" });
  assert.deepEqual(q.shift(), { epath: "/a", token: "1" });
  assert.equal(q.bytes, eventCost("/b/c", "22"));
  assert.deepEqual(q.shift(), { epath: "/b/c", token: "22" });
  assert.equal(q.shift(), undefined);
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.dropped, 0);
});

Deno.test("maxEvents: drop newest, counted", () => {
  const q = new EventQueue({ maxEvents: 2, maxBytes: 1_000_000 });
  assert.equal(q.push("/1", "t"), true);
  assert.equal(q.push("/2", "t"), true);
  assert.equal(q.push("/3", "t"), false);
  assert.equal(q.push("/4", "t"), false);
  assert.equal(q.dropped, 2);
  assert.equal(q.length, 2);
  assert.equal(q.shift()?.epath, "/1");
  assert.equal(q.push("/5", "t"), true);
  assert.deepEqual([q.shift()?.epath, q.shift()?.epath], ["/2", "/5"]);
});

Deno.test("maxBytes: exact fit accepted, one byte over dropped", () => {
  const c = eventCost("/abc", "t");
  const q = new EventQueue({ maxEvents: 100, maxBytes: 2 * c });
  assert.equal(q.push("/abc", "t"), true);
  assert.equal(q.push("/abcd", "t"), false); // c + c + 1 > 2c
  assert.equal(q.push("/abc", "t"), true); // exactly 2c
  assert.equal(q.bytes, 2 * c);
  assert.equal(q.push("/", ""), false);
  assert.equal(q.dropped, 2);
  // a single event larger than maxBytes is never accepted
  const small = new EventQueue({ maxEvents: 5, maxBytes: 20 });
  assert.equal(small.push("/toolong", "tok"), false);
  assert.equal(small.dropped, 1);
  assert.equal(small.length, 0);
});

Deno.test("clear empties the queue but keeps dropped", () => {
  const q = new EventQueue({ maxEvents: 1, maxBytes: 1000 });
  q.push("/a", "t");
  q.push("/b", "t");
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.dropped, 1);
  assert.equal(q.push("/c", "t"), true);
  assert.equal(q.shift()?.epath, "/c");
});

Deno.test("constructor validates limits", () => {
  assert.throws(() => new EventQueue({ maxEvents: 0, maxBytes: 10 }), RangeError);
  assert.throws(() => new EventQueue({ maxEvents: 1, maxBytes: -1 }), RangeError);
  assert.throws(() => new EventQueue({ maxEvents: 1.5, maxBytes: 10 }), RangeError);
  assert.throws(() => new EventQueue({ maxEvents: 1, maxBytes: NaN }), RangeError);
});

Deno.test("long-running interleaving (exercises compaction)", () => {
  const q = new EventQueue({ maxEvents: 1000, maxBytes: 1_000_000 });
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 300; i++) assert.equal(q.push(`/p/${next++}`, "t"), true);
    for (let i = 0; i < 290; i++) assert.equal(q.shift()?.epath, `/p/${expect++}`);
  }
  while (q.length > 0) assert.equal(q.shift()?.epath, `/p/${expect++}`);
  assert.equal(expect, next);
  assert.equal(q.bytes, 0);
});

Deno.test("property: queue matches a bounded-array model", () => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("push" as const),
      epath: fc.string({ maxLength: 12 }),
      token: fc.string({ maxLength: 6 }),
    }),
    fc.record({ kind: fc.constant("shift" as const) }),
    fc.record({ kind: fc.constant("clear" as const) }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 200 }),
      fc.array(op, { maxLength: 200 }),
      (maxEvents, maxBytes, ops) => {
        const q = new EventQueue({ maxEvents, maxBytes });
        const model: Array<{ epath: string; token: string }> = [];
        let bytes = 0;
        let dropped = 0;
        for (const o of ops) {
          if (o.kind === "push") {
            const c = o.epath.length + o.token.length + 2 + 16;
            const ok = model.length < maxEvents && bytes + c <= maxBytes;
            assert.equal(q.push(o.epath, o.token), ok);
            if (ok) {
              model.push({ epath: o.epath, token: o.token });
              bytes += c;
            } else {
              dropped++;
            }
          } else if (o.kind === "shift") {
            const m = model.shift();
            if (m !== undefined) bytes -= m.epath.length + m.token.length + 18;
            assert.deepEqual(q.shift(), m);
          } else {
            model.length = 0;
            bytes = 0;
            q.clear();
          }
          assert.equal(q.length, model.length);
          assert.equal(q.bytes, bytes);
          assert.equal(q.dropped, dropped);
          assert.ok(q.length <= maxEvents && q.bytes <= maxBytes);
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------- UnsentEvents

Deno.test("UnsentEvents: an event counts until the byte that ends it is written", () => {
  const u = new UnsentEvents();
  assert.equal(u.count, 0);
  u.queued(30); // event occupying bytes [0, 30)
  u.queued(70); // a reply [30, 50) and an event [50, 70) in between
  assert.equal(u.count, 2);
  u.written(29);
  assert.equal(u.count, 2, "partially written event still pending");
  u.written(30);
  assert.equal(u.count, 1);
  u.written(69);
  assert.equal(u.count, 1);
  u.written(1000);
  assert.equal(u.count, 0);
  u.queued(1100);
  assert.equal(u.count, 1);
  u.clear();
  assert.equal(u.count, 0);
});

Deno.test("property: UnsentEvents matches a model over random queue/write interleavings", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 100 })), { maxLength: 400 }),
      (ops) => {
        const u = new UnsentEvents();
        const ends: number[] = [];
        let queued = 0;
        let written = 0;
        for (const [isEvent, n] of ops) {
          if (isEvent) {
            queued += n;
            ends.push(queued);
            u.queued(queued);
          } else {
            written = Math.min(queued, written + n);
            u.written(written);
          }
          assert.equal(u.count, ends.filter((e) => e > written).length);
        }
      },
    ),
    { numRuns: 300 },
  );
});
