// Live update under load across implementations (issue 16, Deliver 4): 20 switches in a row by Debian's
// xenstore-control, cycling cx → dx → dx → cx (Debian's cxenstored 4.17 under ../shared/anchors'
// fake-Xen shim, and this checkout's dxenstored), while socket clients keep working:
//
//   writer      one WRITE at a time under a watched path
//   reader      pipelined READs in batches of 50
//   txc         transactions back to back (each switch waits for the open one; its next
//               TRANSACTION_START is held and answered by the new program)
//   watcher     every write's event
//   lazy        sends READs of a 4000-byte value (1 MB of replies: dxenstored stops reading it, requests stay unprocessed) and reads none until the end
//
// Zero connection errors, every acknowledgement exactly once and in order, every watch event exactly
// once, the store as the clients made it, a static subtree (values, permissions) as before, one pid.
// ~40 s on a loaded 2-core machine.
import assert from "../helpers/assert.ts";
import { anchorsAvailable } from "../helpers/anchor.ts";
import { errnoOf, joinNul, splitNul, type WireClient, XS } from "../helpers/wire.ts";
import { connect, tool, XENSTORE_CONTROL, XENSTORED } from "../migration/cx_capture.ts";
import { programOf, startCxHost, storeListing, textOf } from "./cross.ts";

/** 20 in CI (~12 s); LU_SWITCHES=300 for a longer soak outside it (`deno task lu:soak`). */
const SWITCHES = Number(Deno.env.get("LU_SWITCHES") ?? 20);
const LAZY_READS = 250;
/** A switch may take seconds on a loaded machine (a Deno start). */
const T = 120_000;

Deno.test({
  name: `live update: ${SWITCHES} switches cx → dx → dx → cx … while clients write, read, transact and watch`,
  ignore: !(await anchorsAvailable()),
  sanitizeResources: false,
  fn: async () => {
    const { anchor: a, launcher, log, pid } = await startCxHost();
    const clients: WireClient[] = [];
    try {
      const socket = a.socket;
      const writer = await connect(socket);
      const reader = await connect(socket);
      const txc = await connect(socket);
      const watcher = await connect(socket);
      const lazy = await connect(socket);
      clients.push(writer, reader, txc, watcher, lazy);
      assert.equal(errnoOf(await writer.request(XS.WRITE, joinNul("/busy/r") + "read me")), null);
      assert.equal(errnoOf(await writer.request(XS.WRITE, joinNul("/busy/big") + "v".repeat(4000))), null);
      for (let i = 0; i < 20; i++) {
        assert.equal(errnoOf(await writer.request(XS.WRITE, joinNul(`/static/n${i}`) + `value ${i}`)), null);
      }
      assert.equal(errnoOf(await writer.request(XS.SET_PERMS, joinNul("/static/n3", "b0", "r0"))), null);
      const staticBefore = (await storeListing(socket)).split("\n").filter((l) => l.startsWith("/static"));
      assert.equal(errnoOf(await watcher.request(XS.WATCH, joinNul("/busy/w", "W"))), null);
      assert.equal((await watcher.recv(T)).type, XS.WATCH_EVENT, "the initial event");
      const lazyIds: number[] = [];

      let stop = false;
      let written = 0, reads = 0, commits = 0;
      const writing = (async () => {
        for (let i = 0; !stop; i++) {
          const r = await writer.request(XS.WRITE, joinNul(`/busy/w/k${i}`) + String(i), { timeoutMs: T });
          assert.equal(r.type, XS.WRITE, `write ${i}: ${JSON.stringify(r)}`);
          written = i + 1;
        }
      })();
      const reading = (async () => {
        for (let batch = 0; !stop; batch++) {
          const ids: number[] = [];
          for (let j = 0; j < 50; j++) ids.push(await reader.send(XS.READ, "/busy/r\0"));
          for (const id of ids) {
            const r = await reader.recv(T);
            assert.equal(r.reqId, id, `pipelined batch ${batch}: replies in order, each once`);
            assert.equal(r.payload, "read me");
            reads++;
          }
        }
      })();
      const transacting = (async () => {
        for (let i = 0; !stop; i++) {
          const tx = Number(
            splitNul((await txc.request(XS.TRANSACTION_START, "\0", { timeoutMs: T })).payload)[0],
          );
          assert.ok(tx > 0, `transaction ${i} started`);
          const w = await txc.request(XS.WRITE, joinNul(`/busy/t/k${i}`) + String(i), {
            txId: tx,
            timeoutMs: T,
          });
          assert.equal(errnoOf(w), null);
          const e = await txc.request(XS.TRANSACTION_END, "T\0", { txId: tx, timeoutMs: T });
          // Nothing else writes /busy/t: a conflict (EAGAIN) would be a bug too.
          assert.equal(errnoOf(e), null, `transaction ${i} committed`);
          commits = i + 1;
        }
      })();

      const directions: string[] = [];
      for (let s = 0; s < SWITCHES; s++) {
        await new Promise((r) => setTimeout(r, 100));
        // cx → dx, dx → dx, dx → cx, and again.
        const to = s % 3 === 2 ? XENSTORED : launcher;
        const from = programOf(pid)[0] === XENSTORED ? "cx" : "dx";
        directions.push(`${from}→${to === XENSTORED ? "cx" : "dx"}`);
        const lu = await tool(socket, XENSTORE_CONTROL, "live-update", "-t", "30", to);
        assert.equal(lu.code, 0, `switch ${s} (${directions.at(-1)}): ${lu.out}`);
        assert.equal(programOf(pid)[0] === XENSTORED, to === XENSTORED, `switch ${s}: ${programOf(pid)}`);
        if (s === 0) {
          // Under dxenstored, which stops reading a client whose replies pile up: its later requests
          // stay unprocessed input, which cxenstored 4.17 can restore only one of (dx → cx serves them).
          for (let i = 0; i < LAZY_READS; i++) lazyIds.push(await lazy.send(XS.READ, joinNul("/busy/big")));
        }
      }
      stop = true;
      await Promise.all([writing, reading, transacting]);
      assert.deepEqual(new Set(directions), new Set(["cx→dx", "dx→dx", "dx→cx"]), directions.join(" "));
      const toDx = directions.filter((d) => d.endsWith("dx")).length;
      assert.equal(textOf(log).match(/live update: adopted/g)?.length, toDx, "every switch to dx adopted");

      // Every write's event exactly once, in order.
      const events: string[] = [];
      while (events.length < written) {
        const e = await watcher.recv(T);
        assert.equal(e.type, XS.WATCH_EVENT);
        events.push(splitNul(e.payload)[0]);
      }
      assert.deepEqual(events, Array.from({ length: written }, (_, i) => `/busy/w/k${i}`));
      const sync = await watcher.request(XS.READ, "/busy/r\0");
      assert.equal(sync.payload, "read me", "no event after the last write's");
      // The client that never read: each reply once, in order, nothing after.
      for (const id of lazyIds) {
        const r = await lazy.recv(T);
        assert.deepEqual([r.reqId, r.payload.length], [id, 4000]);
      }
      assert.equal((await lazy.request(XS.READ, "/busy/r\0")).payload, "read me");
      // The store as the clients made it.
      for (const [base, n] of [["/busy/w", written], ["/busy/t", commits]] as const) {
        for (let i = 0; i < n; i++) {
          const r = await writer.request(XS.READ, `${base}/k${i}\0`);
          assert.equal(r.payload, String(i), `${base}/k${i}`);
        }
        assert.equal(errnoOf(await writer.request(XS.READ, `${base}/k${n}\0`)), "ENOENT");
      }
      const staticAfter = (await storeListing(socket)).split("\n").filter((l) => l.startsWith("/static"));
      assert.deepEqual(staticAfter, staticBefore, "values and permissions as before");
      assert.ok(
        reads > 0 && commits > 0 && written > 0,
        `work went on: ${written} writes, ${reads} reads, ${commits} commits`,
      );
    } catch (e) {
      throw new Error(`${(e as Error).stack}\n--- dxenstored log (tail) ---\n${textOf(log).slice(-6000)}`);
    } finally {
      for (const c of clients) c.close();
      await a.stop();
    }
  },
});
