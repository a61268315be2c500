// A connection's recently resolved request paths (Client.resolveNodePath, src/dispatch/client.ts) give
// exactly what resolvePath gives, errors included, on the first request and on the repeats.
import assert from "../helpers/assert.ts";
import { guest, testCore } from "../helpers/core.ts";
import { resolvePath } from "../../src/store/path.ts";
import { XsError } from "../../src/common/xs_error.ts";

function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (e instanceof XsError) return `error ${e.errno}`;
    throw e;
  }
}

Deno.test("resolveNodePath: resolvePath's answers and errors, first time and again, past the cache's size", () => {
  const c = guest(testCore(), 5).client;
  const raws = [
    "name",
    "device/vif/0/state",
    "/local/domain/5/name",
    "/",
    "a//b",
    "a/",
    "",
    "@releaseDomain",
    "bad char",
    "x".repeat(2049),
  ];
  for (let i = 0; i < 40; i++) raws.push(`data/n${i}`);
  for (let round = 0; round < 3; round++) {
    for (const raw of raws) {
      // A fresh string each time, as each request's payload gives one.
      const fresh = raw.split("").join("");
      assert.deepEqual(
        outcome(() => c.resolveNodePath(fresh)),
        outcome(() => resolvePath(raw, c.base, false)),
        `${JSON.stringify(raw.slice(0, 40))}, round ${round}`,
      );
    }
  }
});
