// A READ's refusal is returned by its handler, not thrown (Refusal, src/dispatch/dispatcher.ts): the
// errno, the transaction's observations, the error count and what the observer sees must be what
// the thrown XsError of the other node reads (GET_PERMS, DIRECTORY) gives for the same node.
import assert from "../helpers/assert.ts";
import { dom0, guest, makeDomainHome, testCore } from "../helpers/core.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { RequestObserver } from "../../src/dispatch/extensions.ts";

interface Seen {
  reply: string;
  errno: unknown;
  detail: unknown;
}

Deno.test("READ refusals: the same errno, detail, counts and observations as a thrown refusal", () => {
  const seen: Seen[] = [];
  const observer: RequestObserver = {
    opened() {},
    closed() {},
    watchEvent() {},
    replied(_c, _m, _type, reply, failure) {
      const f = failure as { errno?: unknown; detail?: unknown } | null;
      seen.push({ reply, errno: f?.errno, detail: f?.detail });
    },
  };
  const core = testCore({ observer });
  const admin = dom0(core);
  makeDomainHome(admin, 5);
  admin.write("/local/domain/5/readable", "1");
  admin.write("/private/node", "x");
  admin.setPerms("/private", "n0");
  admin.setPerms("/private/node", "n0");
  const g = guest(core, 5);
  const paths = [
    "/local/domain/5/missing", // ENOENT: the guest can read its parent
    "/private/missing", // EACCES: it cannot read the deepest existing ancestor
    "/private/node", // EACCES: an existing node it cannot read
    "/nowhere/at/all", // the root decides
    "/local/domain/5/readable", // no refusal
  ];
  for (const path of paths) {
    for (const other of [MsgType.GET_PERMS, MsgType.DIRECTORY]) {
      const errorsBefore = core.dispatcher.stats.errors;
      seen.length = 0;
      const read = g.request(MsgType.READ, `${path}\0`);
      const thrown = g.request(other, `${path}\0`);
      const refused = thrown.type === MsgType.ERROR;
      assert.equal(read.type === MsgType.ERROR, refused, path);
      if (!refused) continue;
      assert.equal(read.payload, thrown.payload, path);
      assert.deepEqual(seen[0], seen[1], path);
      assert.equal(seen[0].detail, path);
      assert.equal(core.dispatcher.stats.errors, errorsBefore + 2, path);
    }
  }
  // In a transaction: the refused READ's observation makes the commit conflict when the node appears.
  const tx = Number(g.tryRequest(MsgType.TRANSACTION_START, "\0"));
  assert.equal(g.tryRequest(MsgType.READ, "/local/domain/5/later\0", tx), "E:ENOENT");
  admin.write("/local/domain/5/later", "now");
  g.tryRequest(MsgType.WRITE, "/local/domain/5/other\0v", tx);
  assert.equal(g.tryRequest(MsgType.TRANSACTION_END, "T\0", tx), "E:EAGAIN");
});
