// Permission checks through Core for an unprivileged client (a guest domain): EACCES vs ENOENT hiding,
// ownership of created nodes, SET_PERMS rules, special paths, capabilities.
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok, testCore } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";

const OK = "OK\0";

/** A core with: /secret/x (dom0 only), /pub (everyone reads), /open (everyone writes), dom 5's home. */
function setup() {
  const core = testCore();
  const d0 = dom0(core);
  for (const w of ["/secret/x\0s", "/pub/x\0p", "/open\0", "/local/domain/5\0", "/local/domain/6\0"]) {
    assert.equal(ok(core, d0, T.WRITE, w), OK);
  }
  assert.equal(ok(core, d0, T.SET_PERMS, "/pub\0r0\0"), OK);
  assert.equal(ok(core, d0, T.SET_PERMS, "/pub/x\0r0\0"), OK);
  assert.equal(ok(core, d0, T.SET_PERMS, "/open\0b0\0"), OK);
  assert.equal(ok(core, d0, T.SET_PERMS, "/local/domain/5\0n5\0"), OK);
  assert.equal(ok(core, d0, T.SET_PERMS, "/local/domain/6\0n6\0r5\0"), OK);
  return { core, d0, g5: guest(core, 5), g6: guest(core, 6) };
}

Deno.test("unreadable subtree: EACCES for existing and missing nodes alike (existence is hidden)", () => {
  const { core, g5 } = setup();
  for (const p of ["/secret", "/secret/x", "/secret/missing", "/secret/x/missing/deeper"]) {
    err(core, g5, T.READ, `${p}\0`, "EACCES");
    err(core, g5, T.DIRECTORY, `${p}\0`, "EACCES");
    err(core, g5, T.GET_PERMS, `${p}\0`, "EACCES");
    err(core, g5, T.DIRECTORY_PART, `${p}\x000\0`, "EACCES");
  }
  // The root itself is n0: a guest cannot read it, nor learn what is missing right below it.
  err(core, g5, T.READ, "/nonexistent\0", "EACCES");
  err(core, g5, T.RM, "/secret/missing\0", "EACCES");
  err(core, g5, T.RM, "/secret/x\0", "EACCES");
  err(core, g5, T.WRITE, "/secret/new\0v", "EACCES");
  err(core, g5, T.WRITE, "/secret/x\0v", "EACCES");
  err(core, g5, T.MKDIR, "/secret/new\0", "EACCES");
  err(core, g5, T.SET_PERMS, "/secret/x\0b5\0", "EACCES");
});

Deno.test("readable subtree: real ENOENT, reads work, writes refused", () => {
  const { core, g5 } = setup();
  assert.equal(ok(core, g5, T.READ, "/pub/x\0"), "p");
  assert.equal(ok(core, g5, T.DIRECTORY, "/pub\0"), "x\0");
  assert.equal(ok(core, g5, T.GET_PERMS, "/pub\0"), "r0\0");
  err(core, g5, T.READ, "/pub/missing\0", "ENOENT");
  err(core, g5, T.READ, "/pub/x/missing/deeper\0", "ENOENT");
  err(core, g5, T.WRITE, "/pub/x\0v", "EACCES");
  err(core, g5, T.WRITE, "/pub/new\0v", "EACCES");
  err(core, g5, T.RM, "/pub/x\0", "EACCES");
  assert.equal(ok(core, g5, T.RM, "/pub/missing\0"), OK, "RM of a missing node under a readable parent");
  err(core, g5, T.RM, "/pub/missing/deeper\0", "ENOENT");
});

Deno.test("writable node: a guest's new nodes are owned by the guest", () => {
  const { core, d0, g5, g6 } = setup();
  assert.equal(ok(core, g5, T.WRITE, "/open/mine/deep\0v"), OK);
  assert.equal(ok(core, d0, T.GET_PERMS, "/open/mine\0"), "b5\0");
  assert.equal(ok(core, d0, T.GET_PERMS, "/open/mine/deep\0"), "b5\0");
  assert.equal(ok(core, g5, T.READ, "/open/mine/deep\0"), "v");
  // dom6 may use the "other" bits (b) of a node dom5 owns.
  assert.equal(ok(core, g6, T.READ, "/open/mine/deep\0"), "v");
  assert.equal(ok(core, g5, T.SET_PERMS, "/open/mine\0n5\0"), OK);
  err(core, g6, T.READ, "/open/mine\0", "EACCES");
  err(core, g6, T.READ, "/open/mine/missing\0", "EACCES");
  assert.equal(ok(core, g5, T.MKDIR, "/open/mine/d\0"), OK);
  assert.equal(ok(core, g5, T.RM, "/open/mine\0"), OK);
  // The privileged client's new nodes inherit the parent's owner.
  assert.equal(ok(core, d0, T.WRITE, "/local/domain/5/by-dom0\0"), OK);
  assert.equal(ok(core, d0, T.GET_PERMS, "/local/domain/5/by-dom0\0"), "n5\0");
});

Deno.test("relative paths of a guest resolve under its own domain path", () => {
  const { core, d0, g5, g6 } = setup();
  assert.equal(ok(core, g5, T.WRITE, "data/key\0x"), OK);
  assert.equal(ok(core, d0, T.READ, "/local/domain/5/data/key\0"), "x");
  assert.equal(ok(core, g5, T.READ, "data/key\0"), "x");
  assert.equal(ok(core, g5, T.GET_PERMS, "data/key\0"), "n5\0");
  err(core, g6, T.READ, "data/key\0", "ENOENT"); // /local/domain/6/data/key: dom6 owns its home
  err(core, g6, T.READ, "/local/domain/5/data/key\0", "EACCES");
  assert.equal(ok(core, g5, T.READ, "/local/domain/6\0"), "", "dom6 granted dom5 read");
});

Deno.test("SET_PERMS: only the owner; changing the owner needs privilege (EPERM)", () => {
  const { core, d0, g5, g6 } = setup();
  assert.equal(ok(core, g5, T.WRITE, "/local/domain/5/n\0"), OK);
  assert.equal(ok(core, d0, T.GET_PERMS, "/local/domain/6\0"), "n6\0r5\0");
  err(core, g5, T.SET_PERMS, "/local/domain/6\0n6\0b5\0", "EACCES");
  err(core, g5, T.SET_PERMS, "/local/domain/5/n\0n6\0", "EPERM");
  err(core, g5, T.SET_PERMS, "/local/domain/5/n\0b0\0", "EPERM");
  assert.equal(ok(core, d0, T.GET_PERMS, "/local/domain/5/n\0"), "n5\0", "unchanged after EPERM");
  assert.equal(ok(core, g5, T.SET_PERMS, "/local/domain/5/n\0r5\0b6\0"), OK);
  assert.equal(ok(core, d0, T.GET_PERMS, "/local/domain/5/n\0"), "r5\0b6\0");
  assert.equal(ok(core, g6, T.WRITE, "/local/domain/5/n\0by6"), OK, "dom6 got b");
  // The privileged client may give nodes away.
  assert.equal(ok(core, d0, T.SET_PERMS, "/local/domain/5/n\0n7\0"), OK);
  err(core, g5, T.SET_PERMS, "/local/domain/5/n\0n5\0", "EACCES");
});

Deno.test("special paths: readable/settable per their permissions", () => {
  const { core, d0, g5 } = setup();
  err(core, g5, T.GET_PERMS, "@introduceDomain\0", "EACCES");
  err(core, g5, T.SET_PERMS, "@releaseDomain\0n5\0", "EACCES");
  err(core, g5, T.READ, "@introduceDomain\0", "EINVAL");
  assert.equal(ok(core, d0, T.SET_PERMS, "@introduceDomain\0n0\0r5\0"), OK);
  assert.equal(ok(core, g5, T.GET_PERMS, "@introduceDomain\0"), "n0\0r5\0");
  assert.equal(ok(core, d0, T.SET_PERMS, "@releaseDomain\0n5\0"), OK);
  assert.equal(ok(core, g5, T.SET_PERMS, "@releaseDomain\0n5\0r6\0"), OK, "the owner may set them");
  err(core, g5, T.SET_PERMS, "@releaseDomain\0n6\0", "EPERM");
  assert.equal(ok(core, d0, T.GET_PERMS, "@releaseDomain\0"), "n5\0r6\0");
});

Deno.test("capabilities: IS_DOMAIN_INTRODUCED needs privilege; GET_DOMAIN_PATH does not", () => {
  const { core, g5 } = setup();
  err(core, g5, T.IS_DOMAIN_INTRODUCED, "0\0", "EACCES");
  assert.equal(ok(core, g5, T.GET_DOMAIN_PATH, "5\0"), "/local/domain/5\0");
});
