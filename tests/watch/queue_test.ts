import assert from "../helpers/assert.ts";
import fc from "fast-check";
import { UnsentEvents } from "../../src/watch/queue.ts";

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
