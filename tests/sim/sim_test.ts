/**
 * The whole-daemon simulation in CI (docs/simulation.md): a few hundred seeds, the seeds that found
 * bugs (each replays the exact run that failed before its fix), and determinism — the same seed gives
 * the same run, compared through the digest of everything the daemon answered and wrote to its disk.
 */
import assert from "../helpers/assert.ts";
import { DEFAULT_STEPS, replayCommand, runSeed, type SimResult } from "./run.ts";

const CI_SEEDS = 200;

function explain(r: SimResult): string {
  return `seed ${r.seed} (${r.config}):\n  ${r.violations.join("\n  ")}\n  replay: ${
    replayCommand(r.seed, { steps: DEFAULT_STEPS })
  }`;
}

Deno.test("sim: the same seed gives the same run (digest of answers, events and disk)", () => {
  for (const seed of [7, 195]) {
    const a = runSeed(seed);
    const b = runSeed(seed);
    assert.equal(a.digest, b.digest, `seed ${seed} ran differently twice`);
    assert.deepEqual(a.stats, b.stats);
  }
  assert.notEqual(runSeed(7).digest, runSeed(8).digest, "different seeds, different runs");
});

/** Seeds that found bugs, with what they found (fixed in the commits that added them here). */
const REGRESSIONS: ReadonlyArray<readonly [number, string]> = [
  [
    26,
    "storing the domain records failed at a turn's end (full disk, failed fsync): the exception ended the server loop",
  ],
  [
    3,
    "a dead domain's clean-up commit refused by the disk was dropped: its nodes stayed, owned by a reusable domid",
  ],
  [195, "a reserve after a failed one zero-filled from a stale offset, over records appended meanwhile"],
  [88, "a ring reconnection did not re-store the domain records: a restart brought the dropped watches back"],
];

for (const [seed, what] of REGRESSIONS) {
  Deno.test(`sim: regression seed ${seed}: ${what}`, () => {
    const r = runSeed(seed);
    assert.equal(r.violations.length, 0, explain(r));
  });
}

Deno.test(`sim: ${CI_SEEDS} seeds hold every invariant`, () => {
  const failed: string[] = [];
  const totals: Record<string, number> = {};
  for (let seed = 1; seed <= CI_SEEDS; seed++) {
    const r = runSeed(seed);
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
    if (r.violations.length > 0) failed.push(explain(r));
  }
  assert.equal(failed.length, 0, `${failed.length} seeds failed:\n${failed.slice(0, 5).join("\n")}`);
  // The runs did what they are for: crashes, restarts, disk faults, misbehaving guests, domid reuse.
  for (
    const k of [
      "midTurnCrashes",
      "restarts",
      "exits",
      "disk.fsyncFail",
      "disk.enospc",
      "disk.torn",
      "ringFaults",
      "txConflicts",
    ]
  ) {
    assert.ok((totals[k] ?? 0) > 0, `no ${k} in ${CI_SEEDS} seeds: ${JSON.stringify(totals)}`);
  }
});
