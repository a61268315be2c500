// Seeded random differential test against cxenstored 4.17 (tests/e2e/random_diff.ts): every node
// operation, permissions, transactions and watches, on three connections of each daemon. CI runs a
// few fixed seeds; `bin/deno task diff --seeds N` runs more. A failure names the seed, the request and
// both outcomes, and prints a one-line command that replays exactly that run:
//
//   DIFF_SEED=<seed> DIFF_REQUESTS=<n> bin/deno test -A tests/e2e/random_diff_test.ts
import assert from "../helpers/assert.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { describe, replayCommand, runSeed } from "./random_diff.ts";

const envSeed = Deno.env.get("DIFF_SEED");
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : [101, 202, 303];
const REQUESTS = Number(Deno.env.get("DIFF_REQUESTS") ?? 1000);

for (const seed of SEEDS) {
  Deno.test({
    name: `differential: seed ${seed}, ${REQUESTS} random requests, dxenstored vs cxenstored`,
    ignore: !anchorsAvailable(),
    async fn() {
      const ref = await startAnchor("cxenstored");
      try {
        await using d = await startDaemon({ args: ["--backend", "memory"] });
        const res = await runSeed(seed, REQUESTS, ref.socket, d.socket);
        const bad = res.differences.filter((x) => x.documented === null);
        assert.equal(
          bad.length,
          0,
          `seed ${seed}: an undocumented difference from cxenstored (docs/protocol.md):\n` +
            `${bad.map(describe).join("\n")}\nreplay: ${replayCommand(seed, REQUESTS)}`,
        );
        assert.equal(res.requests, REQUESTS, "the run went to the end");
      } finally {
        await ref.stop();
      }
    },
  });
}
