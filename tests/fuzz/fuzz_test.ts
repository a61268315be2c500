// The fixed-seed slice of the decoder fuzzing that CI runs (a few seconds in all): each target's
// `ciCases` cases of seed 1. `bin/deno task fuzz --seconds S` runs the long version (tests/fuzz/main.ts).
// A failure prints the case and the command that replays it.
import assert from "../helpers/assert.ts";
import { setLogSink } from "../../src/common/log.ts";
import { hex, replayCommand, runCases, runOne } from "./engine.ts";
import { TARGETS } from "./targets/index.ts";

const SEED = 1;

for (const t of TARGETS) {
  Deno.test(`fuzz ${t.name}: ${t.ciCases} mutated inputs (seed ${SEED}); ${t.contract}`, () => {
    setLogSink(() => {}); // the readers log what they skip or refuse; thousands of lines here
    try {
      const corpus = t.corpus();
      // The corpus itself must decode cleanly: the mutations start from valid inputs.
      for (const [i, input] of corpus.entries()) {
        assert.equal(runOne(t, input), null, `corpus input ${i} (${hex(input, 64)})`);
      }
      const res = runCases(t, corpus, SEED, 0, t.ciCases);
      assert.equal(
        res.failures.length,
        0,
        res.failures.map((f) =>
          `${f.kind} at case ${f.index}: ${f.message}\n  input ${hex(f.input)}\n  replay: ${replayCommand(f)}`
        ).join("\n"),
      );
      assert.equal(res.cases, t.ciCases);
    } finally {
      setLogSink(null);
    }
  });
}
