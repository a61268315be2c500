// fast-check generators of valid migration streams (every record consistent with the ones before it),
// shared by the property and fuzz tests of src/migration.
import fc from "fast-check";
import type {
  ConnRecord,
  MigrationStream,
  NodePerm,
  NodeRecord,
  QuotaValue,
  StateRecord,
} from "../../src/migration/records.ts";
import { DX_RECORD_FIRST, SPECIAL_NODES } from "../../src/migration/format.ts";

const byteString = (maxLength: number) =>
  fc.string({ maxLength, unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)) });
const nonNulString = (minLength: number, maxLength: number) =>
  fc.string({
    minLength,
    maxLength,
    unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)),
  });
const name = fc.stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9_@-]{0,5}$/);

export const permArb: fc.Arbitrary<NodePerm> = fc.record({
  access: fc.constantFrom("n" as const, "r" as const, "w" as const, "b" as const),
  domid: fc.integer({ min: 0, max: 0xffff }),
  stale: fc.boolean(),
}).map((p) => ({ ...p })); // fc.record's objects have no prototype
const permsArb = fc.array(permArb, { minLength: 1, maxLength: 4 });

/** One wire message (header + payload) as bytes. */
function wireMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(16 + payload.length);
  const dv = new DataView(m.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, reqId, true);
  dv.setUint32(8, txId, true);
  dv.setUint32(12, payload.length, true);
  m.set(payload, 16);
  return m;
}

const messageArb = fc.tuple(
  fc.integer({ min: 0, max: 22 }),
  fc.nat(),
  fc.nat(),
  fc.uint8Array({ maxLength: 40 }),
).map(([t, r, x, p]) => wireMessage(t, r, x, p));

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whole messages, the last possibly cut (unprocessed input). */
const inputArb = fc.tuple(fc.array(messageArb, { maxLength: 3 }), fc.option(fc.tuple(messageArb, fc.nat())))
  .map(([whole, cut]) => {
    const parts = [...whole];
    if (cut !== null) parts.push(cut[0].subarray(0, cut[1] % cut[0].length));
    return concat(parts);
  });

/** A partly written message's tail, then whole messages (unsent output). */
const outputArb = fc.tuple(fc.option(fc.tuple(messageArb, fc.nat())), fc.array(messageArb, { maxLength: 3 }))
  .map(([partial, whole]) => {
    const head = partial === null
      ? new Uint8Array(0)
      : partial[0].subarray(1 + (partial[1] % partial[0].length));
    return { output: concat([head, ...whole]), partialOutput: head.length };
  });

const watchPathArb = fc.oneof(
  fc.array(name, { minLength: 1, maxLength: 3 }).map((c) => "/" + c.join("/")),
  fc.array(name, { minLength: 1, maxLength: 3 }).map((c) => c.join("/")),
  fc.constantFrom("/", "@releaseDomain", "@introduceDomain"),
);

const connArb = fc.record({
  ring: fc.boolean(),
  target: fc.option(fc.integer({ min: 0, max: 0x7fef })),
  evtchn: fc.nat(),
  input: inputArb,
  out: outputArb,
  watches: fc.array(fc.tuple(watchPathArb, nonNulString(0, 12), fc.integer({ min: 0, max: 0xffff })), {
    maxLength: 3,
  }),
  txns: fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { maxLength: 2 }),
  txnNodes: fc.array(
    fc.tuple(fc.array(name, { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 3 })),
    {
      maxLength: 3,
    },
  ),
});

const quotaArb: fc.Arbitrary<QuotaValue[]> = fc.uniqueArray(
  fc.record({ name: fc.stringMatching(/^[a-z-]{1,12}$/), value: fc.integer({ min: 0, max: 0xffffffff }) })
    .map((q) => ({ ...q })),
  { maxLength: 4, selector: (q) => q.name },
);

/** A valid stream: GLOBAL, connections with their watches and transactions, special nodes, a tree... */
export const streamArb: fc.Arbitrary<MigrationStream> = fc.record({
  version: fc.constantFrom(1 as const, 2 as const),
  global: fc.option(
    fc.record({ socketFd: fc.integer({ min: -1, max: 2 }), evtchnFd: fc.integer({ min: -1, max: 2 }) }),
  ),
  connIds: fc.uniqueArray(fc.integer({ min: 1, max: 0xffffffff }), { maxLength: 4 }),
  conns: fc.array(connArb, { maxLength: 4 }),
  special: fc.array(fc.tuple(fc.constantFrom(...SPECIAL_NODES), permsArb), { maxLength: 2 }),
  rootRecord: fc.option(fc.tuple(byteString(10), permsArb)),
  tree: fc.array(fc.tuple(fc.nat(), name, byteString(30), permsArb), { maxLength: 25 }),
  quota: fc.option(fc.tuple(quotaArb, quotaArb)),
  domains: fc.uniqueArray(
    fc.record({ domid: fc.integer({ min: 0, max: 0x7fef }), features: fc.nat(), quotas: quotaArb }),
    { maxLength: 2, selector: (d) => d.domid },
  ),
  opaque: fc.array(
    fc.tuple(
      fc.oneof(
        fc.integer({ min: 9, max: 0xffff }),
        fc.integer({ min: DX_RECORD_FIRST, max: DX_RECORD_FIRST + 15 }),
      ),
      fc.integer({ min: 0, max: 4 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
    ),
    { maxLength: 2 },
  ),
}).map((g) => {
  const records: StateRecord[] = [];
  if (g.global !== null) {
    const { socketFd, evtchnFd } = g.global;
    records.push({
      type: "global",
      socketFd,
      evtchnFd: socketFd >= 0 && evtchnFd === socketFd ? -1 : evtchnFd,
    });
  }
  const usedSpecial = new Set<string>();
  let fd = 10;
  g.conns.slice(0, g.connIds.length).forEach((c, i) => {
    const connId = g.connIds[i];
    const conn: ConnRecord = {
      type: "conn",
      connId,
      endpoint: c.ring
        ? { kind: "ring", domid: i, targetDomid: c.target, evtchn: c.evtchn }
        : { kind: "socket", fd: fd++ },
      input: c.input,
      output: c.out.output,
      partialOutput: c.out.partialOutput,
    };
    records.push(conn);
    const seen = new Set<string>();
    for (const [path, token, depth] of c.watches) {
      if (seen.has(path + "\0" + token)) continue;
      seen.add(path + "\0" + token);
      records.push({
        type: "watch",
        connId,
        path,
        token,
        depth: g.version >= 2 && depth % 2 === 0 ? depth : null,
      });
    }
    for (const txId of c.txns) {
      records.push({ type: "transaction", connId, txId });
      const paths = new Set<string>();
      for (const [comps, access] of c.txnNodes) {
        const path = "/" + comps.join("/");
        if (paths.has(path)) continue;
        paths.add(path);
        const node: NodeRecord = access === 0
          ? { type: "node", path, value: "", perms: [], txn: { connId, txId, access } }
          : {
            type: "node",
            path,
            value: "x",
            perms: [{ access: "b", domid: 1, stale: false }],
            txn: { connId, txId, access },
          };
        records.push(node);
      }
    }
  });
  for (const [path, perms] of g.special) {
    if (usedSpecial.has(path)) continue;
    usedSpecial.add(path);
    records.push({ type: "node", path, value: "", perms, txn: null });
  }
  if (g.rootRecord !== null) {
    records.push({ type: "node", path: "/", value: g.rootRecord[0], perms: g.rootRecord[1], txn: null });
  }
  const paths = ["/"];
  const have = new Set(paths);
  for (const [p, n, value, perms] of g.tree) {
    const parent = paths[p % paths.length];
    const path = parent === "/" ? `/${n}` : `${parent}/${n}`;
    if (have.has(path)) continue;
    have.add(path);
    paths.push(path);
    records.push({ type: "node", path, value, perms, txn: null });
  }
  if (g.quota !== null) {
    const perDomain = g.quota[0];
    const global = g.quota[1].filter((q) => !perDomain.some((d) => d.name === q.name));
    records.push({ type: "global-quota", perDomain, global });
  }
  for (const d of g.domains) {
    records.push({
      type: "domain",
      domid: d.domid,
      features: g.version >= 2 ? d.features : 0,
      quotas: d.quotas,
    });
  }
  for (const [code, words, bytes] of g.opaque) {
    records.push({ type: "opaque", code, body: bytes.subarray(0, words * 8) });
  }
  return { version: g.version, records };
});
