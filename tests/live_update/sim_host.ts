// Helpers of the live-update tests with guests' rings on the simulated Xen (`--xen=sim:<dir>`): a
// dxenstored whose run folder is a temp dir, a launcher there that starts this checkout (what an
// operator names to `xenstore-control live-update`), and guests introduced with clients that wait
// long enough for a switch.
import { runTool, startDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { SimXen } from "../xen/sim_harness.ts";
import { GuestClient } from "../../src/client/guest.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";
import { XENSTORE_CONTROL } from "../migration/cx_capture.ts";
import { dxLauncher } from "./cross.ts";

/** Long enough for a switch (two program starts on a loaded machine). */
export const SWITCH_MS = 60_000;

export function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A dxenstored on a simulated Xen in a fresh run folder, `extra` arguments added. */
export async function simXen(
  extra: readonly string[] = [],
): Promise<{ x: SimXen; launcher: string; rundir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "dxs-lur-" });
  const launcher = dxLauncher(dir);
  const daemon = await startDaemon({
    env: { XENSTORED_RUNDIR: dir },
    args: [`--xen=sim:${dir}/xen`, "--log-level", "debug", ...extra],
  });
  return {
    x: new SimXen(daemon, `${dir}/xen`, await WireClient.connect(daemon.socket)),
    launcher,
    rundir: dir,
  };
}

/** INTRODUCE `domid` with a client that waits long enough for a switch. */
export async function simGuest(x: SimXen, domid: number): Promise<GuestClient> {
  const d = x.create(domid);
  await x.toolstackNodes(domid);
  const g = new GuestClient(new SimGuest(x.dir, domid), { timeoutMs: SWITCH_MS });
  await x.ok(XS.INTRODUCE, `${d.domid}\0${d.gfn}\0${d.port}\0`);
  return g;
}

/** `xenstore-control live-update [args...]` against the daemon. */
export async function liveUpdate(x: SimXen, ...args: string[]) {
  return await runTool(XENSTORE_CONTROL, ["live-update", ...args], x.daemon.socket, SWITCH_MS);
}
