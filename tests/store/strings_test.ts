// The tree's strings (src/store/strings.ts, recent.ts): equal content, bounded caches.
import assert from "../helpers/assert.ts";
import { RecentStrings } from "../../src/store/recent.ts";
import {
  CACHE_GENERATION,
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
  for (let i = 0; i < 5 * CACHE_GENERATION; i++) {
    ownName(`name-${i}`);
    ownValue(`value-${i}`);
    ownValue(`a-long-value-that-is-never-cached-${i}`);
  }
  assert.ok(cachedStrings() <= 4 * CACHE_GENERATION, `${cachedStrings()} cached strings`);
  clearStringCaches();
  assert.equal(cachedStrings(), 0);
});

Deno.test("RecentStrings: recent strings stay, unused ones go after two generations", () => {
  const c = new RecentStrings(4);
  const made: string[] = [];
  const make = (s: string) => {
    made.push(s);
    return s;
  };
  c.get("a", make);
  for (const s of ["b", "c", "d", "a", "e", "f", "a", "g", "h", "a"]) c.get(s, make);
  assert.equal(made.filter((s) => s === "a").length, 1, "'a' kept while in use");
  assert.ok(c.size <= 8);
  for (const s of ["i", "j", "k", "l", "m", "n", "o", "p", "q"]) c.get(s, make);
  c.get("b", make);
  assert.equal(made.filter((s) => s === "b").length, 2, "'b' unused for two generations: made again");
});
