// Differential property test: the `legacy` WebAssembly plugin (through the plugin chain the daemon
// uses, decision cache included) against the reference model in legacy_model.ts, on random domains,
// targets, permission lists (duplicates and inactive entries included) and operations. Without a
// target the model is Xen's perm_for_conn exactly; with a target it is the documented union rule.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import { type PermBits, Perms } from "../../src/store/perms.ts";
import type { Capability } from "../../src/policy/policy.ts";
import {
  legacyRights,
  modelCapability,
  modelCheckNode,
  modelCreateOwner,
  modelSetPerms,
  type ModelSubject,
  xenRights,
} from "./legacy_model.ts";

// Few domids, so owners, entries, callers and targets collide often.
const domid = fc.constantFrom(0, 1, 2, 3, 7, 65535);
const bits = fc.constantFrom<PermBits>(0, 1, 2, 3);
const perms = fc.record({
  owner: domid,
  other: bits,
  // Inactive entries (spec PERM-10) grant nothing: the model skips them, the plugin never sees them.
  acl: fc.array(fc.record({ domid, bits, inactive: fc.boolean() }), { maxLength: 6 }),
}).map((p) => Perms.of(p.owner, p.other, p.acl));
const subject = fc.record({
  domid,
  target: fc.option(domid, { nil: null }),
  privileged: fc.boolean(),
});
const access = fc.constantFrom("read" as const, "write" as const, "setperms" as const);

Deno.test("legacy plugin = reference model on node checks (SET_TARGET: union rule)", () => {
  const policy = new LegacyPolicy();
  fc.assert(
    fc.property(subject, access, perms, fc.string({ maxLength: 20 }), (who, a, p, tail) => {
      const path = `/local/domain/${who.domid}/${tail.replace(/[^a-z0-9]/g, "x")}`;
      // Asked twice: the second answer comes from the decision cache and must be the same.
      const first = policy.checkNode(who, a, path, p);
      assert.equal(first, modelCheckNode(who, a, p), `${JSON.stringify(who)} ${a} ${p.strings()}`);
      assert.equal(policy.checkNode(who, a, path, p), first, "cached decision");
    }),
    { numRuns: 3000 },
  );
  assert.ok(policy.stats.cacheHits > 0, "the cache answered some decisions");
});

Deno.test("without a target the model is Xen's rule exactly; with one it never grants less than Xen", () => {
  fc.assert(
    fc.property(subject, perms, (who: ModelSubject, p) => {
      const xen = xenRights(who, p);
      const ours = legacyRights(who, p);
      if (who.target === null) assert.equal(ours, xen);
      else assert.equal(ours & xen, xen, "union ⊇ first-match");
    }),
    { numRuns: 2000 },
  );
});

Deno.test("legacy plugin = reference model on creation, SET_PERMS and capabilities", () => {
  const policy = new LegacyPolicy();
  const caps: Capability[] = ["introduce", "release", "resume", "set-target", "control", "set-quota"];
  fc.assert(
    fc.property(subject, perms, perms, fc.constantFrom(...caps), (who, parent, next, cap) => {
      const created = policy.permsForCreate(who, parent);
      assert.equal(created.owner, modelCreateOwner(who, parent));
      assert.equal(created.other, parent.other, "other access inherited");
      assert.deepEqual(created.acl, parent.acl, "entries inherited, inactive ones included and in place");
      assert.equal(policy.checkSetPerms(who, parent, next), modelSetPerms(who, parent, next));
      assert.equal(policy.checkCapability(who, cap), modelCapability(who));
    }),
    { numRuns: 1500 },
  );
});

Deno.test("the model is not vacuous: it tells the seed's SET_TARGET case apart from Xen", () => {
  // A (domid 1) targets B (domid 2); B's read-only entry comes first.
  const p = Perms.of(0, 0, [{ domid: 2, bits: 1 }, { domid: 1, bits: 3 }]);
  const a = { domid: 1, target: 2, privileged: false };
  assert.equal(xenRights(a, p), 1, "Xen: A gets only B's read");
  assert.equal(legacyRights(a, p), 3, "union: A keeps its own read+write");
});
