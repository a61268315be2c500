// cx417Verdict without cxenstored (cx_interop_test.ts checks it against the binary): cxenstored's own
// dumps pass; each rule's breach is named.
import assert from "../helpers/assert.ts";
import { cx417Verdict, requestsIn } from "../../src/migration/cx417.ts";
import { readStream } from "../../src/migration/reader.ts";
import type { MigrationStream, StateRecord } from "../../src/migration/records.ts";
import { FIXTURES, gunzip } from "./cx_capture.ts";

const dom0Only = (d: number) => d === 0;
const perms = [{ access: "n" as const, domid: 0, stale: false }];
const ring0: StateRecord = {
  type: "conn",
  connId: 1,
  endpoint: { kind: "ring", domid: 0, targetDomid: null, evtchn: 0 },
  input: new Uint8Array(0),
  output: new Uint8Array(0),
  partialOutput: 0,
};
const sock: StateRecord = { ...ring0, connId: 2, endpoint: { kind: "socket", fd: 7 } };
const node = (path: string, owner = 0): StateRecord => ({
  type: "node",
  path,
  value: "",
  perms: [{ access: "n", domid: owner, stale: false }],
  txn: null,
});

Deno.test("cx417Verdict: cxenstored's own dumps pass", async () => {
  for (
    const b of [
      Deno.readFileSync(`${FIXTURES}/basic.state`),
      await gunzip(Deno.readFileSync(`${FIXTURES}/pending.state.gz`)),
    ]
  ) {
    assert.deepEqual(cx417Verdict(readStream(b), dom0Only), { fatal: [], lost: [] });
  }
});

Deno.test("cx417Verdict: each rule", () => {
  const v = (records: StateRecord[], version: 1 | 2 = 1) =>
    cx417Verdict({ version, records } as MigrationStream, dom0Only);
  assert.deepEqual(v([ring0, sock, node("/a")]), { fatal: [], lost: [] });
  assert.deepEqual(v([]), { fatal: [], lost: [] });
  assert.ok(v([ring0], 2).fatal[0].includes("version 2"));
  assert.ok(v([sock, ring0]).fatal[0].includes("domain 0's ring"));
  assert.ok(v([node("/a"), ring0]).fatal[0].includes("domain 0's ring"));
  assert.ok(v([node("/a")]).fatal[0].includes("domain 0's ring"));
  assert.deepEqual(v([ring0, node("/a", 3), node("/b", 3)]).fatal, [
    "2 node(s) owned by domain 3, which does not exist",
  ]);
  // Special nodes are not charged to anyone.
  assert.deepEqual(v([ring0, { ...node("@releaseDomain", 3) }]).fatal, []);
  const ta: StateRecord = { type: "transaction", connId: 2, txId: 5 };
  const pending: StateRecord = {
    type: "node",
    path: "/x",
    value: "v",
    perms,
    txn: { connId: 2, txId: 5, access: 2 },
  };
  const r = v([ring0, sock, ta, pending]);
  assert.deepEqual(r.fatal, ["1 NODE record(s) of pending transactions would be restored as committed"]);
  assert.deepEqual(r.lost, ["1 open transaction(s) (TA records are ignored)"]);
  const lost = v([ring0, { type: "opaque", code: 0x64780003, body: new Uint8Array(0) }, {
    type: "global-quota",
    perDomain: [],
    global: [],
  }]).lost;
  assert.deepEqual(lost, [
    "1 dxenstored record(s) of type 0x64780003 (the policy plugins' state)",
    "1 unknown record(s) of type 0x00000006",
  ]);
});

Deno.test("cx417Verdict: at most one unprocessed request per connection (4.17 restores one)", () => {
  const req = (len: number) => {
    const b = new Uint8Array(16 + len);
    new DataView(b.buffer).setUint32(12, len, true);
    return b;
  };
  const cat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) out.set(p, (at += p.length) - p.length);
    return out;
  };
  assert.equal(requestsIn(new Uint8Array(0)), 0);
  assert.equal(requestsIn(req(5)), 1);
  assert.equal(requestsIn(req(5).subarray(0, 10)), 1, "a header cut short");
  assert.equal(requestsIn(req(5).subarray(0, 18)), 1, "a payload cut short");
  assert.equal(requestsIn(cat(req(5), req(0))), 2);
  assert.equal(requestsIn(cat(req(5), req(7).subarray(0, 3))), 2);
  const input = (b: Uint8Array): StateRecord => ({ ...sock, input: b });
  assert.deepEqual(cx417Verdict({ version: 1, records: [ring0, input(req(9))] }, dom0Only).fatal, []);
  assert.deepEqual(
    cx417Verdict({ version: 1, records: [ring0, input(cat(req(9), req(1)))] }, dom0Only).fatal,
    [
      "more than one unprocessed request in connection 2 (2): cxenstored 4.17 restores one",
    ],
  );
});
