// Group commit's per-connection output marks (src/transport/release_marks.ts) against a model that keeps
// every mark: output is never released before the record it waits for is durable (safety), all of
// it is released once everything is durable (liveness), and a connection holds at most 8 marks.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { ReleaseMarks } from "../../src/transport/release_marks.ts";

/** What may be written: the end of the longest prefix of turns whose records are all durable. */
function modelReleased(
  turns: ReadonlyArray<{ tag: number; pos: number }>,
  durable: number,
  start: number,
): number {
  let released = start;
  for (const t of turns) {
    if (t.tag > durable) break;
    released = t.pos;
  }
  return released;
}

Deno.test("release marks: a turn's output waits for its record; marks release in order", () => {
  const m = new ReleaseMarks();
  m.add(0, 10);
  assert.equal(m.released, 10, "nothing unsynced: released at once");
  m.add(3, 20);
  m.add(5, 30);
  assert.equal(m.released, 10);
  m.release(4);
  assert.equal(m.released, 20, "record 3 durable: the first turn's output goes, not the second's");
  assert.equal(m.waiting, true);
  m.release(5);
  assert.equal(m.released, 30);
  assert.equal(m.waiting, false);
  m.add(7, 40);
  m.reset(45);
  assert.equal(m.released, 45, "a reset drops what waited");
  assert.equal(m.waiting, false);
});

Deno.test("release marks: a connection holds at most 8; merged marks wait for the later record", () => {
  const m = new ReleaseMarks();
  for (let t = 1; t <= 20; t++) m.add(t, 10 * t);
  assert.equal(m.size, 8);
  m.release(7);
  assert.equal(m.released, 70, "the first seven turns kept their own marks");
  m.release(19);
  assert.equal(m.released, 70, "turns 8..20 merged: they wait for record 20");
  m.release(20);
  assert.equal(m.released, 200);
  assert.equal(m.size, 0);
});

Deno.test("property: release marks are safe, live and bounded against a model keeping every mark", () => {
  type Step = { kind: "commit"; n: number } | { kind: "turn"; bytes: number } | {
    kind: "sync";
    frac: number;
  };
  const step = fc.oneof(
    fc.record({ kind: fc.constant("commit" as const), n: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant("turn" as const), bytes: fc.integer({ min: 0, max: 100 }) }),
    fc.record({ kind: fc.constant("sync" as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 200 }), (steps: Step[]) => {
      const m = new ReleaseMarks();
      const turns: Array<{ tag: number; pos: number }> = [];
      let committed = 0, durable = 0, pos = 0;
      for (const s of steps) {
        if (s.kind === "commit") committed += s.n;
        else if (s.kind === "turn") {
          pos += s.bytes;
          // As the gate tags a turn: the latest record, or 0 when everything is durable.
          const tag = committed > durable ? committed : 0;
          turns.push({ tag, pos });
          m.add(tag, pos);
        } else {
          durable += Math.floor((committed - durable) * s.frac);
          m.release(durable);
        }
        assert.ok(m.released <= modelReleased(turns, durable, 0), "released before its record was durable");
        assert.ok(m.size <= 8, `${m.size} marks`);
      }
      durable = committed;
      m.release(durable);
      assert.equal(m.released, pos, "everything durable: everything released");
      assert.equal(m.waiting, false);
    }),
    { numRuns: 300 },
  );
});
