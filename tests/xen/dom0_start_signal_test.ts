// At its start dxenstored signals dom0's own event channel, as cxenstored's start does: dom0's kernel,
// whose xenbus came up before any xenstored, waits for that event before it probes (Linux writes
// /local/domain/0/control/* then). Seen under real Xen (e2e:xen, live-update plan L): without the
// event the kernel's probe came only at dom0's first own xenstore use.
import assert from "../helpers/assert.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { createDom0Ring } from "../../src/xen/sim/control.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";

Deno.test("start: dxenstored signals dom0's ring once it serves it (-D: not)", async () => {
  for (const serveDom0 of [true, false]) {
    const dir = await Deno.makeTempDir({ prefix: "dxs-dom0sig-" });
    createDom0Ring(dir);
    // dom0's kernel is there before the daemon: its event-channel endpoint already listening.
    const kernel = new SimGuest(dir, 0);
    const daemon = await startDaemon({ args: [`--xen=sim:${dir}`, ...(serveDom0 ? [] : ["-D"])] });
    try {
      // startDaemon returns once the socket answers, after dom0's ring is attached: an event sent at
      // the start is queued by then.
      const events = kernel.evtchn.take();
      if (serveDom0) {
        assert.ok(events.some((e) => e.domid === 0 && e.port === kernel.port), JSON.stringify(events));
      } else assert.deepEqual(events, [], "-D: dom0's ring is not served, so not signalled");
    } finally {
      kernel.close();
      await daemon.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
});
