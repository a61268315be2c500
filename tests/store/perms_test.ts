// Permission lists: src/store/perms.ts (data only; the rules are the policy's).
import assert from "../helpers/assert.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { PERM_BOTH, PERM_NONE, PERM_READ, PERM_WRITE, Perms, samePerms } from "../../src/store/perms.ts";

Deno.test("Perms.of / strings / text / count", () => {
  const p = Perms.of(3, PERM_READ, [{ domid: 5, bits: PERM_WRITE }, { domid: 0, bits: PERM_BOTH }]);
  assert.equal(p.owner, 3);
  assert.equal(p.other, PERM_READ);
  assert.deepEqual(p.strings(), ["r3", "w5", "b0"]);
  assert.equal(p.text, "r3\0w5\0b0\0");
  assert.equal(p.count, 3);
  assert.equal(Perms.of(0, PERM_NONE).text, "n0\0");
});

Deno.test("interning: equal lists are the same object", () => {
  assert.equal(Perms.of(7, PERM_NONE, [{ domid: 1, bits: PERM_READ }]), Perms.parse(["n7", "r1"]));
  assert.notEqual(Perms.parse(["n7", "r1"]), Perms.parse(["n7", "w1"]));
  assert.ok(samePerms(Perms.parse(["b1"]), Perms.parse(["b1"])));
  assert.ok(!samePerms(Perms.parse(["b1"]), Perms.parse(["b2"])));
});

Deno.test("parse: round trip and strictness", () => {
  for (const s of [["n0"], ["b65535"], ["r5", "w6", "b7", "n8"], ["w00012"]]) {
    const p = Perms.parse(s);
    assert.deepEqual(Perms.parse(p.strings()), p);
  }
  assert.deepEqual(Perms.parse(["w00012"]).strings(), ["w12"]);
  for (
    const bad of [[], [""], ["x0"], ["r"], ["r-1"], ["r65536"], ["r1a"], ["R1"], ["r 1"], ["r123456"], [
      "n0",
      "q1",
    ]]
  ) {
    assert.throws(() => Perms.parse(bad), XsError, (e) => e.errno === "EINVAL", JSON.stringify(bad));
  }
});

Deno.test("withOwner keeps the rest and returns the same object when unchanged", () => {
  const p = Perms.parse(["r3", "w5"]);
  assert.equal(p.withOwner(3), p);
  assert.deepEqual(p.withOwner(9).strings(), ["r9", "w5"]);
});

// ---- Inactive entries (spec PERM-9, PERM-10) ----------------------------------------------------

Deno.test("inactive entries: shown as written, left out of the effective list, part of the identity", () => {
  const active = Perms.parse(["n0", "r5", "w9"]);
  const p = active.decided((domid) => domid !== 9);
  assert.equal(p.text, "n0\0r5\0w9\0", "GET_PERMS shows the list exactly as written");
  assert.deepEqual(p.strings(), ["n0", "r5", "w9"]);
  assert.deepEqual(p.storedStrings(), ["n0", "r5", "w9!"]);
  assert.equal(p.key, "n0\0r5\0w9!\0");
  assert.ok(p.hasInactive && !active.hasInactive);
  assert.equal(p.count, 3, "an inactive entry still counts against the entries quota");
  assert.equal(p.effective, Perms.parse(["n0", "r5"]), "the effective list is the interned one");
  assert.equal(active.effective, active);
  assert.equal(active.key, active.text);
  // Interned by key: the same marks give the same object, different marks a different one.
  assert.equal(Perms.parseStored(["n0", "r5", "w9!"]), p);
  assert.notEqual(p, active);
  assert.ok(!samePerms(p, active), "a list whose entry changed state is a change");
  // Set again: decided afresh, whatever the entries were.
  assert.equal(p.decided(() => true), active);
  assert.equal(active.decided(() => true), active, "unchanged: the same object");
  assert.deepEqual(p.decided((_d, i) => i === 1).storedStrings(), ["n0", "r5!", "w9"]);
});

Deno.test("inactive entries: kept through withOwner and the stored form; never read from the wire form", () => {
  const p = Perms.parseStored(["n0", "r5!", "b7"]);
  assert.deepEqual(p.withOwner(3).storedStrings(), ["n3", "r5!", "b7"]);
  assert.deepEqual(Perms.parseStored(p.storedStrings()), p);
  assert.deepEqual(Perms.parseStored(["n0", "r5"]).storedStrings(), ["n0", "r5"], "an old store: all active");
  for (const bad of [["n0!"], ["n0", "r5!!"], ["n0", "!"], ["n0", "r!5"]]) {
    assert.throws(() => Perms.parseStored(bad), XsError, (e) => e.errno === "EINVAL", JSON.stringify(bad));
  }
  assert.throws(() => Perms.parse(["n0", "r5!"]), XsError, (e) => e.errno === "EINVAL", "SET_PERMS");
});
