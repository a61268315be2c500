// Inactive permission entries (spec PERM-10) and the plugin chain (src/policy/chain.ts): plugins see
// only the effective list, and a create rewrite gets the inactive entries back only when it kept the
// entries it was shown. (legacy_diff_test.ts checks the decisions against the reference model.)
import assert from "../helpers/assert.ts";
import { withInactiveOf } from "../../src/policy/chain.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { Perms } from "../../src/store/perms.ts";

Deno.test("create rewrite: entries kept → inactive ones back in place; entries changed → the plugin's list", () => {
  const asked = Perms.parseStored(["n0", "r5!", "b7", "w9!"]);
  const ownerChanged = Perms.parse(["n3", "b7"]); // what legacy answers a guest: the view, new owner
  assert.deepEqual(withInactiveOf(asked, ownerChanged).storedStrings(), ["n3", "r5!", "b7", "w9!"]);
  const rewritten = Perms.parse(["n3", "r8"]);
  assert.equal(withInactiveOf(asked, rewritten), rewritten, "a new list: taken as written");
  const sameLength = Perms.parse(["n3", "w7"]); // same count, different access
  assert.equal(withInactiveOf(asked, sameLength), sameLength);
  const plain = Perms.parse(["n0", "b7"]);
  assert.equal(withInactiveOf(plain, ownerChanged), ownerChanged, "nothing inactive: the answer");
});

Deno.test("legacy chain: an inactive entry grants nothing, an active one for the same domain still does", () => {
  const policy = new LegacyPolicy();
  const five = { domid: 5, target: null, privileged: false };
  assert.equal(policy.checkNode(five, "read", "/p", Perms.parseStored(["n0", "r5!"])), "EACCES");
  assert.equal(policy.checkNode(five, "read", "/p", Perms.parseStored(["n0", "r5"])), undefined);
  assert.equal(policy.checkNode(five, "read", "/p", Perms.parseStored(["n0", "n5!", "r5"])), undefined);
  // A guest's new node below an inactive entry: owned by the guest, the entry inherited, inactive.
  const created = policy.permsForCreate(five, Perms.parseStored(["r0", "w9!", "b5"]));
  assert.deepEqual(created.storedStrings(), ["r5", "w9!", "b5"]);
});
