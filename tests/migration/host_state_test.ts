// A migration stream as dxenstored's model (src/migration/host_state.ts): the store becomes a node
// tree with the same values and permissions (stale entries kept, inactive), connections keep their
// watches, transactions and bytes; and a tree becomes NODE records a reader rebuilds the same tree from.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { treeNodes } from "../../src/backend/export.ts";
import {
  hostStateFromStream,
  nodesToStream,
  permsFromStream,
  permsToStream,
  storeFromNodes,
} from "../../src/migration/host_state.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import type { NodeRecord } from "../../src/migration/records.ts";
import { Perms } from "../../src/store/perms.ts";
import { checkStore } from "../../src/store/check.ts";
import { streamArb } from "./arbitrary.ts";

Deno.test("host state: permissions both ways; stale entries are kept as inactive ones, and written back stale", () => {
  const stream = [
    { access: "r", domid: 0, stale: false },
    { access: "w", domid: 5, stale: true },
    { access: "b", domid: 6, stale: false },
  ] as const;
  const p = permsFromStream(stream);
  assert.deepEqual(p.perms.strings(), ["r0", "w5", "b6"], "shown as cxenstored showed them");
  assert.deepEqual(p.perms.storedStrings(), ["r0", "w5!", "b6"]);
  assert.deepEqual(p.perms.effective.strings(), ["r0", "b6"], "the stale entry grants nothing");
  assert.equal(p.inactive, 1);
  assert.deepEqual(permsToStream(p.perms), stream, "the writer emits the flag");
  assert.deepEqual(permsToStream(Perms.parse(["n3", "r0", "b7"])), [
    { access: "n", domid: 3, stale: false },
    { access: "r", domid: 0, stale: false },
    { access: "b", domid: 7, stale: false },
  ]);
  // The flag on the owner entry means nothing: the owner stays, active.
  const owner = permsFromStream([{ access: "n", domid: 4, stale: true }]);
  assert.equal(owner.perms.key, "n4\0");
});

Deno.test("host state: a tree becomes records and the same tree again (generated stores)", () => {
  fc.assert(
    fc.property(streamArb, (s) => {
      const committed = s.records.filter((r): r is NodeRecord => r.type === "node" && r.txn === null);
      const store = storeFromNodes(committed, 0);
      assert.deepEqual(checkStore(store.root, 0), []);
      const records = nodesToStream(store.root, store.specialPerms);
      // Every record the tree gives is one a reader accepts, and rebuilds the same tree and specials.
      const back = readStream(writeStream({ version: 1, records }));
      const again = storeFromNodes(back.records as NodeRecord[], 0);
      assert.deepEqual(treeNodes(again.root), treeNodes(store.root));
      const specials = (m: ReadonlyMap<string, Perms>) => [...m].map(([k, v]) => `${k} ${v.key}`).sort();
      assert.deepEqual(specials(again.specialPerms), specials(store.specialPerms));
      // The stream's committed nodes, stale entries kept as inactive ones, are exactly the tree's.
      const want = new Map(committed.filter((r) => r.path[0] === "/").map((r) => [r.path, r]));
      for (const n of treeNodes(store.root)) {
        const r = want.get(n.path);
        if (r === undefined) {
          // Only the root may be missing from a stream (every store has one).
          assert.equal(n.path, "/");
          continue;
        }
        assert.equal(n.value, r.value);
        assert.deepEqual(n.perms, permsFromStream(r.perms).perms.storedStrings());
        assert.deepEqual(
          n.perms.map((e) => e.endsWith("!")),
          r.perms.map((e, i) => i > 0 && e.stale),
          "inactive exactly where the stream said stale",
        );
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("host state: connections with their watches, transactions and buffered bytes", () => {
  fc.assert(
    fc.property(streamArb, (s) => {
      const h = hostStateFromStream(s);
      const conns = s.records.filter((r) => r.type === "conn");
      assert.deepEqual(h.connections.map((c) => c.connId), conns.map((c) => c.connId));
      for (const c of h.connections) {
        assert.deepEqual(c.watches, s.records.filter((r) => r.type === "watch" && r.connId === c.connId));
        assert.deepEqual(
          c.transactions,
          s.records.filter((r) => r.type === "transaction" && r.connId === c.connId),
        );
        assert.deepEqual(
          c.transactionNodes,
          s.records.filter((r) => r.type === "node" && r.txn?.connId === c.connId),
        );
      }
      assert.equal(h.global, s.records.find((r) => r.type === "global") ?? null);
      assert.deepEqual(h.opaque, s.records.filter((r) => r.type === "opaque"));
    }),
    { numRuns: 200 },
  );
});
