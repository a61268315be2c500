// cx → dx (issue 16, Deliver 2, socket side): Debian's cxenstored 4.17 (under ../shared/anchors' fake-Xen
// shim) live-updates to dxenstored with the real `xenstore-control live-update <dxenstored>`. The new
// program gets cxenstored's own arguments (`-N -U`) and environment, reads cxenstored's state_dump
// and carries on: same pid, same client connections, watches (absolute, relative) still firing, a
// half-sent request completed, a never-reading watcher's backlog delivered once, the store (values,
// permissions) as before. Then dx → dx from there. dom0's ring (faked by the shim) is dropped with a
// log line: the shim's fake ring cannot be adopted (real rings are: docs/live-update.md).
import assert from "../helpers/assert.ts";
import { anchorsAvailable } from "../helpers/anchor.ts";
import { errnoOf, frame, joinNul, type Reply, splitNul, type WireClient, XS } from "../helpers/wire.ts";
import { connect, tool, XENSTORE_CONTROL } from "../migration/cx_capture.ts";
import { replyTo, seedTree, startCxHost, storeListing } from "./cross.ts";

Deno.test({
  name: "live update cx → dx: cxenstored 4.17 hands its clients, watches and store to dxenstored",
  ignore: !(await anchorsAvailable()),
  sanitizeResources: false,
  fn: async () => {
    const { anchor: a, launcher, log, pid } = await startCxHost();
    const clients: WireClient[] = [];
    try {
      const w = await connect(a.socket);
      const half = await connect(a.socket);
      const lazy = await connect(a.socket);
      clients.push(w, half, lazy);
      const ev: Reply[] = [];
      const req = async (c: WireClient, type: number, payload: string) => {
        const id = await c.send(type, payload);
        return await replyTo(c, id, ev);
      };
      await seedTree(req, w);
      // A watcher of /big that never reads, and 200 writes there: a backlog larger than its socket.
      assert.equal(errnoOf(await req(lazy, XS.WATCH, joinNul("/big", "L".repeat(1500)))), null);
      for (let i = 0; i < 200; i++) await req(w, XS.WRITE, joinNul(`/big/n${i}`) + "x");
      const halfReq = frame(XS.WRITE, 55, 0, joinNul("/a/half") + "completed after the switch");
      await half.writeRaw(halfReq.subarray(0, 20));
      await new Promise((r) => setTimeout(r, 200));
      const before = await storeListing(a.socket);
      ev.length = 0; // the initial events

      const lu = await tool(a.socket, XENSTORE_CONTROL, "live-update", launcher);
      assert.equal(lu.code, 0, lu.out);
      // Now dxenstored, in cxenstored's process.
      const comm = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      assert.ok(comm.some((x) => x.endsWith("src/cli/main.ts")), `pid ${pid} runs ${comm.join(" ")}`);
      assert.ok(comm.includes("-U") && comm.includes("-N"), "cxenstored's arguments plus -U");
      const logText = () => Deno.readTextFileSync(log);
      assert.ok(/live update: adopted 4 socket connection/.test(logText()), logText());

      assert.equal(
        await storeListing(a.socket),
        before,
        "store, values and permissions as cxenstored had them",
      );
      // Watches still fire on the same connection (absolute and relative).
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/a/after") + "1")), null);
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/local/domain/0/rel/y") + "2")), null);
      while (ev.length < 2) {
        ev.push(await w.recv(30000).catch((e) => Promise.reject(new Error(`${e}\n${logText()}`))));
      }
      const paths = ev.map((e) => splitNul(e.payload).join(" "));
      assert.ok(paths.includes("/a/after tA"), JSON.stringify(paths));
      assert.ok(paths.includes("rel/y tR"), JSON.stringify(paths));
      // The half-sent request completes, answered once.
      await half.writeRaw(halfReq.subarray(20));
      const hr = await half.recv(30000).catch((e) => Promise.reject(new Error(`half: ${e}\n${logText()}`)));
      assert.equal(hr.reqId, 55);
      assert.equal(hr.type, XS.WRITE);
      // The never-reading watcher gets its initial event and every /big event, once each, in order.
      const got: string[] = [];
      for (;;) {
        const e = await lazy.recv(30000).catch((e) =>
          Promise.reject(new Error(`lazy ${got.length}: ${e}\n${logText()}`))
        );
        assert.equal(e.type, XS.WATCH_EVENT);
        got.push(splitNul(e.payload)[0]);
        if (splitNul(e.payload)[0] === "/big/n199") break;
      }
      assert.equal(got.filter((p) => p === "/big").length <= 1, true);
      const writes = got.filter((p) => p !== "/big");
      assert.deepEqual(writes, Array.from({ length: 200 }, (_, i) => `/big/n${i}`));

      // And on, dx → dx, from the state cxenstored's clients are in.
      const again = await tool(a.socket, XENSTORE_CONTROL, "live-update", launcher);
      assert.equal(again.code, 0, again.out);
      ev.length = 0;
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/a/again") + "3")), null);
      // Each once: the half-sent request's write (after the first switch), then this one.
      while (ev.length < 2) ev.push(await w.recv(30000));
      assert.deepEqual(ev.map((e) => splitNul(e.payload).join(" ")), ["/a/half tA", "/a/again tA"]);
      assert.equal(logText().match(/live update: adopted/g)?.length, 2);
    } catch (e) {
      let text = "";
      try {
        text = Deno.readTextFileSync(log);
      } catch { /* not started */ }
      throw new Error(`${(e as Error).stack}\n--- dxenstored log ---\n${text}`);
    } finally {
      for (const c of clients) c.close();
      await a.stop();
    }
  },
});
