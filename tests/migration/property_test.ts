// Properties of the migration stream reader and writer (src/migration): what is written reads back
// as itself; a stream cut anywhere, records moved before what they depend on, or records said twice are
// refused with a StreamError; and any byte-level damage either is refused with a StreamError (never
// another exception) or reads as a stream that writes back as the damaged bytes, except in the damaged
// bytes themselves and in bytes the format says to ignore (padding, fields not valid in the record's
// context), which are written as zero.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import { StreamError } from "../../src/migration/errors.ts";
import type { MigrationStream, StateRecord } from "../../src/migration/records.ts";
import { streamArb } from "./arbitrary.ts";

const RUNS = 300;

/** readStream, returning the StreamError instead of throwing it; any other exception fails the test. */
function tryRead(b: Uint8Array): MigrationStream | StreamError {
  try {
    return readStream(b);
  } catch (e) {
    if (e instanceof StreamError) return e;
    throw new Error(`readStream threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

Deno.test("migration stream: write then read gives the same stream", () => {
  fc.assert(
    fc.property(streamArb, (s) => {
      const bytes = writeStream(s);
      assert.deepEqual(readStream(bytes), s);
      // Deterministic: the same stream gives the same bytes.
      assert.deepEqual(writeStream(readStream(bytes)), bytes);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("migration stream: every strict prefix is refused as truncated or of bad length", () => {
  fc.assert(
    fc.property(streamArb, fc.nat(), (s, cut) => {
      const bytes = writeStream(s);
      const r = tryRead(bytes.subarray(0, cut % bytes.length));
      assert.ok(r instanceof StreamError, "a prefix was accepted");
      assert.ok(["truncated", "bad-length"].includes(r.code), r.message);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("migration stream: damaged bytes are refused, or read with differences only where damaged", () => {
  fc.assert(
    fc.property(
      streamArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
      (s, flips) => {
        const bytes = writeStream(s);
        const damaged = bytes.slice();
        const where = new Set<number>();
        for (const [at, x] of flips) {
          const i = at % bytes.length;
          damaged[i] ^= x;
          where.add(i);
        }
        const r = tryRead(damaged);
        if (r instanceof StreamError) return;
        const again = writeStream(r);
        assert.equal(again.length, damaged.length);
        for (let i = 0; i < again.length; i++) {
          // Padding and ignored fields (a DOMAIN's features in version 1, a committed node's tx-id) are
          // written as zero: only there may an undamaged byte read back differently.
          if (again[i] !== damaged[i]) {
            assert.ok(where.has(i) || again[i] === 0, `byte ${i} differs but was not damaged`);
          }
        }
        assert.deepEqual(readStream(again), r);
      },
    ),
    { numRuns: RUNS * 3 },
  );
});

/** Re-encode a record list as-is, bypassing the writer's validation (to forge invalid streams). */
function forge(version: 1 | 2, records: StateRecord[]): Uint8Array {
  // Each record on its own through the writer (one record is valid alone or with its dependencies),
  // spliced together: the bytes of a stream with these records in this order.
  const parts: Uint8Array[] = [];
  for (const r of records) {
    const alone = writeStreamLoose(version, r);
    parts.push(alone.subarray(16, alone.length - 8));
  }
  const head = writeStream({ version, records: [] }).subarray(0, 16);
  const out = new Uint8Array(16 + parts.reduce((n, p) => n + p.length, 0) + 8);
  out.set(head);
  let o = 16;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One record written on its own: its dependencies are made up (and cut away again by forge). */
function writeStreamLoose(version: 1 | 2, r: StateRecord): Uint8Array {
  const conn = (connId: number): StateRecord => ({
    type: "conn",
    connId,
    endpoint: { kind: "socket", fd: 999 },
    input: new Uint8Array(0),
    output: new Uint8Array(0),
    partialOutput: 0,
  });
  const deps: StateRecord[] = [];
  if (r.type === "watch" || r.type === "transaction") deps.push(conn(r.connId));
  if (r.type === "node" && r.txn !== null) {
    deps.push(conn(r.txn.connId), { type: "transaction", connId: r.txn.connId, txId: r.txn.txId });
  }
  if (r.type === "node" && r.txn === null && r.path.lastIndexOf("/") > 0) {
    const comps = r.path.split("/").slice(1, -1);
    for (let i = 1; i <= comps.length; i++) {
      deps.push({
        type: "node",
        path: "/" + comps.slice(0, i).join("/"),
        value: "",
        perms: [{ access: "n", domid: 0, stale: false }],
        txn: null,
      });
    }
  }
  const all = writeStream({ version, records: [...deps, r] });
  const skip = writeStream({ version, records: deps }).length - 8; // preamble + deps
  const out = new Uint8Array(16 + (all.length - 8 - skip) + 8);
  out.set(all.subarray(0, 16));
  out.set(all.subarray(skip, all.length), 16);
  return out;
}

Deno.test("migration stream: a record moved before the record it depends on is refused (order)", () => {
  fc.assert(
    fc.property(streamArb, fc.nat(), (s, pick) => {
      const recs = [...s.records];
      // Dependants: watches and TAs (on their CONN), transaction nodes (on their TA), nodes below a
      // recorded parent (on that parent).
      const dependants: Array<[number, number]> = [];
      recs.forEach((r, i) => {
        let dep = -1;
        if (r.type === "watch" || r.type === "transaction") {
          dep = recs.findIndex((x) => x.type === "conn" && x.connId === r.connId);
        } else if (r.type === "node" && r.txn !== null) {
          const t = r.txn;
          dep = recs.findIndex((x) => x.type === "transaction" && x.connId === t.connId && x.txId === t.txId);
        } else if (r.type === "node" && r.path.lastIndexOf("/") > 0) {
          const parent = r.path.slice(0, r.path.lastIndexOf("/"));
          dep = recs.findIndex((x) => x.type === "node" && x.txn === null && x.path === parent);
        }
        if (dep >= 0) dependants.push([i, dep]);
      });
      if (dependants.length === 0) return;
      const [i, dep] = dependants[pick % dependants.length];
      const moved = recs.splice(i, 1)[0];
      recs.splice(dep, 0, moved);
      const r = tryRead(forge(s.version, recs));
      assert.ok(r instanceof StreamError && r.code === "order", `not refused as order: ${String(r)}`);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("migration stream: a connection, node, watch or GLOBAL said twice is refused", () => {
  fc.assert(
    fc.property(streamArb, fc.nat(), (s, pick) => {
      const candidates = s.records.map((r, i) => [r, i] as const).filter(([r]) =>
        r.type === "conn" || r.type === "global" || r.type === "watch" || (r.type === "node") ||
        r.type === "transaction" || r.type === "domain" || r.type === "global-quota"
      );
      if (candidates.length === 0) return;
      const [r, i] = candidates[pick % candidates.length];
      const recs = [...s.records];
      recs.splice(i + 1, 0, r);
      const got = tryRead(forge(s.version, recs));
      assert.ok(
        got instanceof StreamError && ["duplicate", "contradiction"].includes(got.code),
        `a second ${r.type} was not refused: ${String(got)}`,
      );
    }),
    { numRuns: RUNS },
  );
});
