// The seed mail's SET_TARGET scenario, end to end through the core with the default (legacy plugin)
// policy: domain A has full access to node X, domain B read-only; A targets B. Whatever the order of
// the two permission entries, A keeps its full access and gains nothing it should not; B stays
// read-only. (cxenstored returns the first matching entry, so with B's entry first A is crippled.)
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok, testCore } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";

const A = 3;
const B = 4;

for (
  const [order, perms] of [
    ["target's read-only entry first", `n0\0r${B}\0b${A}\0`],
    ["own full-access entry first", `n0\0b${A}\0r${B}\0`],
  ] as const
) {
  Deno.test(`SET_TARGET union rule: ${order}`, () => {
    const core = testCore();
    const d0 = dom0(core);
    ok(core, d0, T.WRITE, "/vm/x\0v0");
    ok(core, d0, T.SET_PERMS, `/vm/x\0${perms}`);
    ok(core, d0, T.SET_PERMS, "/vm\0r0\0");
    const a = guest(core, A);
    const b = guest(core, B);
    a.client.target = B; // what SET_TARGET A B records
    // A: read and write X, whatever the entry order.
    assert.equal(ok(core, a, T.READ, "/vm/x\0"), "v0");
    ok(core, a, T.WRITE, "/vm/x\0v1");
    assert.equal(ok(core, b, T.READ, "/vm/x\0"), "v1");
    // B: still read-only; A's rights do not flow to the target.
    err(core, b, T.WRITE, "/vm/x\0v2", "EACCES");
    // Neither owns X: permissions stay with dom0's choice.
    err(core, a, T.SET_PERMS, `/vm/x\0b${A}\0`, "EACCES");
    // A's target gives A nothing on a node neither A nor B may access.
    ok(core, d0, T.WRITE, "/vm/y\0secret");
    ok(core, d0, T.SET_PERMS, "/vm/y\0n0\0");
    err(core, a, T.READ, "/vm/y\0", "EACCES");
  });
}
