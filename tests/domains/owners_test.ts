// SET_PERMS and the domains that exist (XSA-322/417): an owner must be an existing domain — dom0, an
// introduced one, or one the hypervisor has (a toolstack gives a new domain its home before
// INTRODUCE) — else ENOENT, as cxenstored; entries naming other unknown domains are kept and grant
// nothing until such a domain exists. Domains that own nodes without ever being introduced are
// cleaned up at their death like introduced ones, also across a restart.
import assert from "../helpers/assert.ts";
import { err, ok } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { rig } from "./harness.ts";
import { XsError } from "../../src/common/xs_error.ts";

Deno.test("SET_PERMS: an owner that is no existing domain is ENOENT, checked before the path (as cxenstored)", () => {
  const r = rig();
  ok(r.core, r.dom0, T.WRITE, "/d/a\0x");
  err(r.core, r.dom0, T.SET_PERMS, "/d/a\0r1\0r0\0w0\0", "ENOENT"); // the example
  for (const owner of ["1", "32752", "32753", "65535"]) { // none, DOMID_SELF, other reserved ids
    err(r.core, r.dom0, T.SET_PERMS, `/d/a\0n${owner}\0`, "ENOENT");
  }
  // The list is judged before the path: an invalid or missing path with an unknown owner is ENOENT;
  // with an existing owner it is the path's error.
  err(r.core, r.dom0, T.SET_PERMS, "/d//a\0r1\0", "ENOENT");
  err(r.core, r.dom0, T.SET_PERMS, "/d//a\0r0\0", "EINVAL");
  err(r.core, r.dom0, T.SET_PERMS, "@releaseDomain\0r1\0", "ENOENT");
  err(r.core, r.dom0, T.SET_PERMS, "/d/a\0x1\0", "EINVAL"); // malformed before unknown
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/d/a\0"), "n0\0", "nothing changed");
});

Deno.test("SET_PERMS: owners the hypervisor has (introduced or not) are accepted; dying ones are not", async () => {
  const r = rig();
  ok(r.core, r.dom0, T.WRITE, "/d/a\0x");
  r.create(4); // created, not introduced: what a toolstack does before INTRODUCE
  ok(r.core, r.dom0, T.SET_PERMS, "/d/a\0n4\0");
  const g = r.guest(4);
  assert.equal(await g.read("/d/a"), "x", "the owner's access once introduced");
  r.create(6);
  r.xen.domains.get(6)!.state = { ...r.xen.domains.get(6)!.state, dying: true };
  err(r.core, r.dom0, T.SET_PERMS, "/d/a\0n6\0", "ENOENT");
});

Deno.test("SET_PERMS: entries naming unknown domains are kept and grant nothing until such a domain exists", async () => {
  const r = rig();
  ok(r.core, r.dom0, T.WRITE, "/d/a\0x");
  ok(r.core, r.dom0, T.SET_PERMS, "/d/a\0n0\0r5\0w9\0");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/d/a\0"), "n0\0r5\0w9\0", "kept as written");
  const g = r.guest(5); // the domain comes into existence: the entry now names it
  assert.equal(await g.read("/d/a"), "x");
  await assert.rejects(g.write("/d/a", "y"), XsError, (e) => e.errno === "EACCES");
});

Deno.test("a domain that owned nodes but was never introduced: its death removes them, once", () => {
  const r = rig();
  r.create(3);
  ok(r.core, r.dom0, T.WRITE, "/pre3/a\0x");
  ok(r.core, r.dom0, T.SET_PERMS, "/pre3\0n3\0");
  ok(r.core, r.dom0, T.WRITE, "/keep\0k");
  ok(r.core, r.dom0, T.SET_PERMS, "/keep\0n0\0r3\0");
  r.xen.destroy(3);
  r.turn();
  err(r.core, r.dom0, T.READ, "/pre3\0", "ENOENT");
  assert.equal(ok(r.core, r.dom0, T.GET_PERMS, "/keep\0"), "n0\0", "its entries struck too");
  // A domain replaced under a remembered domid without a VIRQ scan: cleaned when next asked.
  r.create(3);
  ok(r.core, r.dom0, T.WRITE, "/again\0x");
  ok(r.core, r.dom0, T.SET_PERMS, "/again\0n3\0");
  r.xen.domains.delete(3); // gone without VIRQ_DOM_EXC...
  r.create(3); // ...and a new domain 3
  ok(r.core, r.dom0, T.WRITE, "/other\0y");
  ok(r.core, r.dom0, T.SET_PERMS, "/other\0n3\0");
  err(r.core, r.dom0, T.READ, "/again\0", "ENOENT");
  assert.equal(ok(r.core, r.dom0, T.READ, "/other\0"), "y", "the new domain's node stays");
});

Deno.test("restore(): owners that died while the daemon was down are cleaned up at start", () => {
  const r = rig();
  r.create(3);
  r.create(4);
  for (const d of [3, 4]) {
    ok(r.core, r.dom0, T.WRITE, `/own${d}\0x`);
    ok(r.core, r.dom0, T.SET_PERMS, `/own${d}\0n${d}\0`);
  }
  // The daemon restarts (a new daemon over the same store); domain 3 died meanwhile.
  r.xen.domains.delete(3);
  r.restart([]);
  err(r.core, r.dom0, T.READ, "/own3\0", "ENOENT");
  assert.equal(ok(r.core, r.dom0, T.READ, "/own4\0"), "x");
  // Domain 4 is remembered: its later death is cleaned up although it was never introduced.
  r.xen.destroy(4);
  r.turn();
  err(r.core, r.dom0, T.READ, "/own4\0", "ENOENT");
});
