// The tree's strings (src/store/strings.ts, recent.ts): equal content, bounded caches.
import assert from "../helpers/assert.ts";
import { RecentStrings } from "../../src/store/recent.ts";
import {
  CACHE_SLOTS,
  cachedStrings,
  clearStringCaches,
  own,
  ownName,
  ownValue,
} from "../../src/store/strings.ts";

Deno.test("own/ownName/ownValue keep every byte value and length", () => {
  const payload = "/local/domain/5/device/vif/0/state\0" +
    String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  const value = payload.slice(payload.indexOf("\0") + 1);
  for (const f of [own, ownName, ownValue]) {
    for (const s of ["", "x", "short", "exactly-13-ch", value, value.slice(0, 32), value.slice(0, 33)]) {
      assert.equal(f(s), s);
    }
  }
});

Deno.test("the caches stay bounded whatever comes through", () => {
  clearStringCaches();
  for (let i = 0; i < 5 * CACHE_SLOTS; i++) {
    ownName(`name-${i}`);
    ownValue(`value-${i}`);
    ownValue(`a-long-value-that-is-never-cached-${i}`);
  }
  assert.ok(cachedStrings() <= 2 * CACHE_SLOTS, `${cachedStrings()} cached strings`);
  clearStringCaches();
  assert.equal(cachedStrings(), 0);
});

Deno.test("RecentStrings: a string is shared until another takes its slot; make() only on a miss", () => {
  const c = new RecentStrings(8);
  const made: string[] = [];
  const make = (s: string) => {
    made.push(s);
    return s;
  };
  for (let i = 0; i < 5; i++) c.get("state", make);
  assert.deepEqual(made, ["state"], "a hit does not make it again");
  assert.throws(() => new RecentStrings(6), RangeError);
  // Bounded: many different strings never hold more than the slots.
  for (let i = 0; i < 1000; i++) c.get(`s${i}`, make);
  assert.ok(c.size <= 8);
});
