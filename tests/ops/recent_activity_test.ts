// The slowest recent requests (src/observe/recent.ts RecentActivity): isSlow() says beforehand what
// request() keeps, so the observer builds a request's description only for those (issue 20: a closure
// per request before). Checked against a model of the window: per second, the PER_SECOND slowest.
import assert from "../helpers/assert.ts";
import { RecentActivity } from "../../src/observe/recent.ts";

Deno.test("RecentActivity: isSlow agrees with what request keeps; the window matches a model", () => {
  let now = 0;
  const recent = new RecentActivity(() => now);
  const model = new Map<number, number[]>(); // second → kept ms, slowest first
  let seed = 99;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
  for (let i = 0; i < 20_000; i++) {
    now += rand(3) === 0 ? rand(700) : rand(3); // many requests per second, sometimes seconds apart
    const ms = rand(50) / 10;
    const second = Math.floor(now / 1000);
    const kept = model.get(second) ?? [];
    const want = kept.length < 5 || ms > kept[4];
    assert.equal(recent.isSlow(ms, now), want, `request ${i}`);
    let described = false;
    recent.request(ms, () => {
      described = true;
      return { domid: 0, conn: "c", op: "READ", path: `/${i}` };
    }, now);
    assert.equal(described, want, `request ${i} described`);
    if (want) {
      let at = kept.length;
      while (at > 0 && kept[at - 1] < ms) at--;
      kept.splice(at, 0, ms);
      if (kept.length > 5) kept.pop();
      model.set(second, kept);
    }
    if (i % 1000 === 999) {
      const inWindow: number[] = [];
      for (const [s, list] of model) if (s > second - 10) inWindow.push(...list);
      inWindow.sort((a, b) => b - a);
      assert.deepEqual(recent.slowest(100).map((r) => r.ms), inWindow, `window after request ${i}`);
    }
  }
});
