// GET_QUOTA / SET_QUOTA as cxenstored master, the CONTROL `quota` output of cxenstored 4.17, the read
// API, and persistence of refused commits.
import assert from "../helpers/assert.ts";
import { DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import { Database } from "../../src/store/database.ts";
import { guestConn, MsgType, newGuest, quotaCore } from "./harness.ts";
import { dom0, makeDomainHome, testCore } from "../helpers/core.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { controlQuotaSource } from "../../src/quota/control.ts";
import { DEFAULT_CAPS } from "../../src/quota/table.ts";

const NAMES = "nodes watches outstanding memory soft-memory transactions transaction-nodes " +
  "node-permissions path-max node-size";

Deno.test("GET_QUOTA: no argument lists the names; <name> the global; <domid> <name> the domain's", () => {
  const h = quotaCore();
  const a = h.admin;
  assert.equal(a.tryRequest(MsgType.GET_QUOTA, ""), NAMES);
  assert.equal(a.try(MsgType.GET_QUOTA, ["nodes"]), "1000");
  assert.equal(a.try(MsgType.GET_QUOTA, ["soft-memory"]), "2097152");
  assert.equal(a.try(MsgType.GET_QUOTA, ["5", "watches"]), "128");
  assert.equal(a.try(MsgType.SET_QUOTA, ["5", "nodes", "7"]), "OK");
  assert.equal(a.try(MsgType.GET_QUOTA, ["5", "nodes"]), "7");
  assert.equal(a.try(MsgType.GET_QUOTA, ["nodes"]), "1000", "the global is unchanged");
  assert.equal(a.try(MsgType.SET_QUOTA, ["nodes", "2000"]), "OK");
  assert.equal(a.try(MsgType.GET_QUOTA, ["6", "nodes"]), "2000", "domains without override follow");
  assert.equal(a.try(MsgType.GET_QUOTA, ["5", "nodes"]), "7");
  assert.equal(a.try(MsgType.SET_QUOTA, ["node-size", "0"]), "OK", "0 = no quota, only the cap");
  assert.equal(a.try(MsgType.GET_QUOTA, ["permissions"]), "5", "4.17's name is accepted");
  const reply = a.call(MsgType.GET_QUOTA, ["nodes"]);
  assert.equal(reply.payload, "2000\0", "NUL-terminated, as cxenstored");
});

Deno.test("GET_QUOTA/SET_QUOTA errors: names, values, privilege, arguments, unknown domains", () => {
  const h = quotaCore({ domainKnown: (d) => d === 0 || d === 5 });
  const a = h.admin;
  const g = newGuest(h, 5);
  assert.equal(a.try(MsgType.GET_QUOTA, ["bogus"]), "E:EINVAL");
  assert.equal(a.try(MsgType.SET_QUOTA, ["bogus", "1"]), "E:EINVAL");
  assert.equal(a.try(MsgType.SET_QUOTA, ["nodes", "4294967295"]), "E:EINVAL", "cxenstored's disabled marker");
  assert.equal(
    a.try(MsgType.SET_QUOTA, ["nodes", String(DEFAULT_CAPS.nodes + 1)]),
    "E:EINVAL",
    "above the hard cap",
  );
  assert.equal(a.try(MsgType.SET_QUOTA, ["nodes", "-1"]), "E:EINVAL");
  assert.equal(a.try(MsgType.SET_QUOTA, ["nodes"]), "E:EINVAL");
  assert.equal(a.try(MsgType.GET_QUOTA, ["1", "2", "3"]), "E:EINVAL");
  assert.equal(a.try(MsgType.GET_QUOTA, ["65536", "nodes"]), "E:EINVAL");
  assert.equal(a.try(MsgType.GET_QUOTA, ["9", "nodes"]), "E:ENOENT");
  assert.equal(a.try(MsgType.SET_QUOTA, ["9", "nodes", "1"]), "E:ENOENT");
  assert.equal(g.try(MsgType.GET_QUOTA, ["nodes"]), "E:EACCES");
  assert.equal(g.try(MsgType.SET_QUOTA, ["5", "nodes", "100000"]), "E:EACCES");
  assert.equal(a.try(MsgType.GET_QUOTA, ["nodes"]), "1000", "nothing changed");
});

Deno.test("SET_QUOTA: a changed quota logs its next refusal again; overrides persist through a hook", () => {
  const changed: number[] = [];
  const h = quotaCore({ defaults: { nodes: 3 }, onOverridesChanged: (d) => changed.push(d) });
  const g = newGuest(h, 5);
  g.write("a");
  g.write("b");
  assert.equal(g.tryWrite("c"), "E:ENOSPC");
  assert.equal(g.tryWrite("c"), "E:ENOSPC");
  h.admin.ok(MsgType.SET_QUOTA, ["5", "nodes", "4"]);
  assert.deepEqual(changed, [5]);
  g.write("c");
  assert.equal(g.tryWrite("d"), "E:ENOSPC");
  const lines = h.logs.filter((l) => l.msg.includes("domid=5 quota=nodes "));
  assert.equal(lines.length, 2);
  assert.ok(lines[1].msg.includes("limit=4"), lines[1].msg);
  assert.deepEqual(h.core.quotas.settings.overridesOf(5), { nodes: 4 });
  // A restarted daemon restores them (the domain registry stores them in its records).
  const h2 = quotaCore({ defaults: { nodes: 3 } });
  h2.core.quotas.restoreOverrides(5, h.core.quotas.settings.overridesOf(5));
  assert.equal(h2.admin.try(MsgType.GET_QUOTA, ["5", "nodes"]), "4");
  assert.throws(() => h2.core.quotas.restoreOverrides(5, { bogus: 1 }), XsError);
});

Deno.test("read API: report() and domains() give usage, quotas in force, refusals and high-water marks", () => {
  const h = quotaCore();
  const g = newGuest(h, 5);
  g.write("a", "12345");
  g.watch("a", "tok");
  g.startTx();
  const r = h.core.quotas.report(5);
  assert.equal(r.domid, 5);
  assert.equal(r.exempt, false);
  assert.equal(r.usage.nodes, 2);
  assert.equal(r.usage.watches, 1);
  assert.equal(r.usage.transactions, 1);
  assert.equal(r.usage.outstanding, 0);
  // /local/domain/5 (path 15, header 24, 1 permission, child "a\0") and /local/domain/5/a.
  assert.equal(r.memoryParts.nodes, (15 + 24 + 8 + 2) + (17 + 24 + 8 + 5));
  assert.equal(r.memoryParts.watches, "/local/domain/5/a".length + 3);
  assert.equal(r.usage.memory, r.memoryParts.nodes + r.memoryParts.watches);
  assert.equal(r.quotas.nodes, 1000);
  assert.equal(r.maxSeen.nodes, 2);
  assert.equal(r.maxSeen.watches, 1);
  assert.ok(h.core.quotas.report(0).exempt);
  assert.deepEqual(h.core.quotas.domains(), [0, 5]);
  assert.equal(h.core.quotas.refusals.total().nodes, 0);
});

Deno.test("controlQuotaSource(): quota values and usage for CONTROL, in cxenstored 4.17's naming", () => {
  const h = quotaCore({ domainKnown: (d) => d === 0 || d === 5 });
  const src = controlQuotaSource(h.core.quotas);
  assert.equal(src.settings.get("hard", "permissions"), 5);
  assert.equal(src.settings.get("hard", "memory"), 2621440);
  assert.equal(src.settings.get("soft", "memory"), 2097152);
  assert.equal(src.settings.set("hard", "permissions", 7), true);
  assert.equal(h.admin.try(MsgType.GET_QUOTA, ["node-permissions"]), "7", "one set of values");
  assert.equal(src.settings.set("soft", "memory", 100), true);
  assert.equal(h.core.quotas.settings.global("soft-memory"), 100);
  assert.equal(src.settings.set("soft", "nodes", 1), false);
  assert.equal(src.settings.set("hard", "soft-memory", 1), false);
  assert.equal(src.settings.set("hard", "bogus", 1), false);
  assert.throws(
    () => src.settings.set("hard", "nodes", DEFAULT_CAPS.nodes + 1),
    XsError,
    (e) => e.errno === "EINVAL",
  );
  newGuest(h, 5);
  assert.deepEqual(src.usage(5), { nodes: 1, watches: 0, transactions: 0, outstanding: 0, memory: 47 });
  assert.equal(src.usage(9), null, "no such domain: ENOENT for CONTROL");
  assert.equal(src.usage(0)?.nodes, 5, "/, /tool, /tool/xenstored, /local, /local/domain");
  // A fresh store: cxenstored 4.17 shows 3 nodes and 132 bytes for dom0 (research/ecosystem.md §2).
  assert.deepEqual(quotaCore().core.quotas.usage(0), {
    nodes: 3,
    watches: 0,
    transactions: 0,
    outstanding: 0,
    memory: 132,
  });
});

Deno.test("a commit the quotas refuse never reaches persistence (the validator runs first)", () => {
  const db = new Database();
  const persisted: string[] = [];
  // Registered before the Core, like a backend (src/backend/backend.ts attachBackend).
  db.beforeCommit((c) => persisted.push(...c.changes.map((ch) => `${ch.kind} ${ch.path}`)));
  const core = testCore({ db, limits: DEFAULT_CONNECTION_LIMITS, quota: { log: () => {} } });
  core.quotas.setGlobal("nodes", 3);
  makeDomainHome(dom0(core), 5);
  const g = guestConn(core, 5);
  const n = persisted.length;
  assert.equal(g.tryWrite("a/b/c"), "E:ENOSPC");
  const t = g.startTx();
  g.write("x", "", t);
  g.write("y", "", t);
  g.write("z", "", t);
  assert.equal(g.tryCommit(t), "E:ENOSPC");
  assert.equal(persisted.length, n, "neither refused commit was persisted");
  g.write("a");
  assert.deepEqual(persisted.slice(n), ["write /local/domain/5/a"]);
});
