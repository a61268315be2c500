// The committed plugin binaries (policies/wasm/*.wasm) match their sources: policies/wasm/SOURCES
// holds the hash of the sources each was built from, and `deno task policies` rewrites it. A source
// edited without a rebuild fails here (CI runs the committed binaries, it does not build them).
import assert from "../helpers/assert.ts";
import { ALL_PLUGINS, readManifest, sourceHash } from "../../policies/build.ts";
import { BUILTIN_PLUGINS } from "../../src/policy/loader.ts";

Deno.test("every built-in plugin's .wasm is built from its current sources", async () => {
  assert.deepEqual([...ALL_PLUGINS].sort(), [...BUILTIN_PLUGINS].sort());
  const manifest = readManifest();
  for (const name of ALL_PLUGINS) {
    assert.equal(
      manifest.get(name),
      await sourceHash(name),
      `${name}: rebuild with \`bin/deno task policies\``,
    );
    assert.ok(Deno.statSync(new URL(`../../policies/wasm/${name}.wasm`, import.meta.url)).size > 0);
  }
});
