// The migration stream reader's refusals, one by one, on hand-made bytes (what the writer would never
// produce), and what it deliberately lets through: padding and ignored fields, unknown record types.
import assert from "../helpers/assert.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import { StreamError, type StreamErrorCode } from "../../src/migration/errors.ts";
import { DX_RECORD_FIRST, RecordType } from "../../src/migration/format.ts";
import type { MigrationStream, StateRecord } from "../../src/migration/records.ts";

// ---- raw bytes ------------------------------------------------------------------------------------

function le(width: 1 | 2 | 4, v: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < width; i++) out.push((v >>> (8 * i)) & 0xff);
  return out;
}
const u8 = (v: number) => le(1, v);
const u16 = (v: number) => le(2, v);
const u32 = (v: number) => le(4, v >>> 0);
const str = (s: string) => [...s].map((c) => c.charCodeAt(0));
const cstr = (s: string) => [...str(s), 0];

function be32(v: number): number[] {
  return le(4, v).reverse();
}

/** "xenstore", version and flags big-endian. */
function preamble(version = 1, flags = 0): number[] {
  return [...str("xenstore"), ...be32(version), ...be32(flags)];
}

/** A record with its body padded to 8 (or with `len` forced). */
function rec(type: number, body: number[], len?: number): number[] {
  const padded = [...body];
  while (padded.length % 8 !== 0) padded.push(0);
  return [...u32(type), ...u32(len ?? padded.length), ...padded];
}
const END = rec(RecordType.END, []);
const GLOBAL = rec(RecordType.GLOBAL, [...u32(3), ...u32(6)]);

function sock(connId: number, fd: number, input: number[] = [], output: number[] = [], resp = 0): number[] {
  return rec(RecordType.CONN, [
    ...u32(connId),
    ...u16(1),
    ...u16(0),
    ...u32(fd),
    ...u32(0),
    ...u16(input.length),
    ...u16(resp),
    ...u32(output.length),
    ...input,
    ...output,
  ]);
}
function ring(connId: number, domid: number, tdomid = 0x7ff4, evtchn = 3): number[] {
  return rec(RecordType.CONN, [
    ...u32(connId),
    ...u16(0),
    ...u16(0),
    ...u16(domid),
    ...u16(tdomid),
    ...u32(evtchn),
    ...u16(0),
    ...u16(0),
    ...u32(0),
  ]);
}
function watch(connId: number, path: string, token: string, ext?: number): number[] {
  const head = [...u32(connId), ...u16(path.length + 1), ...u16(token.length + 1)];
  if (ext !== undefined) head.push(...u16(ext), ...u16(0));
  return rec(ext === undefined ? RecordType.WATCH : RecordType.WATCH_EXT, [
    ...head,
    ...cstr(path),
    ...cstr(token),
  ]);
}
function node(
  path: string,
  value = "",
  perms: Array<[string, number, number]> = [["n", 0, 0]],
  txn: [number, number, number] = [0, 0, 0],
): number[] {
  return rec(RecordType.NODE, [
    ...u32(txn[0]),
    ...u32(txn[1]),
    ...u16(path.length + 1),
    ...u16(value.length),
    ...u16(txn[2]),
    ...u16(perms.length),
    ...perms.flatMap(([l, f, d]) => [l.charCodeAt(0), ...u8(f), ...u16(d)]),
    ...cstr(path),
    ...str(value),
  ]);
}
const ta = (connId: number, txId: number) => rec(RecordType.TA, [...u32(connId), ...u32(txId)]);
const msg = (
  type: number,
  payload: string,
) => [...u32(type), ...u32(1), ...u32(0), ...u32(payload.length), ...str(payload)];

function stream(...parts: number[][]): Uint8Array {
  return Uint8Array.from([...preamble(), ...parts.flat(), ...END]);
}
function raw(...parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

function refused(b: Uint8Array, code: StreamErrorCode, fragment: string, limits = {}): void {
  const e = assert.throws(() => readStream(b, limits), StreamError);
  assert.equal(e.code, code, e.message);
  assert.ok(e.message.includes(fragment), `"${e.message}" does not mention "${fragment}"`);
}

// ---- tests ----------------------------------------------------------------------------------------

Deno.test("migration stream: the preamble", () => {
  assert.deepEqual(readStream(stream()), { version: 1, records: [] });
  assert.deepEqual(readStream(raw(preamble(2), END)), { version: 2, records: [] });
  refused(raw(preamble().slice(0, 12)), "truncated", "no preamble");
  refused(raw(str("xenstorf"), preamble().slice(8), END), "not-a-stream", "ident");
  refused(raw(preamble(0), END), "unsupported-version", "version 0");
  refused(raw(preamble(3), END), "unsupported-version", "version 3");
  refused(raw(preamble(1, 1), END), "unsupported-flags", "big-endian");
  refused(raw(preamble(1, 4), END), "unsupported-flags", "reserved");
});

Deno.test("migration stream: END, lengths and truncation", () => {
  refused(raw(preamble()), "truncated", "without an END");
  refused(raw(preamble(), GLOBAL), "truncated", "without an END");
  refused(raw(preamble(), GLOBAL.slice(0, 12)), "truncated", "length 8, only 4 bytes left");
  refused(raw(preamble(), END, END), "contradiction", "8 bytes after END");
  refused(raw(preamble(), rec(RecordType.END, [1])), "bad-length", "END with a 8-byte body");
  refused(
    raw(preamble(), rec(RecordType.GLOBAL, [...u32(3), ...u32(6)], 7)),
    "bad-length",
    "not a multiple of 8",
  );
  refused(
    stream(rec(RecordType.GLOBAL, [...u32(3), ...u32(6), ...u32(0), ...u32(0)])),
    "bad-length",
    "GLOBAL",
  );
  refused(stream(rec(RecordType.GLOBAL, [])), "bad-length", "length 0 too short for GLOBAL socket fd");
  // A CONN whose data lengths run past its record.
  const c = sock(1, 7, [], []);
  c[8 + 20] = 200; // out length
  refused(stream(c), "bad-length", "too short for CONN output data");
});

Deno.test("migration stream: fields", () => {
  const badType = ring(1, 0);
  badType[8 + 4] = 2;
  refused(stream(badType), "bad-field", "CONN type 2");
  refused(stream(node("/a", "", [["x", 0, 0]])), "bad-field", "permission letter 0x78");
  refused(stream(node("/a", "", [["n", 2, 0]])), "bad-field", "permission flags 0x2");
  refused(stream(node("/a", "", [])), "bad-field", "no permissions");
  refused(stream(node("a/b")), "bad-field", "not absolute");
  refused(stream(node("/a//b")), "bad-field", "'//'");
  refused(stream(node("/a b")), "bad-field", "invalid character");
  refused(stream(node("@other")), "bad-field", "unknown special node");
  refused(stream(node("@releaseDomain", "x")), "bad-field", "with a value");
  const notNul = node("/ab");
  notNul[8 + 16 + 4 + 3] = 0x63; // the path's NUL
  refused(stream(notNul), "bad-field", "not NUL-terminated");
  refused(stream(watch(1, "/a", "t")), "order", "before its CONN");
  refused(stream(sock(1, 7), watch(1, "/a", "t\0u")), "bad-field", "NUL inside");
  refused(stream(ring(1, 0x7ff0)), "bad-field", "ring domid 32752");
  refused(stream(sock(1, -2 >>> 0)), "bad-field", "socket fd -2");
  refused(stream(sock(0, 7)), "bad-field", "connection id 0");
  refused(
    stream(sock(1, 7, msg(2, "x".repeat(10)).map((b, i) => i === 12 ? 0x01 : i === 13 ? 0x10 : b))),
    "bad-field",
    "announces 4097",
  );
  refused(stream(sock(1, 7, [], msg(2, "abc").slice(0, 18))), "bad-field", "output ends inside a message");
  refused(stream(sock(1, 7, [], msg(2, "abc"), 20)), "contradiction", "partial response of 20");
  refused(stream(sock(1, 7), ta(1, 0)), "bad-field", "transaction id 0");
  refused(
    stream(watch(1, "/a", "t", 5).map((b, i) => i === 0 ? RecordType.WATCH_EXT : b)),
    "unsupported-version",
    "WATCH_EXT",
  );
});

Deno.test("migration stream: limits", () => {
  refused(stream(node("/" + "a".repeat(3072))), "limit", "path too long");
  refused(stream(node("/a", "v".repeat(4097))), "limit", "value of 4097 bytes");
  refused(stream(sock(1, 7), watch(1, "/" + "p".repeat(2000), "t".repeat(2100))), "limit", "path and token");
  refused(stream(node("/a", "", Array(1366).fill(["n", 0, 0]))), "limit", "1366 permissions");
  refused(stream(GLOBAL, sock(1, 7), sock(2, 8)), "limit", "more than 1 connections", { maxConnections: 1 });
  refused(stream(node("/a"), node("/b")), "limit", "more than 1 records", { maxRecords: 1 });
  refused(stream(node("/a")), "limit", "bytes (limit 10)", { maxStreamBytes: 10 });
  refused(stream(sock(1, 7, [], msg(2, "abcd"))), "limit", "20 output bytes", {
    maxOutputBytesPerConnection: 19,
  });
  refused(stream(rec(0x1234, Array(16).fill(1))), "limit", "of 16 bytes", { maxOpaqueRecordBytes: 8 });
});

Deno.test("migration stream: dependency order", () => {
  refused(stream(node("/a/b"), node("/a")), "order", "/a/b before its parent");
  refused(stream(sock(1, 7), GLOBAL), "order", "GLOBAL after a CONN");
  refused(stream(ta(1, 5), sock(1, 7)), "order", "TA of connection 1 before its CONN");
  refused(stream(sock(1, 7), node("/x", "v", [["b", 0, 0]], [1, 5, 2])), "order", "before its TA");
  // Parents known from earlier records, or the root (which every store has): fine in any such order.
  assert.equal(readStream(stream(node("/a"), node("/a/b"), node("/"))).records.length, 3);
});

Deno.test("migration stream: things said twice", () => {
  refused(stream(GLOBAL, GLOBAL), "contradiction", "second GLOBAL");
  refused(stream(sock(1, 7), sock(1, 8)), "duplicate", "connection id 1 twice");
  refused(stream(sock(1, 7), sock(2, 7)), "duplicate", "fd 7");
  refused(stream(ring(1, 3), ring(2, 3)), "duplicate", "domain 3");
  refused(stream(GLOBAL, sock(1, 3)), "contradiction", "GLOBAL's fd 3");
  refused(stream(sock(1, 7), watch(1, "/a", "t"), watch(1, "/a", "t")), "duplicate", "twice");
  refused(stream(node("/a"), node("/a")), "duplicate", "node /a twice");
  refused(stream(sock(1, 7), ta(1, 5), ta(1, 5)), "duplicate", "transaction 5");
  refused(
    stream(sock(1, 7), ta(1, 5), node("/x", "v", [], [1, 5, 2])),
    "contradiction",
    "access 2 with 0 permissions",
  );
  refused(stream(rec(RecordType.GLOBAL, [...u32(4), ...u32(4)])), "contradiction", "share fd 4");
});

Deno.test("migration stream: what the reader lets through", () => {
  // Padding bytes and a committed node's tx-id and access are ignored (xenstore-migration.md).
  const n = node("/ab", "v");
  n[8 + 4] = 9; // tx-id
  n[8 + 12] = 3; // access
  n[n.length - 1] = 0xee; // padding
  const s = readStream(stream(n));
  assert.deepEqual(s.records, [{
    type: "node",
    path: "/ab",
    value: "v",
    perms: [{ access: "n", domid: 0, stale: false }],
    txn: null,
  }]);
  // Unknown types (future Xen, dxenstored's own) are kept as opaque records, as cxenstored skips them.
  const o = readStream(stream(rec(0x1234, [1, 2, 3]), rec(DX_RECORD_FIRST + 1, [])));
  assert.deepEqual(o.records.map((r) => r.type === "opaque" ? [r.code, r.body.length] : null), [[0x1234, 8], [
    DX_RECORD_FIRST + 1,
    0,
  ]]);
  // A request cut short is the last input of a connection; whole ones before it.
  const input = [...msg(2, "ab\0"), ...msg(11, "x\0y").slice(0, 7)];
  const c = readStream(stream(sock(1, 7, input))).records[0];
  assert.ok(c.type === "conn" && c.input.length === input.length);
});

Deno.test("migration stream: the writer refuses what the reader would refuse, and pads with zeros", () => {
  const bad: MigrationStream = {
    version: 1,
    records: [{ type: "watch", connId: 1, path: "/a", token: "t", depth: null }],
  };
  assert.equal(assert.throws(() => writeStream(bad), StreamError).code, "order");
  const ext: StateRecord = { type: "watch", connId: 1, path: "/a", token: "t", depth: 3 };
  const conn: StateRecord = {
    type: "conn",
    connId: 1,
    endpoint: { kind: "socket", fd: 7 },
    input: new Uint8Array(0),
    output: new Uint8Array(0),
    partialOutput: 0,
  };
  assert.equal(
    assert.throws(() => writeStream({ version: 1, records: [conn, ext] }), StreamError).code,
    "unsupported-version",
  );
  const b = writeStream({ version: 2, records: [conn, ext] });
  // WATCH_EXT: conn id, lengths 3 and 2, depth 3, pad, "/a\0t\0", zero padding to 8.
  assert.deepEqual([...b.subarray(16 + 32, b.length - 8)], [
    ...u32(RecordType.WATCH_EXT),
    ...u32(24),
    ...u32(1),
    ...u16(3),
    ...u16(2),
    ...u16(3),
    ...u16(0),
    ...cstr("/a"),
    ...cstr("t"),
    ...Array(7).fill(0),
  ]);
});
