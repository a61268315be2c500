// Live update dx → dx under load (issue 16, Deliver 4): 20 switches in a row by Debian's xenstore-control
// while socket clients keep working — a writer (one request at a time), a pipelined reader (batches of
// 50), a client running transactions back to back (each switch waits for its open one; its next
// TRANSACTION_START is held and answered by the new program), and a watcher. Zero connection errors,
// every acknowledgement exactly once and in order, every watch event exactly once, the store as the
// clients made it.
import assert from "../helpers/assert.ts";
import { type Daemon, runTool, startDaemon } from "../helpers/daemon.ts";
import { errnoOf, joinNul, type Reply, WireClient, XS } from "../helpers/wire.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";
const SWITCHES = 20;

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function parts(r: Reply): string[] {
  return r.payload.split("\0").filter((x, i, a) => !(x === "" && i === a.length - 1));
}

Deno.test({
  name:
    `live update dx → dx: ${SWITCHES} switches while a writer, a pipelined reader, transactions and a watcher work`,
  ignore: !exists(XENSTORE_CONTROL),
  sanitizeResources: false,
  fn: async () => {
    const rundir = await Deno.makeTempDir({ prefix: "dxs-lubusy-" });
    const launcher = `${rundir}/dxenstored`;
    Deno.writeTextFileSync(
      launcher,
      `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" "$@"\n`,
      { mode: 0o755 },
    );
    let d: Daemon | null = null;
    try {
      d = await startDaemon({ env: { XENSTORED_RUNDIR: rundir } });
      const socket = d.socket;
      const writer = await WireClient.connect(socket);
      const reader = await WireClient.connect(socket);
      const txc = await WireClient.connect(socket);
      const watcher = await WireClient.connect(socket);
      assert.equal(errnoOf(await writer.request(XS.WRITE, joinNul("/busy/r") + "read me")), null);
      assert.equal(errnoOf(await watcher.request(XS.WATCH, joinNul("/busy/w", "W"))), null);
      assert.equal((await watcher.recv()).type, XS.WATCH_EVENT, "the initial event");

      let stop = false;
      let written = 0, reads = 0, commits = 0;
      const T = 120_000; // a switch may take seconds on a loaded machine
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
          const tx = Number(parts(await txc.request(XS.TRANSACTION_START, "\0", { timeoutMs: T }))[0]);
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

      for (let s = 0; s < SWITCHES; s++) {
        await new Promise((r) => setTimeout(r, 100));
        const lu = await runTool(XENSTORE_CONTROL, ["live-update", "-t", "30", launcher], socket, T);
        assert.equal(lu.code, 0, `switch ${s}: ${lu.stdout}${lu.stderr}`);
      }
      stop = true;
      await Promise.all([writing, reading, transacting]);
      assert.equal(d.stderr.match(/live update: adopted/g)?.length, SWITCHES, "every switch adopted");
      assert.ok(await d.alive(), "one process throughout");

      // Every write's event exactly once, in order.
      const events: string[] = [];
      while (events.length < written) {
        const e = await watcher.recv(T);
        assert.equal(e.type, XS.WATCH_EVENT);
        events.push(parts(e)[0]);
      }
      assert.deepEqual(events, Array.from({ length: written }, (_, i) => `/busy/w/k${i}`));
      const sync = await watcher.request(XS.READ, "/busy/r\0");
      assert.equal(sync.payload, "read me", "no event after the last write's");
      // The store as the clients made it.
      for (const [base, n] of [["/busy/w", written], ["/busy/t", commits]] as const) {
        for (let i = 0; i < n; i++) {
          const r = await writer.request(XS.READ, `${base}/k${i}\0`);
          assert.equal(r.payload, String(i), `${base}/k${i}`);
        }
        assert.equal(errnoOf(await writer.request(XS.READ, `${base}/k${n}\0`)), "ENOENT");
      }
      assert.ok(
        reads > 0 && commits > 0 && written > 0,
        `work went on: ${written} writes, ${reads} reads, ${commits} commits`,
      );
      for (const c of [writer, reader, txc, watcher]) c.close();
    } finally {
      await d?.stop().catch(() => {});
      await Deno.remove(rundir, { recursive: true }).catch(() => {});
    }
  },
});
