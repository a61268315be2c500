// The accounting against a real cxenstored 4.17 (the anchors): the same requests from dom0 to both
// daemons, then cxenstored's `CONTROL quota 0` next to our report(0). Nodes owned and memory must be
// the same numbers, since both follow cxenstored's record-size definition (docs/quotas.md).
import assert from "../helpers/assert.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { WireClient } from "../helpers/wire.ts";
import { MsgType, quotaCore } from "./harness.ts";

/** (type, payload) requests, as bytes on the wire. */
const STEPS: ReadonlyArray<readonly [MsgType, string]> = [
  [MsgType.WRITE, "/a\0hello"],
  [MsgType.WRITE, "/a/b/c\0x"],
  [MsgType.SET_PERMS, "/a/b\0n0\0r1\0r2\0"],
  [MsgType.WATCH, "/a\0tok\0"],
  [MsgType.RM, "/a/b\0"],
  [MsgType.MKDIR, "/m\0"],
  [MsgType.WRITE, "/local/domain/0/name\0Domain-0"],
  [MsgType.WRITE, "/a\0a longer value than before"],
  [MsgType.SET_PERMS, "/local/domain/0\0n0\0r7\0"],
  [MsgType.RM, "/m\0"],
];

function parseUsage(text: string): { nodes: number; memory: number } {
  const num = (k: string) => Number(new RegExp(`^${k} +: +([0-9]+)$`, "m").exec(text)?.[1] ?? NaN);
  return { nodes: num("nodes"), memory: num("memory") };
}

Deno.test({
  name: "nodes and memory of dom0 equal cxenstored 4.17's `quota 0` after each request (differential)",
  ignore: !anchorsAvailable(),
  async fn() {
    const ref = await startAnchor("cxenstored");
    let w: WireClient | null = null;
    try {
      w = await WireClient.connect(ref.socket);
      const cx = w;
      const request = async (type: number, payload: string) => {
        const id = await cx.send(type, payload);
        for (;;) {
          const r = await cx.recv();
          if (r.reqId === id && r.type !== MsgType.WATCH_EVENT) return r;
        }
      };
      const h = quotaCore();
      const check = async (what: string) => {
        const theirs = parseUsage((await request(MsgType.CONTROL, "quota\x000\0")).payload);
        const ours = h.core.quotas.report(0).usage;
        assert.deepEqual({ nodes: ours.nodes, memory: ours.memory }, theirs, what);
      };
      await check("initial store");
      for (const [type, payload] of STEPS) {
        const r = await request(type, payload);
        assert.equal(h.admin.tryRequest(type, payload), r.payload.replace(/\0$/, ""), `${type} ${payload}`);
        h.admin.events();
        await check(`after ${type} ${JSON.stringify(payload)}`);
      }
      // A transaction, counted at commit.
      const t = Number((await request(MsgType.TRANSACTION_START, "\0")).payload.replace(/\0$/, ""));
      const u = h.admin.startTx();
      await cx.send(MsgType.WRITE, "/t/x/y\0v", { txId: t });
      await cx.recv();
      h.admin.tryRequest(MsgType.WRITE, "/t/x/y\0v", u);
      await cx.send(MsgType.TRANSACTION_END, "T\0", { txId: t });
      await cx.recv();
      assert.equal(h.admin.tryCommit(u), "OK");
      await check("after a transaction");
    } finally {
      w?.conn.close();
      await ref.stop();
    }
  },
});
