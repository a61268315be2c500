// dx → cx (issue 16, Deliver 3: the way back): a dxenstored that adopted a host from Debian's cxenstored
// 4.17 (under ../shared/anchors' fake-Xen shim) hands it back with the real
// `xenstore-control live-update /usr/lib/xen-4.17/bin/xenstored`. cxenstored restores dxenstored's
// stream: same pid, same connections, watches (absolute, relative) firing, a half-sent request
// completed, a never-reading watcher's backlog (unsent output, larger than its socket) delivered once
// and in order, a pipelined client's unread replies, and the store (values, permissions) as before.
// Then cx → dx once more from there.
import assert from "../helpers/assert.ts";
import { anchorsAvailable } from "../helpers/anchor.ts";
import { errnoOf, frame, joinNul, type Reply, splitNul, type WireClient, XS } from "../helpers/wire.ts";
import { connect, tool, XENSTORE_CONTROL, XENSTORED } from "../migration/cx_capture.ts";
import { programOf, replyTo, seedTree, startCxHost, storeListing, textOf } from "./cross.ts";

const BACKLOG = 400;
const PIPELINED = 150;

Deno.test({
  name: "live update dx → cx: dxenstored hands its clients, watches and store back to cxenstored 4.17",
  ignore: !(await anchorsAvailable()),
  sanitizeResources: false,
  fn: async () => {
    const { anchor: a, launcher, log, pid } = await startCxHost();
    const clients: WireClient[] = [];
    try {
      // cx → dx first: the host as an operator would have it after moving to dxenstored.
      const toDx = await tool(a.socket, XENSTORE_CONTROL, "live-update", launcher);
      assert.equal(toDx.code, 0, toDx.out);
      assert.ok(programOf(pid).some((x) => x.endsWith("src/cli/main.ts")), programOf(pid).join(" "));

      const w = await connect(a.socket);
      const half = await connect(a.socket);
      const lazy = await connect(a.socket);
      const piped = await connect(a.socket);
      clients.push(w, half, lazy, piped);
      const ev: Reply[] = [];
      const req = async (c: WireClient, type: number, payload: string) => {
        const id = await c.send(type, payload);
        return await replyTo(c, id, ev);
      };
      await seedTree(req, w, { "/a/big": "v".repeat(4000) });
      // A watcher of /big that does not read: a backlog larger than its socket stays in dxenstored's
      // output buffer, so the stream carries it as unsent output.
      assert.equal(errnoOf(await req(lazy, XS.WATCH, joinNul("/big", "L".repeat(1500)))), null);
      assert.equal((await lazy.recv(30000)).type, XS.WATCH_EVENT, "its initial event");
      for (let i = 0; i < BACKLOG; i++) await req(w, XS.WRITE, joinNul(`/big/n${i}`) + "x");
      // A client that pipelines READs of a 4000-byte value and reads none of the replies yet.
      const ids: number[] = [];
      for (let i = 0; i < PIPELINED; i++) ids.push(await piped.send(XS.READ, joinNul("/a/big")));
      const halfReq = frame(XS.WRITE, 55, 0, joinNul("/a/half") + "completed after the switch");
      await half.writeRaw(halfReq.subarray(0, 20));
      await new Promise((r) => setTimeout(r, 300));
      const before = await storeListing(a.socket);
      ev.length = 0; // the initial events

      const toCx = await tool(a.socket, XENSTORE_CONTROL, "live-update", XENSTORED);
      assert.equal(toCx.code, 0, toCx.out);
      assert.deepEqual(programOf(pid), [XENSTORED, "-N", "-U"], "cxenstored, with its arguments and -U");
      const dxLog = textOf(log);
      const state = Number(dxLog.match(/live update: (\d+) bytes of state .* exec cxenstored/)?.[1]);
      assert.ok(state > 200_000, `the unread backlog went into the stream (${state} bytes)\n${dxLog}`);
      // The never-reading watcher reads from now on (cxenstored writes it with blocking writes).
      const got: string[] = [];
      const draining = (async () => {
        while (got.length < BACKLOG) {
          const e = await lazy.recv(30000);
          assert.equal(e.type, XS.WATCH_EVENT);
          got.push(splitNul(e.payload)[0]);
        }
      })();

      assert.equal(
        await storeListing(a.socket),
        before,
        "store, values and permissions as dxenstored had them",
      );
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/a/after") + "1")), null);
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/local/domain/0/rel/y") + "2")), null);
      while (ev.length < 2) ev.push(await w.recv(30000));
      assert.deepEqual(ev.map((e) => splitNul(e.payload).join(" ")).sort(), ["/a/after tA", "rel/y tR"]);
      await half.writeRaw(halfReq.subarray(20));
      const hr = await half.recv(30000);
      assert.deepEqual([hr.reqId, hr.type], [55, XS.WRITE], JSON.stringify(hr));
      assert.equal(
        splitNul((await w.recv(30000)).payload).join(" "),
        "/a/half tA",
        "the completed write's event",
      );
      for (const id of ids) {
        const r = await piped.recv(30000);
        assert.equal(r.reqId, id, "pipelined replies in order, each once");
        assert.equal(r.payload.length, 4000);
      }
      await draining;
      assert.deepEqual(got, Array.from({ length: BACKLOG }, (_, i) => `/big/n${i}`), "each event once");
      // Nothing more is queued for any of them.
      for (const c of [w, half, lazy, piped]) {
        const id = await c.send(XS.READ, joinNul("/a/b"));
        const r = await c.recv(30000);
        assert.deepEqual([r.reqId, r.payload], [id, "hello"]);
      }

      // And to dxenstored again, from the state cxenstored restored.
      const after = await storeListing(a.socket);
      const again = await tool(a.socket, XENSTORE_CONTROL, "live-update", launcher);
      assert.equal(again.code, 0, again.out);
      assert.equal(await storeListing(a.socket), after);
      ev.length = 0;
      assert.equal(errnoOf(await req(w, XS.WRITE, joinNul("/a/again") + "3")), null);
      if (ev.length === 0) ev.push(await w.recv(30000)); // the event may come before the reply
      assert.deepEqual(ev.map((e) => splitNul(e.payload).join(" ")), ["/a/again tA"]);
      assert.equal(textOf(log).match(/live update: adopted/g)?.length, 2);
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- dxenstored log ---\n${textOf(log)}`);
    } finally {
      for (const c of clients) c.close();
      await a.stop();
    }
  },
});
