// `live-update -f`: what `<file> --help` says the file is (src/live_update/target.ts), with programs
// that print nothing, die of a signal, or print another usage.
import assert from "../helpers/assert.ts";
import { probeProgram, probeTarget } from "../../src/live_update/target.ts";

async function script(body: string): Promise<string> {
  const f = await Deno.makeTempFile({ suffix: ".sh" });
  await Deno.writeTextFile(f, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(f, 0o755);
  return f;
}

Deno.test("live-update target: dxenstored and cxenstored are recognised by their usage", async () => {
  const dx = await script('echo "Usage: dxenstored [options]"');
  const cx = await script('printf "Usage:\\n\\n  xenstored <options>\\n"');
  try {
    assert.deepEqual(await probeTarget(dx), { ok: true, program: "dxenstored" });
    assert.deepEqual(await probeTarget(cx), { ok: true, program: "cxenstored" });
  } finally {
    await Deno.remove(dx);
    await Deno.remove(cx);
  }
});

Deno.test("live-update target: silence says the exit status; death by a signal with no output is a timeout", async () => {
  const silent = await script("exit 3");
  // As busybox's timeout when time is up: the program itself dies of SIGTERM (status 143).
  const killed = await script("kill -TERM $$");
  try {
    const s = await probeProgram(silent);
    assert.equal(s.kind, "unknown");
    assert.equal(s.detail, "(no output); exit status 3");
    const k = await probeProgram(killed);
    assert.equal(k.kind, "unknown");
    assert.ok(/did not finish in \d+ s/.test(k.detail), k.detail);
  } finally {
    await Deno.remove(silent);
    await Deno.remove(killed);
  }
});
