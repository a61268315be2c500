// Live update with guests' rings (issue 16, Deliver 1), on the simulated Xen (`--xen=sim:<dir>`): the
// rings and their event channels go with the switch (the channel FIFO's descriptor is kept across the
// exec, the ring pages are mapped again, each ring's partial request and unsent output is carried in
// its CONN record). Two guests keep working during three dx → dx switches — one writing and reading
// one request at a time, one pipelining reads whose replies overflow its 1 KiB response ring (output
// queued in the daemon at the switch) — and a guest watch's events arrive once each; quota values set
// at run time (global, per domain) go along. To cxenstored, rings are refused clearly.
import assert from "../helpers/assert.ts";
import { XS } from "../helpers/wire.ts";
import type { GuestClient } from "../../src/client/guest.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { XENSTORE_CONTROL, XENSTORED } from "../migration/cx_capture.ts";
import { exists, liveUpdate, simGuest as guest, simXen } from "./sim_host.ts";

const SWITCHES = 3;

Deno.test({
  name: "live update dx → dx with guests' rings: rings, channels, watches and buffered bytes go along",
  ignore: !exists(XENSTORE_CONTROL),
  sanitizeResources: false,
  fn: async () => {
    const { x, launcher, rundir } = await simXen();
    const guests: GuestClient[] = [];
    try {
      const a = await guest(x, 5);
      const b = await guest(x, 6);
      guests.push(a, b);
      await a.watch("data/w", "tokA");
      assert.equal((await a.nextEvent())?.path, "data/w", "the initial event");
      await b.write("data/big", "v".repeat(2000));
      // Quota values set at run time go along (DX_QUOTAS): a global one and one domain's.
      await x.ok(MsgType.SET_QUOTA, "transactions\x0017\0");
      await x.ok(MsgType.SET_QUOTA, "6\0node-size\x003000\0");
      const pid = x.daemon.pid;

      let stop = false;
      let rounds = 0, pipelined = 0;
      const busyA = (async () => {
        for (let i = 0; !stop; i++) {
          // 50 keys, rewritten: a guest may own 1000 nodes.
          await a.write(`data/w/k${i % 50}`, String(i));
          assert.equal(await a.read(`data/w/k${i % 50}`), String(i));
          rounds = i + 1;
        }
      })();
      const busyB = (async () => {
        for (let batch = 0; !stop; batch++) {
          // 4 READs of a 2000-byte value: more than the 1 KiB response ring holds, so output queues.
          const ids = [0, 1, 2, 3].map(() => b.send(XS.READ, "data/big\0"));
          for (const id of ids) {
            const r = await b.reply(id);
            assert.equal(r.payload.length, 2000, `batch ${batch}`);
            pipelined++;
          }
        }
      })();
      for (let s = 0; s < SWITCHES; s++) {
        await new Promise((r) => setTimeout(r, 200));
        const lu = await liveUpdate(x, launcher);
        assert.equal(lu.code, 0, `switch ${s}: ${lu.stdout}${lu.stderr}\n${x.daemon.stderr}`);
      }
      stop = true;
      await Promise.all([busyA, busyB]);
      assert.equal(x.daemon.pid, pid);
      assert.ok(await x.daemon.alive());
      const adopted = x.daemon.stderr.match(
        /live update: adopted .* 2 ring\(s\) with 1 watch.*\(in the rings: requests waiting in \d/g,
      );
      assert.equal(adopted?.length, SWITCHES, x.daemon.stderr);
      assert.ok(rounds > 0 && pipelined > 0, `${rounds} round trips, ${pipelined} pipelined reads`);
      // Every write's event exactly once, in order, nothing more.
      const events: string[] = [];
      while (events.length < rounds) events.push((await a.nextEvent())!.path);
      assert.deepEqual(events, Array.from({ length: rounds }, (_, i) => `data/w/k${i % 50}`));
      assert.deepEqual(await a.eventsWithin(300), []);
      assert.equal(await x.ok(MsgType.GET_QUOTA, "transactions\0"), "17\0");
      assert.equal(await x.ok(MsgType.GET_QUOTA, "6\0node-size\0"), "3000\0");
      await b.write("data/bigger", "w".repeat(2900)); // above the default node-size (2048)
      // Still introduced, served, and seen by dom0.
      assert.equal(await x.ok(XS.IS_DOMAIN_INTRODUCED, "6\0"), "T\0");
      assert.equal(await b.read("data/big"), "v".repeat(2000));
      assert.equal(
        await x.ok(XS.READ, `/local/domain/5/data/w/k${(rounds - 1) % 50}\0`),
        String(rounds - 1),
      );
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- daemon ---\n${x.daemon.stderr.slice(-8000)}`);
    } finally {
      for (const g of guests) g.close();
      await x[Symbol.asyncDispose]();
      await Deno.remove(rundir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "live update to cxenstored while guests' rings are served: refused clearly, the ring keeps working",
  ignore: !exists(XENSTORE_CONTROL) || !exists(XENSTORED),
  sanitizeResources: false,
  fn: async () => {
    const { x, rundir } = await simXen();
    try {
      const g = await guest(x, 7);
      await g.write("data/before", "1");
      const lu = await liveUpdate(x, XENSTORED);
      assert.equal(lu.code, 3, lu.stderr);
      assert.ok(
        lu.stderr.includes("rings are served (1) is not supported by dxenstored to cxenstored"),
        lu.stderr,
      );
      assert.equal(await g.read("data/before"), "1");
      g.close();
    } finally {
      await x[Symbol.asyncDispose]();
      await Deno.remove(rundir, { recursive: true }).catch(() => {});
    }
  },
});
