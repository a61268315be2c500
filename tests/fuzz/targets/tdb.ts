// The TDB readers (src/backend/xs_tdb.ts, src/backend/tdb.ts).
//
//  - "tdb-record": decodeNodeRecord, one node record in cxenstored's layouts (with and without the
//    generation field). It never throws (a `problem` value). Invariant: an accepted record is
//    consistent — its value and child list are exactly the lengths its header gives, its generation
//    a safe integer, its permissions a valid list.
//  - "tdb-store": KvStoreReader (src/backend/kv_layout.ts), the records of a dxenstored TDB file or
//    storage module (node records keyed by path, the format marker, the generation counter, the
//    domain records), as libtdb hands them over, with and without --recover. Only BackendError may escape; a loaded tree must be sound. Input: u8 flags (bit 0:
//    --recover), then records as u16 key length, key, u32 value length, value.
import { BackendError } from "../../../src/backend/backend.ts";
import { KvStoreReader } from "../../../src/backend/kv_layout.ts";
import { decodeNodeRecord, encodeNodeRecord } from "../../../src/backend/xs_tdb.ts";
import { Perms } from "../../../src/store/perms.ts";
import { check, checkLoaded, type Target } from "../engine.ts";

const enc = new TextEncoder();

const RECORDS: ReadonlyArray<[string, string, Perms, number]> = [
  ["/", "", Perms.of(0, 0), 0],
  ["/local", "", Perms.of(0, 0), 1],
  ["/local/domain", "", Perms.of(0, 0), 2],
  ["/local/domain/5", "guest", Perms.of(5, 1, [{ domid: 7, bits: 3 }, { domid: 9, bits: 1 }]), 3],
  ["/local/domain/5/data", "\x00\xff".repeat(40), Perms.of(5, 0), 4],
];

/** A record in the layout without a generation field (Xen before 4.9): header of 12 bytes. */
function noGenRecord(value: string, perms: Perms): Uint8Array {
  const withGen = encodeNodeRecord(value, perms, 0);
  // Drop the 8-byte generation and the 4 bytes of padding at the end.
  return withGen.slice(8, withGen.length - 4);
}

export const tdbRecordTarget: Target = {
  name: "tdb-record",
  contract: "decodeNodeRecord, both layouts (never throws; a problem value)",
  corpus() {
    const out: Uint8Array[] = [];
    for (const [, v, p, g] of RECORDS) {
      for (const [flag, rec] of [[0, encodeNodeRecord(v, p, g)], [1, noGenRecord(v, p)]] as const) {
        const b = new Uint8Array(1 + rec.length);
        b[0] = flag;
        b.set(rec, 1);
        out.push(b);
      }
    }
    // Child lists, as Xen's own records have them.
    const withChildren = encodeNodeRecord("", Perms.of(0, 0), 7);
    const kids = enc.encode("a\0bb\0ccc\0");
    const b = new Uint8Array(1 + withChildren.length - 4 + kids.length);
    b.set(withChildren.subarray(0, withChildren.length - 4), 1);
    new DataView(b.buffer).setUint32(1 + 16, kids.length, true);
    b.set(kids, 1 + withChildren.length - 4);
    out.push(b);
    return out;
  },
  run(input) {
    if (input.length === 0) return;
    const layout = input[0] % 2 === 0 ? "gen" : "nogen";
    const d = decodeNodeRecord(input.subarray(1), layout);
    if (d.record === undefined) {
      check(typeof d.problem === "string" && d.problem.length > 0, "neither a record nor a problem");
      return;
    }
    const r = d.record;
    check(Number.isSafeInteger(r.gen) && r.gen >= 0, `generation ${r.gen}`);
    check(r.perms instanceof Perms && r.perms.owner >= 0 && r.perms.owner <= 0xffff, "owner out of range");
    check(r.perms.acl.every((e) => e.domid >= 0 && e.domid <= 0xffff && e.bits >= 0 && e.bits <= 3), "acl");
    for (let i = 0; i < r.value.length; i++) check(r.value.charCodeAt(i) <= 0xff, "value is not bytes");
    check(r.children.every((c) => typeof c === "string" && !c.includes("\0")), "child names");
  },
  expected: () => false,
  ciCases: 20_000,
};

function kv(key: string, value: Uint8Array): Uint8Array {
  const k = Uint8Array.from(key, (c) => c.charCodeAt(0));
  const b = new Uint8Array(2 + k.length + 4 + value.length);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, k.length, true);
  b.set(k, 2);
  dv.setUint32(2 + k.length, value.length, true);
  b.set(value, 6 + k.length);
  return b;
}

function records(input: Uint8Array): Array<[Uint8Array, Uint8Array]> {
  const out: Array<[Uint8Array, Uint8Array]> = [];
  const dv = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let o = 1;
  while (o + 2 <= input.length) {
    const kl = dv.getUint16(o, true);
    const k = input.subarray(o + 2, Math.min(input.length, o + 2 + kl));
    o += 2 + kl;
    if (o + 4 > input.length) break;
    const vl = dv.getUint32(o, true);
    const v = input.subarray(o + 4, Math.min(input.length, o + 4 + vl));
    o += 4 + vl;
    out.push([k, v]);
  }
  return out;
}

export const tdbStoreTarget: Target = {
  name: "tdb-store",
  contract: "a TDB file's or storage module's records → store (KvStoreReader): BackendError only",
  corpus() {
    const parts = [
      new Uint8Array([0]),
      kv("dxenstored:format", enc.encode("1")),
      kv("dxenstored:gen", enc.encode("12")),
      ...RECORDS.map(([p, v, perms, g]) => kv(p, encodeNodeRecord(v, perms, g))),
      kv(
        "dxenstored:domains",
        enc.encode(JSON.stringify([{ domid: 5, ringGfn: 4096, eventChannel: 7 }])),
      ),
    ];
    const b = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      b.set(p, o);
      o += p.length;
    }
    const recover = b.slice();
    recover[0] = 1;
    return [b, recover];
  },
  run(input) {
    if (input.length === 0) return;
    const reader = new KvStoreReader("tdb:fuzz", (input[0] & 1) === 1);
    for (const [k, v] of records(input)) reader.add(k, v);
    const st = reader.finish();
    if (st !== null) checkLoaded(st.root, st.gen, "a loaded store");
  },
  expected: (e) => e instanceof BackendError,
  ciCases: 10_000,
};
