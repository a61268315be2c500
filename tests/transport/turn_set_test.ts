// TurnSet (src/transport/turn_set.ts): the per-turn set of connections the loop drains at each turn's
// end must behave as the Set it replaced, iterated and then cleared.
import assert from "../helpers/assert.ts";
import { TurnSet } from "../../src/transport/turn_set.ts";

/** What draining `s` with `during` (called for each member) visits, and what the Set would. */
function drainBoth(
  members: string[],
  during: (x: string, s: { add(x: string): void; forget(x: string): void }) => void,
) {
  const t = new TurnSet<string>();
  const set = new Set<string>();
  for (const m of members) {
    t.add(m);
    set.add(m);
  }
  const seenT: string[] = [];
  t.drain((x) => {
    seenT.push(x);
    during(x, { add: (y) => t.add(y), forget: (y) => t.forget(y) });
  });
  const seenS: string[] = [];
  for (const x of set) {
    seenS.push(x);
    during(x, { add: (y) => set.add(y), forget: (y) => set.delete(y) });
  }
  set.clear();
  return { seenT, seenS, t };
}

Deno.test("TurnSet: members once each, in the order they came; empty after the drain", () => {
  const { seenT, seenS, t } = drainBoth(["a", "b", "a", "c", "b"], () => {});
  assert.deepEqual(seenT, ["a", "b", "c"]);
  assert.deepEqual(seenT, seenS);
  assert.equal(t.size, 0);
  assert.ok(!t.has("a"));
  t.add("b");
  t.add("a");
  assert.equal(t.size, 2);
  const again: string[] = [];
  t.drain((x) => again.push(x));
  assert.deepEqual(again, ["b", "a"], "a new turn's order");
});

Deno.test("TurnSet: members added while draining are visited, forgotten ones are not (as a Set)", () => {
  const cases: Array<(x: string, s: { add(x: string): void; forget(x: string): void }) => void> = [
    (x, s) => x === "a" && s.add("d"),
    (x, s) => x === "a" && s.add("b"), // already a member: not visited twice
    (x, s) => x === "a" && s.forget("c"),
    (x, s) => {
      if (x === "a") {
        s.forget("b");
        s.add("b"); // gone, then back: visited once, at the end
      }
    },
    (x, s) => x === "b" && s.forget("a"), // already visited
  ];
  for (const during of cases) {
    const { seenT, seenS, t } = drainBoth(["a", "b", "c"], during);
    assert.deepEqual(seenT, seenS, String(during));
    assert.equal(t.size, 0);
  }
});

Deno.test("TurnSet: forget() outside a drain takes the member out and keeps its order for the rest", () => {
  const t = new TurnSet<string>();
  for (const x of ["a", "b", "c"]) t.add(x);
  t.forget("b");
  t.forget("z"); // never a member
  assert.equal(t.size, 2);
  assert.ok(!t.has("b"));
  const seen: string[] = [];
  t.drain((x) => seen.push(x));
  assert.deepEqual(seen, ["a", "c"]);
});
