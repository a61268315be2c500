// Accounting is exact: after any sequence of plain and transactional writes, removals and permission
// changes (owner moves included) by dom0 and guests, accepted or refused, the per-domain counts equal
// a recount of the tree (cxenstored's `CONTROL check` as an invariant, XSA I3), and no guest request
// ever takes its own count past its quota.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import {
  commitDelta,
  commitDeltaByShape,
  independentChanges,
  nodeBytes,
  quotaPathLength,
  recordSize,
  type UsageByOwner,
} from "../../src/quota/accounting.ts";
import type { Change } from "../../src/store/database.ts";
import { components } from "../../src/store/path.ts";
import { initialRoot } from "../../src/store/database.ts";
import { lookup, removeNode, setPerms, writeValue } from "../../src/store/tree.ts";
import { Perms } from "../../src/store/perms.ts";
import { assertExact, MsgType, newGuest, type QConn, quotaCore } from "./harness.ts";

Deno.test("commitDelta: one commit that removes and re-creates, rewrites a value, moves an owner", () => {
  const p0 = Perms.of(0, 0);
  const p5 = Perms.of(5, 0);
  const p6 = Perms.of(6, 0, [{ domid: 5, bits: 1 }]);
  let root = writeValue(initialRoot(), ["a", "b"], "xy", () => p5, 1).root; // /a and /a/b owned by 5
  root = writeValue(root, ["a", "c"], "", () => p0, 2).root;
  const before = root;
  // As a transaction's replay would: rm /a (3 nodes: /a, /a/b of 5 and /a/c of 0), write /a/b again
  // (re-creating /a and /a/b for 5), rewrite it, then hand /a/b to 6.
  const rm = removeNode(root, ["a"], 3);
  const w = writeValue(rm.root, ["a", "b"], "v", () => p5, 4);
  const w2 = writeValue(w.root, ["a", "b"], "longer value", () => p5, 5);
  const after = setPerms(w2.root, ["a", "b"], p6, 6)!;
  const delta = commitDelta({
    before,
    after,
    domid: 0,
    changes: [
      { kind: "rm", path: "/a", removed: rm.removed! },
      { kind: "write", path: "/a/b", value: "v", created: w.created, createdPerms: w.createdPerms },
      { kind: "write", path: "/a/b", value: "longer value", created: [], createdPerms: null },
      { kind: "perms", path: "/a/b", perms: p6, old: p5 },
    ],
  });
  // Removed subtree /a before: /a (5, children "b\0c\0"), /a/b (5, "xy"), /a/c (0); re-created /a
  // after: /a (5, child "b\0"), /a/b (6, two permission entries). "/" keeps its child names.
  assert.deepEqual([...delta.entries()].sort((x, y) => x[0] - y[0]), [
    [0, { nodes: -1, bytes: -nodeBytes(4, 0, p0, 0) }],
    [5, { nodes: -1, bytes: -nodeBytes(2, 0, p5, 4) - nodeBytes(4, 2, p5, 0) + nodeBytes(2, 0, p5, 2) }],
    [6, { nodes: 1, bytes: nodeBytes(4, "longer value".length, p6, 0) }],
  ]);
  assert.equal(nodeBytes(4, 12, p6, 0), 4 + 24 + 16 + 12);
});

/** A commit's changes as a transaction's replay makes them (src/txn/transaction.ts replay). */
type ModArb = { k: "write" | "mkdir" | "rm" | "perms"; path: number; len: number; owner: number };
const MOD_PATHS = ["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f", "/e/g/h", "/i/j", "/i/k"];
const OWNERS = [0, 5, 6];
const sorted = (m: UsageByOwner) => [...m.entries()].sort((x, y) => x[0] - y[0]);

Deno.test("property: commitDelta's shortcut for independent changes equals the general computation", () => {
  let independent = 0;
  fc.assert(
    fc.property(
      fc.array(fc.record({ path: fc.nat(MOD_PATHS.length - 1), owner: fc.nat(2) }), { maxLength: 6 }),
      fc.array(
        fc.record({
          k: fc.constantFrom("write" as const, "mkdir" as const, "rm" as const, "perms" as const),
          path: fc.nat(MOD_PATHS.length - 1),
          len: fc.nat(30),
          owner: fc.nat(2),
        }),
        { minLength: 2, maxLength: 5 },
      ),
      (setup, mods: ModArb[]) => {
        let root = initialRoot();
        for (const s of setup) {
          const p = Perms.of(OWNERS[s.owner], 0);
          root = writeValue(root, components(MOD_PATHS[s.path]), "x".repeat(s.owner), () => p, 1).root;
        }
        const before = root;
        const changes: Change[] = [];
        let gen = 2;
        for (const m of mods) {
          const path = MOD_PATHS[m.path];
          const comps = components(path);
          const perms = Perms.of(OWNERS[m.owner], 0, m.len % 2 ? [{ domid: 5, bits: 1 }] : []);
          if (m.k === "write" || m.k === "mkdir") {
            const value = m.k === "write" ? "v".repeat(m.len) : null;
            const r = writeValue(root, comps, value, () => perms, gen++);
            if (r.root === root) continue;
            changes.push({ kind: "write", path, value, created: r.created, createdPerms: r.createdPerms });
            root = r.root;
          } else if (m.k === "rm") {
            const r = removeNode(root, comps, gen++);
            if (r.removed === null) continue;
            changes.push({ kind: "rm", path, removed: r.removed });
            root = r.root;
          } else {
            const old = lookup(root, comps);
            if (old === undefined) continue;
            root = setPerms(root, comps, perms, gen++)!;
            changes.push({ kind: "perms", path, perms, old: old.perms });
          }
        }
        if (changes.length < 2) return;
        if (independentChanges(changes)) independent++;
        const c = { before, after: root, changes, domid: 0 };
        assert.deepEqual(sorted(commitDelta(c)), sorted(commitDeltaByShape(c)));
      },
    ),
    { numRuns: 1000 },
  );
  // The shortcut was taken (and checked) often enough to mean something.
  assert.ok(independent >= 50, `only ${independent} commits of independent changes`);
});

Deno.test("recordSize and quotaPathLength follow cxenstored 4.17", () => {
  assert.equal(recordSize(10, Perms.of(5, 0), 0), 24 + 8 + 10);
  assert.equal(recordSize(0, Perms.of(5, 0, [{ domid: 1, bits: 1 }]), 12), 24 + 16 + 12);
  assert.equal(quotaPathLength("/local/domain/5/abc"), 3);
  assert.equal(quotaPathLength("/local/domain/12345/a"), 1);
  assert.equal(quotaPathLength("/local/domain/123456/a"), "/local/domain/123456/a".length);
  assert.equal(quotaPathLength("/local/domain/5"), "/local/domain/5".length);
  assert.equal(quotaPathLength("@releaseDomain"), 14);
});

Deno.test("quotaPathLength: the prefix is exactly /^\/local\/domain\/[0-9]{1,5}\//", () => {
  const prefix = /^\/local\/domain\/[0-9]{1,5}\//;
  const tails = ["", "/", "a", "/a", "0", "00000", "123456/a", "1/", "12345/", "1a/", "/x", "9/b/c"];
  for (const head of ["/local/domain/", "/local/domain", "/local/domains/", "local/domain/", "/"]) {
    for (const t of tails) {
      for (const u of tails) {
        const p = head + t + u;
        const m = prefix.exec(p);
        assert.equal(quotaPathLength(p), m === null ? p.length : p.length - m[0].length, p);
      }
    }
  }
});

type Action =
  | { k: "write"; actor: number; path: number; len: number; tx: boolean }
  | { k: "mkdir"; actor: number; path: number; tx: boolean }
  | { k: "rm"; actor: number; path: number; tx: boolean }
  | { k: "perms"; actor: number; path: number; n: number; owner: number; tx: boolean }
  | { k: "start" | "commit" | "abort"; actor: number };

/** Paths an actor uses: guests in their home and in a shared directory, dom0 anywhere. */
const GUEST_PATHS = ["a", "a/b", "a/b/c", "b", "b/a", "/shared/x", "/shared/x/y", "/shared/y", "/d0/q"];
const DOM0_PATHS = [
  "/d0/a",
  "/d0/a/b",
  "/shared/x",
  "/shared/z/w",
  "/local/domain/5/a/z",
  "/local/domain/6/q",
];
const ACL = ["r0", "r5", "r6", "r7", "r8", "r9"];
const DOMIDS = [0, 5, 6];
const NODE_QUOTA = 5;

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("write" as const),
      actor: fc.nat(2),
      path: fc.nat(8),
      len: fc.constantFrom(0, 10, 60, 120),
      tx: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("mkdir" as const),
      actor: fc.nat(2),
      path: fc.nat(8),
      tx: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("rm" as const),
      actor: fc.nat(2),
      path: fc.nat(8),
      tx: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("perms" as const),
      actor: fc.nat(2),
      path: fc.nat(8),
      n: fc.nat(6),
      owner: fc.nat(2),
      tx: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constantFrom("start", "start", "commit", "abort"), actor: fc.nat(2) }),
  },
);

Deno.test("property: counts equal a recount after every step; guests never exceed their own quota", () => {
  fc.assert(
    fc.property(fc.array(actionArb, { minLength: 20, maxLength: 80 }), (actions) => {
      const h = quotaCore({ defaults: { nodes: NODE_QUOTA, "node-size": 150 } });
      h.admin.write("/shared");
      h.admin.ok(MsgType.SET_PERMS, ["/shared", "n0", "b5", "b6"]);
      const conns: QConn[] = [h.admin, newGuest(h, 5), newGuest(h, 6)];
      const txs: number[] = [0, 0, 0];
      for (const a of actions) {
        const c = conns[a.actor];
        const domid = DOMIDS[a.actor];
        const paths = a.actor === 0 ? DOM0_PATHS : GUEST_PATHS;
        const before = h.core.quotas.ownedNodes(domid);
        const tx = "tx" in a && a.tx ? txs[a.actor] : 0;
        switch (a.k) {
          case "write":
            c.tryWrite(paths[a.path % paths.length], "v".repeat(a.len), tx);
            break;
          case "mkdir":
            c.try(MsgType.MKDIR, [paths[a.path % paths.length]], tx);
            break;
          case "rm":
            c.try(MsgType.RM, [paths[a.path % paths.length]], tx);
            break;
          case "perms": {
            const owner = a.actor === 0 ? DOMIDS[a.owner] : domid;
            c.try(MsgType.SET_PERMS, [paths[a.path % paths.length], `n${owner}`, ...ACL.slice(0, a.n)], tx);
            break;
          }
          case "start":
            if (txs[a.actor] === 0) txs[a.actor] = Number(c.tryStart());
            break;
          case "commit":
          case "abort":
            if (txs[a.actor] !== 0) {
              c.try(MsgType.TRANSACTION_END, [a.k === "commit" ? "T" : "F"], txs[a.actor]);
              txs[a.actor] = 0;
            }
            break;
        }
        assertExact(h.core);
        const after = h.core.quotas.ownedNodes(domid);
        if (a.actor !== 0 && after > before) {
          assert.ok(after <= NODE_QUOTA, `domain ${domid} went from ${before} to ${after} nodes`);
        }
      }
    }),
    { numRuns: 100 },
  );
});

Deno.test("a directory with thousands of children: child names are accounted incrementally and exactly", () => {
  const h = quotaCore();
  const empty = h.core.quotas.report(0).usage;
  for (let i = 0; i < 3000; i++) h.admin.write(`/big/child${i}`, "v");
  for (let i = 0; i < 3000; i += 7) h.admin.rm(`/big/child${i}`);
  const t = h.admin.startTx();
  for (let i = 1; i < 50; i += 3) h.admin.rm(`/big/child${i}`, t);
  for (let i = 0; i < 20; i++) h.admin.write(`/big/new${i}/x`, "", t);
  h.admin.rm("/big/new3", t);
  assert.equal(h.admin.tryCommit(t), "OK");
  h.admin.ok(MsgType.SET_PERMS, ["/big", "n0", "r5"]);
  assertExact(h.core);
  // 3000 − 429 removed − 14 removed in the transaction (7, 28, 49 were gone) + 19 × 2 created.
  assert.equal(h.core.quotas.report(0).usage.nodes, empty.nodes + 1 + 3000 - 429 - 14 + 19 * 2);
  h.admin.rm("/big");
  assert.deepEqual(h.core.quotas.report(0).usage, empty);
  assertExact(h.core);
});
