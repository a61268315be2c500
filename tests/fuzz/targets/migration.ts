// The live-update migration stream reader (src/migration/reader.ts, Xen's xenstore_state format):
// StreamError only; a stream it accepts writes back (writeStream) to bytes it reads the same way.
// tests/migration/fuzz_test.ts has its own seeded slice; this target puts the reader in the long runs
// of `deno task fuzz`. Corpus: the stream cxenstored 4.17 wrote (basic.state) and small written ones.
import { readStream } from "../../../src/migration/reader.ts";
import { writeStream } from "../../../src/migration/writer.ts";
import { StreamError } from "../../../src/migration/errors.ts";
import { FIXTURES } from "../../migration/cx_capture.ts";
import { check, type Target } from "../engine.ts";

export const migrationTarget: Target = {
  name: "migration",
  contract: "migration stream reader (StreamError only; what it accepts writes back the same)",
  corpus() {
    const basic = Deno.readFileSync(`${FIXTURES}/basic.state`);
    const s = readStream(basic);
    return [basic, writeStream({ version: s.version, records: s.records.slice(0, 8) })];
  },
  run(input) {
    const s = readStream(input);
    const again = readStream(writeStream(s));
    check(JSON.stringify(again) === JSON.stringify(s), "an accepted stream does not write back the same");
  },
  expected: (e) => e instanceof StreamError,
  ciCases: 2_000,
};
