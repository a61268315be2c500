// The output-limit options of the daemon's command line (docs/watches.md).
import assert from "../helpers/assert.ts";
import { parseArgs } from "../../src/cli/main.ts";

const noEnv = (_: string) => undefined;

Deno.test("--max-watch-events / --max-out-bytes: parsed, both spellings", () => {
  const o = parseArgs(["--max-watch-events", "100", "--max-out-bytes=65536"], noEnv);
  assert.ok(typeof o === "object", `parse failed: ${o}`);
  assert.equal(o.maxWatchEvents, 100);
  assert.equal(o.maxOutBytes, 65536);
  const d = parseArgs([], noEnv);
  assert.ok(typeof d === "object");
  assert.equal(d.maxWatchEvents, undefined, "unset: the server's default applies");
  assert.equal(d.maxOutBytes, undefined);
});

Deno.test("--max-watch-events / --max-out-bytes: positive integers only", () => {
  for (const bad of ["0", "-1", "1.5", "x", "", "1e3", "99999999999999999999"]) {
    const r = parseArgs(["--max-watch-events", bad], noEnv);
    assert.ok(
      typeof r === "string" && r.includes("positive integer"),
      `accepted ${JSON.stringify(bad)}: ${r}`,
    );
    const r2 = parseArgs([`--max-out-bytes=${bad}`], noEnv);
    assert.ok(typeof r2 === "string" && r2.includes("positive integer"), `accepted ${JSON.stringify(bad)}`);
  }
  const missing = parseArgs(["--max-out-bytes"], noEnv);
  assert.ok(typeof missing === "string" && missing.includes("needs a value"));
});
