// Live update while domains' rings are served (simulated Xen, `--xen=sim:<dir>`): rings are not handed
// over yet (docs/live-update.md), so the request is refused with a clear reply — the guest must not
// lose its connection — and the guest's ring, its watch and the dom0 socket keep working.
import assert from "../helpers/assert.ts";
import { runTool } from "../helpers/daemon.ts";
import { startSimXen } from "../xen/sim_harness.ts";

const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "live update with a simulated guest's ring: refused clearly, the ring keeps working",
  ignore: !exists(XENSTORE_CONTROL),
  fn: async () => {
    await using x = await startSimXen();
    const g = await x.introduce(7);
    await g.write("data/before", "1");
    await g.watch("data", "tok");
    await g.nextEvent(); // the initial event
    const lu = await runTool(XENSTORE_CONTROL, ["live-update", "/bin/true"], x.daemon.socket, 30000);
    assert.equal(lu.code, 3, lu.stderr);
    assert.ok(lu.stderr.includes("while domains' rings are served (1) is not supported"), lu.stderr);
    // The session was ended by xenstore-control's -a: a new -f is not "already active".
    const again = await runTool(XENSTORE_CONTROL, ["live-update", "/bin/true"], x.daemon.socket, 30000);
    assert.ok(!again.stderr.includes("already active"), again.stderr);
    assert.equal(await g.read("data/before"), "1");
    await g.write("data/after", "2");
    const ev = await g.nextEvent();
    assert.equal(ev?.path, "data/after");
    assert.equal(ev?.token, "tok");
  },
});
