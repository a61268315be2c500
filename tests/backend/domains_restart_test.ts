// Introduced domains survive a daemon crash: a real dxenstored on the simulated Xen (--xen=sim) with
// a persistent backend is SIGKILLed while a guest is introduced; the restarted daemon re-attaches to
// the guest's ring from the stored domain records, and the guest keeps working without being
// introduced again (its nodes, its ring and its watches, as they were).
import { startDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { GuestClient } from "../../src/client/guest.ts";
import { createDomain } from "../../src/xen/sim/control.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";

async function ok(c: WireClient, type: number, payload: string): Promise<string> {
  const r = await c.request(type, payload, { timeoutMs: 10_000 });
  assert.equal(r.type, type, `${payload.split("\0")[0]}: ${r.payload}`);
  return r.payload;
}

for (const backend of ["file", "sqlite"] as const) {
  Deno.test(`domains: a guest keeps working across a SIGKILL of the daemon (${backend} backend)`, async () => {
    const sim = await Deno.makeTempDir({ prefix: "dxs-xen-" });
    const store = await Deno.makeTempDir({ prefix: "dxs-store-" });
    const spec = backend === "file" ? `file:${store}/s` : `sqlite:${store}/s.db`;
    const args = [`--xen=sim:${sim}`, "--backend", spec, "--sync=always"];
    let guest: GuestClient | null = null;
    try {
      // First life: introduce domain 5, let it write over its ring.
      const first = await startDaemon({ args });
      try {
        const dom0 = await WireClient.connect(first.socket);
        try {
          const d = createDomain(sim, 5);
          await ok(dom0, XS.MKDIR, "/local/domain/5/data\0");
          await ok(dom0, XS.SET_PERMS, "/local/domain/5\0n0\0r5\0");
          await ok(dom0, XS.SET_PERMS, "/local/domain/5/data\0n5\0");
          guest = new GuestClient(new SimGuest(sim, 5), { timeoutMs: 10_000 });
          await ok(dom0, XS.INTRODUCE, `5\0${d.gfn}\0${d.port}\0`);
          await guest.write("data/before", "1");
          await guest.watch("data/w", "tok"); // relative, registered before the crash
          assert.deepEqual(await guest.nextEvent(), { path: "data/w", token: "tok" });
          assert.equal(await ok(dom0, XS.IS_DOMAIN_INTRODUCED, "5\0"), "T\0");
        } finally {
          dom0.close();
        }
      } finally {
        first.child.kill("SIGKILL");
        await first.status;
        await first.stop().catch(() => {}); // removes its socket folder; it did not exit cleanly
      }
      // Second life: nobody introduces domain 5 again.
      const second = await startDaemon({ args });
      try {
        const dom0 = await WireClient.connect(second.socket);
        try {
          assert.equal(await ok(dom0, XS.IS_DOMAIN_INTRODUCED, "5\0"), "T\0", "re-attached from the store");
          assert.equal(await ok(dom0, XS.READ, "/local/domain/5/data/before\0"), "1");
          await guest!.write("data/after", "2"); // the same ring, served by the new daemon
          assert.equal(await guest!.read("data/before"), "1");
          assert.equal(await ok(dom0, XS.READ, "/local/domain/5/data/after\0"), "2");
          // The watch registered in the first life still fires (a guest kernel cannot know it must
          // re-register): one spurious event when it is restored, then the real change.
          assert.deepEqual(await guest!.nextEvent(), { path: "data/w", token: "tok" });
          await ok(dom0, XS.WRITE, "/local/domain/5/data/w/x\0v");
          assert.deepEqual(await guest!.nextEvent(), { path: "data/w/x", token: "tok" });
        } finally {
          dom0.close();
        }
      } finally {
        await second.stop();
      }
    } finally {
      guest?.close();
      await Deno.remove(sim, { recursive: true }).catch(() => {});
      await Deno.remove(store, { recursive: true }).catch(() => {});
    }
  });
}
