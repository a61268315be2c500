// XSA-206 against a daemon process: a guest writing in a tight loop must not make dom0's
// transactions over the same nodes fail forever. The writer is throttled (delayed, never refused)
// while transactions are open; dom0 is not.
import assert from "../helpers/assert.ts";
import { errnoOf, XS } from "../helpers/wire.ts";
import { startSimXen } from "./sim_harness.ts";

Deno.test("XSA-206: dom0's transactions commit within a bounded number of retries against a guest's write loop", async () => {
  await using x = await startSimXen();
  const g = await x.introduce(40);
  let stop = false;
  let written = 0;
  const writer = (async () => {
    while (!stop) {
      const ids = [];
      for (let i = 0; i < 8; i++) ids.push(g.send(XS.WRITE, `data/x\0${written + i}`));
      for (const id of ids) {
        const r = await g.reply(id);
        if (r.type !== XS.WRITE) throw new Error(`the writer was refused: ${r.payload}`);
        written++;
      }
    }
  })();
  try {
    // Let the writer get going.
    while (written < 200) await new Promise((r) => setTimeout(r, 5));
    for (let t = 0; t < 5; t++) {
      let retries = 0;
      for (;;) {
        const tx = Number((await x.ok(XS.TRANSACTION_START, "\0")).replace("\0", ""));
        await x.ok(XS.READ, "/local/domain/40/data/x\0", tx);
        await x.ok(XS.WRITE, `/local/domain/0/backend/b${t}\0done`, tx);
        const end = await x.call(XS.TRANSACTION_END, "T\0", tx);
        if (end.type === XS.TRANSACTION_END) break;
        assert.equal(errnoOf(end), "EAGAIN");
        retries++;
        assert.ok(retries <= 30, `transaction ${t} still conflicting after ${retries} retries`);
      }
    }
  } finally {
    stop = true;
    await writer;
  }
  assert.ok(written > 200, `the writer kept writing (${written})`);
  for (let t = 0; t < 5; t++) assert.equal(await x.ok(XS.READ, `/local/domain/0/backend/b${t}\0`), "done");
});
