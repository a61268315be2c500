// The policy chain through CONTROL, as an operator uses it: `xenstore-control policy` shows the chain,
// `xenstore-control policy-reload` swaps it atomically (the same path as SIGHUP).
import assert from "../helpers/assert.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";

const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";

Deno.test("CONTROL policy shows the chain and policy-reload bumps its generation", async () => {
  await withDaemon(async (d) => {
    const before = await runTool(XENSTORE_CONTROL, ["policy"], d.socket);
    assert.equal(before.code, 0, before.stderr);
    assert.ok(/policy chain legacy generation 1\b/.test(before.stdout), before.stdout);
    const reload = await runTool(XENSTORE_CONTROL, ["policy-reload"], d.socket);
    assert.equal(reload.code, 0, reload.stderr);
    assert.ok(/^OK: policy chain legacy reloaded \(generation 2\)\n+$/.test(reload.stdout), reload.stdout);
    const after = await runTool(XENSTORE_CONTROL, ["policy"], d.socket);
    assert.ok(/generation 2\b.*reloads 1 \(failed 0\)/s.test(after.stdout), after.stdout);
    // Arguments are refused (EINVAL: xenstore-control exits 3 and prints the command list).
    assert.equal((await runTool(XENSTORE_CONTROL, ["policy-reload", "x"], d.socket)).code, 3);
    // The daemon still answers normally after the swap.
    assert.equal((await runTool("xenstore-write", ["/after/reload", "1"], d.socket)).code, 0);
  });
});
