// The simulated Xen's event channels (src/xen/sim): 8-byte records in FIFOs between the daemon's
// platform and guest endpoints, in one process here (the daemon and guests are separate processes in
// the other sim tests; FIFOs behave the same within one). Covers what the daemon relies on: events
// name the right local port, a batch is coalesced, nothing bound is spurious, notifications reach the
// process currently running as the domain, and either side finds the other again after it restarted.
import assert from "../helpers/assert.ts";
import { SimPlatform } from "../../src/xen/sim/platform.ts";
import { SimEvtchn, SimGuest } from "../../src/xen/sim/guest.ts";
import { createDomain, raiseDomExc } from "../../src/xen/sim/control.ts";
import * as libc from "../../ffi/libc.ts";

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxsim-evtchn." });
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

Deno.test(
  "sim evtchn: guest events arrive as the bound local port, coalesced; unbound ones are spurious",
  withDir((dir) => {
    const p = new SimPlatform(dir);
    try {
      const d5 = createDomain(dir, 5);
      createDomain(dir, 6);
      const l5 = p.bindInterdomain(5, d5.port);
      const g5 = new SimGuest(dir, 5);
      const g6 = new SimGuest(dir, 6); // domain 6's channel is not bound
      try {
        assert.deepEqual(p.pendingPorts(), [], "nothing pending at first");
        assert.ok(libc.pollReadable([p.eventFd], 0) === false, "the event fd is not readable when idle");
        g5.notify();
        g5.notify();
        g5.notify();
        assert.ok(libc.pollReadable([p.eventFd], 1000), "the event fd polls readable after a notify");
        assert.deepEqual(p.pendingPorts(), [l5], "three notifications, one pending port");
        assert.deepEqual(p.pendingPorts(), [], "the FIFO was drained");
        g6.notify();
        assert.deepEqual(p.pendingPorts(), []);
        assert.equal(p.stats.spurious, 1, "an event on an unbound channel is counted as spurious");
        assert.equal(g5.undelivered + g6.undelivered, 0);
        // VIRQ_DOM_EXC from the control API.
        const virq = p.bindDomExc();
        raiseDomExc(dir);
        assert.deepEqual(p.pendingPorts(), [virq]);
      } finally {
        g5.close();
        g6.close();
      }
    } finally {
      p.close();
    }
  }),
);

Deno.test(
  "sim evtchn: the daemon's notifications reach the process running as the domain, also after it changed",
  withDir((dir) => {
    const p = new SimPlatform(dir);
    try {
      const d = createDomain(dir, 7);
      const local = p.bindInterdomain(7, d.port);
      p.notify(local);
      assert.equal(p.stats.undelivered, 1, "no guest attached: the notification is lost and counted");

      const first = new SimGuest(dir, 7);
      p.notify(local);
      assert.deepEqual(first.evtchn.take(), [{ domid: 7, port: d.port }]);
      first.close();

      // Another endpoint attaches as the domain (a new guest process): the daemon's cached FIFO has no
      // reader any more, so it must look the domain's receiver up again.
      const second = new SimGuest(dir, 7);
      try {
        p.notify(local);
        assert.deepEqual(second.evtchn.take(), [{ domid: 7, port: d.port }]);
        assert.equal(p.stats.undelivered, 1, "the change of process lost nothing");
        assert.equal(second.evtchn.waitSync(0), false, "nothing else queued");
        p.notify(local);
        assert.equal(second.evtchn.waitSync(1000), true, "waitSync sees a notification");
        assert.equal(second.evtchn.drain(), 0, "waitSync drained it");
      } finally {
        second.close();
      }
    } finally {
      p.close();
    }
  }),
);

Deno.test(
  "sim evtchn: a guest endpoint finds a restarted daemon's new channel; with no daemon, events are lost",
  withDir((dir) => {
    const d = createDomain(dir, 9);
    const evtchn = new SimEvtchn(dir);
    const g = new SimGuest(dir, 9, evtchn);
    try {
      g.notify();
      assert.equal(g.undelivered, 1, "no daemon yet: lost and counted");
      let p = new SimPlatform(dir);
      let local = p.bindInterdomain(9, d.port);
      g.notify();
      assert.deepEqual(p.pendingPorts(), [local]);
      p.close(); // the daemon stops...
      p = new SimPlatform(dir); // ...and a new one starts with a new FIFO
      try {
        local = p.bindInterdomain(9, d.port);
        g.notify();
        assert.deepEqual(p.pendingPorts(), [local], "the endpoint reopened the daemon's channel");
        assert.equal(g.undelivered, 1);
      } finally {
        p.close();
      }
    } finally {
      g.close();
      evtchn.close();
    }
  }),
);
