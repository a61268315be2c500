// e2e:xen's boot watchdog (e2e/xen/main.ts boot()): a boot whose dom0 never reaches its init (QEMU TCG
// hanging in dom0's kernel) is stopped after --stall seconds by killing its QEMU, and reported as
// stalled so that it is booted again; a boot that reached dom0's init is left alone. run.sh is faked:
// a `sleep` stands in for QEMU, and the milestones are printed as run.sh prints them.
import assert from "../../helpers/assert.ts";
import { boot } from "../../../e2e/xen/main.ts";

const FAKE_RUN_SH = `#!/bin/bash
while [ $# -gt 0 ]; do case $1 in -l) LOG=$2; shift;; esac; shift; done
: > "$LOG"
sleep "$FAKE_QEMU_S" & QPID=$!
echo "qemu pid $QPID, serial log $LOG" >&2
echo "[0.5s] xen banner" >&2
[ -n "$FAKE_DOM0_INIT" ] && echo "[1.0s] dom0 init" >&2
while kill -0 $QPID 2>/dev/null; do sleep 0.1; done
echo "total: E2E-RESULT: FAIL (fake)" >&2
`;

async function fakeBoot(env: Record<string, string>, stall: number) {
  const dir = await Deno.makeTempDir({ prefix: "dxs-stall-" });
  try {
    await Deno.writeTextFile(`${dir}/run.sh`, FAKE_RUN_SH, { mode: 0o755 });
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
    const t0 = performance.now();
    const r = await boot(
      dir,
      { buildDir: dir, timeout: 60, cpu: "qemu64", stall },
      "x.cpio",
      "xsd",
      "A",
      "t",
    );
    return { ...r, wallS: (performance.now() - t0) / 1000 };
  } finally {
    for (const k of Object.keys(env)) Deno.env.delete(k);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("e2e:xen: a boot stuck before dom0's init is stopped after --stall seconds", async () => {
  const r = await fakeBoot({ FAKE_QEMU_S: "30" }, 1);
  assert.equal(r.stalled, true);
  assert.ok(r.wallS < 10, `stopped after ${r.wallS.toFixed(1)} s, not after QEMU's 30 s`);
  assert.ok(r.runOutput.includes("E2E-RESULT: FAIL (fake)"), "run.sh ended on its own once QEMU was gone");
});

Deno.test("e2e:xen: a boot that reached dom0's init is not stopped", async () => {
  const r = await fakeBoot({ FAKE_QEMU_S: "2", FAKE_DOM0_INIT: "1" }, 1);
  assert.equal(r.stalled, false);
  assert.ok(r.wallS >= 1.9, `ran its course (${r.wallS.toFixed(1)} s)`);
});
